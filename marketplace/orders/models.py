"""Call-offs: one service bought from a provider's rate card, funded by one or more commissioners.

A call-off locks the listing's unit price and VAT treatment in force on the day it is placed, and
keeps its whole-life value (net, VAT, gross) in pence. Its funders' shares are whole basis points
that sum to 10,000; each share is an exact number of pence (largest remainder) committed against
that funder's budget for the financial year the call-off starts in. Acceptance commits its units
against the listing's monthly capacity (``CapacityCommitment`` rows, read by the catalogue).

Check-then-write rules (budget headroom, capacity, the direct-award limit across a buyer's
call-offs) run with the rows they read locked: ``SELECT … FOR UPDATE`` on PostgreSQL, the
database write lock on SQLite (see ``services.lock``).
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import Arrangement
from marketplace.catalogue.models import MAX_UNITS, TITLE_MAX, Listing, Unit
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.core.money import VatTreatment
from marketplace.reference.models import ServiceCategory

REFERENCE_MAX = 20
CRN_LENGTH = 7
PDU_MAX = 120
PO_NUMBER_MAX = 60
REASON_DETAIL_MAX = 1_000
NOTES_MAX = 2_000
PROGRESS_NOTE_MAX = 1_000
SUMMARY_MAX = 4_000
IDEMPOTENCY_KEY_MAX = 255
MAX_VALUE_PENCE = 100_000_000_000  # £1bn: a call-off above this is a typing error
# A payment-by-results term a call-off is placed or varied with (kept by outcomes).
OUTCOME_MAX = 300
EVIDENCE_REQUIRED_MAX = 1_000
MAX_CAP = 1_000
# £1m per outcome: above it is a typing error (the call-off's own limit is checked as well).
MAX_TARIFF_PENCE = 100_000_000


class CallOffStatus(enum.StrEnum):
    DRAFT = "draft"
    AWAITING_FUNDING = "awaiting_funding"
    # A co-funder declined its share: the lead buyer re-splits the shares or cancels.
    FUNDING_DECLINED = "funding_declined"
    AWAITING_APPROVAL = "awaiting_approval"
    SENT = "sent"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    IN_DELIVERY = "in_delivery"
    COMPLETED = "completed"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return {
            "awaiting_funding": "Awaiting funding",
            "funding_declined": "Funding declined",
            "awaiting_approval": "Awaiting approval",
            "in_delivery": "In delivery",
        }.get(self.value, self.value.capitalize())


CALL_OFF_TRANSITIONS: dict[CallOffStatus, frozenset[CallOffStatus]] = {
    CallOffStatus.DRAFT: frozenset(
        {
            CallOffStatus.AWAITING_FUNDING,
            CallOffStatus.AWAITING_APPROVAL,
            CallOffStatus.SENT,
            CallOffStatus.CANCELLED,
        }
    ),
    CallOffStatus.AWAITING_FUNDING: frozenset(
        {
            CallOffStatus.FUNDING_DECLINED,
            CallOffStatus.AWAITING_APPROVAL,
            CallOffStatus.SENT,
            CallOffStatus.CANCELLED,
        }
    ),
    # Re-split: back to the funders whose share is new or larger, or on if none is.
    CallOffStatus.FUNDING_DECLINED: frozenset(
        {
            CallOffStatus.AWAITING_FUNDING,
            CallOffStatus.AWAITING_APPROVAL,
            CallOffStatus.SENT,
            CallOffStatus.CANCELLED,
        }
    ),
    CallOffStatus.AWAITING_APPROVAL: frozenset({CallOffStatus.SENT, CallOffStatus.CANCELLED}),
    CallOffStatus.SENT: frozenset(
        {
            CallOffStatus.ACCEPTED,
            CallOffStatus.DECLINED,
            CallOffStatus.EXPIRED,
            CallOffStatus.CANCELLED,
        }
    ),
    CallOffStatus.ACCEPTED: frozenset({CallOffStatus.IN_DELIVERY, CallOffStatus.CANCELLED}),
    CallOffStatus.IN_DELIVERY: frozenset({CallOffStatus.COMPLETED, CallOffStatus.CANCELLED}),
    CallOffStatus.DECLINED: frozenset(),
    CallOffStatus.EXPIRED: frozenset(),
    CallOffStatus.COMPLETED: frozenset(),
    CallOffStatus.CANCELLED: frozenset(),
}
# Open: still commits budget (and, once accepted, capacity); may be cancelled.
OPEN_STATUSES = frozenset(
    status for status, targets in CALL_OFF_TRANSITIONS.items() if CallOffStatus.CANCELLED in targets
)
# Counted towards the direct-award limit across a buyer's call-offs for the same service.
COUNTED_STATUSES = OPEN_STATUSES | {CallOffStatus.COMPLETED}


class AwardRoute(enum.StrEnum):
    DIRECT_RATE_CARD = "direct_rate_card"
    FURTHER_COMPETITION = "further_competition"


class ChoiceReason(enum.StrEnum):
    """The buyer's objective reason for choosing this provider without competition."""

    LOWEST_PRICE_WITH_CAPACITY = "lowest_price_with_capacity"
    ONLY_PROVIDER_IN_AREA = "only_provider_in_area"
    CONTINUITY = "continuity"
    SPECIALIST_NEED = "specialist_need"

    @property
    def label(self) -> str:
        return {
            "lowest_price_with_capacity": "Lowest unit price with capacity",
            "only_provider_in_area": "Only provider in the area",
            "continuity": "Continuity for the person",
            "specialist_need": "Specialist need",
        }[self.value]


