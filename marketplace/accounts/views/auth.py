"""Signing in and out, two-factor challenge, registration, email confirmation, password reset,
invitations and switching organisation."""

from __future__ import annotations

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, logout_user

from marketplace.accounts.forms.auth import (
    AcceptInvitationForm,
    EmptyForm,
    ForgotPasswordForm,
    RegisterProviderForm,
    ResendConfirmationForm,
    ResetPasswordForm,
    SignInForm,
    TwoFactorForm,
)
from marketplace.accounts.models import OrganisationType, TokenPurpose
from marketplace.accounts.services import (
    common,
    passwords,
    registration,
    signing_in,
    teams,
    two_factor,
)
from marketplace.accounts.services.classification import ClassificationAnswers
from marketplace.accounts.session import (
    ORGANISATION_SESSION_KEY,
    PENDING_TWO_FACTOR_KEY,
    load_user,
    start_session,
)
from marketplace.accounts.views import bp
from marketplace.core.db import commit
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.extensions import client_address, limiter
from marketplace.core.views_helpers import apply_errors, safe_next_url
from marketplace.reference.queries import all_regions


def _sign_in_limit() -> str:
    return current_app.config["SIGN_IN_FAILURE_LIMIT"]


def _account_key() -> str:
    email = (request.form.get("email") or "").strip().lower()[:254]
    return f"sign-in-account:{email}"


def _pending_account_key() -> str:
    return f"two-factor:{session.get(PENDING_TWO_FACTOR_KEY, '')}"


def _failed(response) -> bool:
    """Only failed attempts count towards the limit (a success redirects)."""
    return response.status_code != 302


sign_in_limits = [
    limiter.limit(
        _sign_in_limit,
        key_func=client_address,
        methods=["POST"],
        deduct_when=_failed,
        scope="sign-in-address",
        error_message="Too many failed sign-in attempts from your network. Wait 15 minutes and try again.",
    ),
    limiter.limit(
        _sign_in_limit,
        key_func=_account_key,
        methods=["POST"],
        deduct_when=_failed,
        scope="sign-in-account",
        error_message="Too many failed sign-in attempts for this account. Wait 15 minutes and try again.",
    ),
]


def _limited(view):
    for decorate in sign_in_limits:
        view = decorate(view)
    return view


@bp.route("/sign-in", methods=["GET", "POST"])
@_limited
def sign_in():
    if current_user.is_authenticated:
        return redirect(url_for("dashboard.index"))
    form = SignInForm()
    if form.validate_on_submit():
        try:
            user = signing_in.authenticate(form.email.data, form.password.data)
        except signing_in.EmailNotConfirmed as unconfirmed:
            registration.send_confirmation_email(unconfirmed.user)
            commit()
            return render_template(
                "accounts/confirm_email_sent.html", email=unconfirmed.user.email, resent=True
            )
        if user is None:
            signing_in.record_failed_sign_in(form.email.data)
            commit()
            form.email.errors.append("Enter a correct email address and password")
            return render_template("accounts/sign_in.html", form=form), 200
        next_url = safe_next_url(request.args.get("next"))
        if user.two_factor_enabled:
            session.clear()
            session[PENDING_TWO_FACTOR_KEY] = user.get_id()
            session["pending_next"] = next_url
            commit()  # a rehashed password
            return redirect(url_for("accounts.two_factor_challenge"))
        start_session(user)
        signing_in.record_sign_in(user)
        commit()
        return redirect(next_url or url_for("dashboard.index"))
    return render_template("accounts/sign_in.html", form=form)


@bp.route("/sign-in/two-factor", methods=["GET", "POST"])
@limiter.limit(
    _sign_in_limit,
    key_func=_pending_account_key,
    methods=["POST"],
    deduct_when=_failed,
    scope="two-factor",
    error_message="Too many wrong security codes. Wait 15 minutes and try again.",
)
def two_factor_challenge():
    pending = session.get(PENDING_TWO_FACTOR_KEY)
    user = load_user(pending) if pending else None
    if user is None:
        flash("Sign in again to continue", "info")
        return redirect(url_for("accounts.sign_in"))
    form = TwoFactorForm()
    if form.validate_on_submit():
        if two_factor.verify_second_factor(user, form.code.data):
            next_url = session.get("pending_next")
            start_session(user)
            signing_in.record_sign_in(user)
            commit()
            return redirect(next_url or url_for("dashboard.index"))
        form.code.errors.append("The security code is not right, or it has been used already")
        commit()
    return render_template("accounts/two_factor_challenge.html", form=form)


@bp.post("/sign-out")
def sign_out():
    form = EmptyForm()
    if not form.validate_on_submit():
        abort(400)
    logout_user()
    session.clear()
    flash("You have signed out", "success")
    return redirect(url_for("accounts.sign_in"))


@bp.post("/switch-organisation")
def switch_organisation():
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.sign_in"))
    raw = request.form.get("organisation_id", "")
    chosen = next((o for o in current_user.organisations if str(o.id) == raw), None)
    if chosen is None:
        abort(404)
    session[ORGANISATION_SESSION_KEY] = chosen.id
    flash(f"You are now working for {chosen.name}", "success")
    return redirect(url_for("dashboard.index"))


