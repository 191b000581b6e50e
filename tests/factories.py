"""Test data builders. They flush (so ids exist) and never commit; tests commit when they need to."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

from marketplace.accounts.models import (
    PROVIDER_TYPES,
    Membership,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.accounts.security import hash_password, new_secret
from marketplace.core import sealed
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.demo.organisations import demo_gln

PASSWORD = "correct horse battery staple"
_PASSWORD_HASH = None
_sequence = itertools.count(1)

DEFAULT_TYPE_FOR_ROLE = {
    Role.BUYER: OrganisationType.PROBATION_REGION,
    Role.APPROVER: OrganisationType.PROBATION_REGION,
    Role.PROVIDER_ADMIN: OrganisationType.PROVIDER_VCSE,
    Role.PROVIDER_EDITOR: OrganisationType.PROVIDER_VCSE,
    Role.ASSESSOR: OrganisationType.AUTHORITY,
    Role.AUTHORITY_ADMIN: OrganisationType.AUTHORITY,
}


def password_hash() -> str:
    # Hashing is deliberately slow: hash the shared test password once.
    global _PASSWORD_HASH
    if _PASSWORD_HASH is None:
        _PASSWORD_HASH = hash_password(PASSWORD)
    return _PASSWORD_HASH


def invoicing_details(type: OrganisationType, n: int) -> dict:
    """What e-invoices need, as a real organisation records it on its settings page: an
    electronic address for every organisation; for a provider a VAT registration and a bank
    account (pass ``vat_registered=False, vat_number=None`` for an unregistered one)."""
    details: dict = {"endpoint_scheme": "0088", "endpoint_id": demo_gln(n % 10_000)}
    if type in PROVIDER_TYPES:
        account = f"{20_000_000 + n:08d}"
        details |= {
            "vat_registered": True,
            "vat_number": f"GB{100_000_000 + n:09d}",
            "bank_details_sealed": sealed.seal(
                json.dumps(
                    {"name": "Test account", "sort_code": "309950", "account_number": account}
                )
            ),
            "bank_account_last4": account[-4:],
        }
    return details


def make_organisation(
    type: OrganisationType = OrganisationType.PROVIDER_VCSE, **fields
) -> Organisation:
    n = next(_sequence)
    fields = {**invoicing_details(type, n), **fields}
    organisation = Organisation(name=fields.pop("name", f"Organisation {n}"), type=type, **fields)
    db.session.add(organisation)
    db.session.flush()
    return organisation


def make_user(
    *,
    email: str | None = None,
    name: str | None = None,
    confirmed: bool = True,
    two_factor_secret: str | None = None,
    **fields,
) -> User:
    n = next(_sequence)
    user = User(
        email=(email or f"person{n}@example.org").lower(),
        name=name or f"Person {n}",
        password_hash=password_hash(),
        session_nonce=new_secret()[:32],
        email_confirmed_at=utcnow() if confirmed else None,
        **fields,
    )
    if two_factor_secret:
        user.totp_secret = two_factor_secret
        user.totp_enabled_at = utcnow()
    db.session.add(user)
    db.session.flush()
    return user


def add_membership(user: User, organisation: Organisation, role: Role) -> Membership:
    membership = Membership(user=user, organisation=organisation, role=role)
    db.session.add(membership)
    db.session.flush()
    return membership


def make_member(role: Role, organisation: Organisation | None = None, **user_fields) -> User:
    """A user holding ``role`` in ``organisation`` (a new one of a fitting type by default).

    Roles that need two-factor authentication get it set up, so pages do not redirect to setup.
    """
    if organisation is None:
        organisation = make_organisation(DEFAULT_TYPE_FOR_ROLE[role])
    if role in (Role.ASSESSOR, Role.AUTHORITY_ADMIN) and "two_factor_secret" not in user_fields:
        import pyotp

        user_fields["two_factor_secret"] = pyotp.random_base32()
    user = make_user(**user_fields)
    add_membership(user, organisation, role)
    return user


def after_month(day) -> datetime:
    """A moment just after the month of ``day`` ends: when a run may bill that month (the run
    refuses the current month and later ones)."""
    first_next = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
    return datetime(first_next.year, first_next.month, first_next.day, 9, tzinfo=UTC)
