"""`flask demo …`: a realistic demo world, loaded once, and the list of its sign-ins.

Every demo account uses the one password ``DEMO_PASSWORD``; accounts whose role needs
two-factor authentication (authority admin, assessor) share the TOTP secret
``DEMO_TOTP_SECRET``, which a person can type into any authenticator app. The data are
fictional: the organisations are invented, the charity and company numbers only have the
right shape, and every email address is on ``DEMO_EMAIL_DOMAIN`` (``.example`` is reserved
and never delivers mail).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from marketplace.accounts.models import (
    TWO_FACTOR_REQUIRED_ROLES,
    Membership,
    Organisation,
    OrganisationType,
    Role,
    User,
)
from marketplace.accounts.security import hash_password, new_secret
from marketplace.accounts.services import (
    ORGANISATION_FIELDS,
    USER_FIELDS,
    create_organisation,
)
from marketplace.core import audit, sealed
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.reference.models import PccArea, ProbationRegion

demo_cli = AppGroup("demo", help="Demo data: a realistic world to try the marketplace in.")

DEMO_PASSWORD = "rehab-demo-2026-marketplace"
# Base32 (A–Z, 2–7), 32 characters = 160 bits, as authenticator apps expect.
DEMO_TOTP_SECRET = "DEMOREHABMARKETPLACETOTPSECRETAA"
DEMO_EMAIL_DOMAIN = "demo.example"
DEMO_AUTHORITY_NAME = "HMPPS Commissioning"

# Short names for the sign-in table, so it fits a terminal.
TYPE_SHORT_LABELS = {
    OrganisationType.AUTHORITY: "Authority",
    OrganisationType.PROBATION_REGION: "Probation region",
    OrganisationType.NPS: "NPS",
    OrganisationType.CRC: "CRC",
    OrganisationType.PCC: "PCC",
    OrganisationType.PRISON: "Prison",
    OrganisationType.OTHER_COMMISSIONER: "Other commissioner",
    OrganisationType.PROVIDER_VCSE: "Provider (VCSE)",
    OrganisationType.PROVIDER_PRIVATE: "Provider (private)",
    OrganisationType.PROVIDER_PUBLIC: "Provider (public)",
}

ROLE_ORDER = [
    Role.AUTHORITY_ADMIN,
    Role.ASSESSOR,
    Role.BUYER,
    Role.APPROVER,
    Role.PROVIDER_ADMIN,
    Role.PROVIDER_EDITOR,
]


@dataclass(frozen=True)
class DemoOrganisation:
    key: str
    name: str
    type: OrganisationType
    region_code: str | None = None
    pcc_area_code: str | None = None
    charity_number: str | None = None
    companies_house_number: str | None = None


@dataclass(frozen=True)
class DemoUser:
    local_part: str
    name: str
    roles: dict[str, tuple[Role, ...]] = field(default_factory=dict)  # organisation key → roles

    @property
    def email(self) -> str:
        return f"{self.local_part}@{DEMO_EMAIL_DOMAIN}"


AUTHORITY = DemoOrganisation("authority", DEMO_AUTHORITY_NAME, OrganisationType.AUTHORITY)

COMMISSIONERS = [
    # Probation service regions
    DemoOrganisation(
        "pdu-nw", "Probation Service – North West", OrganisationType.PROBATION_REGION, "B"
    ),
    DemoOrganisation(
        "pdu-gm", "Probation Service – Greater Manchester", OrganisationType.PROBATION_REGION, "L"
    ),
    DemoOrganisation(
        "pdu-wales", "Probation Service – Wales", OrganisationType.PROBATION_REGION, "D"
    ),
    DemoOrganisation(
        "pdu-london", "Probation Service – London", OrganisationType.PROBATION_REGION, "J"
    ),
    DemoOrganisation(
        "pdu-yh",
        "Probation Service – Yorkshire and the Humber",
        OrganisationType.PROBATION_REGION,
        "C",
    ),
    DemoOrganisation(
        "pdu-sw", "Probation Service – South West", OrganisationType.PROBATION_REGION, "G"
    ),
    # Police and Crime Commissioners (the region follows from the PCC area)
    DemoOrganisation(
        "pcc-lancs",
        "Police and Crime Commissioner for Lancashire",
        OrganisationType.PCC,
        pcc_area_code="lancashire",
    ),
    DemoOrganisation(
        "pcc-merseyside",
        "Police and Crime Commissioner for Merseyside",
        OrganisationType.PCC,
        pcc_area_code="merseyside",
    ),
    DemoOrganisation(
        "pcc-south-wales",
        "Police and Crime Commissioner for South Wales",
        OrganisationType.PCC,
        pcc_area_code="south-wales",
    ),
    DemoOrganisation(
        "pcc-avon",
        "Police and Crime Commissioner for Avon and Somerset",
        OrganisationType.PCC,
        pcc_area_code="avon-and-somerset",
    ),
    # A prison and another public body that buy through the same arrangements
    DemoOrganisation("hmp-styal", "HMP & YOI Styal", OrganisationType.PRISON, "B"),
    DemoOrganisation(
        "lancs-public-health",
        "Lancashire County Council – Public Health",
        OrganisationType.OTHER_COMMISSIONER,
        "B",
    ),
]

VCSE = OrganisationType.PROVIDER_VCSE
PROVIDERS = [
    DemoOrganisation(
        "northern-lights", "Northern Lights Housing Trust", VCSE, "B", charity_number="1123456"
    ),
    DemoOrganisation(
        "second-chances", "Second Chances Employment Project", VCSE, "L", charity_number="1098765"
    ),
    DemoOrganisation(
        "harbour-debt", "Harbour Debt Advice Centre", VCSE, "D", charity_number="1145672"
    ),
    DemoOrganisation(
        "pathways", "Pathways Recovery Community", VCSE, "C", charity_number="1067834"
    ),
    DemoOrganisation(
        "womens-circle", "Women's Circle Centres", VCSE, "J", charity_number="1154321"
    ),
    DemoOrganisation("open-door", "Open Door Mentoring", VCSE, "G", charity_number="1172039"),
    DemoOrganisation("bridgeway", "Bridgeway Family Support", VCSE, "B", charity_number="1087423"),
    DemoOrganisation(
        "clean-slate", "Clean Slate Education Trust", VCSE, "J", charity_number="1139087"
    ),
    DemoOrganisation("rebuild-cymru", "Rebuild Lives Cymru", VCSE, "D", charity_number="1160524"),
    DemoOrganisation("anchor", "Anchor Recovery Housing", VCSE, "A", charity_number="1049872"),
    DemoOrganisation(
        "steps-forward", "Steps Forward Peer Mentoring", VCSE, "E", charity_number="1178045"
    ),
    DemoOrganisation("restore", "Restore Restorative Justice", VCSE, "K", charity_number="1126790"),
    DemoOrganisation("unity", "Unity Mentoring Network", VCSE, "E", charity_number="1158263"),
    DemoOrganisation("young-futures", "Young Futures 18–25", VCSE, "F", charity_number="1182436"),
    DemoOrganisation("thrive", "Thrive Emotional Wellbeing", VCSE, "H", charity_number="1104357"),
    DemoOrganisation(
        "common-ground", "Common Ground Social Inclusion", VCSE, "I", charity_number="519283"
    ),
    DemoOrganisation(
        "kinship", "Kinship Carers Support Network", VCSE, "F", charity_number="1093746"
    ),
    DemoOrganisation("victim-voice", "Victim Voice Support", VCSE, "K", charity_number="1167391"),
    DemoOrganisation(
        "lifeline-debt", "Lifeline Debt and Benefits Advice", VCSE, "L", charity_number="1131209"
    ),
    # Scottish-registered charities working across the border
    DemoOrganisation("caledonian", "Caledonian Pathways", VCSE, "A", charity_number="SC045678"),
    DemoOrganisation(
        "borders-recovery", "Borders Recovery Network", VCSE, "B", charity_number="SC039812"
    ),
    # Private and public sector providers
    DemoOrganisation(
        "ascend",
        "Ascend Employment Services Ltd",
        OrganisationType.PROVIDER_PRIVATE,
        "J",
        companies_house_number="09876543",
    ),
    DemoOrganisation(
        "keystone",
        "Keystone Accommodation Solutions Ltd",
        OrganisationType.PROVIDER_PRIVATE,
        "E",
        companies_house_number="11223344",
    ),
    DemoOrganisation(
        "nw-liaison",
        "North West Community Health – Liaison and Diversion",
        OrganisationType.PROVIDER_PUBLIC,
        "B",
    ),
]

B, A = Role.BUYER, Role.APPROVER
USERS = [
    # The contracting authority (both roles need two-factor authentication)
    DemoUser("authority.admin", "Amara Okafor", {"authority": (Role.AUTHORITY_ADMIN,)}),
    DemoUser("assessor", "Tom Whitfield", {"authority": (Role.ASSESSOR,)}),
    # Probation: a buyer and an approver in the North West, approvers elsewhere
    DemoUser("buyer", "Priya Shah", {"pdu-nw": (B,)}),
    DemoUser("approver", "Gareth Lloyd", {"pdu-nw": (A,)}),
    DemoUser("buyer.london", "Kemi Adebayo", {"pdu-london": (B,)}),
    DemoUser("approver.london", "Daniel Cohen", {"pdu-london": (A,)}),
    DemoUser("buyer.wales", "Rhian Evans", {"pdu-wales": (B,)}),
    DemoUser("approver.wales", "Owain Price", {"pdu-wales": (A,)}),
    DemoUser("approver.gm", "Sarah Connolly", {"pdu-gm": (A,)}),
    DemoUser("approver.yh", "Imran Hussain", {"pdu-yh": (A,)}),
    DemoUser("approver.sw", "Lucy Penrose", {"pdu-sw": (A,)}),
    # Police and Crime Commissioners
    DemoUser("pcc.buyer", "Hannah Brooks", {"pcc-lancs": (B,)}),
    DemoUser("pcc.approver", "Michael Turner", {"pcc-lancs": (A,)}),
    DemoUser("pcc.lead", "Joanne Kelly", {"pcc-merseyside": (B, A)}),
    DemoUser("approver.south-wales-pcc", "Carys Morgan", {"pcc-south-wales": (A,)}),
    DemoUser("approver.avon-pcc", "Ben Hartley", {"pcc-avon": (A,)}),
    # A prison and a council
    DemoUser("prison.buyer", "Angela Norris", {"hmp-styal": (B, A)}),
    DemoUser("council.approver", "Steve Ashworth", {"lancs-public-health": (A,)}),
    # Someone who co-commissions for probation and a PCC, and switches between them
    DemoUser("co.commissioner", "Rachel Adeyemi", {"pdu-nw": (B,), "pcc-lancs": (B,)}),
    # Providers: an admin and an editor in one charity, admins in others
    DemoUser("provider.admin", "Chloe Bennett", {"northern-lights": (Role.PROVIDER_ADMIN,)}),
    DemoUser("provider.editor", "Liam Foster", {"northern-lights": (Role.PROVIDER_EDITOR,)}),
    DemoUser("admin.second-chances", "Marcus Reid", {"second-chances": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.harbour", "Siân Roberts", {"harbour-debt": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.pathways", "Nadia Iqbal", {"pathways": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.womens-circle", "Grace Mensah", {"womens-circle": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.open-door", "Peter Walsh", {"open-door": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.caledonian", "Fiona MacLeod", {"caledonian": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.ascend", "James Whitaker", {"ascend": (Role.PROVIDER_ADMIN,)}),
    DemoUser("admin.nw-liaison", "Dr Aisha Rahman", {"nw-liaison": (Role.PROVIDER_ADMIN,)}),
    # A trustee who runs two small charities, and switches between them
    DemoUser(
        "trustee",
        "Margaret Doyle",
        {"bridgeway": (Role.PROVIDER_ADMIN,), "borders-recovery": (Role.PROVIDER_ADMIN,)},
    ),
]


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


def load_demo_data() -> dict[str, int]:
    """Create the demo world in the current unit of work (flushes, never commits)."""
    regions = {r.code: r for r in db.session.scalars(sa.select(ProbationRegion))}
    areas = {a.code: a for a in db.session.scalars(sa.select(PccArea))}
    if not regions or not areas:
        raise click.ClickException("Reference data is missing: run `flask db upgrade` first.")
    # One slow hash for everyone: every demo account has the same password by design.
    password_hash = hash_password(DEMO_PASSWORD)
    users_by_org: dict[str, list[DemoUser]] = {}
    for spec in USERS:
        for key in spec.roles:
            users_by_org.setdefault(key, []).append(spec)

    # The authority and its admin come first: the admin is the actor for everything else.
    authority = Organisation(name=AUTHORITY.name, type=AUTHORITY.type)
    db.session.add(authority)
    db.session.flush()
    audit.record(
        None,
        "organisation.created",
        authority,
        after={**audit.snapshot(authority, ORGANISATION_FIELDS), "source": "demo"},
    )
    admin_spec = USERS[0]
    admin = _new_user(admin_spec, password_hash)
    audit.record(
        None,
        "user.created",
        admin,
        organisation=authority,
        after={**audit.snapshot(admin, USER_FIELDS), "source": "demo"},
    )
    _add_membership(None, admin, authority, Role.AUTHORITY_ADMIN)
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
        organisations[spec.key] = organisation
    for n, organisation in enumerate(organisations.values()):
        _demo_invoicing_details(organisation, n)

    for spec in USERS[1:]:
        user = _new_user(spec, password_hash)
        home = organisations[next(iter(spec.roles))]
        audit.record(
            admin,
            "user.created",
            user,
            organisation=home,
            after={**audit.snapshot(user, USER_FIELDS), "source": "demo"},
        )
        for key, roles in spec.roles.items():
            for role in roles:
                _add_membership(admin, user, organisations[key], role)

    by_email = {
        u.email: u
        for u in db.session.scalars(
            sa.select(User).where(User.email.endswith(f"@{DEMO_EMAIL_DOMAIN}"))
        )
    }
    provider_keys = {spec.key for spec in PROVIDERS}
    provider_admins = {
        key: by_email[spec.email]
        for spec in USERS
        for key, roles in spec.roles.items()
        if key in provider_keys and Role.PROVIDER_ADMIN in roles
    }
    accreditation = load_accreditation_demo(
        admin,
        by_email[USERS[1].email],
        {key: organisations[key] for key in provider_keys},
        regions,
        provider_admins=provider_admins,
    )
    listings = load_catalogue_demo()
    from marketplace.orders.demo import load_orders_demo

    orders = load_orders_demo(
        organisations,
        {spec.local_part: by_email[spec.email] for spec in USERS if spec.email in by_email},
    )
    from marketplace.invoices.demo import load_invoices_demo

    invoices = load_invoices_demo(
        organisations,
        {spec.local_part: by_email[spec.email] for spec in USERS if spec.email in by_email},
    )
    from marketplace.orders.demo import load_declined_share_demo

    declined_share = load_declined_share_demo(
        organisations,
        {spec.local_part: by_email[spec.email] for spec in USERS if spec.email in by_email},
    )
    # After every demo call-off, so that those waiting for the PCC still wait for it.
    from marketplace.funding.demo import load_funding_demo

    funding = load_funding_demo(
        organisations,
        {spec.local_part: by_email[spec.email] for spec in USERS if spec.email in by_email},
    )
    counts = {
        "listings": listings,
        "organisations": len(organisations),
        "providers": len(PROVIDERS),
        "users": len(USERS),
        "memberships": sum(len(roles) for spec in USERS for roles in spec.roles.values()),
        "lot_memberships": accreditation["memberships"],
        "applications": accreditation["applications"],
        "call_offs": orders["call_offs"] + declined_share,
        "invoices": invoices["invoices"],
        "authorisations": funding["authorisations"],
    }
    audit.record(admin, "demo.loaded", object_type="system", organisation=authority, after=counts)
    return counts


@dataclass(frozen=True)
class DemoSignIn:
    email: str
    name: str
    organisation: str
    organisation_type: OrganisationType
    role: Role

    @property
    def needs_two_factor(self) -> bool:
        return self.role in TWO_FACTOR_REQUIRED_ROLES

    def as_dict(self) -> dict[str, str]:
        row = {
            "email": self.email,
            "name": self.name,
            "organisation": self.organisation,
            "organisation_type": self.organisation_type.value,
            "role": self.role.value,
            "password": DEMO_PASSWORD,
        }
        if self.needs_two_factor:
            row["totp_secret"] = DEMO_TOTP_SECRET
        return row


def demo_sign_ins() -> list[DemoSignIn]:
    """Every role of every demo account, in a stable, readable order."""
    rows = db.session.execute(
        sa.select(User.email, User.name, Organisation.name, Organisation.type, Membership.role)
        .join(Membership, Membership.user_id == User.id)
        .join(Organisation, Organisation.id == Membership.organisation_id)
        .where(User.email.endswith(f"@{DEMO_EMAIL_DOMAIN}"), User.active.is_(True))
    ).all()
    sign_ins = [DemoSignIn(*row) for row in rows]
    order = {role: index for index, role in enumerate(ROLE_ORDER)}
    listed = {spec.email: index for index, spec in enumerate(USERS)}
    return sorted(
        sign_ins,
        key=lambda s: (order[s.role], listed.get(s.email, len(listed)), s.email, s.organisation),
    )


@demo_cli.command("load")
@click.option(
    "--services",
    type=click.IntRange(0, 1_000_000),
    default=0,
    help="Also build a large catalogue of this many published listings (for benchmarks).",
)
@click.option(
    "--providers",
    type=click.IntRange(1, 100_000),
    default=None,
    help="How many generated providers publish those listings (default: one per 25).",
)
def load_command(services: int, providers: int | None) -> None:
    """Create the demo organisations and accounts (once; does nothing if they exist)."""
    if current_app.config.get("ENV_NAME") == "production":
        raise click.ClickException(
            "Demo data has well-known passwords: it is never loaded in production."
        )
    loaded = False
    if demo_authority() is not None:
        click.echo(
            "Demo data is already loaded: nothing to do. List the sign-ins with `flask demo users`."
        )
    else:
        loaded = True
        counts = load_demo_data()
        commit()
        by_type: dict[str, int] = {}
        for spec in [AUTHORITY, *COMMISSIONERS, *PROVIDERS]:
            by_type[spec.type.label] = by_type.get(spec.type.label, 0) + 1
        click.echo(
            f"Loaded the demo world: {counts['organisations']} organisations, {counts['users']} "
            f"people with {counts['memberships']} roles, {counts['listings']} published listings."
        )
        for label, count in sorted(by_type.items()):
            click.echo(f"  {count:>3}  {label}")
        click.echo(f"Every demo account's password is: {DEMO_PASSWORD}")
        click.echo("List the sign-ins with `flask demo users`.")
    if services:
        loaded = True
        scale = load_scale_catalogue(services, providers or max(1, services // 25))
        commit()
        click.echo(
            f"Added a large catalogue: {scale['listings']:,} listings from {scale['providers']:,} "
            f"providers with {scale['lot_memberships']:,} lot memberships."
        )
    if loaded:
        reindex_search()


@demo_cli.command("users")
@click.option(
    "--json", "as_json", is_flag=True, help="Print only a JSON list, for scripts and tests."
)
def users_command(as_json: bool) -> None:
    """List the demo sign-ins: email, organisation, organisation type and role."""
    sign_ins = demo_sign_ins()
    if not sign_ins:
        raise click.ClickException("Demo data is not loaded: run `flask demo load` first.")
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in sign_ins], indent=2, ensure_ascii=False))
        return
    headings = ("Email", "Organisation", "Organisation type", "Role")
    rows = [
        (
            s.email,
            s.organisation,
            TYPE_SHORT_LABELS[s.organisation_type],
            s.role.value + (" *" if s.needs_two_factor else ""),
        )
        for s in sign_ins
    ]
    widths = [max(len(cell) for cell in column) for column in zip(headings, *rows, strict=True)]

    def echo_row(cells) -> None:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
        )

    echo_row(headings)
    echo_row(["-" * width for width in widths])
    for row in rows:
        echo_row(row)
    click.echo()
    click.echo(f"Password for every demo account: {DEMO_PASSWORD}")
    click.echo(
        f"* Two-factor authentication: add the secret {DEMO_TOTP_SECRET} to an authenticator app "
        "(time-based, 6 digits, 30 seconds) and enter the code it shows."
    )


# ---------------------------------------------------------------------------------------------
# The dynamic purchasing system: a live arrangement, its members, and applications in every state

DEMO_ARRANGEMENT_REFERENCE = "HMPPS-DPS-2026"
DEMO_ARRANGEMENT_REGIONS = ("A", "B", "C", "D", "E", "G", "J", "L")
DEMO_LOTS = {
    "ACC": "Help to find and keep a home: tenancy support, move-on and supported housing.",
    "ETE": "Help into education, training and work, and to stay in work.",
    "FBD": "Advice on money, benefits and debt, and help to open a bank account.",
    "DNR": "Recovery from drug and alcohol dependency, with peer support.",
    "WOM": "Gender-specific, trauma-informed services for women on probation.",
    "EWB": "Support for emotional wellbeing and mental health.",
}
# Which lots (category codes) and regions each admitted demo provider holds.
DEMO_ADMISSIONS = {
    "northern-lights": (("ACC", "FBD"), ("B", "L")),
    "second-chances": (("ETE",), ("L", "B")),
    "harbour-debt": (("FBD",), ("D",)),
    "pathways": (("DNR", "EWB"), ("C",)),
    "womens-circle": (("WOM", "EWB"), ("J",)),
    "open-door": (("ETE", "EWB"), ("G",)),
    "bridgeway": (("ACC",), ("B",)),
    "clean-slate": (("ETE",), ("J", "E")),
    "rebuild-cymru": (("ACC", "DNR", "FBD"), ("D",)),
    "anchor": (("ACC", "DNR"), ("A", "C")),
    "steps-forward": (("EWB",), ("E",)),
    "lifeline-debt": (("FBD",), ("L", "B", "C")),
    "caledonian": (("DNR",), ("A",)),
    "ascend": (("ETE",), ("J", "E", "G")),
    "keystone": (("ACC",), ("E",)),
}
DEMO_PDF = b"%PDF-1.4\n% demo evidence\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"


def _demo_criteria(lot) -> list:
    from marketplace.accreditation.models import Criterion, QuestionType

    name = lot.category.name.lower()
    criteria = [
        Criterion(
            lot=lot,
            position=1,
            question="Do you have a safeguarding policy that your board has approved in the last "
            "12 months?",
            type=QuestionType.YES_NO,
            mandatory=True,
            pass_fail=True,
            pass_answer=True,
        ),
        Criterion(
            lot=lot,
            position=2,
            question=f"Describe the {name} services you offer and who delivers them.",
            type=QuestionType.TEXT,
            mandatory=True,
            pass_fail=False,
        ),
        Criterion(
            lot=lot,
            position=3,
            question="Upload your public liability insurance certificate (at least £5 million).",
            type=QuestionType.FILE,
            mandatory=True,
            pass_fail=True,
            evidence_expires=True,
        ),
    ]
    db.session.add_all(criteria)
    return criteria


def _demo_evidence(organisation: Organisation, uploaded_at) -> Any:
    import hashlib
    import os
    import secrets

    from marketplace.accreditation.models import EvidenceFile
    from marketplace.accreditation.uploads import evidence_dir

    stored_name = secrets.token_hex(16)
    os.makedirs(evidence_dir(), exist_ok=True)
    with open(os.path.join(evidence_dir(), stored_name), "xb") as target:
        target.write(DEMO_PDF)
    evidence = EvidenceFile(
        organisation_id=organisation.id,
        original_name="public-liability-insurance.pdf",
        stored_name=stored_name,
        content_type="application/pdf",
        size_bytes=len(DEMO_PDF),
        sha256=hashlib.sha256(DEMO_PDF).hexdigest(),
        uploaded_at=uploaded_at,
    )
    db.session.add(evidence)
    db.session.flush()
    return evidence


def load_accreditation_demo(
    authority_admin: User,
    assessor: User,
    providers: dict[str, Organisation],
    regions: dict[str, ProbationRegion],
    *,
    provider_admins: dict[str, User] | None = None,
    today: date | None = None,
) -> dict[str, int]:
    """A live DPS with lots in several regions, admitted members and applications in every state.

    Rows are built directly (the services work from today's date and would refuse back-dated
    admissions); each change has its audit event, and every row meets the CHECK constraints.
    """
    from marketplace.accreditation.models import (
        Answer,
        AnswerOutcome,
        Application,
        ApplicationArea,
        ApplicationLot,
        ApplicationStatus,
        Arrangement,
        ArrangementLot,
        ArrangementStatus,
        ConflictDeclaration,
        EvidenceRenewal,
        LegalRegime,
        LotDecision,
        LotMembership,
        MembershipStatus,
        QuestionType,
        RenewalStatus,
        SuspensionCause,
    )
    from marketplace.core.clock import add_working_days, london_date, working_days_between
    from marketplace.reference.models import ServiceCategory

    provider_admins = provider_admins or {}
    today = today or london_date()
    categories = {c.code: c for c in db.session.scalars(sa.select(ServiceCategory))}
    arrangement = Arrangement(
        reference=DEMO_ARRANGEMENT_REFERENCE,
        name="Rehabilitation Services Dynamic Purchasing System",
        description=(
            "Rehabilitation services for people on probation in England and Wales, bought by "
            "probation regions, Police and Crime Commissioners and other public bodies. Any "
            "provider that meets the criteria of a lot can join at any time."
        ),
        legal_regime=LegalRegime.PCR2015_DPS,
        status=ArrangementStatus.LIVE,
        valid_from=date(2026, 4, 1),
        valid_to=date(2030, 3, 31),
        direct_award_limit_pence=3_000_000,
        created_by_id=authority_admin.id,
        went_live_at=datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
    )
    arrangement.regions = [regions[code] for code in DEMO_ARRANGEMENT_REGIONS]
    arrangement.lots = [
        ArrangementLot(category=categories[code], description=text)
        for code, text in DEMO_LOTS.items()
    ]
    db.session.add(arrangement)
    db.session.flush()
    audit.record(
        authority_admin,
        "arrangement.created",
        arrangement,
        after={"reference": arrangement.reference, "source": "demo"},
    )
    audit.record(
        authority_admin,
        "arrangement.went_live",
        arrangement,
        before={"status": "pending"},
        after={"status": "live", "source": "demo"},
    )
    lots = {lot.category.code: lot for lot in arrangement.lots}
    criteria = {code: _demo_criteria(lot) for code, lot in lots.items()}
    db.session.flush()

    numbers = iter(range(1, 10_000))
    counts = {"memberships": 0, "applications": 0}

    def at(day: date, hour: int = 10):
        return datetime(day.year, day.month, day.day, hour, 0, tzinfo=UTC)

    def submitted_on_for(days_left: int) -> date:
        """A working day of submission that leaves ``days_left`` working days on the clock."""
        day = today
        while working_days_between(today, add_working_days(day, 10)) > days_left:
            day -= timedelta(days=1)
        return day

    def application(key, codes, region_codes, status, *, submitted_on=None, marks="pass", **extra):
        organisation = providers[key]
        admin_user = provider_admins.get(key)
        created_on = (submitted_on or today) - timedelta(days=5)
        row = Application(
            reference=f"APP-{created_on.year}-{next(numbers):06d}",
            arrangement_id=arrangement.id,
            organisation_id=organisation.id,
            status=status,
            created_by_id=admin_user.id if admin_user else None,
            partners=extra.pop("partners", ""),
        )
        if submitted_on is not None:
            row.declared_at = at(submitted_on, 9)
            row.submitted_at = at(submitted_on)
            row.submitted_by_id = admin_user.id if admin_user else None
            row.decision_due_on = add_working_days(submitted_on, 10)
        for name, value in extra.items():
            setattr(row, name, value)
        row.lots = [ApplicationLot(lot=lots[code]) for code in codes]
        row.areas = [ApplicationArea(region=regions[code]) for code in region_codes]
        db.session.add(row)
        db.session.flush()
        for code in codes:
            for criterion in criteria[code]:
                answer = Answer(application_id=row.id, criterion_id=criterion.id)
                if criterion.type == QuestionType.YES_NO:
                    answer.value_bool = True
                elif criterion.type == QuestionType.TEXT:
                    answer.value_text = (
                        f"{organisation.name} has delivered {lots[code].category.name.lower()} "
                        "services for people on probation since 2015, with paid staff and "
                        "trained volunteers, many with lived experience."
                    )
                else:
                    answer.file_id = _demo_evidence(organisation, at(created_on)).id
                    answer.evidence_expires_on = date(2027, 3, 31)
                if marks and criterion.pass_fail and row.decided_at is not None:
                    failed = marks == "fail" and criterion.type == QuestionType.YES_NO
                    answer.outcome = AnswerOutcome.FAIL if failed else AnswerOutcome.PASS
                    answer.assessor_comment = (
                        "The policy was last approved in 2019; it must be reviewed and approved "
                        "again."
                        if failed
                        else ""
                    )
                    answer.assessed_at = row.decided_at
                    answer.assessed_by_id = assessor.id
                db.session.add(answer)
        db.session.flush()
        audit.record(
            admin_user or authority_admin,
            f"application.{status.value}",
            row,
            after={"reference": row.reference, "status": status.value, "source": "demo"},
        )
        counts["applications"] += 1
        return row

    # Admitted members: one application each, one membership per lot and region.
    admitted_from = date(2026, 4, 7)
    for index, (key, (codes, region_codes)) in enumerate(DEMO_ADMISSIONS.items()):
        submitted_on = min(admitted_from + timedelta(days=9 * index), today - timedelta(days=21))
        decided = at(min(add_working_days(submitted_on, 7), today - timedelta(days=1)), 14)
        row = application(
            key,
            codes,
            region_codes,
            ApplicationStatus.ADMITTED,
            submitted_on=submitted_on,
            assessment_started_at=at(add_working_days(submitted_on, 2)),
            decided_at=decided,
        )
        for application_lot in row.lots:
            application_lot.decision = LotDecision.ADMITTED
            application_lot.decided_at = decided
            application_lot.decided_by_id = assessor.id
            for region_code in region_codes:
                membership = LotMembership(
                    arrangement_id=arrangement.id,
                    lot_id=application_lot.lot_id,
                    organisation_id=row.organisation_id,
                    region_id=regions[region_code].id,
                    application_id=row.id,
                    status=MembershipStatus.ACTIVE,
                    admitted_on=decided.date(),
                )
                db.session.add(membership)
                db.session.flush()
                audit.record(
                    assessor,
                    "membership.admitted",
                    membership,
                    after={
                        "application": row.reference,
                        "lot_id": application_lot.lot_id,
                        "region_id": membership.region_id,
                        "admitted_on": membership.admitted_on,
                        "source": "demo",
                    },
                )
                counts["memberships"] += 1

    # Two members are suspended, so that the member pages show it.
    for key, cause, reason in (
        (
            "keystone",
            SuspensionCause.AUTHORITY,
            "A safeguarding complaint is being investigated.",
        ),
        (
            "caledonian",
            SuspensionCause.EVIDENCE_EXPIRED,
            "The evidence for the public liability insurance expired.",
        ),
    ):
        for membership in db.session.scalars(
            sa.select(LotMembership).where(LotMembership.organisation_id == providers[key].id)
        ):
            membership.status = MembershipStatus.SUSPENDED
            membership.suspended_at = at(today - timedelta(days=3))
            membership.suspension_cause = cause
            membership.suspension_reason = reason
            audit.record(
                authority_admin if cause == SuspensionCause.AUTHORITY else None,
                "membership.suspended",
                membership,
                before={"status": "active"},
                after={"status": "suspended", "reason": reason, "source": "demo"},
            )

    # Expiring evidence: Northern Lights' insurance runs out within the month, so its people are
    # asked to renew it; Caledonian's has expired (hence its suspension) and the renewed
    # certificate it sent waits for an assessor.
    def insurance_of(key: str) -> list[Answer]:
        return list(
            db.session.scalars(
                sa.select(Answer)
                .join(Application, Application.id == Answer.application_id)
                .where(
                    Application.organisation_id == providers[key].id,
                    Application.status == ApplicationStatus.ADMITTED,
                    Answer.evidence_expires_on.is_not(None),
                )
                .order_by(Answer.id)
            )
        )

    for answer in insurance_of("northern-lights"):
        answer.evidence_expires_on = today + timedelta(days=20)
    caledonian_admin = provider_admins.get("caledonian")
    for answer in insurance_of("caledonian"):
        answer.evidence_expires_on = today - timedelta(days=3)
        sent_at = at(today - timedelta(days=1))
        renewal = EvidenceRenewal(
            answer_id=answer.id,
            file_id=_demo_evidence(providers["caledonian"], sent_at).id,
            expires_on=today + timedelta(days=365),
            replaces_file_id=answer.file_id,
            replaces_expires_on=answer.evidence_expires_on,
            status=RenewalStatus.PENDING,
            submitted_at=sent_at,
            submitted_by_id=caledonian_admin.id if caledonian_admin else None,
        )
        db.session.add(renewal)
        db.session.flush()
        audit.record(
            caledonian_admin,
            "evidence.renewed",
            renewal,
            organisation=providers["caledonian"],
            after={"answer_id": answer.id, "expires_on": renewal.expires_on, "source": "demo"},
        )

    # Applications in every other state.
    application("young-futures", ("ETE",), ("E",), ApplicationStatus.DRAFT)
    application(
        "thrive", ("EWB",), ("G",), ApplicationStatus.SUBMITTED, submitted_on=submitted_on_for(2)
    )
    application(
        "common-ground",
        ("EWB", "ETE"),
        ("J",),
        ApplicationStatus.SUBMITTED,
        submitted_on=submitted_on_for(0),
    )
    application(
        "kinship",
        ("FBD",),
        ("E", "G"),
        ApplicationStatus.SUBMITTED,
        submitted_on=submitted_on_for(-3),
    )
    under = application(
        "victim-voice",
        ("WOM",),
        ("J",),
        ApplicationStatus.UNDER_ASSESSMENT,
        submitted_on=submitted_on_for(6),
        partners="Safe Spaces CIC (subcontractor for outreach)",
    )
    under.assessment_started_at = at(today - timedelta(days=1))
    db.session.add(
        ConflictDeclaration(
            application_id=under.id,
            assessor_id=assessor.id,
            has_conflict=False,
            declared_at=under.assessment_started_at,
        )
    )
    audit.record(
        assessor,
        "application.conflict_declared",
        under,
        after={"assessor_id": assessor.id, "has_conflict": False, "source": "demo"},
    )
    rejected_on = submitted_on_for(-20)
    rejected_decided = at(min(add_working_days(rejected_on, 8), today), 15)
    rejected = application(
        "borders-recovery",
        ("DNR",),
        ("A",),
        ApplicationStatus.REJECTED,
        submitted_on=rejected_on,
        assessment_started_at=at(rejected_on),
        decided_at=rejected_decided,
        marks="fail",
    )
    for application_lot in rejected.lots:
        application_lot.decision = LotDecision.REJECTED
        application_lot.decided_at = rejected_decided
        application_lot.decided_by_id = assessor.id
        application_lot.feedback = (
            "Your safeguarding policy must have been approved by your board in the last 12 "
            "months. Please have it reviewed, then amend and resubmit your application."
        )
    withdrawn_on = submitted_on_for(-8)
    application(
        "nw-liaison",
        ("DNR",),
        ("B",),
        ApplicationStatus.WITHDRAWN,
        submitted_on=withdrawn_on,
        withdrawn_at=at(withdrawn_on + timedelta(days=2)),
    )
    db.session.flush()
    return counts


# ---------------------------------------------------------------------------------------------
# The catalogue: published listings with prices (a few hundred for the demo; any number for scale)

# Per category: (title, summary, description, outcomes, unit, VAT treatment, price range in pence).
LISTING_TEMPLATES: dict[str, list[tuple[str, str, str, str, str, str, tuple[int, int]]]] = {
    "ACC": [
        ("Move-on accommodation support", "Help to find and keep a tenancy after release",
         "A named housing worker helps the person find a tenancy, set up the home, claim housing "
         "costs and build a relationship with the landlord, from before release to six months on.",
         "Settled accommodation within 28 days\nTenancy kept for 6 months", "week", "exempt",
         (9_000, 18_000)),
        ("Supported housing bed", "A room in shared supported housing with on-site staff",
         "Self-contained rooms in small shared houses with staff on site from 8am to 10pm and on "
         "call overnight. Key work twice a week covers budgeting, health and moving on.",
         "Move on to independent accommodation within 9 months", "bed_night", "exempt",
         (3_500, 7_500)),
        ("Tenancy rescue casework", "Stop an eviction and keep the home",
         "Urgent casework with landlords and councils to prevent the loss of a tenancy: arrears "
         "plans, repairs, disputes and court representation through our partners.",
         "Eviction prevented\nArrears plan agreed", "referral", "exempt", (25_000, 60_000)),
        ("Duty to refer housing advice", "Housing options advice on the day of release",
         "Advice at the prison gate or in the probation office on housing options, homelessness "
         "applications and emergency accommodation.", "Homelessness application made",
         "session", "exempt", (4_000, 9_000)),
    ],
    "ETE": [
        ("Employment coaching", "One-to-one coaching into paid work",
         "A coach works with the person on CVs, disclosure of convictions, applications and "
         "interviews, and stays in touch for the first months in work.",
         "Job start\nIn work after 13 weeks", "session", "standard", (4_500, 9_500)),
        ("Construction skills programme", "CSCS card and site-ready skills in six weeks",
         "A six-week course with the CSCS health and safety test, site visits and introductions to "
         "employers who hire people with convictions.", "CSCS card gained\nJob start",
         "programme", "standard", (60_000, 140_000)),
        ("Digital skills workshops", "Basic digital skills for work and benefits",
         "Small group workshops on email, online forms, Universal Credit journals and job sites.",
         "Essential digital skills qualification", "session", "exempt", (2_000, 5_000)),
        ("Employer brokerage", "Matching job-ready people with inclusive employers",
         "We broker placements and interviews with employers who have signed up to fair chance "
         "recruitment, and support both sides for the first 13 weeks.",
         "Job start", "referral", "standard", (30_000, 80_000)),
    ],
    "FBD": [
        ("Debt advice casework", "Regulated debt advice and a plan the person can keep",
         "FCA-regulated advisers review all debts, deal with creditors, and set up debt relief "
         "orders, breathing space or repayment plans.", "Debt solution in place\nIncome maximised",
         "hour", "exempt", (3_500, 7_000)),
        ("Benefits and budgeting support", "Claims, appeals and a weekly budget",
         "Help with Universal Credit and disability benefit claims and appeals, advance payments "
         "and a realistic budget.", "Benefit claim made\nBudget agreed", "session", "exempt",
         (2_500, 6_000)),
        ("Bank account opening", "Basic bank accounts for people leaving custody",
         "Identity documents, a basic bank account and online banking set up before or just after "
         "release.", "Bank account opened", "referral", "exempt", (4_000, 12_000)),
    ],
    "DNR": [
        ("Community recovery programme", "A 12-week structured recovery group",
         "Evidence-based group work on relapse prevention, with peer mentors in recovery and links "
         "to mutual aid.", "Programme completed\nDrug-free at 6 months", "programme", "exempt",
         (45_000, 120_000)),
        ("Peer recovery mentoring", "A mentor with lived experience of recovery",
         "Weekly meetings with a trained peer mentor who helps the person keep appointments, build "
         "a recovery network and stay safe.", "Engaged with treatment", "hour", "exempt",
         (2_500, 5_000)),
        ("Alcohol brief interventions", "Short structured sessions to cut drinking",
         "Up to six sessions using motivational interviewing, with AUDIT screening at start and "
         "end.", "Reduced AUDIT score", "session", "exempt", (3_000, 6_500)),
    ],
    "WOM": [
        ("Women's centre key work", "Trauma-informed support at a women-only centre",
         "A key worker at a women's centre supports women with housing, health, children and "
         "finances, with a safe space to meet probation.", "Needs plan completed\nSafer at home",
         "session", "exempt", (4_000, 8_500)),
        ("Domestic abuse recovery group", "Group work for women who have experienced abuse",
         "A ten-week programme on healthy relationships, safety planning and self-esteem.",
         "Programme completed", "programme", "exempt", (35_000, 80_000)),
    ],
    "EWB": [
        ("Wellbeing counselling", "Short-term counselling with accredited counsellors",
         "Up to twelve sessions of person-centred counselling, in person or online.",
         "Improved wellbeing score (WEMWBS)", "session", "exempt", (4_000, 7_500)),
        ("Mental health navigation", "Help to get and keep mental health care",
         "A navigator helps the person register with a GP, get assessed and keep appointments with "
         "mental health services.", "Registered with a GP\nMental health assessment completed",
         "hour", "exempt", (3_000, 6_000)),
    ],
}  # fmt: skip
GENERIC_TEMPLATE = (
    "Specialist support", "Specialist one-to-one support for people on probation",
    "Casework by experienced staff with lived experience, tailored to the person's needs.",
    "Needs plan completed", "session", "exempt", (3_000, 8_000),
)  # fmt: skip
AREA_NAMES = {
    "A": "North East", "B": "North West", "C": "Yorkshire", "D": "Wales", "E": "Midlands",
    "F": "East", "G": "London", "H": "Kent, Surrey and Sussex", "J": "South West", "K": "South",
    "L": "Greater Manchester",
}  # fmt: skip
VARIANTS = ("", " (group)", " (remote)", " for young adults", " for women", " (intensive)")


def _listing_row(
    n: int,
    listing_id: int,
    organisation_id: int,
    lot_id: int,
    category_code: str,
    region_codes: list[str],
    now: datetime,
) -> tuple[dict[str, Any], int]:
    """One realistic published listing (the row and its price), varied by ``n``."""
    templates = LISTING_TEMPLATES.get(category_code, [GENERIC_TEMPLATE])
    title, summary, description, outcomes, unit, vat, (low, high) = templates[n % len(templates)]
    variant = VARIANTS[(n // len(templates)) % len(VARIANTS)]
    where = AREA_NAMES.get(region_codes[0], "") if region_codes else ""
    price = low + ((n * 7919) % (high - low + 1)) // 50 * 50
    group = "group" in variant
    stale = n % 7 == 3
    return {
        "id": listing_id,
        "reference": f"SL-{listing_id:06d}",
        "organisation_id": organisation_id,
        "lot_id": lot_id,
        "status": "published",
        "title": f"{title}{variant}" + (f" – {where}" if where and n % 3 == 0 else ""),
        "summary": summary,
        "description": description,
        "outcomes": outcomes,
        "setting_community": n % 5 != 4,
        "setting_custody": n % 4 == 1 or n % 5 == 4,
        "setting_remote": "remote" in variant or n % 6 == 2,
        "format_one_to_one": not group or n % 2 == 0,
        "format_group": group,
        "eligibility_sex": "female" if category_code == "WOM" or "women" in variant else "any",
        "min_age": 18 if n % 3 else None,
        "max_age": 25 if "young" in variant else None,
        "risk_low": True,
        "risk_medium": True,
        "risk_high": n % 3 != 2,
        "risk_very_high": n % 9 == 0,
        "complexity_low": n % 4 != 0,
        "complexity_medium": True,
        "complexity_high": n % 3 == 0,
        "lead_time_days": (n % 4) * 5,
        "unit": unit,
        "vat_treatment": vat,
        "min_units": 1,
        "max_units": 1 if unit in ("programme", "referral") else 12 + (n % 4) * 12,
        "monthly_capacity": 5 + (n * 13) % 60,
        "missed_sessions_chargeable": n % 5 == 1,
        "cost_staff_pence": price * 6 // 10 if n % 2 else None,
        "cost_overheads_pence": price * 25 // 100 if n % 2 else None,
        "cost_other_pence": price - price * 6 // 10 - price * 25 // 100 if n % 2 else None,
        "social_value": "We employ people with convictions and pay the Real Living Wage."
        if n % 2
        else "",
        "contact_name": "Referrals team",
        "contact_email": f"referrals+{listing_id}@{DEMO_EMAIL_DOMAIN}",
        "contact_phone": f"0300 {100 + n % 900:03d} {1000 + n % 9000:04d}",
        "created_by_id": None,
        "copied_from_id": None,
        "published_at": now - timedelta(days=30 + n % 300),
        "paused_at": None,
        "withdrawn_at": None,
        "confirmed_at": now - timedelta(days=200 + n % 200 if stale else n % 90),
        "stale_notified_at": None,
        "created_at": now - timedelta(days=30 + n % 300),
        "updated_at": now,
    }, price


def insert_listings(
    connection: sa.Connection,
    specs: list[tuple[int, int, str, list[int], list[str]]],
    *,
    today: date | None = None,
    start: int = 0,
) -> int:
    """Bulk-insert published listings: one per (organisation, lot, category code, region ids,
    region codes); some with a price rise from next month. Returns how many were written."""
    from marketplace.catalogue.models import Listing, ListingArea, ListingPrice

    if not specs:
        return 0
    now = utcnow()
    today = today or now.date()
    next_month = date(today.year + (today.month == 12), today.month % 12 + 1, 1)
    first_id = (connection.scalar(sa.select(sa.func.max(Listing.__table__.c.id))) or 0) + 1
    listings, areas, prices = [], [], []
    for i, (organisation_id, lot_id, code, region_ids, region_codes) in enumerate(specs):
        n = start + i
        listing_id = first_id + i
        row, price = _listing_row(n, listing_id, organisation_id, lot_id, code, region_codes, now)
        listings.append(row)
        areas.extend(
            {"listing_id": listing_id, "region_id": region_id, "pcc_area_id": None}
            for region_id in region_ids
        )
        began = row["published_at"].date()
        rises = n % 5 == 1
        prices.append(
            {
                "listing_id": listing_id,
                "unit_price_pence": price,
                "effective_from": began,
                "effective_to": next_month if rises else None,
                "reason": "First price",
                "created_at": row["published_at"],
                "created_by_id": None,
            }
        )
        if rises:
            prices.append(
                {
                    "listing_id": listing_id,
                    "unit_price_pence": price * 103 // 100,
                    "effective_from": next_month,
                    "effective_to": None,
                    "reason": "Annual uplift of 3%",
                    "created_at": now,
                    "created_by_id": None,
                }
            )
    for table, rows in (
        (Listing.__table__, listings),
        (ListingArea.__table__, areas),
        (ListingPrice.__table__, prices),
    ):
        for i in range(0, len(rows), 10_000):
            connection.execute(table.insert(), rows[i : i + 10_000])
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('listings', 'id'), (SELECT max(id) FROM listings))"
            )
        )
    return len(listings)


def load_catalogue_demo(arrangement_reference: str = DEMO_ARRANGEMENT_REFERENCE) -> int:
    """A few hundred published listings from the demo members, in the regions they hold."""
    from marketplace.accreditation.models import Arrangement, ArrangementLot, LotMembership

    connection = db.session.connection()
    arrangement_id = connection.scalar(
        sa.select(Arrangement.__table__.c.id).where(
            Arrangement.__table__.c.reference == arrangement_reference
        )
    )
    if arrangement_id is None:
        return 0
    rows = db.session.execute(
        sa.select(
            LotMembership.organisation_id,
            LotMembership.lot_id,
            ArrangementLot.category_id,
            LotMembership.region_id,
            ProbationRegion.code,
        )
        .join(ArrangementLot, ArrangementLot.id == LotMembership.lot_id)
        .join(ProbationRegion, ProbationRegion.id == LotMembership.region_id)
        .where(LotMembership.arrangement_id == arrangement_id)
        .order_by(LotMembership.organisation_id, LotMembership.lot_id, ProbationRegion.code)
    ).all()
    from marketplace.reference.models import ServiceCategory

    codes = dict(db.session.execute(sa.select(ServiceCategory.id, ServiceCategory.code)).all())
    held: dict[tuple[int, int, str], list[tuple[int, str]]] = {}
    for organisation_id, lot_id, category_id, region_id, region_code in rows:
        held.setdefault((organisation_id, lot_id, codes[category_id]), []).append(
            (region_id, region_code)
        )
    specs = []
    for (organisation_id, lot_id, code), regions in held.items():
        # About ten listings per lot held: every region together, and each region on its own.
        for k in range(10):
            chosen = regions if k % 2 == 0 else [regions[k // 2 % len(regions)]]
            specs.append(
                (organisation_id, lot_id, code, [r for r, _ in chosen], [c for _, c in chosen])
            )
    return insert_listings(connection, specs)


SCALE_PROVIDER_PREFIX = "Scale Provider "
SCALE_WORDS = ("Harbour", "Beacon", "Northern", "Oak", "Riverside", "Phoenix", "Bridge", "Haven")


def load_scale_catalogue(services: int, providers: int) -> dict[str, int]:
    """``providers`` generated providers, each a member of two lots in two regions of the demo
    arrangement, publishing ``services`` listings between them: Core bulk inserts, one
    transaction (the caller commits). Cached pages see the change: the database's triggers
    move their topics on (marketplace/core/cache/triggers.py)."""
    from marketplace.accounts.models import Organisation as OrganisationModel
    from marketplace.accreditation.models import (
        Arrangement,
        ArrangementLot,
        LotMembership,
        MembershipStatus,
        arrangement_regions,
    )
    from marketplace.reference.models import ServiceCategory

    connection = db.session.connection()
    arrangement = connection.execute(
        sa.select(Arrangement.__table__).where(
            Arrangement.__table__.c.reference == DEMO_ARRANGEMENT_REFERENCE
        )
    ).first()
    if arrangement is None:
        raise click.ClickException("The demo arrangement is missing: run `flask demo load` first.")
    lots = connection.execute(
        sa.select(ArrangementLot.__table__.c.id, ServiceCategory.__table__.c.code)
        .join(
            ServiceCategory.__table__,
            ServiceCategory.__table__.c.id == ArrangementLot.__table__.c.category_id,
        )
        .where(ArrangementLot.__table__.c.arrangement_id == arrangement.id)
        .order_by(ArrangementLot.__table__.c.id)
    ).all()
    regions = connection.execute(
        sa.select(ProbationRegion.__table__.c.id, ProbationRegion.__table__.c.code)
        .join(
            arrangement_regions, arrangement_regions.c.region_id == ProbationRegion.__table__.c.id
        )
        .where(arrangement_regions.c.arrangement_id == arrangement.id)
        .order_by(ProbationRegion.__table__.c.code)
    ).all()
    now = utcnow()
    organisations_t = OrganisationModel.__table__
    first_number = (
        connection.scalar(
            sa.select(sa.func.count()).where(
                organisations_t.c.name.like(f"{SCALE_PROVIDER_PREFIX}%")
            )
        )
        + 1
    )
    first_id = (connection.scalar(sa.select(sa.func.max(organisations_t.c.id))) or 0) + 1
    organisation_rows, membership_rows, held = [], [], []
    for k in range(providers):
        n = first_number + k
        vcse = n % 4 != 0
        organisation_id = first_id + k
        organisation_rows.append(
            {
                "id": organisation_id,
                "name": f"{SCALE_PROVIDER_PREFIX}{n:05d} {SCALE_WORDS[n % len(SCALE_WORDS)]}",
                "type": OrganisationType.PROVIDER_VCSE
                if vcse
                else OrganisationType.PROVIDER_PRIVATE,
                "charity_number": f"{1_200_000 + n}" if vcse else None,
                "companies_house_number": None if vcse else f"SC{n:06d}",
                "region_id": regions[n % len(regions)].id,
                "active": True,
                "created_at": now,
                "updated_at": now,
            }
        )
        own_lots = [lots[(k + j) % len(lots)] for j in range(min(2, len(lots)))]
        own_regions = [regions[(k * 3 + m) % len(regions)] for m in range(min(2, len(regions)))]
        for lot in own_lots:
            for region in own_regions:
                membership_rows.append(
                    {
                        "arrangement_id": arrangement.id,
                        "lot_id": lot.id,
                        "organisation_id": organisation_id,
                        "region_id": region.id,
                        "pcc_area_id": None,
                        "application_id": None,
                        "status": MembershipStatus.ACTIVE,
                        "admitted_on": arrangement.valid_from,
                        "declared_version": arrangement.criteria_version,
                    }
                )
            held.append((organisation_id, lot, own_regions))
    connection.execute(organisations_t.insert(), organisation_rows)
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text(
                "SELECT setval(pg_get_serial_sequence('organisations', 'id'), "
                "(SELECT max(id) FROM organisations))"
            )
        )
    for i in range(0, len(membership_rows), 10_000):
        connection.execute(LotMembership.__table__.insert(), membership_rows[i : i + 10_000])
    specs = []
    for i in range(services):
        organisation_id, lot, own_regions = held[i % len(held)] if held else (None, None, [])
        chosen = own_regions if i % 3 == 0 else [own_regions[i % len(own_regions)]]
        specs.append(
            (organisation_id, lot.id, lot.code, [r.id for r in chosen], [r.code for r in chosen])
        )
    start = connection.scalar(sa.select(sa.func.count()).select_from(sa.table("listings"))) or 0
    written = insert_listings(connection, specs, start=start)
    return {
        "providers": len(organisation_rows),
        "lot_memberships": len(membership_rows),
        "listings": written,
    }


def reindex_search() -> None:
    """Rebuild the search index after bulk loads (Core writes, which the session hooks skip)."""
    from marketplace.catalogue.search.index import reindex_all

    reindex_all()
    commit()
