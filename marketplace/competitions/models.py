"""Further competitions: a need too big for the rate card, put to every member of a lot in its areas.

A buyer (with co-funders in agreed shares) writes the need, the award criteria and the deadlines,
names an evaluation panel and publishes. Publishing freezes the invited list: every provider with
an active membership of the lot in one of the areas at that moment (``InvitedProvider``); a
provider admitted to the lot there before the bid deadline is invited then. Only invited
providers' bids count (Procurement Act 2023 s.34).

Bids are sealed until the bid deadline: nobody but the bidder reads one before it (the one rule is
``permissions.bids_are_sealed``). After it, each evaluator declares conflicts, scores each bid's
quality and social value answers alone, the panel moderates to one agreed score per question, and
price is scored by the published formula. The buyer records the award decision; every bidder gets
an assessment summary (s.50), a standstill period follows, and the confirmed award becomes a
call-off with route ``further_competition``.

Weights are whole percentage points summing to 100; scores are kept in hundredths of a point so
that every figure shown is exact and sums as shown; ranking compares the exact fractions.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import (
    FILE_NAME_MAX,
    MAX_UPLOAD_BYTES,
    Arrangement,
    ArrangementLot,
)
from marketplace.catalogue.models import MAX_UNITS, TITLE_MAX, Unit
from marketplace.core.clock import utcnow
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.core.money import VatTreatment
from marketplace.orders.models import MAX_VALUE_PENCE, CallOff
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

REFERENCE_MAX = 20
# A title is at most TITLE_MAX (a listing's): it becomes the awarded call-off's service title.
NEED_MAX = 10_000
QUESTION_MAX = 2_000
SCHEME_MAX = 4_000
REASON_MAX = 2_000
ANSWER_MAX = 20_000  # characters; the question's word limit is the real bound
CLARIFICATION_MAX = 4_000
COMMITMENT_MAX = 500
NAME_MAX = 200
MAX_QUESTIONS = 20
MAX_WORD_LIMIT = 5_000
MAX_SCORE_MAX = 10
# Social value is at least this share of the weights (PPN 06/20, DOMAIN.md).
MIN_SOCIAL_VALUE_WEIGHT = 10
# Every score is kept in hundredths of a point: 100 points is 10,000.
SCORE_SCALE = 100


class CompetitionStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"  # open for clarifications and bids until the bid deadline
    CLOSED = "closed"  # the bid deadline has passed; bids are unsealed for the panel
    EVALUATED = "evaluated"  # moderated and ranked; the award decision and standstill happen here
    AWARDED = "awarded"  # the award is confirmed and is a call-off
    CANCELLED = "cancelled"
    NO_AWARD = "no_award"  # closed with no suitable bid

    @property
    def label(self) -> str:
        return {"no_award": "Closed without award"}.get(self.value, self.value.capitalize())


COMPETITION_TRANSITIONS: dict[CompetitionStatus, frozenset[CompetitionStatus]] = {
    CompetitionStatus.DRAFT: frozenset({CompetitionStatus.PUBLISHED, CompetitionStatus.CANCELLED}),
    CompetitionStatus.PUBLISHED: frozenset({CompetitionStatus.CLOSED, CompetitionStatus.CANCELLED}),
    CompetitionStatus.CLOSED: frozenset(
        {CompetitionStatus.EVALUATED, CompetitionStatus.CANCELLED, CompetitionStatus.NO_AWARD}
    ),
    CompetitionStatus.EVALUATED: frozenset(
        {CompetitionStatus.AWARDED, CompetitionStatus.CANCELLED, CompetitionStatus.NO_AWARD}
    ),
    CompetitionStatus.AWARDED: frozenset(),
    CompetitionStatus.CANCELLED: frozenset(),
    CompetitionStatus.NO_AWARD: frozenset(),
}
# Still running: may be cancelled (before award) with a reason.
OPEN_COMPETITION_STATUSES = frozenset(
    status
    for status, targets in COMPETITION_TRANSITIONS.items()
    if CompetitionStatus.CANCELLED in targets
)


class PriceFormula(enum.StrEnum):
    """How a bid's price becomes a score, published with the competition."""

    LOWEST_OVER_PRICE = "lowest_over_price"  # lowest price ÷ this price × price weight

    @property
    def label(self) -> str:
        return {"lowest_over_price": "Lowest price ÷ this bid's price × the price weight"}[
            self.value
        ]