class CancellationReason(enum.StrEnum):
    PERSON_MOVED = "person_moved"
    RECALLED = "recalled"
    SENTENCE_ENDED = "sentence_ended"
    NEEDS_MET_ELSEWHERE = "needs_met_elsewhere"
    DUPLICATE = "duplicate"
    OTHER = "other"

    @property
    def label(self) -> str:
        return {
            "person_moved": "The person moved",
            "recalled": "Recalled to custody",
            "sentence_ended": "Sentence ended",
            "needs_met_elsewhere": "Needs met elsewhere",
            "duplicate": "Duplicate call-off",
            "other": "Other",
        }[self.value]


class Attendance(enum.StrEnum):
    ATTENDED = "attended"
    LATE = "late"
    DID_NOT_ATTEND = "did_not_attend"

    @property
    def label(self) -> str:
        return {"attended": "Attended", "late": "Late", "did_not_attend": "Did not attend"}[
            self.value
        ]


class AbsenceReason(enum.StrEnum):
    ACCEPTABLE = "acceptable"
    UNACCEPTABLE = "unacceptable"
    LOGISTICS = "logistics"

    @property
    def label(self) -> str:
        return {
            "acceptable": "Acceptable absence",
            "unacceptable": "Unacceptable absence",
            "logistics": "Logistics (transport, room, staff)",
        }[self.value]


class OutcomeResult(enum.StrEnum):
    ACHIEVED = "achieved"
    PARTLY_ACHIEVED = "partly_achieved"
    NOT_ACHIEVED = "not_achieved"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


class VariationStatus(enum.StrEnum):
    PROPOSED = "proposed"
    AGREED = "agreed"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


# A proposed variation is decided once: agreed or rejected by the other side, or withdrawn.
VARIATION_TRANSITIONS: dict[VariationStatus, frozenset[VariationStatus]] = {
    VariationStatus.PROPOSED: frozenset(
        {VariationStatus.AGREED, VariationStatus.REJECTED, VariationStatus.WITHDRAWN}
    ),
    VariationStatus.AGREED: frozenset(),
    VariationStatus.REJECTED: frozenset(),
    VariationStatus.WITHDRAWN: frozenset(),
}


class Side(enum.StrEnum):
    BUYER = "buyer"
    PROVIDER = "provider"