@bp.route("/register", methods=["GET", "POST"])
def register():
    if current_user.is_authenticated:
        flash("Sign out to register a new organisation", "info")
        return redirect(url_for("dashboard.index"))
    form = RegisterProviderForm()
    form.region_id.choices = [("", "Choose a region")] + [(r.id, r.name) for r in all_regions()]
    if form.validate_on_submit():
        details = registration.ProviderRegistration(
            organisation_name=form.organisation_name.data,
            organisation_type=OrganisationType(form.organisation_type.data),
            charity_number=form.charity_number.data,
            companies_house_number=form.companies_house_number.data,
            region_id=form.region_id.data,
            name=form.name.data,
            email=form.email.data,
            password=form.password.data,
            classification=ClassificationAnswers(
                form.vcse_basis.data, form.staff_band.data, form.turnover_band.data
            ),
        )
        try:
            registration.register_provider(details)
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            session["registered_email"] = common.normalise_email(form.email.data)
            return redirect(url_for("accounts.registration_sent"))
    return render_template("accounts/register.html", form=form)


@bp.get("/register/check-your-email")
def registration_sent():
    email = session.get("registered_email")
    if not email:
        return redirect(url_for("accounts.register"))
    return render_template("accounts/confirm_email_sent.html", email=email, resent=False)


@bp.route("/confirm-email/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    # A button, not the GET, uses the link: mail scanners that follow links must not use it up.
    form = EmptyForm()
    user = common.check_token(token, TokenPurpose.CONFIRM_EMAIL)
    if user is None:
        return render_template("accounts/link_invalid.html", kind="confirm"), 410
    if form.validate_on_submit():
        registration.confirm_email(token)
        commit()
        flash("Your email address is confirmed. Sign in to continue.", "success")
        return redirect(url_for("accounts.sign_in"))
    return render_template("accounts/confirm_email.html", form=form, user=user)


@bp.route("/confirm-email", methods=["GET", "POST"])
def resend_confirmation():
    form = ResendConfirmationForm()
    if form.validate_on_submit():
        user = common.get_user_by_email(form.email.data)
        if user is not None and user.email_confirmed_at is None and user.active:
            registration.send_confirmation_email(user)
            commit()
        return render_template(
            "accounts/confirm_email_sent.html",
            email=common.normalise_email(form.email.data),
            resent=True,
        )
    return render_template("accounts/resend_confirmation.html", form=form)


@bp.route("/forgot-password", methods=["GET", "POST"])
@limiter.limit(
    "20 per hour",
    key_func=client_address,
    methods=["POST"],
    scope="forgot-password",
    error_message="Too many reset requests from your network. Wait an hour and try again.",
)
def forgot_password():
    form = ForgotPasswordForm()
    if form.validate_on_submit():
        passwords.request_password_reset(form.email.data)
        commit()
        return render_template(
            "accounts/reset_sent.html",
            email=common.normalise_email(form.email.data),
            minutes=current_app.config["RESET_LINK_LIFETIME_SECONDS"] // 60,
        )
    return render_template("accounts/forgot_password.html", form=form)


@bp.route("/reset-password/<token>", methods=["GET", "POST"])
def reset_password(token: str):
    if common.check_token(token, TokenPurpose.RESET_PASSWORD) is None:
        return render_template("accounts/link_invalid.html", kind="reset"), 410
    form = ResetPasswordForm()
    if form.validate_on_submit():
        try:
            passwords.reset_password(token, form.password.data)
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            if current_user.is_authenticated:
                logout_user()
            session.clear()
            flash("Your password has been changed. Sign in with your new password.", "success")
            return redirect(url_for("accounts.sign_in"))
    return render_template("accounts/reset_password.html", form=form)


@bp.route("/invitations/<token>", methods=["GET", "POST"])
def accept_invitation(token: str):
    invitation = teams.find_invitation(token)
    if invitation is None:
        return render_template("accounts/link_invalid.html", kind="invitation"), 410
    existing = common.get_user_by_email(invitation.email)
    signed_in = current_user if current_user.is_authenticated else None
    if existing is not None:
        form = EmptyForm()
        if signed_in is None or signed_in.id != existing.id:
            return render_template(
                "accounts/invitation_sign_in.html",
                invitation=invitation,
                wrong_account=signed_in is not None,
            )
        if form.validate_on_submit():
            teams.accept_invitation(token, signed_in_user=signed_in)
            commit()
            session[ORGANISATION_SESSION_KEY] = invitation.organisation_id
            flash(f"You have joined {invitation.organisation.name}", "success")
            return redirect(url_for("dashboard.index"))
        return render_template(
            "accounts/invitation_existing.html", invitation=invitation, form=form
        )
    if signed_in is not None:
        return render_template(
            "accounts/invitation_sign_in.html", invitation=invitation, wrong_account=True
        )
    form = AcceptInvitationForm()
    if request.method == "GET":
        form.name.data = invitation.name
    if form.validate_on_submit():
        try:
            user = teams.accept_invitation(token, name=form.name.data, password=form.password.data)
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            start_session(user, invitation.organisation)
            flash(
                f"Welcome to {current_app.config['SERVICE_NAME']}. You have joined "
                f"{invitation.organisation.name}.",
                "success",
            )
            return redirect(url_for("dashboard.index"))
    return render_template("accounts/invitation_new.html", invitation=invitation, form=form)