class TieBreak(enum.StrEnum):
    """Which of two bids with equal total scores ranks higher, published with the competition."""

    QUALITY_THEN_PRICE = "quality_then_price"
    PRICE_THEN_QUALITY = "price_then_quality"

    @property
    def label(self) -> str:
        return {
            "quality_then_price": (
                "The higher quality and social value score, then the lower price, then the "
                "earlier submitted bid"
            ),
            "price_then_quality": (
                "The lower price, then the higher quality and social value score, then the "
                "earlier submitted bid"
            ),
        }[self.value]


class QuestionKind(enum.StrEnum):
    QUALITY = "quality"
    SOCIAL_VALUE = "social_value"
    PASS_FAIL = "pass_fail"  # noqa: S105 (a kind of question, not a password)

    @property
    def label(self) -> str:
        return {"quality": "Quality", "social_value": "Social value", "pass_fail": "Pass or fail"}[
            self.value
        ]

    @property
    def scored(self) -> bool:
        return self is not QuestionKind.PASS_FAIL


class InvitedBecause(enum.StrEnum):
    MEMBER_AT_PUBLICATION = "member_at_publication"
    ADMITTED_BEFORE_DEADLINE = "admitted_before_deadline"


class BidStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    WITHDRAWN = "withdrawn"
    EXCLUDED = "excluded"  # failed a pass/fail question (with the reason)
    SCORED = "scored"

    @property
    def label(self) -> str:
        return self.value.capitalize()


BID_TRANSITIONS: dict[BidStatus, frozenset[BidStatus]] = {
    BidStatus.DRAFT: frozenset({BidStatus.SUBMITTED}),
    BidStatus.SUBMITTED: frozenset({BidStatus.WITHDRAWN, BidStatus.EXCLUDED, BidStatus.SCORED}),
    BidStatus.WITHDRAWN: frozenset({BidStatus.SUBMITTED}),
    BidStatus.EXCLUDED: frozenset(),
    BidStatus.SCORED: frozenset(),
}


class ConsortiumRole(enum.StrEnum):
    MEMBER = "member"  # itself a member of the lot
    SUBCONTRACTOR = "subcontractor"  # named in the bid, need not be a member

    @property
    def label(self) -> str:
        return {"member": "Consortium member", "subcontractor": "Named subcontractor"}[self.value]


