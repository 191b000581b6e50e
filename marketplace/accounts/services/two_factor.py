"""Two-factor authentication: an authenticator app's codes, and single-use recovery codes."""

from __future__ import annotations

import time

import sqlalchemy as sa

from marketplace.accounts.models import RecoveryCode, User
from marketplace.accounts.security import (
    hash_secret,
    matching_totp_counter,
    new_recovery_codes,
    new_totp_secret,
    normalise_recovery_code,
    verify_password,
)
from marketplace.accounts.services.common import home_organisation
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.services import queue_email


def begin_two_factor_setup(actor: User) -> str:
    """Give the user a new TOTP secret to add to their app (not in force until confirmed)."""
    if actor.two_factor_enabled:
        raise BusinessRuleViolation({"code": ["Two-factor authentication is already set up"]})
    if not actor.totp_secret:
        actor.totp_secret = new_totp_secret()
    return actor.totp_secret


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hash_secret(normalise_recovery_code(code)))
        for code in codes
    )
    return codes


def confirm_two_factor_setup(actor: User, code: str, *, at: float | None = None) -> list[str]:
    """Turn on two-factor once the user proves their app works; return the recovery codes."""
    if actor.two_factor_enabled or not actor.totp_secret:
        raise BusinessRuleViolation({"code": ["Start setting up two-factor authentication again"]})
    # The real time, not the service's clock: the code comes from the person's authenticator app,
    # which reads the real time whatever a test has set the service's clock to.
    counter = matching_totp_counter(actor.totp_secret, code, None, at or time.time())
    if counter is None:
        raise BusinessRuleViolation(
            {"code": ["The code is not right: enter the 6-digit code your app shows now"]}
        )
    actor.totp_enabled_at = utcnow()
    actor.totp_last_counter = counter
    codes = _replace_recovery_codes(actor)
    audit.record(actor, "user.two_factor_enabled", actor, organisation=home_organisation(actor))
    queue_email(actor.email, "two_factor_enabled", user=actor)
    return codes


def verify_second_factor(user: User, code: str, *, at: float | None = None) -> bool:
    """Check a TOTP code (once per time-step) or use up a recovery code."""
    if not user.two_factor_enabled or not user.totp_secret:
        return False
    # The real time, as in confirm_two_factor_setup: the authenticator app reads the real time.
    counter = matching_totp_counter(
        user.totp_secret, code, user.totp_last_counter, at or time.time()
    )
    if counter is not None:
        user.totp_last_counter = counter
        return True
    normalised = normalise_recovery_code(code)
    if len(normalised) != 12:
        return False
    recovery = db.session.scalar(
        sa.select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == hash_secret(normalised),
            RecoveryCode.used_at.is_(None),
        )
    )
    if recovery is None:
        return False
    recovery.used_at = utcnow()
    audit.record(user, "user.recovery_code_used", user, organisation=home_organisation(user))
    return True


def regenerate_recovery_codes(actor: User) -> list[str]:
    if not actor.two_factor_enabled:
        raise BusinessRuleViolation({"code": ["Set up two-factor authentication first"]})
    codes = _replace_recovery_codes(actor)
    audit.record(
        actor, "user.recovery_codes_regenerated", actor, organisation=home_organisation(actor)
    )
    return codes


def unused_recovery_code_count(user: User) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(RecoveryCode.id)).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


def disable_two_factor(actor: User, password: str) -> None:
    if actor.requires_two_factor:
        raise BusinessRuleViolation(
            {"password": ["Your role needs two-factor authentication, so it cannot be turned off"]}
        )
    if not verify_password(actor.password_hash, password):
        raise BusinessRuleViolation({"password": ["Your password is not right"]})
    actor.totp_secret = None
    actor.totp_enabled_at = None
    actor.totp_last_counter = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == actor.id))
    audit.record(actor, "user.two_factor_disabled", actor, organisation=home_organisation(actor))
    queue_email(actor.email, "two_factor_disabled", user=actor)
