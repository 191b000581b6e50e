"""The dynamic purchasing system: arrangements, lots, criteria, applications, assessment, memberships.

Every workflow is a state machine: one enum, one ``*_TRANSITIONS`` map, a timestamp and actor per
step, and CHECK constraints tying each state to the columns it needs. Services move objects between
states; no form or API field writes a status.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.core.cache import Topic, watch
from marketplace.core.clock import utcnow
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

ARRANGEMENT_NAME_MAX = 200
REFERENCE_MAX = 40
REASON_MAX = 2000
QUESTION_MAX = 1000
ANSWER_TEXT_MAX = 5000
FEEDBACK_MAX = 5000
FILE_NAME_MAX = 255
MAX_UPLOAD_BYTES = 10 * 1024 * 1024
DEFAULT_DECISION_DAYS = 10
DEFAULT_EXTENDED_DAYS = 15
DEFAULT_REDECLARATION_DAYS = 5


class LegalRegime(enum.StrEnum):
    PCR2015_DPS = "pcr2015_dps"
    PA2023_DYNAMIC_MARKET = "pa2023_dynamic_market"
    PA2023_OPEN_FRAMEWORK = "pa2023_open_framework"

    @property
    def label(self) -> str:
        return {
            LegalRegime.PCR2015_DPS: "Dynamic purchasing system (Public Contracts Regulations 2015)",
            LegalRegime.PA2023_DYNAMIC_MARKET: "Dynamic market (Procurement Act 2023)",
            LegalRegime.PA2023_OPEN_FRAMEWORK: "Open framework (Procurement Act 2023)",
        }[self]

    @property
    def criteria_frozen_when_live(self) -> bool:
        """Under the Procurement Act, conditions of membership cannot change once the market is live."""
        return self in (LegalRegime.PA2023_DYNAMIC_MARKET, LegalRegime.PA2023_OPEN_FRAMEWORK)


class AwardLimitScope(enum.StrEnum):
    """Which of a buyer organisation's call-offs count together towards the direct-award limit
    over the rolling look-back period, so that a need is not split to stay under it."""

    PROVIDER_AND_LOT = "provider_and_lot"  # the rule by default
    LISTING = "listing"  # the narrower rule an arrangement may choose

    @property
    def label(self) -> str:
        return {
            AwardLimitScope.PROVIDER_AND_LOT: "Every call-off with the same provider in the same lot",
            AwardLimitScope.LISTING: "Only call-offs for the same service (listing)",
        }[self]


class ArrangementStatus(enum.StrEnum):
    PENDING = "pending"
    LIVE = "live"
    SUSPENDED = "suspended"
    CLOSED = "closed"


ARRANGEMENT_TRANSITIONS: dict[ArrangementStatus, frozenset[ArrangementStatus]] = {
    ArrangementStatus.PENDING: frozenset({ArrangementStatus.LIVE, ArrangementStatus.CLOSED}),
    ArrangementStatus.LIVE: frozenset({ArrangementStatus.SUSPENDED, ArrangementStatus.CLOSED}),
    ArrangementStatus.SUSPENDED: frozenset({ArrangementStatus.LIVE, ArrangementStatus.CLOSED}),
    ArrangementStatus.CLOSED: frozenset(),
}


class Arrangement(TimestampMixin, db.Model):
    __tablename__ = "arrangements"
    __table_args__ = (
        sa.CheckConstraint("valid_to > valid_from", name="valid_period"),
        sa.CheckConstraint("direct_award_limit_pence >= 0", name="limit_not_negative"),
        sa.CheckConstraint(
            "decision_period_days >= 1 AND extended_period_days >= decision_period_days",
            name="decision_periods",
        ),
        sa.CheckConstraint("status = 'pending' OR went_live_at IS NOT NULL", name="live_has_date"),
        sa.CheckConstraint("(status = 'closed') = (closed_at IS NOT NULL)", name="closed_has_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    name: Mapped[str] = mapped_column(sa.String(ARRANGEMENT_NAME_MAX))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    legal_regime: Mapped[LegalRegime] = mapped_column(enum_type(LegalRegime, "legal_regime"))
    status: Mapped[ArrangementStatus] = mapped_column(
        enum_type(ArrangementStatus, "arrangement_status"),
        default=ArrangementStatus.PENDING,
        index=True,
    )
    valid_from: Mapped[date] = mapped_column(sa.Date)
    valid_to: Mapped[date] = mapped_column(sa.Date)
    direct_award_limit_pence: Mapped[int] = mapped_column(sa.BigInteger)
    award_limit_scope: Mapped[AwardLimitScope] = mapped_column(
        enum_type(AwardLimitScope, "award_limit_scope"),
        default=AwardLimitScope.PROVIDER_AND_LOT,
        server_default=AwardLimitScope.PROVIDER_AND_LOT.value,
    )
    decision_period_days: Mapped[int] = mapped_column(default=DEFAULT_DECISION_DAYS)
    extended_period_days: Mapped[int] = mapped_column(default=DEFAULT_EXTENDED_DAYS)
    # Bumped when criteria change under pcr2015_dps; members re-declare against the new version.
    criteria_version: Mapped[int] = mapped_column(default=1)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    went_live_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))

    lots: Mapped[list[ArrangementLot]] = relationship(
        back_populates="arrangement", cascade="all, delete-orphan", order_by="ArrangementLot.id"
    )
    regions: Mapped[list[ProbationRegion]] = relationship(
        secondary="arrangement_regions", order_by="ProbationRegion.code"
    )

    audit_type = "arrangement"

    def __str__(self) -> str:
        return self.name


arrangement_regions = sa.Table(
    "arrangement_regions",
    db.metadata,
    sa.Column(
        "arrangement_id", sa.ForeignKey("arrangements.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("region_id", sa.ForeignKey("probation_regions.id"), primary_key=True),
)


class ArrangementLot(db.Model):
    """One service category offered under an arrangement, with its own description and criteria."""

    __tablename__ = "arrangement_lots"
    __table_args__ = (
        sa.UniqueConstraint("arrangement_id", "category_id", name="uq_arrangement_lots_category"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(
        sa.ForeignKey("arrangements.id", ondelete="CASCADE"), index=True
    )
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    description: Mapped[str] = mapped_column(sa.Text, default="")

    arrangement: Mapped[Arrangement] = relationship(back_populates="lots")
    category: Mapped[ServiceCategory] = relationship()
    criteria: Mapped[list[Criterion]] = relationship(
        back_populates="lot", order_by="Criterion.position, Criterion.id"
    )

    audit_type = "arrangement_lot"

    def __str__(self) -> str:
        return self.category.name


class QuestionType(enum.StrEnum):
    YES_NO = "yes_no"
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    FILE = "file"


class Criterion(db.Model):
    """A selection question for a lot, in force from ``version`` until ``retired_in_version``."""

    __tablename__ = "criteria"
    __table_args__ = (
        sa.CheckConstraint(
            "type != 'yes_no' OR NOT pass_fail OR pass_answer IS NOT NULL",
            name="yes_no_has_pass_answer",
        ),
        sa.CheckConstraint(
            "retired_in_version IS NULL OR retired_in_version > version", name="versions"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lot_id: Mapped[int] = mapped_column(
        sa.ForeignKey("arrangement_lots.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(default=1)
    retired_in_version: Mapped[int | None] = mapped_column()
    position: Mapped[int] = mapped_column(default=0)
    question: Mapped[str] = mapped_column(sa.String(QUESTION_MAX))
    guidance: Mapped[str] = mapped_column(sa.Text, default="")
    type: Mapped[QuestionType] = mapped_column(enum_type(QuestionType, "question_type"))
    mandatory: Mapped[bool] = mapped_column(default=True)
    # Pass/fail questions decide admission; the others are for information.
    pass_fail: Mapped[bool] = mapped_column(default=True)
    pass_answer: Mapped[bool | None] = mapped_column()
    # File evidence that expires (insurance, DBS policy …) asks for its expiry date.
    evidence_expires: Mapped[bool] = mapped_column(default=False)

    lot: Mapped[ArrangementLot] = relationship(back_populates="criteria")

    audit_type = "criterion"

    def in_force(self, version: int) -> bool:
        return self.version <= version and (
            self.retired_in_version is None or version < self.retired_in_version
        )


class ApplicationStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_ASSESSMENT = "under_assessment"
    ADMITTED = "admitted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


APPLICATION_TRANSITIONS: dict[ApplicationStatus, frozenset[ApplicationStatus]] = {
    ApplicationStatus.DRAFT: frozenset({ApplicationStatus.SUBMITTED, ApplicationStatus.WITHDRAWN}),
    ApplicationStatus.SUBMITTED: frozenset(
        {ApplicationStatus.UNDER_ASSESSMENT, ApplicationStatus.WITHDRAWN}
    ),
    ApplicationStatus.UNDER_ASSESSMENT: frozenset(
        {ApplicationStatus.ADMITTED, ApplicationStatus.REJECTED}
    ),
    ApplicationStatus.ADMITTED: frozenset(),
    ApplicationStatus.REJECTED: frozenset(),
    ApplicationStatus.WITHDRAWN: frozenset(),
}


class Application(TimestampMixin, db.Model):
    __tablename__ = "applications"
    __table_args__ = (
        sa.CheckConstraint(
            "status = 'draft' OR status = 'withdrawn' OR "
            "(submitted_at IS NOT NULL AND decision_due_on IS NOT NULL AND declared_at IS NOT NULL)",
            name="submitted_has_clock",
        ),
        sa.CheckConstraint(
            "status NOT IN ('admitted', 'rejected') OR decided_at IS NOT NULL",
            name="decided_has_date",
        ),
        sa.CheckConstraint(
            "(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn_has_date"
        ),
        sa.CheckConstraint(
            "(extended_at IS NULL) = (extension_reason IS NULL)", name="extension_has_reason"
        ),
        # The assessor queue: open applications in deadline order.
        sa.Index("ix_applications_queue", "status", "decision_due_on", "submitted_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    arrangement_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangements.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    status: Mapped[ApplicationStatus] = mapped_column(
        enum_type(ApplicationStatus, "application_status"),
        default=ApplicationStatus.DRAFT,
        index=True,
    )
    criteria_version: Mapped[int] = mapped_column(default=1)
    # Named subcontractors or consortium partners, one per line.
    partners: Mapped[str] = mapped_column(sa.Text, default="")
    # A resubmission after rejection points at the application it amends.
    amends_id: Mapped[int | None] = mapped_column(sa.ForeignKey("applications.id"))
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    declared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    submitted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    decision_due_on: Mapped[date | None] = mapped_column(sa.Date, index=True)
    extended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    extended_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    extension_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))
    assessment_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    # Assessed first until then: a further competition for one of its lots and areas is open
    # until that bid deadline (Procurement Act 2023: pending applications of suppliers in a
    # procedure are considered first). Set by whoever publishes one; accreditation only reads it.
    prioritised_until: Mapped[datetime | None] = mapped_column(UTCDateTime())

    arrangement: Mapped[Arrangement] = relationship()
    organisation: Mapped[Organisation] = relationship()
    lots: Mapped[list[ApplicationLot]] = relationship(
        back_populates="application", cascade="all, delete-orphan", order_by="ApplicationLot.id"
    )
    areas: Mapped[list[ApplicationArea]] = relationship(
        back_populates="application", cascade="all, delete-orphan", order_by="ApplicationArea.id"
    )
    answers: Mapped[list[Answer]] = relationship(
        back_populates="application", cascade="all, delete-orphan", order_by="Answer.id"
    )

    audit_type = "application"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation


class LotDecision(enum.StrEnum):
    PENDING = "pending"
    ADMITTED = "admitted"
    REJECTED = "rejected"


class ApplicationLot(db.Model):
    """A lot applied for, and the decision on it (an application may cover several lots)."""

    __tablename__ = "application_lots"
    __table_args__ = (
        sa.UniqueConstraint("application_id", "lot_id", name="uq_application_lots_lot"),
        sa.CheckConstraint(
            "(decision = 'pending') = (decided_at IS NULL)", name="decided_has_date"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangement_lots.id"), index=True)
    decision: Mapped[LotDecision] = mapped_column(
        enum_type(LotDecision, "lot_decision"), default=LotDecision.PENDING
    )
    feedback: Mapped[str] = mapped_column(sa.Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    application: Mapped[Application] = relationship(back_populates="lots")
    lot: Mapped[ArrangementLot] = relationship()


class ApplicationArea(db.Model):
    """A probation region or a PCC area that the application covers (exactly one of the two)."""

    __tablename__ = "application_areas"
    __table_args__ = (
        sa.CheckConstraint(
            "(region_id IS NULL) != (pcc_area_id IS NULL)", name="region_or_pcc_area"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))

    application: Mapped[Application] = relationship(back_populates="areas")
    region: Mapped[ProbationRegion | None] = relationship()
    pcc_area: Mapped[PccArea | None] = relationship()


class EvidenceFile(db.Model):
    """An uploaded file, stored outside the web root under a generated name."""

    __tablename__ = "evidence_files"
    __table_args__ = (
        sa.CheckConstraint(f"size_bytes > 0 AND size_bytes <= {MAX_UPLOAD_BYTES}", name="size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    original_name: Mapped[str] = mapped_column(sa.String(FILE_NAME_MAX))
    stored_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    organisation: Mapped[Organisation] = relationship()


class AnswerOutcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 - an assessment outcome, not a password
    FAIL = "fail"


class Answer(db.Model):
    """A provider's answer to one criterion, and the assessor's mark on it."""

    __tablename__ = "answers"
    __table_args__ = (
        sa.UniqueConstraint("application_id", "criterion_id", name="uq_answers_criterion"),
        sa.CheckConstraint("(outcome IS NULL) = (assessed_at IS NULL)", name="assessed_has_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    criterion_id: Mapped[int] = mapped_column(sa.ForeignKey("criteria.id"), index=True)
    value_bool: Mapped[bool | None] = mapped_column()
    value_text: Mapped[str | None] = mapped_column(sa.Text)
    value_number: Mapped[int | None] = mapped_column(sa.BigInteger)
    value_date: Mapped[date | None] = mapped_column(sa.Date)
    file_id: Mapped[int | None] = mapped_column(sa.ForeignKey("evidence_files.id"))
    evidence_expires_on: Mapped[date | None] = mapped_column(sa.Date, index=True)
    outcome: Mapped[AnswerOutcome | None] = mapped_column(
        enum_type(AnswerOutcome, "answer_outcome")
    )
    assessor_comment: Mapped[str] = mapped_column(sa.Text, default="")
    assessed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assessed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    application: Mapped[Application] = relationship(back_populates="answers")
    criterion: Mapped[Criterion] = relationship()
    file: Mapped[EvidenceFile | None] = relationship()


class ConflictDeclaration(db.Model):
    """An assessor's declaration, made before opening an application, that they have no conflict."""

    __tablename__ = "conflict_declarations"
    __table_args__ = (
        sa.UniqueConstraint(
            "application_id", "assessor_id", name="uq_conflict_declarations_assessor"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    assessor_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    has_conflict: Mapped[bool] = mapped_column()
    details: Mapped[str] = mapped_column(sa.Text, default="")
    declared_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    assessor: Mapped[User] = relationship()


class ClarificationRequest(db.Model):
    """A question from the assessor to the provider; the decision clock keeps running meanwhile."""

    __tablename__ = "clarification_requests"
    __table_args__ = (
        sa.CheckConstraint("(answer IS NULL) = (answered_at IS NULL)", name="answered_has_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[int] = mapped_column(
        sa.ForeignKey("applications.id", ondelete="CASCADE"), index=True
    )
    question: Mapped[str] = mapped_column(sa.Text)
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    asked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    answer: Mapped[str | None] = mapped_column(sa.Text)
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )


class MembershipStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REMOVED = "removed"


MEMBERSHIP_TRANSITIONS: dict[MembershipStatus, frozenset[MembershipStatus]] = {
    MembershipStatus.ACTIVE: frozenset({MembershipStatus.SUSPENDED, MembershipStatus.REMOVED}),
    MembershipStatus.SUSPENDED: frozenset({MembershipStatus.ACTIVE, MembershipStatus.REMOVED}),
    MembershipStatus.REMOVED: frozenset(),
}


class SuspensionCause(enum.StrEnum):
    AUTHORITY = "authority"
    EVIDENCE_EXPIRED = "evidence_expired"
    REDECLARATION_OVERDUE = "redeclaration_overdue"


class RemovalReason(enum.StrEnum):
    """Why a member was removed: the exclusion grounds and the authority's other reasons."""

    MANDATORY_EXCLUSION = "mandatory_exclusion"
    DISCRETIONARY_EXCLUSION = "discretionary_exclusion"
    NO_LONGER_MEETS_CRITERIA = "no_longer_meets_criteria"
    PROVIDER_REQUEST = "provider_request"
    ORGANISATION_CLOSED = "organisation_closed"
    ARRANGEMENT_CLOSED = "arrangement_closed"


# How pages and emails name each reason for removal (the provider is told the same words).
REMOVAL_REASON_LABELS = {
    RemovalReason.MANDATORY_EXCLUSION: "A mandatory exclusion ground applies",
    RemovalReason.DISCRETIONARY_EXCLUSION: "A discretionary exclusion ground applies",
    RemovalReason.NO_LONGER_MEETS_CRITERIA: "The provider no longer meets the selection criteria",
    RemovalReason.PROVIDER_REQUEST: "The provider asked to leave",
    RemovalReason.ORGANISATION_CLOSED: "The organisation has closed",
    RemovalReason.ARRANGEMENT_CLOSED: "The arrangement has closed",
}


class LotMembership(db.Model):
    """A provider admitted to a lot in one probation region or PCC area (the register of members)."""

    __tablename__ = "lot_memberships"
    __table_args__ = (
        sa.CheckConstraint(
            "(region_id IS NULL) != (pcc_area_id IS NULL)", name="region_or_pcc_area"
        ),
        sa.CheckConstraint(
            "(status = 'suspended') = (suspended_at IS NOT NULL AND suspension_cause IS NOT NULL)",
            name="suspended_has_cause",
        ),
        sa.CheckConstraint(
            "(status = 'removed') = (removed_at IS NOT NULL AND removal_reason IS NOT NULL)",
            name="removed_has_reason",
        ),
        # One current membership per provider, lot and area; removed ones stay as history.
        sa.Index(
            "uq_lot_memberships_current",
            "organisation_id",
            "lot_id",
            sa.text("coalesce(region_id, 0)"),
            sa.text("coalesce(pcc_area_id, 0)"),
            unique=True,
            sqlite_where=sa.text("status != 'removed'"),
            postgresql_where=sa.text("status != 'removed'"),
        ),
        # The public register walks this index in its display order and stops after a page.
        sa.Index(
            "ix_lot_memberships_register",
            "arrangement_id",
            "status",
            "lot_id",
            "region_id",
            "pcc_area_id",
            "admitted_on",
            "organisation_id",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    arrangement_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangements.id"), index=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangement_lots.id"))
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))
    application_id: Mapped[int | None] = mapped_column(sa.ForeignKey("applications.id"))
    status: Mapped[MembershipStatus] = mapped_column(
        enum_type(MembershipStatus, "membership_status"), default=MembershipStatus.ACTIVE
    )
    admitted_on: Mapped[date] = mapped_column(sa.Date)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    suspension_cause: Mapped[SuspensionCause | None] = mapped_column(
        enum_type(SuspensionCause, "suspension_cause")
    )
    suspension_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    removal_reason: Mapped[RemovalReason | None] = mapped_column(
        enum_type(RemovalReason, "removal_reason")
    )
    removal_details: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))
    # The criteria version the member last declared against (re-declaration under pcr2015_dps).
    declared_version: Mapped[int] = mapped_column(default=1)

    arrangement: Mapped[Arrangement] = relationship()
    lot: Mapped[ArrangementLot] = relationship()
    organisation: Mapped[Organisation] = relationship()
    region: Mapped[ProbationRegion | None] = relationship()
    pcc_area: Mapped[PccArea | None] = relationship()

    audit_type = "lot_membership"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @property
    def area_name(self) -> str:
        return self.region.name if self.region else self.pcc_area.name


