"""Service listings on providers' rate cards: what, where, for whom, unit, price history, capacity.

A listing belongs to a provider organisation and to one lot of an arrangement; it may be offered only
in the areas (probation regions or PCC areas) where the provider holds an active membership of that lot.
Prices are versioned: each ``ListingPrice`` runs from ``effective_from`` up to the next version's start
(``effective_to``, exclusive; open-ended for the latest), so the price in force on any date is one
indexed lookup and the history is never rewritten. Capacity is monthly; what accepted call-offs commit
is recorded in ``CapacityCommitment`` rows (filled by orders), and live availability is the difference.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import ArrangementLot
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.core.money import VatTreatment
from marketplace.reference.models import PccArea, ProbationRegion

REFERENCE_MAX = 20
TITLE_MAX = 120
SUMMARY_MAX = 300
DESCRIPTION_MAX = 10_000
OUTCOMES_MAX = 3_000
SOCIAL_VALUE_MAX = 3_000
CONTACT_NAME_MAX = 120
CONTACT_EMAIL_MAX = 254
CONTACT_PHONE_MAX = 40
REASON_MAX = 2_000
MIN_AGE = 10
MAX_AGE = 120
MAX_LEAD_TIME_DAYS = 260
MAX_UNITS = 1_000_000
MAX_UNIT_PRICE_PENCE = 100_000_000  # £1,000,000 a unit: anything above is a typing error
MAX_COST_PENCE = 10_000_000_000
STALE_AFTER_DAYS = 180  # "last confirmed accurate" older than this is flagged to buyers


class ListingStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    PAUSED = "paused"
    WITHDRAWN = "withdrawn"

    @property
    def label(self) -> str:
        return self.value.capitalize()


LISTING_TRANSITIONS: dict[ListingStatus, frozenset[ListingStatus]] = {
    ListingStatus.DRAFT: frozenset({ListingStatus.PUBLISHED, ListingStatus.WITHDRAWN}),
    ListingStatus.PUBLISHED: frozenset({ListingStatus.PAUSED, ListingStatus.WITHDRAWN}),
    ListingStatus.PAUSED: frozenset({ListingStatus.PUBLISHED, ListingStatus.WITHDRAWN}),
    ListingStatus.WITHDRAWN: frozenset(),
}


class Unit(enum.StrEnum):
    SESSION = "session"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    PLACE = "place"
    PROGRAMME = "programme"
    BED_NIGHT = "bed_night"
    REFERRAL = "referral"

    @property
    def label(self) -> str:
        return self.value.replace("_", "-")

    # The one place that words a unit: every page, email and message says "£67.50 an hour",
    # "1 session", "3 bed-nights" through these (and the `per_unit` and `units` filters).

    @property
    def plural(self) -> str:
        return f"{self.label}s"

    @property
    def per(self) -> str:
        """With its article, as after a price: "an hour", "a session"."""
        return f"{'an' if self is Unit.HOUR else 'a'} {self.label}"

    def count(self, number: int) -> str:
        """A number of this unit: "1 hour", "12 hours", "1,500 sessions"."""
        return f"{number:,} {self.label if number == 1 else self.plural}"


class Sex(enum.StrEnum):
    ANY = "any"
    MALE = "male"
    FEMALE = "female"

    @property
    def label(self) -> str:
        return {"any": "Any", "male": "Men only", "female": "Women only"}[self.value]


class DeliverySetting(enum.StrEnum):
    COMMUNITY = "community"
    CUSTODY = "custody"
    REMOTE = "remote"


class DeliveryFormat(enum.StrEnum):
    ONE_TO_ONE = "one_to_one"
    GROUP = "group"


class RiskLevel(enum.StrEnum):
    """Risk of serious harm (RoSH) levels a listing accepts."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    VERY_HIGH = "very_high"


class Complexity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


# Multi-valued attributes are kept as flag columns, one per value: filters are then plain indexed
# comparisons on both databases, and adding a value is a migration that says what it means.
SETTING_COLUMNS = {s: f"setting_{s.value}" for s in DeliverySetting}
FORMAT_COLUMNS = {f: f"format_{f.value}" for f in DeliveryFormat}
RISK_COLUMNS = {r: f"risk_{r.value}" for r in RiskLevel}
COMPLEXITY_COLUMNS = {c: f"complexity_{c.value}" for c in Complexity}


