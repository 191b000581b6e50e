"""What the account services share: the audited fields, finding people by email, the new-password
rule, one-time links (confirmation and password reset), and a person's home organisation."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.accounts.models import OneTimeToken, Organisation, Role, TokenPurpose, User
from marketplace.accounts.queries import people_with_roles
from marketplace.accounts.security import hash_secret, new_secret, password_problems
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.services import queue_email

ORGANISATION_FIELDS = [
    "name",
    "type",
    "charity_number",
    "companies_house_number",
    "region_id",
    "pcc_area_id",
    "active",
]
USER_FIELDS = ["email", "name", "active"]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_people(organisation_id: int, roles: Iterable[Role], template: str, **context) -> None:
    """Queue ``template`` to each active person holding any of ``roles`` in the organisation."""
    for user in people_with_roles(organisation_id, roles):
        queue_email(user.email, template, user=user, **context)


def get_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def check_new_password(password: str, email: str, name: str, field: str = "password") -> None:
    problems = password_problems(
        password, min_length=current_app.config["PASSWORD_MIN_LENGTH"], email=email, name=name
    )
    if problems:
        raise BusinessRuleViolation({field: problems})


def issue_token(user: User, purpose: TokenPurpose, lifetime_seconds: int) -> str:
    # A new link replaces any earlier unused one for the same purpose.
    for old in db.session.scalars(
        sa.select(OneTimeToken).where(
            OneTimeToken.user_id == user.id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
        )
    ):
        old.used_at = utcnow()
    secret = new_secret()
    db.session.add(
        OneTimeToken(
            purpose=purpose,
            user_id=user.id,
            token_hash=hash_secret(secret),
            expires_at=utcnow() + timedelta(seconds=lifetime_seconds),
        )
    )
    return secret


INVALID_LINK_MESSAGE = (
    "This link has expired or has already been used. "
    "Ask for a new one and use it within the time shown."
)


def redeem_token(secret: str, purpose: TokenPurpose) -> OneTimeToken:
    token = db.session.scalar(
        sa.select(OneTimeToken).where(
            OneTimeToken.token_hash == hash_secret(secret), OneTimeToken.purpose == purpose
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        raise BusinessRuleViolation({"token": [INVALID_LINK_MESSAGE]})
    token.used_at = utcnow()
    return token


def check_token(secret: str, purpose: TokenPurpose) -> User | None:
    """The user a still-valid link belongs to, without using it up (for showing the form)."""
    token = db.session.scalar(
        sa.select(OneTimeToken).where(
            OneTimeToken.token_hash == hash_secret(secret), OneTimeToken.purpose == purpose
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        return None
    return token.user


def home_organisation(user: User) -> Organisation | None:
    return user.organisations[0] if user.organisations else None
