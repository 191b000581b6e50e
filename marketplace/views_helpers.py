"""Small helpers that every feature's views share."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask_wtf import FlaskForm

from marketplace.errors import DomainError


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