class Listing(TimestampMixin, db.Model):
    __tablename__ = "listings"
    __table_args__ = (
        sa.CheckConstraint("min_units >= 1 AND max_units >= min_units", name="units_in_order"),
        sa.CheckConstraint(f"max_units <= {MAX_UNITS}", name="max_units_bounded"),
        sa.CheckConstraint("monthly_capacity >= 0", name="capacity_not_negative"),
        sa.CheckConstraint(
            "min_age IS NULL OR max_age IS NULL OR min_age <= max_age", name="ages_in_order"
        ),
        sa.CheckConstraint("lead_time_days >= 0", name="lead_time_not_negative"),
        sa.CheckConstraint(
            "setting_community OR setting_custody OR setting_remote", name="has_a_setting"
        ),
        sa.CheckConstraint("format_one_to_one OR format_group", name="has_a_format"),
        sa.CheckConstraint(
            "complexity_low OR complexity_medium OR complexity_high", name="has_a_complexity"
        ),
        sa.CheckConstraint(
            "status NOT IN ('published', 'paused') OR published_at IS NOT NULL",
            name="published_has_date",
        ),
        sa.CheckConstraint(
            "(status = 'withdrawn') = (withdrawn_at IS NOT NULL)", name="withdrawn_has_date"
        ),
        sa.CheckConstraint(
            "(cost_staff_pence IS NULL OR cost_staff_pence >= 0) AND "
            "(cost_overheads_pence IS NULL OR cost_overheads_pence >= 0) AND "
            "(cost_other_pence IS NULL OR cost_other_pence >= 0)",
            name="costs_not_negative",
        ),
        # A provider's rate card and the visible catalogue, read in these orders.
        sa.Index("ix_listings_organisation_status", "organisation_id", "status"),
        sa.Index("ix_listings_lot_status", "lot_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(REFERENCE_MAX), unique=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    lot_id: Mapped[int] = mapped_column(sa.ForeignKey("arrangement_lots.id"))
    status: Mapped[ListingStatus] = mapped_column(
        enum_type(ListingStatus, "listing_status"), default=ListingStatus.DRAFT, index=True
    )

    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX))
    summary: Mapped[str] = mapped_column(sa.String(SUMMARY_MAX))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    # One outcome per line (for example "Secure accommodation within 28 days").
    outcomes: Mapped[str] = mapped_column(sa.Text, default="")

    setting_community: Mapped[bool] = mapped_column(default=False)
    setting_custody: Mapped[bool] = mapped_column(default=False)
    setting_remote: Mapped[bool] = mapped_column(default=False)
    format_one_to_one: Mapped[bool] = mapped_column(default=False)
    format_group: Mapped[bool] = mapped_column(default=False)

    eligibility_sex: Mapped[Sex] = mapped_column(enum_type(Sex, "eligibility_sex"), default=Sex.ANY)
    min_age: Mapped[int | None] = mapped_column()
    max_age: Mapped[int | None] = mapped_column()
    risk_low: Mapped[bool] = mapped_column(default=False)
    risk_medium: Mapped[bool] = mapped_column(default=False)
    risk_high: Mapped[bool] = mapped_column(default=False)
    risk_very_high: Mapped[bool] = mapped_column(default=False)
    complexity_low: Mapped[bool] = mapped_column(default=False)
    complexity_medium: Mapped[bool] = mapped_column(default=False)
    complexity_high: Mapped[bool] = mapped_column(default=False)

    lead_time_days: Mapped[int] = mapped_column(default=0)
    unit: Mapped[Unit] = mapped_column(enum_type(Unit, "listing_unit"))
    vat_treatment: Mapped[VatTreatment] = mapped_column(enum_type(VatTreatment, "vat_treatment"))
    min_units: Mapped[int] = mapped_column(default=1)
    max_units: Mapped[int] = mapped_column()
    monthly_capacity: Mapped[int] = mapped_column()
    # Whether a session the person did not attend is paid for (at the unit price): if not, the
    # provider records it, but it is not billed and does not use up the call-off's units. No
    # default on the Python side, so that bulk inserts that leave it out get the database's.
    missed_sessions_chargeable: Mapped[bool] = mapped_column(server_default=sa.false())

    # Optional full-cost breakdown of one unit, so commissioners can see what a price pays for.
    cost_staff_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    cost_overheads_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    cost_other_pence: Mapped[int | None] = mapped_column(sa.BigInteger)
    social_value: Mapped[str] = mapped_column(sa.Text, default="")

    contact_name: Mapped[str] = mapped_column(sa.String(CONTACT_NAME_MAX), default="")
    contact_email: Mapped[str] = mapped_column(sa.String(CONTACT_EMAIL_MAX), default="")
    contact_phone: Mapped[str] = mapped_column(sa.String(CONTACT_PHONE_MAX), default="")

    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    copied_from_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("listings.id", ondelete="SET NULL")
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # "Last confirmed accurate": set on publishing, on every edit and by the one-click confirmation.
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    stale_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    organisation: Mapped[Organisation] = relationship()
    lot: Mapped[ArrangementLot] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    areas: Mapped[list[ListingArea]] = relationship(
        back_populates="listing", cascade="all, delete-orphan", order_by="ListingArea.id"
    )
    prices: Mapped[list[ListingPrice]] = relationship(
        back_populates="listing",
        cascade="all, delete-orphan",
        order_by="ListingPrice.effective_from",
    )

    audit_type = "listing"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @property
    def missed_sessions_text(self) -> str:
        """What buyers are told about a session the person does not attend."""
        if self.missed_sessions_chargeable:
            return "Charged at the unit price if the person does not attend"
        return "Not charged if the person does not attend"

    @property
    def offered_outcomes(self) -> list[str]:
        """The outcomes the listing offers for payment by results, one a line."""
        return [line.strip() for line in (self.outcomes or "").splitlines() if line.strip()]

    @property
    def settings(self) -> list[DeliverySetting]:
        return [s for s, column in SETTING_COLUMNS.items() if getattr(self, column)]

    @property
    def formats(self) -> list[DeliveryFormat]:
        return [f for f, column in FORMAT_COLUMNS.items() if getattr(self, column)]

    @property
    def risk_levels(self) -> list[RiskLevel]:
        return [r for r, column in RISK_COLUMNS.items() if getattr(self, column)]

    @property
    def complexities(self) -> list[Complexity]:
        return [c for c, column in COMPLEXITY_COLUMNS.items() if getattr(self, column)]

    @property
    def outcome_list(self) -> list[str]:
        return [line.strip() for line in self.outcomes.splitlines() if line.strip()]

    def price_on(self, day: date) -> ListingPrice | None:
        """The price version in force on ``day`` (from the loaded history)."""
        return next((p for p in self.prices if p.in_force_on(day)), None)


