"""Password hashing and rules, random secrets and their hashes, and TOTP helpers."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from functools import lru_cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PASSWORD_MAX = 128
RECOVERY_CODE_COUNT = 10

_hasher = PasswordHasher()
# Verifying against this when no account matches keeps sign-in time the same either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password-but-the-same-cost")


def hash_password(password: str) -> str:
    """Argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password in time that does not depend on whether the account exists."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    return _hasher.check_needs_rehash(password_hash)


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(
    password: str, *, min_length: int, email: str = "", name: str = ""
) -> list[str]:
    """What is wrong with a new password, in plain words (NCSC guidance: length, not common)."""
    problems = []
    if len(password) < min_length:
        problems.append(f"Password must be {min_length} characters or more")
    elif len(password) > PASSWORD_MAX:
        problems.append(f"Password must be {PASSWORD_MAX} characters or fewer")
    lowered = password.lower()
    if lowered in _common_passwords() or lowered.rstrip("0123456789!") in _common_passwords():
        problems.append(
            "Password is too common: choose one that is harder to guess, like three random words"
        )
    local_part = email.split("@")[0].lower()
    if (email and lowered == email.lower()) or (len(local_part) >= 4 and local_part in lowered):
        problems.append("Password must not contain your email address")
    if name and len(name) >= 4 and name.lower().replace(" ", "") == lowered.replace(" ", ""):
        problems.append("Password must not be your name")
    return problems


def new_secret() -> str:
    """A URL-safe random secret with 256 bits of entropy."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """SHA-256 of a high-entropy secret (tokens, links); slow hashing is not needed for these."""
    return hashlib.sha256(secret.encode()).hexdigest()


def secrets_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, email: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=issuer)


def matching_totp_counter(
    secret: str, code: str, last_counter: int | None, at: float
) -> int | None:
    """The time-step a code is valid for (±1 step), unless it was already used."""
    code = "".join(code.split())
    if not code.isdigit() or len(code) != 6:
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(at)
    for counter in (current - 1, current, current + 1):
        if last_counter is not None and counter <= last_counter:
            continue
        if secrets_equal(totp.generate_otp(counter), code):
            return counter
    return None


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Human-friendly one-time codes, e.g. ``k7dq-9xrm-2bfh``."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return [
        "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))
        for _ in range(count)
    ]


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())
