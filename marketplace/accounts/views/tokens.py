"""Personal API tokens: list, create (the secret is shown once), revoke."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts import queries
from marketplace.accounts.forms.team import ConfirmForm
from marketplace.accounts.forms.tokens import ApiTokenForm
from marketplace.accounts.permissions import can_create_api_token
from marketplace.accounts.services import tokens
from marketplace.accounts.session import current_organisation
from marketplace.accounts.views import bp
from marketplace.accounts.views.team import rule_errors
from marketplace.core.db import commit
from marketplace.core.errors import BusinessRuleViolation


def _token_organisation():
    """Tokens act for the organisation the person is working for now."""
    organisation = current_organisation()
    if organisation is None or not can_create_api_token(current_user, organisation):
        abort(403)
    return organisation


@bp.get("/account/api-tokens")
@login_required
def api_tokens():
    return render_template(
        "accounts/api_tokens.html",
        tokens=queries.user_api_tokens(current_user),
        organisation=current_organisation(),
    )


@bp.route("/account/api-tokens/new", methods=["GET", "POST"])
@login_required
def new_api_token():
    organisation = _token_organisation()
    form = ApiTokenForm()
    if form.validate_on_submit():
        token, secret = tokens.create_api_token(current_user, organisation, form.name.data)
        commit()
        # Shown in this response only: it is stored hashed and never appears again.
        return render_template("accounts/api_token_created.html", token=token, secret=secret)
    return render_template("accounts/api_token_new.html", form=form, organisation=organisation)


@bp.route("/account/api-tokens/<int:token_id>/revoke", methods=["GET", "POST"])
@login_required
def revoke_api_token(token_id: int):
    token = queries.get_user_api_token(current_user, token_id)
    if token is None:
        abort(404)
    form = ConfirmForm()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            tokens.revoke_api_token(current_user, token)
        except BusinessRuleViolation as error:
            errors = rule_errors(error)
        else:
            commit()
            flash(
                f"The token “{token.name}” has been revoked. Anything using it can no longer "
                "sign in.",
                "success",
            )
            return redirect(url_for("accounts.api_tokens"))
    elif token.revoked_at is not None:
        flash(f"The token “{token.name}” has already been revoked", "info")
        return redirect(url_for("accounts.api_tokens"))
    return render_template(
        "accounts/api_token_revoke.html",
        token=token,
        form=form,
        errors=errors,
        page_has_errors=bool(errors),
    )
