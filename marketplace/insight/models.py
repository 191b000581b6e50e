"""The spend ledger and its roll-ups, and commissioners' forward plans.

The ledger is derived data. Every write to what spend is made of (call-offs and their funders,
invoices, credit notes, a provider's classification, a funder's region) marks the call-off stale
through a database trigger (``stale.py``), whatever wrote it: the ORM, a Core bulk statement or
raw SQL. Before any report reads the ledger it brings the stale call-offs up to date
(``services.ledger.catch_up``), so a report never shows less than what has been committed.

Invariant: for every call-off that is not stale, its ``spend_entries`` are exactly what
``services.ledger.entries_for`` derives from the source tables, and each roll-up row is the sum
of the entries with its key.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory


class Measure(enum.StrEnum):
    """The three measures of spend, side by side on every report."""

    COMMITTED = "committed"  # call-offs placed (less what was withdrawn before delivery)
    INVOICED = "invoiced"  # invoices issued, less credit notes
    PAID = "paid"  # invoices paid, less refunds

    @property
    def label(self) -> str:
        return {"committed": "Committed", "invoiced": "Invoiced", "paid": "Paid"}[self.value]


class SpendEntry(db.Model):
    """One funder's exact part (pence, VAT included) of one spend event of one call-off, with the
    provider's classification in force on the day. A funder's parts of a document are split by
    its share with the largest remainder, as the recharge statements split them, so the
    funders' parts sum exactly to the document."""

    __tablename__ = "spend_entries"
    __table_args__ = (
        sa.Index("ix_spend_entries_call_off", "call_off_id"),
        sa.Index("ix_spend_entries_provider_day", "provider_id", "occurred_on"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    call_off_id: Mapped[int] = mapped_column(sa.ForeignKey("call_offs.id", ondelete="CASCADE"))
    measure: Mapped[Measure] = mapped_column(enum_type(Measure, "spend_measure"))
    occurred_on: Mapped[date] = mapped_column(sa.Date)
    financial_year: Mapped[int] = mapped_column()  # the year it starts: 2026 is 2026-27
    funder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    # The funder's region and PCC area when the entry was derived.
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))
    provider_vcse: Mapped[bool] = mapped_column()
    provider_sme: Mapped[bool] = mapped_column()
    # What the entry comes from: "call_off", "variation", "invoice", "credit_note", "withdrawal".
    source: Mapped[str] = mapped_column(sa.String(20))
    source_id: Mapped[int] = mapped_column()
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger)


