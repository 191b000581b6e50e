"""Signing in with an email address and password."""

from __future__ import annotations

from marketplace.accounts.models import User
from marketplace.accounts.security import hash_password, password_needs_rehash, verify_password
from marketplace.accounts.services.common import (
    get_user_by_email,
    home_organisation,
    normalise_email,
)
from marketplace.core import audit
from marketplace.core.clock import utcnow


class EmailNotConfirmed(Exception):
    """The password was right but the email address has not been confirmed yet."""

    def __init__(self, user: User):
        self.user = user


def authenticate(email: str, password: str) -> User | None:
    """The user these credentials belong to, or None; same cost whether or not the email exists."""
    user = get_user_by_email(email) if len(email) <= 320 else None
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.active:
        return None
    if user.email_confirmed_at is None:
        raise EmailNotConfirmed(user)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def record_sign_in(user: User) -> None:
    user.last_sign_in_at = utcnow()
    audit.record(user, "user.signed_in", user, organisation=home_organisation(user))


def record_failed_sign_in(email: str) -> None:
    user = get_user_by_email(email) if len(email) <= 320 else None
    audit.record(
        None,
        "user.sign_in_failed",
        object_type="user",
        object_id=user.id if user else None,
        after={"email": normalise_email(email)[:254]},
    )