class Competition(TimestampMixin, db.Model):
    __tablename__ = "competitions"
    __table_args__ = (
        sa.CheckConstraint("contract_end >= contract_start", name="contract_dates_in_order"),
        sa.CheckConstraint(f"quantity > 0 AND quantity <= {MAX_UNITS}", name="quantity_range"),
        sa.CheckConstraint(
            f"estimated_value_pence > 0 AND estimated_value_pence <= {MAX_VALUE_PENCE}",
            name="estimated_value_range",
        ),
        sa.CheckConstraint("price_weight >= 0 AND price_weight <= 100", name="price_weight_range"),
        sa.CheckConstraint("standstill_working_days >= 0", name="standstill_not_negative"),
        sa.CheckConstraint(
            "bid_deadline IS NULL OR clarification_deadline IS NULL "
            "OR clarification_deadline <= bid_deadline",
            name="clarifications_before_bids",
        ),
        sa.CheckConstraint(
            "status = 'draft' OR (published_at IS NOT NULL AND bid_deadline IS NOT NULL)",
            name="published_has_date",
        ),
        sa.CheckConstraint(
            "status <> 'cancelled' OR (cancelled_at IS NOT NULL AND cancellation_reason <> '')",
            name="cancelled_has_reason",
        ),
        sa.CheckConstraint(
            "status <> 'no_award' OR (no_award_at IS NOT NULL AND no_award_reason <> '')",
            name="no_award_has_reason",
        ),
        sa.CheckConstraint(
            "status <> 'awarded' OR (awarded_at IS NOT NULL AND winning_bid_id IS NOT NULL "
            "AND call_off_id IS NOT NULL)",
            name="awarded_has_call_off",
        ),
        sa.Index("ix_competitions_status_deadline", "status", "bid_deadline"),
        sa.Index("ix_competitions_buyer_status", "buyer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str | None] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    status: Mapped[CompetitionStatus] = mapped_column(
        enum_type(CompetitionStatus, "competition_status"), default=CompetitionStatus.DRAFT
    )
    version: Mapped[int] = mapped_column(default=1)

    arrangement_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangements.id"), index=True)
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangement_lots.id"), index=True)
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    # The lead buyer: its buyers and approvers run the competition and award it.
    buyer_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX), default="")
    need: Mapped[str] = mapped_column(sa.Text, default="")
    # Whole-life value including VAT, as the buyer estimates it (the published value band).
    estimated_value_pence: Mapped[int] = mapped_column(sa.BigInteger)
    quantity: Mapped[int] = mapped_column()
    unit: Mapped[Unit] = mapped_column(enum_type(Unit, "competition_unit"))
    contract_start: Mapped[date] = mapped_column(sa.Date)
    contract_end: Mapped[date] = mapped_column(sa.Date)
    missed_sessions_chargeable: Mapped[bool] = mapped_column(default=False)

    price_weight: Mapped[int] = mapped_column(default=40)
    price_formula: Mapped[PriceFormula] = mapped_column(
        enum_type(PriceFormula, "price_formula"), default=PriceFormula.LOWEST_OVER_PRICE
    )
    tie_break: Mapped[TieBreak] = mapped_column(
        enum_type(TieBreak, "tie_break"), default=TieBreak.QUALITY_THEN_PRICE
    )
    clarification_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    bid_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    standstill_working_days: Mapped[int] = mapped_column(default=8)
    # Required when the standstill is 0 working days (light-touch services only).
    standstill_reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")
    # Required when the panel has one evaluator.
    single_evaluator_reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")

    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    evaluated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The award decision, recorded while evaluated; the standstill runs from it.
    award_decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    award_decided_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    award_reason: Mapped[str] = mapped_column(sa.Text, default="")
    winning_bid_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("bids.id", use_alter=True, name="fk_competitions_winning_bid")
    )
    standstill_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    awarded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    awarded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    call_off_id: Mapped[int | None] = mapped_column(sa.ForeignKey("call_offs.id"), unique=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    cancellation_reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")
    no_award_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    no_award_reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")

    # What the law asks to be published (kept for the open-data feed): counted when bids close.
    bids_received: Mapped[int | None] = mapped_column()
    bids_from_vcse: Mapped[int | None] = mapped_column()
    bids_from_sme: Mapped[int | None] = mapped_column()

    arrangement: Mapped[Arrangement] = relationship()
    lot: Mapped[ArrangementLot] = relationship()
    category: Mapped[ServiceCategory] = relationship()
    buyer: Mapped[Organisation] = relationship(foreign_keys=[buyer_id])
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    call_off: Mapped[CallOff | None] = relationship()
    winning_bid: Mapped[Bid | None] = relationship(foreign_keys=[winning_bid_id], post_update=True)
    areas: Mapped[list[CompetitionArea]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="CompetitionArea.id"
    )
    funders: Mapped[list[CompetitionFunder]] = relationship(
        back_populates="competition", cascade="all, delete-orphan", order_by="CompetitionFunder.id"
    )
    documents: Mapped[list[CompetitionDocument]] = relationship(
        back_populates="competition",
        cascade="all, delete-orphan",
        order_by="CompetitionDocument.id",
    )
    questions: Mapped[list[CompetitionQuestion]] = relationship(
        back_populates="competition",
        cascade="all, delete-orphan",
        order_by="(CompetitionQuestion.position, CompetitionQuestion.id)",
    )
    evaluators: Mapped[list[CompetitionEvaluator]] = relationship(
        back_populates="competition",
        cascade="all, delete-orphan",
        order_by="CompetitionEvaluator.id",
    )

    audit_type = "competition"

    @property
    def audit_organisation(self) -> Organisation:
        return self.buyer

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_COMPETITION_STATUSES

    @property
    def scored_weight(self) -> int:
        """Price plus every scored question's weight: 100 in a competition ready to publish."""
        return self.price_weight + sum(q.weight for q in self.questions if q.kind.scored)

    @property
    def social_value_weight(self) -> int:
        return sum(q.weight for q in self.questions if q.kind is QuestionKind.SOCIAL_VALUE)


class CompetitionArea(db.Model):
    """A probation region or a PCC area the competition covers (exactly one of the two)."""

    __tablename__ = "competition_areas"
    __table_args__ = (
        sa.CheckConstraint(
            "(region_id IS NULL) != (pcc_area_id IS NULL)", name="region_or_pcc_area"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))

    competition: Mapped[Competition] = relationship(back_populates="areas")
    region: Mapped[ProbationRegion | None] = relationship()
    pcc_area: Mapped[PccArea | None] = relationship()

    @property
    def name(self) -> str:
        return self.region.name if self.region else self.pcc_area.name


class CompetitionFunder(db.Model):
    """A commissioner funding the contract in agreed shares (the lead buyer is one of them)."""

    __tablename__ = "competition_funders"
    __table_args__ = (
        sa.UniqueConstraint("competition_id", "organisation_id", name="uq_competition_funders"),
        sa.CheckConstraint("basis_points > 0 AND basis_points <= 10000", name="basis_points_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    basis_points: Mapped[int] = mapped_column()

    competition: Mapped[Competition] = relationship(back_populates="funders")
    organisation: Mapped[Organisation] = relationship()

    @property
    def percentage(self) -> str:
        whole, part = divmod(self.basis_points, 100)
        return f"{whole}%" if not part else f"{whole}.{part:02d}".rstrip("0") + "%"


class CompetitionDocument(db.Model):
    """A document of the competition (specification, terms), stored like evidence: checked by
    content and size, outside the web root under a generated name."""

    __tablename__ = "competition_documents"
    __table_args__ = (
        sa.CheckConstraint(f"size_bytes > 0 AND size_bytes <= {MAX_UPLOAD_BYTES}", name="size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    original_name: Mapped[str] = mapped_column(sa.String(FILE_NAME_MAX))
    stored_name: Mapped[str] = mapped_column(sa.String(64), unique=True)
    content_type: Mapped[str] = mapped_column(sa.String(100))
    size_bytes: Mapped[int] = mapped_column()
    sha256: Mapped[str] = mapped_column(sa.String(64))
    uploaded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    competition: Mapped[Competition] = relationship(back_populates="documents")


class CompetitionQuestion(db.Model):
    """A question bidders answer: quality and social value ones are scored 0 to ``max_score`` by
    the published scheme and weighted; pass/fail ones exclude a bid that fails them."""

    __tablename__ = "competition_questions"
    __table_args__ = (
        sa.CheckConstraint("weight >= 0 AND weight <= 100", name="weight_range"),
        sa.CheckConstraint("kind <> 'pass_fail' OR weight = 0", name="pass_fail_has_no_weight"),
        sa.CheckConstraint(
            f"max_score >= 1 AND max_score <= {MAX_SCORE_MAX}", name="max_score_range"
        ),
        sa.CheckConstraint(
            f"word_limit IS NULL OR (word_limit > 0 AND word_limit <= {MAX_WORD_LIMIT})",
            name="word_limit_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[QuestionKind] = mapped_column(enum_type(QuestionKind, "question_kind"))
    position: Mapped[int] = mapped_column(default=0)
    text: Mapped[str] = mapped_column(sa.String(QUESTION_MAX))
    # The published scoring scheme: what earns each score from 0 to max_score.
    scoring_scheme: Mapped[str] = mapped_column(sa.String(SCHEME_MAX), default="")
    word_limit: Mapped[int | None] = mapped_column()
    weight: Mapped[int] = mapped_column(default=0)
    max_score: Mapped[int] = mapped_column(default=4)

    competition: Mapped[Competition] = relationship(back_populates="questions")


class CompetitionEvaluator(db.Model):
    """A member of the evaluation panel, from one of the buying organisations. Scores nothing
    until it has declared whether it has a conflict of interest; one with a conflict scores
    nothing."""

    __tablename__ = "competition_evaluators"
    __table_args__ = (
        sa.UniqueConstraint("competition_id", "user_id", name="uq_competition_evaluators"),
        sa.CheckConstraint(
            "(declared_at IS NULL) = (has_conflict IS NULL)", name="declared_has_answer"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id"), index=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    declared_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    has_conflict: Mapped[bool | None] = mapped_column()
    conflict_details: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")

    competition: Mapped[Competition] = relationship(back_populates="evaluators")
    user: Mapped[User] = relationship()
    organisation: Mapped[Organisation] = relationship()

    @property
    def may_score(self) -> bool:
        return self.declared_at is not None and not self.has_conflict


class InvitedProvider(db.Model):
    """A provider invited to bid: frozen at publication, or added when admitted to the lot in an
    area of the competition before its bid deadline."""

    __tablename__ = "invited_providers"
    __table_args__ = (
        sa.UniqueConstraint("competition_id", "organisation_id", name="uq_invited_providers"),
        sa.Index("ix_invited_providers_organisation", "organisation_id", "competition_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE")
    )
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    because: Mapped[InvitedBecause] = mapped_column(enum_type(InvitedBecause, "invited_because"))

    competition: Mapped[Competition] = relationship()
    organisation: Mapped[Organisation] = relationship()


class Clarification(db.Model):
    """A question an invited provider asks; the buyer's answer is published to every invited
    provider without the asker's name."""

    __tablename__ = "clarifications"
    __table_args__ = (
        sa.CheckConstraint("(answered_at IS NULL) = (answer IS NULL)", name="answered_has_answer"),
        sa.Index("ix_clarifications_competition", "competition_id", "asked_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE")
    )
    # Who asked: never shown to other providers, nor in what is published.
    asked_by_organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    asked_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    question: Mapped[str] = mapped_column(sa.String(CLARIFICATION_MAX))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answer: Mapped[str | None] = mapped_column(sa.String(CLARIFICATION_MAX))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    answered_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    competition: Mapped[Competition] = relationship()
    asked_by_organisation: Mapped[Organisation] = relationship()


class Bid(db.Model):
    """One provider's bid (as the lead of a consortium, if it names members). Sealed until the
    bid deadline; only an invited provider's submitted bid is evaluated."""

    __tablename__ = "bids"
    __table_args__ = (
        sa.UniqueConstraint("competition_id", "organisation_id", name="uq_bids_bidder"),
        sa.CheckConstraint(
            "status <> 'submitted' OR (submitted_at IS NOT NULL AND unit_price_pence IS NOT NULL "
            "AND vat_treatment IS NOT NULL)",
            name="submitted_has_price",
        ),
        sa.CheckConstraint(
            "status <> 'excluded' OR exclusion_reason <> ''", name="excluded_has_reason"
        ),
        sa.CheckConstraint(
            "unit_price_pence IS NULL OR unit_price_pence >= 0", name="price_not_negative"
        ),
        sa.CheckConstraint(
            f"gross_pence IS NULL OR gross_pence <= {MAX_VALUE_PENCE}", name="value_range"
        ),
        sa.Index("ix_bids_competition_status", "competition_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE")
    )
    # The bidder (the lead provider of a consortium).
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    status: Mapped[BidStatus] = mapped_column(
        enum_type(BidStatus, "bid_status"), default=BidStatus.DRAFT
    )
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    # The price: a unit price (ex VAT) × the competition's units, with its VAT treatment; an
    # optional price schedule breaks the net total down (its lines sum to it exactly).
    unit_price_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    vat_treatment: Mapped[VatTreatment | None] = mapped_column(
        enum_type(VatTreatment, "bid_vat_treatment")
    )
    net_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    vat_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    gross_pence: Mapped[int | None] = mapped_column(sa.BigInteger)

    # The bidder's size and sector as declared when it submits (counted in what is published:
    # bids from VCSE and SME bidders).
    bidder_is_vcse: Mapped[bool | None] = mapped_column()
    bidder_is_sme: Mapped[bool | None] = mapped_column()

    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    submitted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    excluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exclusion_reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")

    # Set when the panel's scores are final (hundredths of a point; see SCORE_SCALE).
    price_score: Mapped[int | None] = mapped_column()
    quality_score: Mapped[int | None] = mapped_column()
    social_value_score: Mapped[int | None] = mapped_column()
    total_score: Mapped[int | None] = mapped_column()
    rank: Mapped[int | None] = mapped_column()

    competition: Mapped[Competition] = relationship(foreign_keys=[competition_id])
    organisation: Mapped[Organisation] = relationship()
    answers: Mapped[list[BidAnswer]] = relationship(
        back_populates="bid", cascade="all, delete-orphan", order_by="BidAnswer.id"
    )
    commitments: Mapped[list[SocialValueCommitment]] = relationship(
        back_populates="bid",
        cascade="all, delete-orphan",
        order_by="SocialValueCommitment.position",
    )
    consortium: Mapped[list[ConsortiumMember]] = relationship(
        back_populates="bid", cascade="all, delete-orphan", order_by="ConsortiumMember.id"
    )
    price_lines: Mapped[list[BidPriceLine]] = relationship(
        back_populates="bid", cascade="all, delete-orphan", order_by="BidPriceLine.position"
    )

    audit_type = "bid"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @property
    def is_consortium(self) -> bool:
        return bool(self.consortium)


class BidAnswer(db.Model):
    """The bid's answer to one question (for pass/fail: whether it meets it, and how)."""

    __tablename__ = "bid_answers"
    __table_args__ = (sa.UniqueConstraint("bid_id", "question_id", name="uq_bid_answers"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"))
    question_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competition_questions.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(sa.Text, default="")
    meets_requirement: Mapped[bool | None] = mapped_column()

    bid: Mapped[Bid] = relationship(back_populates="answers")
    question: Mapped[CompetitionQuestion] = relationship()


class SocialValueCommitment(db.Model):
    """What the bidder commits to deliver as social value, how much, and by when."""

    __tablename__ = "social_value_commitments"

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    what: Mapped[str] = mapped_column(sa.String(COMMITMENT_MAX))
    how_much: Mapped[str] = mapped_column(sa.String(COMMITMENT_MAX))
    by_when: Mapped[date] = mapped_column(sa.Date)

    bid: Mapped[Bid] = relationship(back_populates="commitments")


class ConsortiumMember(db.Model):
    """Another organisation in a consortium bid, with its share of the work: a member of the lot
    (``organisation_id`` set) or a named subcontractor (which need not be one)."""

    __tablename__ = "consortium_members"
    __table_args__ = (
        sa.CheckConstraint(
            "role <> 'member' OR organisation_id IS NOT NULL", name="member_is_organisation"
        ),
        sa.CheckConstraint(
            "share_basis_points > 0 AND share_basis_points < 10000", name="share_range"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"), index=True)
    role: Mapped[ConsortiumRole] = mapped_column(enum_type(ConsortiumRole, "consortium_role"))
    organisation_id: Mapped[int | None] = mapped_column(sa.ForeignKey("organisations.id"))
    name: Mapped[str] = mapped_column(sa.String(NAME_MAX))
    # The share of the work, in basis points of the whole (the lead does the rest).
    share_basis_points: Mapped[int] = mapped_column()

    bid: Mapped[Bid] = relationship(back_populates="consortium")
    organisation: Mapped[Organisation | None] = relationship()


class BidPriceLine(db.Model):
    """One line of a bid's price schedule (ex VAT)."""

    __tablename__ = "bid_price_lines"
    __table_args__ = (sa.CheckConstraint("amount_pence >= 0", name="amount_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(default=0)
    description: Mapped[str] = mapped_column(sa.String(COMMITMENT_MAX))
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger)

    bid: Mapped[Bid] = relationship(back_populates="price_lines")


class EvaluatorScore(db.Model):
    """One evaluator's own score and reason for one bid's answer to one scored question."""

    __tablename__ = "evaluator_scores"
    __table_args__ = (
        sa.UniqueConstraint("bid_id", "question_id", "evaluator_id", name="uq_evaluator_scores"),
        sa.CheckConstraint("score >= 0", name="score_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competition_questions.id", ondelete="CASCADE")
    )
    evaluator_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competition_evaluators.id", ondelete="CASCADE"), index=True
    )
    score: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(REASON_MAX))
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime())

    bid: Mapped[Bid] = relationship()
    question: Mapped[CompetitionQuestion] = relationship()
    evaluator: Mapped[CompetitionEvaluator] = relationship()


class ModeratedScore(db.Model):
    """The panel's one agreed result for one bid and question, with its reason: a score for a
    quality or social value question, passed or failed for a pass/fail one."""

    __tablename__ = "moderated_scores"
    __table_args__ = (
        sa.UniqueConstraint("bid_id", "question_id", name="uq_moderated_scores"),
        sa.CheckConstraint("(score IS NULL) != (passed IS NULL)", name="score_or_pass"),
        sa.CheckConstraint("score IS NULL OR score >= 0", name="score_not_negative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"), index=True)
    question_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competition_questions.id", ondelete="CASCADE")
    )
    score: Mapped[int | None] = mapped_column()
    passed: Mapped[bool | None] = mapped_column()
    reason: Mapped[str] = mapped_column(sa.String(REASON_MAX))
    moderated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    moderated_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    bid: Mapped[Bid] = relationship()
    question: Mapped[CompetitionQuestion] = relationship()


class AssessmentSummary(db.Model):
    """What each bidder is told before the award (Procurement Act 2023 s.50): its own scores and
    reasons per criterion, the winner's scores, and why it did or did not win. Written once,
    when the award decision is recorded, and never changed."""

    __tablename__ = "assessment_summaries"

    id: Mapped[int] = mapped_column(primary_key=True)
    bid_id: Mapped[int] = mapped_column(sa.ForeignKey("bids.id", ondelete="CASCADE"), unique=True)
    competition_id: Mapped[int] = mapped_column(
        sa.ForeignKey("competitions.id", ondelete="CASCADE"), index=True
    )
    successful: Mapped[bool] = mapped_column()
    content: Mapped[dict] = mapped_column(sa.JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    bid: Mapped[Bid] = relationship()
    competition: Mapped[Competition] = relationship()
