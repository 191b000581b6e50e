"""The demo's organisations and people, created as the service would create them (audited),
with what e-invoices need: an electronic address for everyone, VAT and a bank for providers."""

from __future__ import annotations

import json
from dataclasses import dataclass

import click
import sqlalchemy as sa

from marketplace.accounts.models import (
    TWO_FACTOR_REQUIRED_ROLES,
    Membership,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.accounts.security import hash_password, new_secret
from marketplace.accounts.services.common import ORGANISATION_FIELDS, USER_FIELDS
from marketplace.accounts.services.organisations import create_organisation
from marketplace.core import audit, sealed
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.demo.people import (
    AUTHORITY,
    COMMISSIONERS,
    DEMO_AUTHORITY_NAME,
    DEMO_PASSWORD,
    DEMO_TOTP_SECRET,
    PROVIDERS,
    USERS,
    DemoUser,
)
from marketplace.reference.models import PccArea, ProbationRegion


@dataclass
class DemoWorld:
    """What the later loaders build on: the authority's admin (the actor for set-up), every
    organisation by its key, every person by the local part of their email, and the regions."""

    admin: User
    organisations: dict[str, Organisation]
    people: dict[str, User]
    regions: dict[str, ProbationRegion]

    def provider_admins(self) -> dict[str, User]:
        """Each provider's first administrator, by the provider's key."""
        provider_keys = {spec.key for spec in PROVIDERS}
        return {
            key: self.people[spec.local_part]
            for spec in USERS
            for key, roles in spec.roles.items()
            if key in provider_keys and Role.PROVIDER_ADMIN in roles
        }


def demo_authority() -> Organisation | None:
    return db.session.scalar(
        sa.select(Organisation).where(
            Organisation.type == OrganisationType.AUTHORITY,
            Organisation.name == DEMO_AUTHORITY_NAME,
        )
    )


def _new_user(spec: DemoUser, password_hash: str) -> User:
    needs_two_factor = any(
        role in TWO_FACTOR_REQUIRED_ROLES for roles in spec.roles.values() for role in roles
    )
    now = utcnow()
    user = User(
        email=spec.email,
        name=spec.name,
        password_hash=password_hash,
        session_nonce=new_secret()[:32],
        email_confirmed_at=now,
        totp_secret=DEMO_TOTP_SECRET if needs_two_factor else None,
        totp_enabled_at=now if needs_two_factor else None,
    )
    db.session.add(user)
    db.session.flush()
    return user


def _add_membership(actor: User | None, user: User, organisation: Organisation, role: Role) -> None:
    membership = Membership(
        user=user, organisation=organisation, role=role, created_by_id=actor.id if actor else None
    )
    db.session.add(membership)
    db.session.flush()
    audit.record(
        actor,
        "membership.created",
        membership,
        after={"user_id": user.id, "role": role.value, "source": "demo"},
    )


def demo_gln(n: int) -> str:
    """A well-formed Global Location Number (GS1 check digit) under a made-up company prefix."""
    body = f"50123450{n:04d}"
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return body + str((10 - total % 10) % 10)


def _demo_invoicing_details(organisation: Organisation, n: int) -> None:
    """What e-invoices need: every demo organisation has an electronic address (a GLN); every
    demo provider is VAT-registered (the demo rate cards list at every VAT treatment, which only
    a registered provider may) and has a bank account for credit transfers."""
    organisation.endpoint_scheme, organisation.endpoint_id = "0088", demo_gln(n)
    if organisation.is_provider:
        organisation.vat_registered = True
        organisation.vat_number = f"GB{245_000_000 + n * 7_919:09d}"
        organisation.bank_details_sealed = sealed.seal(
            json.dumps(
                {"name": organisation.name[:70], "sort_code": "309950",
                 "account_number": f"{10_000_000 + n * 12_347:08d}"}
            )
        )  # fmt: skip
        organisation.bank_account_last4 = f"{10_000_000 + n * 12_347:08d}"[-4:]
        organisation.bank_details_changed_at = utcnow()


def load_organisations_and_people() -> DemoWorld:
    """The authority and its admin first (the admin is the actor for everything else), then
    the commissioners, the providers and the people with their roles. Flushes, never commits."""
    regions = {r.code: r for r in db.session.scalars(sa.select(ProbationRegion))}
    areas = {a.code: a for a in db.session.scalars(sa.select(PccArea))}
    if not regions or not areas:
        raise click.ClickException("Reference data is missing: run `flask db upgrade` first.")
    # One slow hash for everyone: every demo account has the same password by design.
    password_hash = hash_password(DEMO_PASSWORD)
    authority, admin = _authority_and_admin(password_hash)
    organisations = {AUTHORITY.key: authority}
    for spec in COMMISSIONERS:
        area = areas[spec.pcc_area_code] if spec.pcc_area_code else None
        organisations[spec.key] = create_organisation(
            admin,
            name=spec.name,
            type=spec.type,
            region_id=regions[spec.region_code].id if spec.region_code else None,
            pcc_area_id=area.id if area else None,
        )
    for spec in PROVIDERS:
        organisations[spec.key] = _registered_provider(admin, spec, regions)
    for n, organisation in enumerate(organisations.values()):
        _demo_invoicing_details(organisation, n)
    people = {USERS[0].local_part: admin}
    for spec in USERS[1:]:
        people[spec.local_part] = _person_with_roles(admin, spec, organisations, password_hash)
    return DemoWorld(admin, organisations, people, regions)


def _authority_and_admin(password_hash: str) -> tuple[Organisation, User]:
    authority = Organisation(name=AUTHORITY.name, type=AUTHORITY.type)
    db.session.add(authority)
    db.session.flush()
    audit.record(
        None,
        "organisation.created",
        authority,
        after={**audit.snapshot(authority, ORGANISATION_FIELDS), "source": "demo"},
    )
    admin = _new_user(USERS[0], password_hash)
    audit.record(
        None,
        "user.created",
        admin,
        organisation=authority,
        after={**audit.snapshot(admin, USER_FIELDS), "source": "demo"},
    )
    _add_membership(None, admin, authority, Role.AUTHORITY_ADMIN)
    return authority, admin


def _registered_provider(admin: User, spec, regions: dict[str, ProbationRegion]) -> Organisation:
    # Providers join the DPS by registering themselves; here the demo loader does it for them.
    organisation = Organisation(
        name=spec.name,
        type=spec.type,
        charity_number=spec.charity_number,
        companies_house_number=spec.companies_house_number,
        region_id=regions[spec.region_code].id if spec.region_code else None,
    )
    db.session.add(organisation)
    db.session.flush()
    audit.record(
        admin,
        "organisation.created",
        organisation,
        after={**audit.snapshot(organisation, ORGANISATION_FIELDS), "source": "demo"},
    )
    return organisation


def _person_with_roles(
    admin: User, spec: DemoUser, organisations: dict[str, Organisation], password_hash: str
) -> User:
    user = _new_user(spec, password_hash)
    audit.record(
        admin,
        "user.created",
        user,
        organisation=organisations[next(iter(spec.roles))],
        after={**audit.snapshot(user, USER_FIELDS), "source": "demo"},
    )
    for key, roles in spec.roles.items():
        for role in roles:
            _add_membership(admin, user, organisations[key], role)
    return user


def provider_admin_of(organisation_id: int) -> User | None:
    """The provider's first administrator (by id), who acts for it in the demo's journeys."""
    return db.session.scalar(
        sa.select(User)
        .join(Membership, Membership.user_id == User.id)
        .where(
            Membership.organisation_id == organisation_id,
            Membership.role == Role.PROVIDER_ADMIN,
        )
        .order_by(User.id)
        .limit(1)
    )