class RedeclarationRequest(db.Model):
    """The authority asks a member (or every member of a lot) to renew its self-declaration."""

    __tablename__ = "redeclaration_requests"
    __table_args__ = (
        sa.CheckConstraint(
            "(answered_at IS NULL) = (answered_by_id IS NULL)", name="answered_has_actor"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    membership_id: Mapped[int] = mapped_column(
        sa.ForeignKey("lot_memberships.id", ondelete="CASCADE"), index=True
    )
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    requested_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    due_on: Mapped[date] = mapped_column(sa.Date, index=True)
    reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    membership: Mapped[LotMembership] = relationship()


class RenewalStatus(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    # The provider sent another file before this one was checked.
    SUPERSEDED = "superseded"

    @property
    def label(self) -> str:
        return {
            RenewalStatus.PENDING: "Waiting to be checked",
            RenewalStatus.ACCEPTED: "Accepted",
            RenewalStatus.REJECTED: "Not accepted",
            RenewalStatus.SUPERSEDED: "Replaced by a later upload",
        }[self]


RENEWAL_TRANSITIONS: dict[RenewalStatus, frozenset[RenewalStatus]] = {
    RenewalStatus.PENDING: frozenset(
        {RenewalStatus.ACCEPTED, RenewalStatus.REJECTED, RenewalStatus.SUPERSEDED}
    ),
    RenewalStatus.ACCEPTED: frozenset(),
    RenewalStatus.REJECTED: frozenset(),
    RenewalStatus.SUPERSEDED: frozenset(),
}


class EvidenceRenewal(db.Model):
    """Renewed evidence a member uploaded for an expiring answer, and the assessor's decision.

    Until it is accepted the answer keeps its current file and expiry date: evidence nobody has
    checked never counts (the daily expiry run reads only the answer). Accepting it moves the
    file and date onto the answer; what it replaced stays here as history.
    """

    __tablename__ = "evidence_renewals"
    __table_args__ = (
        sa.CheckConstraint("(status = 'pending') = (decided_at IS NULL)", name="decided_has_date"),
        sa.CheckConstraint(
            "status != 'rejected' OR (decision_reason IS NOT NULL AND decision_reason != '')",
            name="rejected_has_reason",
        ),
        # At most one renewal of an answer waits for a decision at a time.
        sa.Index(
            "uq_evidence_renewals_pending",
            "answer_id",
            unique=True,
            sqlite_where=sa.text("status = 'pending'"),
            postgresql_where=sa.text("status = 'pending'"),
        ),
        # The assessors' list: what waits, oldest first.
        sa.Index("ix_evidence_renewals_queue", "status", "submitted_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    answer_id: Mapped[int] = mapped_column(
        sa.ForeignKey("answers.id", ondelete="CASCADE"), index=True
    )
    file_id: Mapped[int] = mapped_column(sa.ForeignKey("evidence_files.id"))
    expires_on: Mapped[date] = mapped_column(sa.Date)
    # The accepted evidence in force when this was uploaded (what acceptance replaces).
    replaces_file_id: Mapped[int | None] = mapped_column(sa.ForeignKey("evidence_files.id"))
    replaces_expires_on: Mapped[date | None] = mapped_column(sa.Date)
    status: Mapped[RenewalStatus] = mapped_column(
        enum_type(RenewalStatus, "renewal_status"), default=RenewalStatus.PENDING
    )
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    # The reason for a rejection, or the assessor's comment on an acceptance; the provider sees it.
    decision_reason: Mapped[str | None] = mapped_column(sa.String(REASON_MAX))

    answer: Mapped[Answer] = relationship()
    file: Mapped[EvidenceFile] = relationship(foreign_keys=[file_id])
    replaces_file: Mapped[EvidenceFile | None] = relationship(foreign_keys=[replaces_file_id])
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])

    audit_type = "evidence_renewal"

    @property
    def audit_organisation(self) -> Organisation:
        return self.answer.application.organisation


# ---------------------------------------------------------------------------------------------
# What the cached public register and assessment queue show (see marketplace/core/cache)

watch(LotMembership, Topic.REGISTER)
watch(Arrangement, Topic.REGISTER, Topic.ASSESSMENT_QUEUE)
watch(ArrangementLot, Topic.REGISTER)
watch(
    Organisation,
    Topic.REGISTER,
    attributes=("name", "type", "charity_number", "companies_house_number"),
)
watch(Organisation, Topic.ASSESSMENT_QUEUE, attributes=("name",))
watch(
    Application,
    Topic.ASSESSMENT_QUEUE,
    attributes=(
        "status",
        "reference",
        "arrangement_id",
        "organisation_id",
        "submitted_at",
        "decision_due_on",
        "extended_at",
    ),
)
watch(ApplicationLot, Topic.ASSESSMENT_QUEUE, attributes=("lot_id", "application_id"))