class SpendMonth(db.Model):
    """The ledger summed by month and by everything the reports group or filter by. What the
    spend page reads by half-year or month (by financial year, ``SpendYear``): a national
    five-year ledger is a few hundred thousand rows here against millions of entries."""

    __tablename__ = "spend_months"
    __table_args__ = (
        sa.Index(
            "ix_spend_months_key",
            "month",
            "measure",
            "funder_id",
            "category_id",
            "provider_vcse",
            "provider_sme",
            "region_id",
            "pcc_area_id",
        ),
        sa.Index("ix_spend_months_funder", "funder_id", "financial_year"),
        sa.Index("ix_spend_months_year", "financial_year", "measure"),
        # The VCSE-share page's national paid spend by month and provider type: read from this
        # index alone, already in group order (a national five-year ledger's paid rows, a third
        # of the table, no longer scanned and hashed: benchmarks/RESULTS.md).
        sa.Index(
            "ix_spend_months_measure_month_type",
            "measure",
            "month",
            "provider_vcse",
            "provider_sme",
            postgresql_include=["amount_pence"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    month: Mapped[date] = mapped_column(sa.Date)  # the first day of the month
    financial_year: Mapped[int] = mapped_column()
    measure: Mapped[Measure] = mapped_column(enum_type(Measure, "spend_measure"))
    funder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))
    provider_vcse: Mapped[bool] = mapped_column()
    provider_sme: Mapped[bool] = mapped_column()
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    entries: Mapped[int] = mapped_column(default=0)


class SpendYear(db.Model):
    """``SpendMonth`` summed over the months of each financial year (the same key without the
    month): what the spend page reads by financial year, a fraction of the monthly rows. Kept
    by the ledger with the monthly roll-up, in the same catch-up or rebuild, so each row is the
    sum of the entries with its key as exactly as a monthly row is."""

    __tablename__ = "spend_years"
    __table_args__ = (
        sa.Index(
            "ix_spend_years_key",
            "financial_year",
            "measure",
            "funder_id",
            "category_id",
            "provider_vcse",
            "provider_sme",
            "region_id",
            "pcc_area_id",
        ),
        sa.Index("ix_spend_years_funder", "funder_id", "financial_year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    financial_year: Mapped[int] = mapped_column()
    measure: Mapped[Measure] = mapped_column(enum_type(Measure, "spend_measure"))
    funder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))
    provider_vcse: Mapped[bool] = mapped_column()
    provider_sme: Mapped[bool] = mapped_column()
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    entries: Mapped[int] = mapped_column(default=0)


class SpendHalfYear(db.Model):
    """The ledger summed by half-year (``half`` 1: April to September, 2: October to March),
    measure, funder and provider type: what the VCSE-share page reads (a few thousand rows for
    a national five-year ledger). Kept by the ledger with the other roll-ups, in the same
    catch-up or rebuild, so each row is the sum of the entries with its key."""

    __tablename__ = "spend_half_years"
    __table_args__ = (
        sa.Index(
            "ix_spend_half_years_key",
            "measure",
            "financial_year",
            "half",
            "funder_id",
            "provider_vcse",
            "provider_sme",
        ),
        sa.Index("ix_spend_half_years_funder", "funder_id", "financial_year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    financial_year: Mapped[int] = mapped_column()
    half: Mapped[int] = mapped_column(sa.SmallInteger)
    measure: Mapped[Measure] = mapped_column(enum_type(Measure, "spend_measure"))
    funder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    provider_vcse: Mapped[bool] = mapped_column()
    provider_sme: Mapped[bool] = mapped_column()
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    entries: Mapped[int] = mapped_column(default=0)


class SpendProviderYear(db.Model):
    """Paid spend summed by financial year, funder and provider (with the provider's
    classification): for counting the providers paid, and the VCSE share of them."""

    __tablename__ = "spend_provider_years"
    __table_args__ = (
        sa.Index(
            "ix_spend_provider_years_key",
            "financial_year",
            "funder_id",
            "provider_id",
            "provider_vcse",
            "provider_sme",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    financial_year: Mapped[int] = mapped_column()
    funder_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    provider_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"))
    provider_vcse: Mapped[bool] = mapped_column()
    provider_sme: Mapped[bool] = mapped_column()
    paid_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    entries: Mapped[int] = mapped_column(default=0)


class SpendStaleCallOff(db.Model):
    """A call-off whose ledger entries may no longer match its source rows. Rows are written by
    the database's triggers (``stale.py``), and removed by ``services.ledger.catch_up``."""

    __tablename__ = "spend_stale_call_offs"

    call_off_id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)


# ---------------------------------------------------------------------------------------------
# A commissioner's forward plan: what it means to buy, published so providers can apply in time.


class PlannedRoute(enum.StrEnum):
    FURTHER_COMPETITION = "further_competition"
    CALL_OFF = "call_off"  # a significant call-off from the rate card

    @property
    def label(self) -> str:
        return {
            "further_competition": "Further competition",
            "call_off": "Call-off from the rate card",
        }[self.value]


class ValueBand(enum.StrEnum):
    UNDER_25K = "under_25k"
    FROM_25K_TO_100K = "25k_to_100k"
    FROM_100K_TO_500K = "100k_to_500k"
    FROM_500K = "500k_or_more"

    @property
    def label(self) -> str:
        return {
            "under_25k": "Under £25,000",
            "25k_to_100k": "£25,000 to £100,000",
            "100k_to_500k": "£100,000 to £500,000",
            "500k_or_more": "£500,000 or more",
        }[self.value]


class PlanStatus(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    WITHDRAWN = "withdrawn"


PLAN_TRANSITIONS: dict[PlanStatus, frozenset[PlanStatus]] = {
    PlanStatus.DRAFT: frozenset({PlanStatus.PUBLISHED, PlanStatus.WITHDRAWN}),
    PlanStatus.PUBLISHED: frozenset({PlanStatus.WITHDRAWN}),
    PlanStatus.WITHDRAWN: frozenset(),
}


class PlannedProcurement(TimestampMixin, db.Model):
    """One entry of a commissioner's forward plan: a planned further competition or significant
    call-off, by lot, area, value band and quarter."""

    __tablename__ = "planned_procurements"
    __table_args__ = (
        sa.CheckConstraint("quarter BETWEEN 1 AND 4", name="quarter_1_to_4"),
        sa.CheckConstraint("length(title) > 0", name="title_not_empty"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), index=True)
    title: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.String(4000), default="")
    category_id: Mapped[int] = mapped_column(sa.ForeignKey("service_categories.id"))
    region_id: Mapped[int | None] = mapped_column(sa.ForeignKey("probation_regions.id"))
    pcc_area_id: Mapped[int | None] = mapped_column(sa.ForeignKey("pcc_areas.id"))
    route: Mapped[PlannedRoute] = mapped_column(enum_type(PlannedRoute, "planned_route"))
    value_band: Mapped[ValueBand] = mapped_column(enum_type(ValueBand, "value_band"))
    financial_year: Mapped[int] = mapped_column()
    quarter: Mapped[int] = mapped_column()
    status: Mapped[PlanStatus] = mapped_column(
        enum_type(PlanStatus, "plan_status"), default=PlanStatus.DRAFT
    )
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    organisation: Mapped[Organisation] = relationship()
    category: Mapped[ServiceCategory] = relationship()
    region: Mapped[ProbationRegion | None] = relationship()
    pcc_area: Mapped[PccArea | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    audit_type = "planned_procurement"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation
