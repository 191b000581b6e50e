"""Test data builders. They flush (so ids exist) and never commit; tests commit when they need to."""

from __future__ import annotations

import itertools

from marketplace.accounts.models import (
    Membership,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.accounts.security import hash_password, new_secret
from marketplace.db import db, utcnow

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


def make_organisation(
    type: OrganisationType = OrganisationType.PROVIDER_VCSE, **fields
) -> Organisation:
    n = next(_sequence)
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
