"""Users, organisations, memberships (roles), invitations, one-time links and API tokens."""

from __future__ import annotations

import enum
import re
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.core.cache import Topic, watch
from marketplace.core.clock import utcnow
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.reference.models import PccArea, ProbationRegion

EMAIL_MAX = 254
NAME_MAX = 120
ORGANISATION_NAME_MAX = 160
CHARITY_NUMBER_MAX = 12
COMPANY_NUMBER_LENGTH = 8
VAT_NUMBER_MAX = 14
TOKEN_NAME_MAX = 80
# A spend or approval limit above this (£1bn, the most a call-off can be worth) is a typing error.
LIMIT_MAX_PENCE = 100_000_000_000

ENDPOINT_ID_MAX = 50
ACCOUNT_NAME_MAX = 70

# Electronic address schemes (Peppol's Electronic Address Scheme code list, EAS) that an
# organisation can record as the EndpointID of its e-invoices: code, label, pattern, example.
ENDPOINT_SCHEMES: dict[str, tuple[str, re.Pattern[str], str]] = {
    "0088": ("Global Location Number (GLN, GS1)", re.compile(r"\d{13}"), "5012345678900"),
    "0060": ("DUNS number (Dun & Bradstreet)", re.compile(r"\d{9}"), "123456789"),
    "9932": (
        "UK VAT registration number",
        re.compile(r"GB(?:\d{9}|\d{12}|GD\d{3}|HA\d{3})"),
        "GB123456789",
    ),
    "0199": (
        "Legal Entity Identifier (LEI)",
        re.compile(r"[A-Z0-9]{18}\d{2}"),
        "5493001KJTIIGC8Y1R12",
    ),
    "0204": (
        "Leitweg-ID (German public buyers)",
        re.compile(r"[0-9A-Z][0-9A-Z-]{1,45}"),
        "991-12345-67",
    ),
}
# A UK VAT registration number: GB and 9 digits (12 for a branch), or a government department
# (GD) or health authority (HA) number.
VAT_NUMBER_PATTERN = re.compile(r"GB(?:\d{9}|\d{12}|GD\d{3}|HA\d{3})")
SORT_CODE_PATTERN = re.compile(r"\d{6}")
ACCOUNT_NUMBER_PATTERN = re.compile(r"\d{8}")

# England and Wales: 6-7 digits; Scotland: SC + 6 digits; Northern Ireland: NIC + digits.
CHARITY_NUMBER_PATTERN = re.compile(r"^(?:\d{6,7}|SC\d{6}|NIC\d{1,7})$")
# Companies House: 8 characters, digits or a two-letter prefix (SC, NI, OC, CE …) and 6 digits.
COMPANY_NUMBER_PATTERN = re.compile(r"^(?:\d{8}|[A-Z]{2}\d{6})$")


class OrganisationType(enum.StrEnum):
    PROBATION_REGION = "probation_region"
    NPS = "nps"
    CRC = "crc"
    PCC = "pcc"
    PRISON = "prison"
    OTHER_COMMISSIONER = "other_commissioner"
    PROVIDER_VCSE = "provider_vcse"
    PROVIDER_PRIVATE = "provider_private"
    PROVIDER_PUBLIC = "provider_public"
    AUTHORITY = "authority"

    @property
    def label(self) -> str:
        return ORGANISATION_TYPE_LABELS[self]

    @property
    def is_provider(self) -> bool:
        return self in PROVIDER_TYPES

    @property
    def is_commissioner(self) -> bool:
        return self in COMMISSIONER_TYPES


ORGANISATION_TYPE_LABELS = {
    OrganisationType.PROBATION_REGION: "Probation service region",
    OrganisationType.NPS: "National Probation Service",
    OrganisationType.CRC: "Community Rehabilitation Company",
    OrganisationType.PCC: "Police and Crime Commissioner",
    OrganisationType.PRISON: "Prison",
    OrganisationType.OTHER_COMMISSIONER: "Other commissioner",
    OrganisationType.PROVIDER_VCSE: "Voluntary, community or social enterprise provider",
    OrganisationType.PROVIDER_PRIVATE: "Private sector provider",
    OrganisationType.PROVIDER_PUBLIC: "Public sector provider",
    OrganisationType.AUTHORITY: "Contracting authority",
}

PROVIDER_TYPES = frozenset(
    {
        OrganisationType.PROVIDER_VCSE,
        OrganisationType.PROVIDER_PRIVATE,
        OrganisationType.PROVIDER_PUBLIC,
    }
)
COMMISSIONER_TYPES = frozenset(
    {
        OrganisationType.PROBATION_REGION,
        OrganisationType.NPS,
        OrganisationType.CRC,
        OrganisationType.PCC,
        OrganisationType.PRISON,
        OrganisationType.OTHER_COMMISSIONER,
    }
)


class Role(enum.StrEnum):
    BUYER = "buyer"
    APPROVER = "approver"
    PROVIDER_ADMIN = "provider_admin"
    PROVIDER_EDITOR = "provider_editor"
    ASSESSOR = "assessor"
    AUTHORITY_ADMIN = "authority_admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.BUYER: "Buyer",
    Role.APPROVER: "Approver (budget holder)",
    Role.PROVIDER_ADMIN: "Provider administrator",
    Role.PROVIDER_EDITOR: "Provider editor",
    Role.ASSESSOR: "Assessor",
    Role.AUTHORITY_ADMIN: "Authority administrator",
}

# Which roles an organisation of each kind can give its people.
ROLES_FOR_ORGANISATION_TYPE: dict[OrganisationType, frozenset[Role]] = {
    **{t: frozenset({Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}) for t in PROVIDER_TYPES},
    **{t: frozenset({Role.BUYER, Role.APPROVER}) for t in COMMISSIONER_TYPES},
    OrganisationType.AUTHORITY: frozenset({Role.AUTHORITY_ADMIN, Role.ASSESSOR}),
}

# The role in each kind of organisation that manages its team.
ORGANISATION_ADMIN_ROLES = frozenset({Role.PROVIDER_ADMIN, Role.APPROVER, Role.AUTHORITY_ADMIN})

# Roles that must use two-factor authentication.
TWO_FACTOR_REQUIRED_ROLES = frozenset({Role.AUTHORITY_ADMIN, Role.ASSESSOR})


class Organisation(TimestampMixin, db.Model):
    __tablename__ = "organisations"
    __table_args__ = (
        sa.CheckConstraint("length(name) > 0", name="name_not_empty"),
        sa.CheckConstraint(
            "(endpoint_scheme IS NULL) = (endpoint_id IS NULL)", name="endpoint_scheme_with_id"
        ),
        sa.CheckConstraint(
            "vat_registered = (vat_number IS NOT NULL)", name="vat_number_iff_registered"
        ),
        sa.CheckConstraint(
            "(bank_details_sealed IS NULL) = (bank_account_last4 IS NULL)",
            name="bank_details_with_last4",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(ORGANISATION_NAME_MAX), index=True)
    type: Mapped[OrganisationType] = mapped_column(enum_type(OrganisationType, "organisation_type"))
    charity_number: Mapped[str | None] = mapped_column(sa.String(CHARITY_NUMBER_MAX))
    companies_house_number: Mapped[str | None] = mapped_column(sa.String(COMPANY_NUMBER_LENGTH))
    # A provider's VAT registration number (GB and 9 digits) where it is VAT-registered; shown
    # on its invoices.
    vat_number: Mapped[str | None] = mapped_column(sa.String(VAT_NUMBER_MAX))
    # Recorded by the provider itself: an unregistered provider charges no VAT (its listings are
    # outside the scope of VAT, catalogue.services.vat.VAT_REGISTRATION_TREATMENTS).
    vat_registered: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    # The electronic address (Peppol EndpointID) its e-invoices are sent from or to.
    endpoint_scheme: Mapped[str | None] = mapped_column(sa.String(4))
    endpoint_id: Mapped[str | None] = mapped_column(sa.String(ENDPOINT_ID_MAX))
    # A provider's bank account for credit transfers, sealed (marketplace.core.sealed) as JSON of
    # account name, sort code and account number; only the last four digits are kept in clear,
    # for pages. Never snapshotted into the audit trail.
    bank_details_sealed: Mapped[str | None] = mapped_column(sa.Text)
    bank_account_last4: Mapped[str | None] = mapped_column(sa.String(4))
    bank_details_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"), index=True)
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)

    region: Mapped[ProbationRegion | None] = relationship()
    pcc_area: Mapped[PccArea | None] = relationship()
    memberships: Mapped[list[Membership]] = relationship(
        back_populates="organisation", cascade="all, delete-orphan"
    )

    audit_type = "organisation"

    @property
    def audit_organisation(self) -> Organisation:
        return self

    @property
    def is_provider(self) -> bool:
        return self.type in PROVIDER_TYPES

    @property
    def is_commissioner(self) -> bool:
        return self.type in COMMISSIONER_TYPES

    @property
    def is_authority(self) -> bool:
        return self.type == OrganisationType.AUTHORITY

    @property
    def allowed_roles(self) -> frozenset[Role]:
        return ROLES_FOR_ORGANISATION_TYPE[self.type]

    @property
    def endpoint_scheme_label(self) -> str:
        scheme = ENDPOINT_SCHEMES.get(self.endpoint_scheme or "")
        return scheme[0] if scheme else ""

    @property
    def has_bank_details(self) -> bool:
        return self.bank_details_sealed is not None

    def __str__(self) -> str:
        return self.name