class ListingArea(db.Model):
    """One area a listing is offered in: a whole probation region or one PCC area."""

    __tablename__ = "listing_areas"
    __table_args__ = (
        sa.CheckConstraint(
            "(region_id IS NULL) <> (pcc_area_id IS NULL)", name="region_or_pcc_area"
        ),
        sa.UniqueConstraint("listing_id", "region_id", "pcc_area_id", name="uq_listing_areas_area"),
        sa.Index("ix_listing_areas_region", "region_id", "listing_id"),
        sa.Index("ix_listing_areas_pcc_area", "pcc_area_id", "listing_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(sa.ForeignKey("listings.id", ondelete="CASCADE"))
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))

    listing: Mapped[Listing] = relationship(back_populates="areas")
    region: Mapped[ProbationRegion | None] = relationship()
    pcc_area: Mapped[PccArea | None] = relationship()

    @property
    def name(self) -> str:
        if self.region is not None:
            return self.region.name
        return self.pcc_area.name if self.pcc_area is not None else ""


class ListingPrice(db.Model):
    """A unit price ex VAT from a date; the next version's start ends it."""

    __tablename__ = "listing_prices"
    __table_args__ = (
        sa.CheckConstraint(
            f"unit_price_pence >= 0 AND unit_price_pence <= {MAX_UNIT_PRICE_PENCE}",
            name="price_in_range",
        ),
        sa.CheckConstraint(
            "effective_to IS NULL OR effective_to > effective_from", name="dates_in_order"
        ),
        sa.UniqueConstraint("listing_id", "effective_from", name="uq_listing_prices_from"),
        # The price in force on a date: one range lookup per listing.
        sa.Index("ix_listing_prices_in_force", "listing_id", "effective_from", "effective_to"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(sa.ForeignKey("listings.id", ondelete="CASCADE"))
    unit_price_pence: Mapped[int] = mapped_column(sa.BigInteger)
    effective_from: Mapped[date] = mapped_column(sa.Date)
    effective_to: Mapped[date | None] = mapped_column(sa.Date)
    reason: Mapped[str] = mapped_column(sa.String(REASON_MAX), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    listing: Mapped[Listing] = relationship(back_populates="prices")
    created_by: Mapped[User | None] = relationship()

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


class CapacityCommitment(db.Model):
    """Units of a listing's monthly capacity that an accepted call-off has taken.

    Orders write these rows when a provider accepts a call-off (spread over its months) and
    delete or reduce them when it is cancelled or varied; the catalogue only reads them.
    """

    __tablename__ = "capacity_commitments"
    __table_args__ = (
        sa.CheckConstraint("units > 0", name="units_positive"),
        sa.CheckConstraint(f"units <= {MAX_UNITS}", name="units_bounded"),
        sa.Index("ix_capacity_commitments_listing_month", "listing_id", "month"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    listing_id: Mapped[int] = mapped_column(sa.ForeignKey("listings.id", ondelete="CASCADE"))
    # The first day of the calendar month the units are committed in (the writer normalises it;
    # a CHECK on "first of the month" is not portable between SQLite and PostgreSQL).
    month: Mapped[date] = mapped_column(sa.Date)
    units: Mapped[int] = mapped_column()
    # What committed them (a call-off reference once orders exist), for the provider to see.
    source: Mapped[str] = mapped_column(sa.String(60), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
