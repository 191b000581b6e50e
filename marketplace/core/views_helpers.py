"""Small helpers that every feature's views share."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

from flask import abort, flash
from flask_wtf import FlaskForm

from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError, NotFound, TransitionConflict


def safe_next_url(target: str | None) -> str | None:
    """Only same-site paths are followed after sign-in, never another host."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def apply_errors(form: FlaskForm, error: DomainError) -> None:
    """Show a service's rule violations on the form fields they name (or on the first field)."""
    first_field = next((f for f in form if f.type not in ("CSRFTokenField", "SubmitField")), None)
    for field_name, messages in error.errors.items():
        field = getattr(form, field_name, None) if field_name else None
        target = field if field is not None and hasattr(field, "errors") else first_field
        if target is None:
            continue
        if not isinstance(target.errors, list):
            target.errors = list(target.errors)
        target.errors.extend(messages)


def act_on_form(form: FlaskForm, act: Callable[[], object], success: str) -> bool:
    """On a valid post, run ``act`` and commit, flash ``success`` and say True. A refusal rolls
    back and shows its errors on the form (False); a NotFound from the service is a 404.

    A refusal because the object has moved on (``TransitionConflict``: already declined, by a
    double click or by someone else) says True as well, with its message flashed instead: the
    caller goes back to the object's page, which shows where it stands, since the form can no
    longer do anything."""
    if not form.validate_on_submit():
        return False
    try:
        act()
        commit()
    except DomainError as error:
        rollback()
        if isinstance(error, NotFound):
            abort(404)
        if isinstance(error, TransitionConflict):
            flash(_message(error), "error")
            return True
        apply_errors(form, error)
        return False
    flash(success, "success")
    return True


def act_on_click(form: FlaskForm, act: Callable[[], object], success: str) -> None:
    """A one-button action (the form is only its CSRF token): run ``act`` and commit, then flash
    ``success``, or roll back and flash why it was refused. A post without a valid token is
    400; a NotFound from the service is 404. The caller redirects back to the page."""
    if not form.validate_on_submit():
        abort(400)
    try:
        act()
        commit()
    except DomainError as error:
        rollback()
        if isinstance(error, NotFound):
            abort(404)
        flash(_message(error), "error")
    else:
        flash(success, "success")


def _message(error: DomainError) -> str:
    return " ".join(m for ms in error.errors.values() for m in ms) or error.detail