class User(TimestampMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    # Stored lower-cased, so the unique index makes email addresses case-insensitive.
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    email_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_sign_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Changing it signs out every other session (it is part of the Flask-Login id).
    session_nonce: Mapped[str] = mapped_column(sa.String(32))
    totp_secret: Mapped[str | None] = mapped_column(sa.String(64))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The last TOTP time-step accepted, so a code cannot be replayed.
    totp_last_counter: Mapped[int | None] = mapped_column(sa.BigInteger)

    memberships: Mapped[list[Membership]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        foreign_keys="Membership.user_id",
    )

    audit_type = "user"

    # Flask-Login interface
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_active(self) -> bool:
        return self.active

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str:
        return f"{self.id}:{self.session_nonce}"

    @property
    def two_factor_enabled(self) -> bool:
        return self.totp_enabled_at is not None

    @property
    def roles(self) -> set[Role]:
        return {m.role for m in self.memberships if m.organisation.active}

    @property
    def requires_two_factor(self) -> bool:
        return bool(self.roles & TWO_FACTOR_REQUIRED_ROLES)

    @property
    def organisations(self) -> list[Organisation]:
        seen: dict[int, Organisation] = {}
        for membership in self.memberships:
            if membership.organisation.active:
                seen.setdefault(membership.organisation_id, membership.organisation)
        return sorted(seen.values(), key=lambda o: o.name.lower())

    def roles_in(self, organisation: Organisation | None) -> set[Role]:
        if organisation is None:
            return set()
        return self.roles_for(organisation.id)

    def roles_for(self, organisation_id: int) -> set[Role]:
        """The roles held in the organisation with this key (none if not a member)."""
        return {m.role for m in self.memberships if m.organisation_id == organisation_id}

    def __str__(self) -> str:
        return self.name


class Membership(db.Model):
    """One role that one user holds in one organisation."""

    __tablename__ = "memberships"
    __table_args__ = (
        sa.UniqueConstraint(
            "user_id", "organisation_id", "role", name="uq_memberships_user_org_role"
        ),
        sa.CheckConstraint(
            "spend_limit_pence IS NULL OR spend_limit_pence >= 0", name="spend_limit_not_negative"
        ),
        sa.CheckConstraint(
            "approval_limit_pence IS NULL OR approval_limit_pence >= 0",
            name="approval_limit_not_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    role: Mapped[Role] = mapped_column(enum_type(Role, "role"))
    # A buyer's limit: above it (on their organisation's share of a call-off's value) an approver
    # of the same organisation must approve. None: the configured default (BUYER_SPEND_LIMIT_PENCE).
    spend_limit_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    # An approver's limit: the most (of their organisation's share of a call-off's value) they
    # may approve. None: no limit. Set by the organisation's approvers (set_limits).
    approval_limit_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    user: Mapped[User] = relationship(back_populates="memberships", foreign_keys=[user_id])
    organisation: Mapped[Organisation] = relationship(back_populates="memberships")

    audit_type = "membership"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation


class TokenPurpose(enum.StrEnum):
    CONFIRM_EMAIL = "confirm_email"
    RESET_PASSWORD = "reset_password"  # noqa: S105 - a token purpose, not a password


class OneTimeToken(db.Model):
    """A single-use emailed link; only the SHA-256 of the secret is stored."""

    __tablename__ = "one_time_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    purpose: Mapped[TokenPurpose] = mapped_column(enum_type(TokenPurpose, "token_purpose"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()


class InvitationStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REVOKED = "revoked"
    EXPIRED = "expired"


class Invitation(db.Model):
    """An invitation to join an organisation in a role; the status is derived from timestamps."""

    __tablename__ = "invitations"
    __table_args__ = (
        sa.CheckConstraint(
            "NOT (accepted_at IS NOT NULL AND revoked_at IS NOT NULL)", name="accepted_or_revoked"
        ),
        sa.CheckConstraint(
            "(accepted_at IS NULL) = (accepted_user_id IS NULL)", name="accepted_has_user"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(sa.String(EMAIL_MAX), index=True)
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    role: Mapped[Role] = mapped_column(enum_type(Role, "role"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    invited_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship()
    invited_by: Mapped[User | None] = relationship(foreign_keys=[invited_by_id])

    audit_type = "invitation"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @property
    def status(self) -> InvitationStatus:
        if self.accepted_at is not None:
            return InvitationStatus.ACCEPTED
        if self.revoked_at is not None:
            return InvitationStatus.REVOKED
        if self.expires_at <= utcnow():
            return InvitationStatus.EXPIRED
        return InvitationStatus.PENDING


class RecoveryCode(db.Model):
    """A single-use two-factor recovery code, stored hashed."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ApiToken(db.Model):
    """A personal API token acting for one user in one organisation; stored as its SHA-256."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(TOKEN_NAME_MAX))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    # The first characters, shown in the list so a person can tell tokens apart.
    token_prefix: Mapped[str] = mapped_column(sa.String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
    organisation: Mapped[Organisation] = relationship()

    audit_type = "api_token"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


# ---------------------------------------------------------------------------------------------
# Who is VCSE and SME, as of when (issue 22). A provider's classification is a dated history:
# each row holds from its ``effective_from`` until the next row's. Spend is counted by the row in
# force on the day it happened, so a correction dated in the past re-counts what followed it.


class VcseBasis(enum.StrEnum):
    """Why an organisation is voluntary, community or social enterprise (VCSE), or that it is
    not: the legal form or, for others, the not-for-profit clauses of its governing document."""

    REGISTERED_CHARITY = "registered_charity"
    CIO = "cio"
    CIC = "cic"
    NOT_FOR_PROFIT = "not_for_profit"
    NOT_VCSE = "not_vcse"

    @property
    def label(self) -> str:
        return VCSE_BASIS_LABELS[self]

    @property
    def is_vcse(self) -> bool:
        return self is not VcseBasis.NOT_VCSE


VCSE_BASIS_LABELS = {
    VcseBasis.REGISTERED_CHARITY: "Registered charity",
    VcseBasis.CIO: "Charitable incorporated organisation (CIO)",
    VcseBasis.CIC: "Community interest company (CIC)",
    VcseBasis.NOT_FOR_PROFIT: "Other not-for-profit (by its governing document)",
    VcseBasis.NOT_VCSE: "Not VCSE (a private or public body)",
}


class StaffBand(enum.StrEnum):
    """Staff headcount, in the bands the SME test uses (fewer than 250 is an SME)."""

    UNDER_10 = "under_10"
    FROM_10_TO_49 = "10_to_49"
    FROM_50_TO_249 = "50_to_249"
    FROM_250 = "250_or_more"

    @property
    def label(self) -> str:
        return STAFF_BAND_LABELS[self]


STAFF_BAND_LABELS = {
    StaffBand.UNDER_10: "Fewer than 10",
    StaffBand.FROM_10_TO_49: "10 to 49",
    StaffBand.FROM_50_TO_249: "50 to 249",
    StaffBand.FROM_250: "250 or more",
}


class TurnoverBand(enum.StrEnum):
    """Annual turnover, in the bands of the SME test (Procurement Act 2023 s.123: at most £44m)."""

    UP_TO_2M = "up_to_2m"
    UP_TO_10M = "2m_to_10m"
    UP_TO_44M = "10m_to_44m"
    OVER_44M = "over_44m"

    @property
    def label(self) -> str:
        return TURNOVER_BAND_LABELS[self]


TURNOVER_BAND_LABELS = {
    TurnoverBand.UP_TO_2M: "Up to £2 million",
    TurnoverBand.UP_TO_10M: "£2 million to £10 million",
    TurnoverBand.UP_TO_44M: "£10 million to £44 million",
    TurnoverBand.OVER_44M: "More than £44 million",
}


def is_sme(staff: StaffBand, turnover: TurnoverBand) -> bool:
    """Small or medium-sized: fewer than 250 staff and a turnover of at most £44 million."""
    return staff is not StaffBand.FROM_250 and turnover is not TurnoverBand.OVER_44M


class ClassificationSource(enum.StrEnum):
    REGISTRATION = "registration"  # set by the provider when it registered
    CONFIRMATION = "confirmation"  # confirmed or changed by the provider (yearly)
    CORRECTION = "correction"  # corrected by the authority, with a reason

    @property
    def label(self) -> str:
        return {
            ClassificationSource.REGISTRATION: "Set at registration",
            ClassificationSource.CONFIRMATION: "Confirmed by the provider",
            ClassificationSource.CORRECTION: "Corrected by the authority",
        }[self]


class OrganisationClassification(db.Model):
    """One dated entry of a provider's VCSE and SME classification. Rows are only added, never
    changed: the history is the record. ``vcse`` and ``sme`` are derived from the basis and bands
    when the row is written and kept so that spend queries need no Python."""

    __tablename__ = "organisation_classifications"
    __table_args__ = (
        sa.UniqueConstraint(
            "organisation_id", "effective_from", "id", name="uq_classifications_org_date_id"
        ),
        sa.CheckConstraint("length(reason) <= 2000", name="reason_length"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="CASCADE"), index=True
    )
    effective_from: Mapped[date] = mapped_column(sa.Date)
    vcse_basis: Mapped[VcseBasis] = mapped_column(enum_type(VcseBasis, "vcse_basis"))
    staff_band: Mapped[StaffBand] = mapped_column(enum_type(StaffBand, "staff_band"))
    turnover_band: Mapped[TurnoverBand] = mapped_column(enum_type(TurnoverBand, "turnover_band"))
    vcse: Mapped[bool] = mapped_column()
    sme: Mapped[bool] = mapped_column()
    source: Mapped[ClassificationSource] = mapped_column(
        enum_type(ClassificationSource, "classification_source")
    )
    reason: Mapped[str] = mapped_column(sa.String(2000), default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    recorded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    organisation: Mapped[Organisation] = relationship()
    recorded_by: Mapped[User | None] = relationship()

    audit_type = "organisation_classification"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation


# The signed-in person is cached per worker until any of these change (marketplace/core/cache).
# A new person or organisation is in no one's cached memberships until a new membership (which
# counts) links them in.
watch(User, Topic.PRINCIPALS, include_new=False)
watch(Membership, Topic.PRINCIPALS)
watch(Organisation, Topic.PRINCIPALS, include_new=False)
# API tokens are kept the same way (accounts/session.py): revoking or deleting one counts.
watch(ApiToken, Topic.PRINCIPALS, attributes=("revoked_at",), include_new=False)
