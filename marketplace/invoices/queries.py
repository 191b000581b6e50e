"""Reads for the invoice pages and reports: lists by side, the provider's summary, co-funders'
recharge statements and the payment-performance figures for a six-month period.

Days to pay are calendar days from receipt (the day the invoice was issued through the service,
in London) to the day it was paid; an invoice is paid on time when paid on or before its due
date, 30 days after receipt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import Organisation
from marketplace.core.clock import london_date
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import allocate
from marketplace.core.validation import check_date_horizon
from marketplace.invoices.models import (
    CreditNote,
    Invoice,
    InvoiceStatus,
)
from marketplace.invoices.services.recharging import split_among
from marketplace.orders.models import CallOffFunder

PROVIDER_SIDE = "provider"
BUYER_SIDE = "buyer"


def invoices_query(
    organisation_id: int,
    side: str,
    *,
    status: InvoiceStatus | None = None,
    overdue_on: date | None = None,
) -> sa.Select:
    """The invoices the organisation issued (a provider's drafts included) or received (never a
    draft), newest first; ``overdue_on`` keeps only those open past their due date then."""
    if side == PROVIDER_SIDE:
        query = sa.select(Invoice).where(Invoice.provider_id == organisation_id)
    else:
        query = sa.select(Invoice).where(
            Invoice.lead_buyer_id == organisation_id, Invoice.status != InvoiceStatus.DRAFT
        )
    if status is not None:
        query = query.where(Invoice.status == status)
    if overdue_on is not None:
        query = query.where(Invoice.past_due(overdue_on))
    return query.options(
        selectinload(Invoice.provider),
        selectinload(Invoice.lead_buyer),
        selectinload(Invoice.credit_notes),
    ).order_by(Invoice.id.desc())


def overdue_count(organisation_id: int, side: str, today: date) -> int:
    column = Invoice.provider_id if side == PROVIDER_SIDE else Invoice.lead_buyer_id
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Invoice)
        .where(column == organisation_id, Invoice.past_due(today))
    )


# ---------------------------------------------------------------------------------------------
# The provider's summary


@dataclass
class StateLine:
    status: InvoiceStatus
    count: int = 0
    gross_pence: int = 0


@dataclass
class ProviderSummary:
    states: list[StateLine]
    paid_pence: int
    outstanding_pence: int
    overdue_count: int
    overdue_pence: int
    paid_count: int
    average_days_to_pay: float | None


def _days(received_at, paid_on: date) -> int:
    return (paid_on - london_date(received_at)).days


def _credited_by_invoice(invoice_ids: sa.Select) -> sa.Select:
    return (
        sa.select(CreditNote.invoice_id, sa.func.sum(CreditNote.gross_pence))
        .where(CreditNote.invoice_id.in_(invoice_ids))
        .group_by(CreditNote.invoice_id)
    )


def provider_summary(provider_id: int, today: date) -> ProviderSummary:
    """Invoices by state; what has been paid and what is outstanding (net of credit notes);
    what is overdue; and how many days the provider has waited to be paid on average."""
    mine = Invoice.provider_id == provider_id
    states = {s: StateLine(s) for s in InvoiceStatus}
    for status, count, gross in db.session.execute(
        sa.select(Invoice.status, sa.func.count(), sa.func.sum(Invoice.gross_pence))
        .where(mine)
        .group_by(Invoice.status)
    ):
        states[status].count, states[status].gross_pence = count, int(gross or 0)
    credited = dict(
        db.session.execute(_credited_by_invoice(sa.select(Invoice.id).where(mine))).all()
    )
    paid_pence = outstanding = overdue = overdue_pence = 0
    days: list[int] = []
    for invoice_id, status, gross, due_on, received_at, paid_on in db.session.execute(
        sa.select(
            Invoice.id,
            Invoice.status,
            Invoice.gross_pence,
            Invoice.due_on,
            Invoice.received_at,
            Invoice.paid_on,
        ).where(mine, Invoice.status != InvoiceStatus.DRAFT)
    ):
        due = gross - int(credited.get(invoice_id) or 0)
        if status == InvoiceStatus.PAID:
            paid_pence += due
            days.append(_days(received_at, paid_on))
        else:
            outstanding += due
            if due_on is not None and due_on < today and due > 0:
                overdue += 1
                overdue_pence += due
    return ProviderSummary(
        states=list(states.values()),
        paid_pence=paid_pence,
        outstanding_pence=outstanding,
        overdue_count=overdue,
        overdue_pence=overdue_pence,
        paid_count=len(days),
        average_days_to_pay=round(sum(days) / len(days), 1) if days else None,
    )


# ---------------------------------------------------------------------------------------------
# Payment performance for a six-month period

HALF_YEAR_PATTERN = re.compile(r"(\d{4})-H([12])")


@dataclass(frozen=True)
class HalfYear:
    """1 April–30 September (H1) or 1 October–31 March (H2) of the year that starts in April."""

    year: int
    half: int

    @property
    def code(self) -> str:
        return f"{self.year}-H{self.half}"

    @property
    def start(self) -> date:
        return date(self.year, 4, 1) if self.half == 1 else date(self.year, 10, 1)

    @property
    def end(self) -> date:
        return date(self.year, 9, 30) if self.half == 1 else date(self.year + 1, 3, 31)

    @property
    def label(self) -> str:
        if self.half == 1:
            return f"1 April to 30 September {self.year}"
        return f"1 October {self.year} to 31 March {self.year + 1}"

    def previous(self) -> HalfYear:
        return HalfYear(self.year, 1) if self.half == 2 else HalfYear(self.year - 1, 2)

    def next(self) -> HalfYear:
        return HalfYear(self.year, 2) if self.half == 1 else HalfYear(self.year + 1, 1)


def half_year_of(day: date) -> HalfYear:
    if 4 <= day.month <= 9:
        return HalfYear(day.year, 1)
    return HalfYear(day.year if day.month >= 10 else day.year - 1, 2)


def parse_half_year(text: str | None, today: date) -> HalfYear:
    """``2026-H1`` (April–September 2026) or ``2026-H2`` (October 2026–March 2027); the period
    that contains today when nothing is given; a clear error for anything else."""
    text = (text or "").strip()
    if not text:
        return half_year_of(today)
    match = HALF_YEAR_PATTERN.fullmatch(text)
    if match is None or not int(match.group(1)) >= 1:
        raise BusinessRuleViolation(
            {"period": ["Choose a six-month period, like 2026-H1 for April to September 2026"]}
        )
    period = HalfYear(int(match.group(1)), int(match.group(2)))
    check_date_horizon("period", period.start, "The period", today=today)
    return period


@dataclass
class PaymentPerformance:
    """Invoices paid in the period: how many, the share paid within 30 days, the average days
    to pay and the amount paid late (what was paid on those invoices, incl. VAT)."""

    buyer_id: int | None = None
    buyer_name: str = "All buyers"
    paid_count: int = 0
    on_time_count: int = 0
    total_days: int = 0
    paid_pence: int = 0
    late_pence: int = 0

    @property
    def late_count(self) -> int:
        return self.paid_count - self.on_time_count

    @property
    def on_time_percent(self) -> float | None:
        if not self.paid_count:
            return None
        return round(100 * self.on_time_count / self.paid_count, 1)

    @property
    def average_days(self) -> float | None:
        return round(self.total_days / self.paid_count, 1) if self.paid_count else None

    # By days to pay, the bands of the payments compliance notice (Procurement Regulations
    # 2024 reg. 38: day 1 is the day after receipt): within 30 days, 31 to 60, 61 or more.
    band_counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    band_pence: list[int] = field(default_factory=lambda: [0, 0, 0])

    @property
    def band_count_tenths(self) -> list[int] | None:
        """Each band's share of the number paid in tenths of a percent, summing to exactly
        1,000 (largest remainder), so the published percentages add up to 100.0."""
        return allocate(1_000, self.band_counts) if self.paid_count else None

    @property
    def band_value_tenths(self) -> list[int] | None:
        """The same by value (what was paid, incl. VAT)."""
        if sum(self.band_pence) <= 0 or any(p < 0 for p in self.band_pence):
            return None
        return allocate(1_000, self.band_pence)

    def add(self, days: int, on_time: bool, amount: int) -> None:
        self.paid_count += 1
        self.total_days += days
        self.paid_pence += amount
        band = 0 if days <= 30 else 1 if days <= 60 else 2
        self.band_counts[band] += 1
        self.band_pence[band] += amount
        if on_time:
            self.on_time_count += 1
        else:
            self.late_pence += amount


@dataclass
class PaymentPerformanceReport:
    period: HalfYear
    total: PaymentPerformance
    by_buyer: list[PaymentPerformance] = field(default_factory=list)


def payment_performance(period: HalfYear, buyer_id: int | None = None) -> PaymentPerformanceReport:
    """The figures for invoices paid between the period's first and last day, for one lead buyer
    or (``buyer_id`` None, the authority's view) for all, with a line per buyer."""
    paid = sa.and_(
        Invoice.status == InvoiceStatus.PAID, Invoice.paid_on.between(period.start, period.end)
    )
    if buyer_id is not None:
        paid = sa.and_(paid, Invoice.lead_buyer_id == buyer_id)
    credited = dict(
        db.session.execute(_credited_by_invoice(sa.select(Invoice.id).where(paid))).all()
    )
    total = PaymentPerformance(buyer_id=buyer_id)
    per_buyer: dict[int, PaymentPerformance] = {}
    for invoice_id, lead_buyer_id, name, gross, received_at, paid_on, due_on in db.session.execute(
        sa.select(
            Invoice.id,
            Invoice.lead_buyer_id,
            Organisation.name,
            Invoice.gross_pence,
            Invoice.received_at,
            Invoice.paid_on,
            Invoice.due_on,
        )
        .join(Organisation, Organisation.id == Invoice.lead_buyer_id)
        .where(paid)
    ):
        amount = gross - int(credited.get(invoice_id) or 0)
        days, on_time = _days(received_at, paid_on), paid_on <= due_on
        total.add(days, on_time, amount)
        line = per_buyer.setdefault(
            lead_buyer_id, PaymentPerformance(buyer_id=lead_buyer_id, buyer_name=name)
        )
        line.add(days, on_time, amount)
    if buyer_id is not None and buyer_id in per_buyer:
        total.buyer_name = per_buyer[buyer_id].buyer_name
    return PaymentPerformanceReport(
        period=period,
        total=total,
        by_buyer=sorted(per_buyer.values(), key=lambda line: line.buyer_name.lower()),
    )


# ---------------------------------------------------------------------------------------------
# A co-funder's recharge statement


@dataclass(frozen=True)
class RechargeRow:
    """One invoice or credit note of a co-funded call-off, and the funder's exact part of it."""

    document: str  # invoice or credit note number
    kind: str  # "invoice" or "credit note"
    invoice: Invoice
    issued_on: date
    basis_points: int
    total_gross_pence: int
    part_net_pence: int
    part_vat_pence: int
    part_gross_pence: int


def recharge_statement(organisation_id: int, start: date, end: date) -> list[RechargeRow]:
    """Every invoice and credit note issued between ``start`` and ``end`` on call-offs that the
    organisation co-funds (but does not lead), split by the funder shares with the largest
    remainder so the funders' parts sum exactly to each document's total."""
    funded = sa.select(CallOffFunder.call_off_id).where(
        CallOffFunder.organisation_id == organisation_id, CallOffFunder.is_lead.is_(False)
    )
    invoices = db.session.scalars(
        sa.select(Invoice)
        .where(
            Invoice.call_off_id.in_(funded),
            Invoice.status != InvoiceStatus.DRAFT,
            Invoice.issued_at.is_not(None),
        )
        .options(
            selectinload(Invoice.credit_notes),
            selectinload(Invoice.provider),
            selectinload(Invoice.lead_buyer),
        )
        .order_by(Invoice.issued_at, Invoice.id)
    ).all()
    funders: dict[int, list[CallOffFunder]] = {}
    for funder in db.session.scalars(
        sa.select(CallOffFunder).where(
            CallOffFunder.call_off_id.in_({invoice.call_off_id for invoice in invoices})
        )
    ):
        funders.setdefault(funder.call_off_id, []).append(funder)
    rows: list[RechargeRow] = []
    for invoice in invoices:
        documents = [
            ("invoice", invoice.number, invoice.issued_at, invoice.net_pence, invoice.vat_pence)
        ] + [
            ("credit note", note.number, note.created_at, -note.net_pence, -note.vat_pence)
            for note in invoice.credit_notes
        ]
        for kind, number, issued_at, net, vat in documents:
            issued_on = london_date(issued_at)
            if not start <= issued_on <= end:
                continue
            [part] = [
                p
                for p in split_among(funders[invoice.call_off_id], net, vat)
                if p.organisation_id == organisation_id
            ]
            rows.append(
                RechargeRow(
                    document=number,
                    kind=kind,
                    invoice=invoice,
                    issued_on=issued_on,
                    basis_points=part.basis_points,
                    total_gross_pence=net + vat,
                    part_net_pence=part.net_pence,
                    part_vat_pence=part.vat_pence,
                    part_gross_pence=part.gross_pence,
                )
            )
    return rows
