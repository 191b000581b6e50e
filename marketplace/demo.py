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

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import AppGroup

from marketplace import audit
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
from marketplace.db import commit, db, utcnow
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

    counts = {
        "organisations": len(organisations),
        "providers": len(PROVIDERS),
        "users": len(USERS),
        "memberships": sum(len(roles) for spec in USERS for roles in spec.roles.values()),
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
def load_command() -> None:
    """Create the demo organisations and accounts (once; does nothing if they exist)."""
    if current_app.config.get("ENV_NAME") == "production":
        raise click.ClickException(
            "Demo data has well-known passwords: it is never loaded in production."
        )
    if demo_authority() is not None:
        click.echo(
            "Demo data is already loaded: nothing to do. List the sign-ins with `flask demo users`."
        )
        return
    counts = load_demo_data()
    commit()
    by_type: dict[str, int] = {}
    for spec in [AUTHORITY, *COMMISSIONERS, *PROVIDERS]:
        by_type[spec.type.label] = by_type.get(spec.type.label, 0) + 1
    click.echo(
        f"Loaded the demo world: {counts['organisations']} organisations, {counts['users']} people "
        f"with {counts['memberships']} roles."
    )
    for label, count in sorted(by_type.items()):
        click.echo(f"  {count:>3}  {label}")
    click.echo(f"Every demo account's password is: {DEMO_PASSWORD}")
    click.echo("List the sign-ins with `flask demo users`.")


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