class CallOff(TimestampMixin, db.Model):
    __tablename__ = "call_offs"
    __table_args__ = (
        sa.CheckConstraint(f"quantity > 0 AND quantity <= {MAX_UNITS}", name="quantity_range"),
        sa.CheckConstraint("end_date >= start_date", name="dates_in_order"),
        sa.CheckConstraint("unit_price_pence >= 0", name="price_not_negative"),
        sa.CheckConstraint(
            f"net_pence >= 0 AND vat_pence >= 0 AND gross_pence <= {MAX_VALUE_PENCE}",
            name="value_range",
        ),
        sa.CheckConstraint("gross_pence = net_pence + vat_pence", name="gross_is_net_plus_vat"),
        sa.CheckConstraint(
            f"outcome_max_pence >= 0 AND outcome_max_pence <= {MAX_VALUE_PENCE}",
            name="outcome_max_range",
        ),
        sa.CheckConstraint(
            "delivered_units >= 0 AND delivered_units <= quantity", name="delivered_within_quantity"
        ),
        sa.CheckConstraint(
            "status NOT IN ('accepted', 'in_delivery', 'completed') OR accepted_at IS NOT NULL",
            name="accepted_has_date",
        ),
        sa.CheckConstraint(
            "status <> 'declined' OR (declined_at IS NOT NULL AND decline_reason IS NOT NULL)",
            name="declined_has_reason",
        ),
        sa.CheckConstraint(
            "status <> 'cancelled' OR (cancelled_at IS NOT NULL AND cancellation_reason IS NOT NULL)",
            name="cancelled_has_reason",
        ),
        sa.CheckConstraint(
            "status <> 'completed' OR completed_at IS NOT NULL", name="completed_has_date"
        ),
        # A direct award from the rate card records the buyer's reason for choosing the
        # provider, and buys one of its listings; a further competition's award has neither (the
        # competition chose the provider, and its bid need not match a listing).
        sa.CheckConstraint(
            "award_route <> 'direct_rate_card' OR "
            "(choice_reason IS NOT NULL AND listing_id IS NOT NULL)",
            name="direct_award_has_reason_and_listing",
        ),
        # The buyer's call-offs with a provider in a lot (category) over the look-back period:
        # what counts towards the direct-award limit (the narrower per-listing rule filters it).
        sa.Index(
            "ix_call_offs_buyer_provider_lot",
            "lead_buyer_id",
            "provider_id",
            "category_id",
            "placed_at",
        ),
        sa.Index("ix_call_offs_provider_status", "provider_id", "status"),
        sa.Index("ix_call_offs_buyer_status", "lead_buyer_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    status: Mapped[CallOffStatus] = mapped_column(
        enum_type(CallOffStatus, "call_off_status"), default=CallOffStatus.DRAFT
    )
    version: Mapped[int] = mapped_column(default=1)

    # The rate-card listing bought; None for a call-off awarded by further competition, whose
    # winning bid need not match any listing (``service_title`` names what it buys).
    listing_id: Mapped[int | None] = mapped_column(sa.ForeignKey("listings.id"), index=True)
    # What the call-off buys, in words, kept with it: the listing's title when it was placed
    # from the rate card, the competition's title when awarded. Pages, emails, CSV, API and
    # invoice lines read this, never the listing (which may be retitled, or absent).
    service_title: Mapped[str] = mapped_column(sa.String(TITLE_MAX))
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    lead_buyer_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    arrangement_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangements.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    award_route: Mapped[AwardRoute] = mapped_column(enum_type(AwardRoute, "award_route"))
    # The direct award's reason for choosing the provider; None for further competition.
    choice_reason: Mapped[ChoiceReason | None] = mapped_column(
        enum_type(ChoiceReason, "choice_reason")
    )
    choice_reason_detail: Mapped[str] = mapped_column(sa.String(REASON_DETAIL_MAX), default="")

    quantity: Mapped[int] = mapped_column()
    start_date: Mapped[date] = mapped_column(sa.Date)
    end_date: Mapped[date] = mapped_column(sa.Date)
    # The person on probation the call-off is for; both empty for a contract for a service
    # rather than one person (a further competition's award): see ``for_one_person``.
    crn: Mapped[str] = mapped_column(sa.String(CRN_LENGTH), index=True)
    pdu: Mapped[str] = mapped_column(sa.String(PDU_MAX))
    po_number: Mapped[str] = mapped_column(sa.String(PO_NUMBER_MAX))
    notes_for_provider: Mapped[str] = mapped_column(sa.String(NOTES_MAX), default="")

    # Locked on the day the call-off is placed; later price changes never alter them.
    unit: Mapped[Unit] = mapped_column(enum_type(Unit, "call_off_unit"))
    unit_price_pence: Mapped[int] = mapped_column(sa.BigInteger)
    vat_treatment: Mapped[VatTreatment] = mapped_column(
        enum_type(VatTreatment, "call_off_vat_treatment")
    )
    net_pence: Mapped[int] = mapped_column(sa.BigInteger)
    vat_pence: Mapped[int] = mapped_column(sa.BigInteger)
    gross_pence: Mapped[int] = mapped_column(sa.BigInteger)
    # The price version it was placed at, read in the placing transaction: the one the buyer
    # was shown on check your answers (None for call-offs placed before versions were kept).
    price_version_id: Mapped[int | None] = mapped_column(sa.ForeignKey("listing_prices.id"))
    delivered_units: Mapped[int] = mapped_column(default=0)
    # The most its agreed outcome terms could add (every claim up to each cap, VAT included):
    # part of the whole-life value the direct-award limit counts (see marketplace.outcomes).
    outcome_max_pence: Mapped[int] = mapped_column(
        sa.BigInteger, default=0, server_default=sa.text("0")
    )

    placed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    funding_confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    respond_by: Mapped[date | None] = mapped_column(sa.Date)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    accepted_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    declined_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    decline_reason: Mapped[str | None] = mapped_column(sa.String(REASON_DETAIL_MAX))
    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivery_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    completion_summary: Mapped[str] = mapped_column(sa.String(SUMMARY_MAX), default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    cancellation_reason: Mapped[CancellationReason | None] = mapped_column(
        enum_type(CancellationReason, "cancellation_reason")
    )
    cancellation_detail: Mapped[str] = mapped_column(sa.String(REASON_DETAIL_MAX), default="")
    # Whether a missed session is paid for, agreed at award, for a call-off without a listing
    # (one from the rate card follows its listing's setting: ``missed_sessions_are_chargeable``).
    missed_sessions_chargeable: Mapped[bool] = mapped_column(
        default=False, server_default=sa.false()
    )
    # The further competition that awarded it (competitions.id; None for a direct award).
    # Orders never reads the competition: pages ask ``signals.competition_page`` for its link.
    competition_id: Mapped[int | None] = mapped_column(index=True)

    listing: Mapped[Listing | None] = relationship()
    provider: Mapped[Organisation] = relationship(foreign_keys=[provider_id])
    lead_buyer: Mapped[Organisation] = relationship(foreign_keys=[lead_buyer_id])
    arrangement: Mapped[Arrangement] = relationship()
    placed_by: Mapped[User | None] = relationship(foreign_keys=[placed_by_id])
    funders: Mapped[list[CallOffFunder]] = relationship(
        back_populates="call_off", cascade="all, delete-orphan", order_by="CallOffFunder.id"
    )
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="call_off", cascade="all, delete-orphan", order_by="Delivery.id"
    )
    variations: Mapped[list[Variation]] = relationship(
        back_populates="call_off", cascade="all, delete-orphan", order_by="Variation.id"
    )
    outcomes: Mapped[list[OutcomeRecord]] = relationship(
        back_populates="call_off", cascade="all, delete-orphan", order_by="OutcomeRecord.id"
    )

    audit_type = "call_off"

    @property
    def audit_organisation(self) -> Organisation:
        return self.lead_buyer

    @property
    def remaining_units(self) -> int:
        return self.quantity - self.delivered_units

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def for_one_person(self) -> bool:
        """For one person on probation (a CRN), not a contract for a service."""
        return bool(self.crn)

    @property
    def by_competition(self) -> bool:
        return self.award_route == AwardRoute.FURTHER_COMPETITION

    @property
    def missed_sessions_are_chargeable(self) -> bool:
        """Whether a missed session recorded now is paid for: as the listing says now for a
        rate-card call-off (decided as each session is recorded), as agreed at award for one
        without a listing."""
        if self.listing_id is None:
            return self.missed_sessions_chargeable
        return self.listing.missed_sessions_chargeable

    @property
    def offered_outcomes(self) -> list[str]:
        """The outcomes its completion can record (and payment by results can pay for): its
        listing's; none for a call-off without a listing."""
        return self.listing.offered_outcomes if self.listing_id is not None else []


class CallOffFunder(db.Model):
    """One commissioner's share of a call-off, committed against its budget."""

    __tablename__ = "call_off_funders"
    __table_args__ = (
        sa.UniqueConstraint("call_off_id", "organisation_id", name="uq_call_off_funders_org"),
        sa.CheckConstraint("basis_points > 0 AND basis_points <= 10000", name="basis_points_range"),
        sa.CheckConstraint(
            "share_pence >= 0 AND committed_pence >= 0 AND committed_pence <= share_pence",
            name="amounts_in_range",
        ),
        sa.CheckConstraint(
            "confirmed_at IS NOT NULL OR NOT preauthorised", name="preauthorised_is_confirmed"
        ),
        # A declined share has its reason, is not confirmed and commits nothing.
        sa.CheckConstraint(
            "declined_at IS NULL OR (decline_reason IS NOT NULL AND confirmed_at IS NULL "
            "AND committed_pence = 0)",
            name="declined_has_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_off_id: Mapped[int] = mapped_column(sa.ForeignKey("call_offs.id", ondelete="CASCADE"))
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    is_lead: Mapped[bool] = mapped_column(default=False)
    basis_points: Mapped[int] = mapped_column()
    # The funder's part of the call-off's gross value, and what of it its budget still commits.
    share_pence: Mapped[int] = mapped_column(sa.BigInteger)
    committed_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    budget_id: Mapped[int] = mapped_column(sa.ForeignKey("budgets.id"), index=True)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    confirmed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    # Confirmed by the funder's standing authorisation of the lead buyer, not by a person.
    preauthorised: Mapped[bool] = mapped_column(default=False)
    # Declined by the funder's approver: its commitment released, until the lead buyer re-splits.
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    declined_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    decline_reason: Mapped[str | None] = mapped_column(sa.String(REASON_DETAIL_MAX))

    call_off: Mapped[CallOff] = relationship(back_populates="funders")
    organisation: Mapped[Organisation] = relationship()
    budget: Mapped[Budget] = relationship()
    # Its share by financial year (one part for a call-off within one year): ``budget`` is the
    # first year's, ``committed_pence`` the parts' committed added up.
    parts: Mapped[list[CallOffBudgetPart]] = relationship(
        back_populates="funder",
        cascade="all, delete-orphan",
        order_by="CallOffBudgetPart.financial_year",
    )

    @property
    def percentage(self) -> str:
        whole, part = divmod(self.basis_points, 100)
        return f"{whole}%" if not part else f"{whole}.{part:02d}%"


class CallOffBudgetPart(db.Model):
    """One funder's part of a call-off in one financial year, committed against that year's
    budget: a call-off whose planned months span two years commits each year's part, by its
    planned spread of units over the months. A funder's parts sum to its share; delivery spends
    from the part (and budget) of the year it falls in."""

    __tablename__ = "call_off_budget_parts"
    __table_args__ = (
        sa.UniqueConstraint("funder_id", "financial_year", name="uq_call_off_budget_parts_year"),
        sa.CheckConstraint(
            "share_pence >= 0 AND committed_pence >= 0 AND committed_pence <= share_pence",
            name="amounts_in_range",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    funder_id: Mapped[int] = mapped_column(
        sa.ForeignKey("call_off_funders.id", ondelete="CASCADE"), index=True
    )
    budget_id: Mapped[int] = mapped_column(sa.ForeignKey("budgets.id"), index=True)
    financial_year: Mapped[int] = mapped_column()
    share_pence: Mapped[int] = mapped_column(sa.BigInteger)
    committed_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    funder: Mapped[CallOffFunder] = relationship(back_populates="parts")
    budget: Mapped[Budget] = relationship()


class Budget(TimestampMixin, db.Model):
    """A commissioner's money for one financial year (1 April to 31 March), optionally for one
    service category. Committed is what open call-offs may still cost; spent is what delivered
    units have cost (invoices will settle it); available is allocated − committed − spent."""

    __tablename__ = "budgets"
    __table_args__ = (
        sa.CheckConstraint("allocated_pence >= 0", name="allocated_not_negative"),
        sa.CheckConstraint(
            "committed_pence >= 0 AND spent_pence >= 0", name="committed_spent_not_negative"
        ),
        sa.CheckConstraint(
            "financial_year >= 2000 AND financial_year <= 2200", name="financial_year_range"
        ),
        # One budget per organisation, year and category, and one without a category.
        sa.Index(
            "uq_budgets_org_year_category",
            "organisation_id",
            "financial_year",
            "category_id",
            unique=True,
        ),
        sa.Index(
            "uq_budgets_org_year_general",
            "organisation_id",
            "financial_year",
            unique=True,
            sqlite_where=sa.text("category_id IS NULL"),
            postgresql_where=sa.text("category_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    # The calendar year the financial year starts in: 2026 is 1 April 2026 to 31 March 2027.
    financial_year: Mapped[int] = mapped_column()
    category_id: Mapped[int | None] = mapped_column(sa.ForeignKey("service_categories.id"))
    allocated_pence: Mapped[int] = mapped_column(sa.BigInteger)
    committed_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    spent_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)

    organisation: Mapped[Organisation] = relationship()
    category: Mapped[ServiceCategory | None] = relationship()

    audit_type = "budget"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @hybrid_property
    def available_pence(self) -> int:
        # Also an SQL expression on the class: the placement's conditional UPDATE uses it.
        return self.allocated_pence - self.committed_pence - self.spent_pence


class FundingAuthorisation(TimestampMixin, db.Model):
    """A co-funder's standing consent: the lead buyer may commit its share without asking, up to
    a value per call-off and a total per financial year."""

    __tablename__ = "funding_authorisations"
    __table_args__ = (
        sa.UniqueConstraint(
            "funder_id", "lead_buyer_id", "financial_year", name="uq_funding_authorisations"
        ),
        sa.CheckConstraint(
            "per_call_off_limit_pence >= 0 AND annual_limit_pence >= 0 AND used_pence >= 0",
            name="limits_not_negative",
        ),
        sa.CheckConstraint("funder_id <> lead_buyer_id", name="not_self"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    funder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    lead_buyer_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    financial_year: Mapped[int] = mapped_column()
    per_call_off_limit_pence: Mapped[int] = mapped_column(sa.BigInteger)
    annual_limit_pence: Mapped[int] = mapped_column(sa.BigInteger)
    used_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    funder: Mapped[Organisation] = relationship(foreign_keys=[funder_id])
    lead_buyer: Mapped[Organisation] = relationship(foreign_keys=[lead_buyer_id])

    audit_type = "funding_authorisation"

    @property
    def audit_organisation(self) -> Organisation:
        return self.funder


class Delivery(db.Model):
    """One recorded session (or other unit group) of a call-off."""

    __tablename__ = "call_off_deliveries"
    __table_args__ = (
        sa.CheckConstraint(f"units >= 0 AND units <= {MAX_UNITS}", name="units_range"),
        sa.CheckConstraint(
            "(attendance = 'did_not_attend') = (absence_reason IS NOT NULL)",
            name="absence_reason_when_absent",
        ),
        # Only a missed session can be unpaid (and only where the listing does not charge).
        sa.CheckConstraint("attendance = 'did_not_attend' OR payable", name="attended_is_payable"),
        sa.Index("ix_call_off_deliveries_call_off_date", "call_off_id", "delivered_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_off_id: Mapped[int] = mapped_column(sa.ForeignKey("call_offs.id", ondelete="CASCADE"))
    delivered_on: Mapped[date] = mapped_column(sa.Date)
    units: Mapped[int] = mapped_column()
    attendance: Mapped[Attendance] = mapped_column(enum_type(Attendance, "attendance"))
    absence_reason: Mapped[AbsenceReason | None] = mapped_column(
        enum_type(AbsenceReason, "absence_reason")
    )
    progress_note: Mapped[str] = mapped_column(sa.String(PROGRESS_NOTE_MAX), default="")
    # ``units`` are what the session was for, as the provider records it; they are billed, spent
    # from the budgets and taken from the call-off's quantity only if the session is payable:
    # always when attended or late, and when missed only where the listing says missed sessions
    # are chargeable (decided when it is recorded, so a later change to the listing alters
    # nothing already recorded).
    payable: Mapped[bool] = mapped_column(default=True, server_default=sa.true())
    recorded_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime())

    call_off: Mapped[CallOff] = relationship(back_populates="deliveries")
    recorded_by: Mapped[User | None] = relationship()

    @property
    def payable_units(self) -> int:
        return self.units if self.payable else 0


class Variation(db.Model):
    """A proposed change (more units, a later end date) that the other side agrees or rejects.
    Each agreed variation makes a new version of the call-off; every proposal is kept."""

    __tablename__ = "call_off_variations"
    __table_args__ = (
        sa.CheckConstraint(
            f"extra_units >= 0 AND extra_units <= {MAX_UNITS}", name="extra_units_range"
        ),
        sa.CheckConstraint("extra_units > 0 OR new_end_date IS NOT NULL", name="changes_something"),
        sa.CheckConstraint(
            "status = 'proposed' OR decided_at IS NOT NULL", name="decided_has_date"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_off_id: Mapped[int] = mapped_column(
        sa.ForeignKey("call_offs.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[VariationStatus] = mapped_column(
        enum_type(VariationStatus, "variation_status"), default=VariationStatus.PROPOSED
    )
    proposed_by_side: Mapped[Side] = mapped_column(enum_type(Side, "variation_side"))
    proposed_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    proposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(sa.String(REASON_DETAIL_MAX))
    extra_units: Mapped[int] = mapped_column(default=0)
    new_end_date: Mapped[date | None] = mapped_column(sa.Date)
    # The call-off as it was before and would be after (quantity, end date, gross value).
    before: Mapped[dict] = mapped_column(sa.JSON)
    after: Mapped[dict] = mapped_column(sa.JSON)
    decided_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decision_reason: Mapped[str] = mapped_column(sa.String(REASON_DETAIL_MAX), default="")
    version: Mapped[int | None] = mapped_column()  # the call-off's version this agreement made
    # Above the buyer's spend limit a change goes to an approver again: when the buyer side
    # consented (proposed it, or agreed the provider's) and by whom; then the approver's approval.
    approval_requested_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approval_requested_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    call_off: Mapped[CallOff] = relationship(back_populates="variations")
    proposed_by: Mapped[User | None] = relationship(foreign_keys=[proposed_by_id])

    @property
    def awaiting_approval(self) -> bool:
        """Waiting for an approver of the lead buyer (above the buyer's spend limit)."""
        return (
            self.status == VariationStatus.PROPOSED
            and self.approval_requested_at is not None
            and self.approved_at is None
        )


class OutcomeRecord(db.Model):
    """On completion: one of the listing's outcomes, and how far the person achieved it."""

    __tablename__ = "call_off_outcomes"

    id: Mapped[int] = mapped_column(primary_key=True)
    call_off_id: Mapped[int] = mapped_column(
        sa.ForeignKey("call_offs.id", ondelete="CASCADE"), index=True
    )
    outcome: Mapped[str] = mapped_column(sa.String(300))
    result: Mapped[OutcomeResult] = mapped_column(enum_type(OutcomeResult, "outcome_result"))
    comment: Mapped[str] = mapped_column(sa.String(REASON_DETAIL_MAX), default="")

    call_off: Mapped[CallOff] = relationship(back_populates="outcomes")


class IdempotencyRecord(db.Model):
    """A request that made a call-off, by its key (the form's one-time token or the API's
    ``Idempotency-Key``): a repeat answers with the same call-off instead of making another."""

    __tablename__ = "idempotency_records"
    __table_args__ = (
        sa.UniqueConstraint("user_id", "key_hash", name="uq_idempotency_records_user_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the key, hex
    request_hash: Mapped[str] = mapped_column(sa.String(64))  # sha256 of the request body
    call_off_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("call_offs.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
