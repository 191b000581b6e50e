"""Passwords (reset by a link, changed when signed in) and the person's own profile."""

from __future__ import annotations

from flask import current_app

from marketplace.accounts.models import TokenPurpose, User
from marketplace.accounts.security import hash_password, new_secret, verify_password
from marketplace.accounts.services.common import (
    INVALID_LINK_MESSAGE,
    check_new_password,
    check_token,
    get_user_by_email,
    home_organisation,
    issue_token,
    redeem_token,
)
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.services import queue_email
from marketplace.core.urls import absolute_url


def request_password_reset(email: str) -> None:
    """Email a reset link if the account exists; say nothing either way."""
    user = get_user_by_email(email) if len(email) <= 320 else None
    if user is None or not user.active:
        return
    secret = issue_token(
        user, TokenPurpose.RESET_PASSWORD, current_app.config["RESET_LINK_LIFETIME_SECONDS"]
    )
    queue_email(
        user.email,
        "password_reset",
        user=user,
        reset_url=absolute_url("accounts.reset_password", token=secret),
        minutes=current_app.config["RESET_LINK_LIFETIME_SECONDS"] // 60,
    )
    audit.record(user, "user.password_reset_requested", user, organisation=home_organisation(user))


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.session_nonce = new_secret()[:32]  # signs out every other session


def reset_password(secret: str, new_password: str) -> User:
    """Use a reset link to set a new password; it also confirms the email address."""
    user = check_token(secret, TokenPurpose.RESET_PASSWORD)
    if user is None:
        raise BusinessRuleViolation({"token": [INVALID_LINK_MESSAGE]})
    check_new_password(new_password, user.email, user.name)
    redeem_token(secret, TokenPurpose.RESET_PASSWORD)
    _set_password(user, new_password)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    audit.record(user, "user.password_reset", user, organisation=home_organisation(user))
    queue_email(
        user.email,
        "password_changed",
        user=user,
        reset_url=absolute_url("accounts.forgot_password"),
    )
    return user


def change_password(actor: User, current_password: str, new_password: str) -> None:
    if not verify_password(actor.password_hash, current_password):
        raise BusinessRuleViolation({"current_password": ["Your current password is not right"]})
    check_new_password(new_password, actor.email, actor.name, field="new_password")
    if verify_password(actor.password_hash, new_password):
        raise BusinessRuleViolation(
            {"new_password": ["Your new password must be different from your current one"]}
        )
    _set_password(actor, new_password)
    audit.record(actor, "user.password_changed", actor, organisation=home_organisation(actor))
    queue_email(
        actor.email,
        "password_changed",
        user=actor,
        reset_url=absolute_url("accounts.forgot_password"),
    )


def update_profile(actor: User, name: str) -> None:
    before = audit.snapshot(actor, ["name"])
    actor.name = name.strip()
    audit.record(
        actor,
        "user.updated",
        actor,
        organisation=home_organisation(actor),
        before=before,
        after=audit.snapshot(actor, ["name"]),
    )
