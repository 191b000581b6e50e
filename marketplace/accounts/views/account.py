"""Your account: details, password, two-factor authentication."""

from __future__ import annotations

import segno
from flask import current_app, flash, redirect, render_template, url_for
from flask_login import current_user, login_required, login_user

from marketplace.accounts import security
from marketplace.accounts.forms.auth import (
    ChangePasswordForm,
    PasswordConfirmForm,
    ProfileForm,
    TwoFactorSetupForm,
)
from marketplace.accounts.security import totp_uri
from marketplace.accounts.services import passwords, two_factor
from marketplace.accounts.views import bp
from marketplace.core.db import commit
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors


@bp.get("/account")
@login_required
def account():
    return render_template(
        "accounts/account.html",
        recovery_codes_left=two_factor.unused_recovery_code_count(current_user),
    )


@bp.route("/account/name", methods=["GET", "POST"])
@login_required
def change_name():
    form = ProfileForm(obj=current_user)
    if form.validate_on_submit():
        passwords.update_profile(current_user, form.name.data)
        commit()
        flash("Your name has been changed", "success")
        return redirect(url_for("accounts.account"))
    return render_template("accounts/change_name.html", form=form)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        try:
            passwords.change_password(
                current_user, form.current_password.data, form.new_password.data
            )
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            # The password change rotated the session id; keep this session signed in.
            login_user(current_user)
            flash("Your password has been changed. Other devices have been signed out.", "success")
            return redirect(url_for("accounts.account"))
    return render_template("accounts/change_password.html", form=form)


def _qr_svg_data_uri(uri: str) -> str:
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


@bp.route("/account/two-factor", methods=["GET", "POST"])
@login_required
def two_factor_setup():
    if current_user.two_factor_enabled:
        return redirect(url_for("accounts.account"))
    form = TwoFactorSetupForm()
    if form.validate_on_submit():
        try:
            codes = two_factor.confirm_two_factor_setup(current_user, form.code.data)
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            flash("Two-factor authentication is on", "success")
            return render_template("accounts/recovery_codes.html", codes=codes)
    secret = two_factor.begin_two_factor_setup(current_user)
    commit()
    uri = totp_uri(secret, current_user.email, current_app.config["TOTP_ISSUER"])
    return render_template(
        "accounts/two_factor_setup.html",
        form=form,
        secret=secret,
        qr_data_uri=_qr_svg_data_uri(uri),
        required=current_user.requires_two_factor,
    )


@bp.route("/account/two-factor/recovery-codes", methods=["GET", "POST"])
@login_required
def two_factor_recovery_codes():
    form = PasswordConfirmForm()
    if form.validate_on_submit():
        if not security.verify_password(current_user.password_hash, form.password.data):
            form.password.errors.append("Your password is not right")
        else:
            try:
                codes = two_factor.regenerate_recovery_codes(current_user)
            except BusinessRuleViolation as error:
                apply_errors(form, error)
            else:
                commit()
                return render_template("accounts/recovery_codes.html", codes=codes)
    return render_template("accounts/regenerate_codes.html", form=form)


@bp.route("/account/two-factor/turn-off", methods=["GET", "POST"])
@login_required
def two_factor_disable():
    form = PasswordConfirmForm()
    if form.validate_on_submit():
        try:
            two_factor.disable_two_factor(current_user, form.password.data)
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            flash("Two-factor authentication is off", "success")
            return redirect(url_for("accounts.account"))
    return render_template(
        "accounts/two_factor_disable.html", form=form, required=current_user.requires_two_factor
    )
