"""The statutory transparency exports (issue 22), one query function each, which the pages, the
CSV downloads and the API all call, so their rows are the same:

- ``pcc_spend``: a PCC's payments in a month where its part is over £500 (the Elected Local
  Policing Bodies (Specified Information) Order 2011);
- ``contracts_register``: the contracts over £5,000 a commissioner funds, awarded in a quarter
  (Local Government Transparency Code 2015);
- ``large_payments``: a commissioner's payments in a quarter where its part is over £30,000
  (Procurement Act 2023 s.70);
- ``payments_compliance``: the six-monthly payments compliance figures (Procurement Act 2023
  s.69, Procurement Regulations 2024 reg. 38), from ``invoices.queries.payment_performance``.

They read the source tables (invoices, credit notes, call-offs and their funders), not the spend
ledger. A funder's part of each document is split by ``invoices.services.recharging.
split_among``, as the recharge statements and the ledger split it, so the figures agree with
both by construction.

What a payment is: an invoice paid, on its ``paid_on`` day, for what it was paid (its gross less
the credit notes raised before the payment); the organisation's part is the sum of its parts of
the invoice and of those credit notes. A credit note raised after the invoice was paid is a
refund, a negative payment on the day it was raised. Amounts include VAT: what the organisation
pays, as a public body that cannot in general recover it. An item is over a threshold when its
size (a refund's too) is strictly more than the threshold.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import COMMISSIONER_TYPES, Organisation, OrganisationType
from marketplace.accounts.queries import classifications_in_force
from marketplace.core.clock import LONDON, london_date
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.validation import check_date_horizon
from marketplace.insight.identifiers import call_off_ocid
from marketplace.invoices.models import CreditNote, Invoice, InvoiceStatus
from marketplace.invoices.queries import (
    HALF_YEAR_PATTERN,
    HalfYear,
    PaymentPerformance,
    payment_performance,
)
from marketplace.invoices.services.recharging import split_among
from marketplace.orders.models import AwardRoute, CallOff, CallOffFunder, CallOffStatus
from marketplace.reference.models import ServiceCategory

PCC_SPEND_THRESHOLD_PENCE = 50_000  # £500
CONTRACT_THRESHOLD_PENCE = 500_000  # £5,000
LARGE_PAYMENT_THRESHOLD_PENCE = 3_000_000  # £30,000

MONTH_PATTERN = re.compile(r"(\d{4})-(\d{2})")
QUARTER_PATTERN = re.compile(r"(\d{4})-Q([1-4])")

MONTHS = list(calendar.month_name)[1:]


# ---------------------------------------------------------------------------------------------
# Periods: a month, a quarter of a financial year, a half-year. Each must have started.


@dataclass(frozen=True)
class Period:
    code: str
    label: str
    start: date
    end: date


def _started(period_start: date, today: date, noun: str) -> None:
    if period_start > today:
        raise BusinessRuleViolation(
            {"period": [f"Choose a {noun} that has ended or is under way, not one to come"]}
        )


def _month_end(year: int, month: int) -> date:
    following = date(year + (month == 12), month % 12 + 1, 1)
    return following - timedelta(days=1)


def parse_month(text: str | None, today: date) -> Period:
    """``2026-04`` (April 2026): a month that has ended or is under way."""
    match = MONTH_PATTERN.fullmatch((text or "").strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 1:
        raise BusinessRuleViolation({"period": ["Enter a month like 2026-04 for April 2026"]})
    year, month = int(match.group(1)), int(match.group(2))
    start = date(year, month, 1)
    check_date_horizon("period", start, "The month", today=today)
    _started(start, today, "month")
    return Period(
        f"{year}-{month:02d}", f"{MONTHS[month - 1]} {year}", start, _month_end(year, month)
    )


def quarter_of(day: date) -> Period:
    year = day.year if day.month >= 4 else day.year - 1
    quarter = (day.month - 4) % 12 // 3 + 1
    return _quarter(year, quarter)


def _quarter(year: int, quarter: int) -> Period:
    first_month = (3 + 3 * (quarter - 1)) % 12 + 1  # Q1 April, Q2 July, Q3 October, Q4 January
    start = date(year + (quarter == 4), first_month, 1)
    end = _month_end(start.year, first_month + 2)
    label = (
        f"Quarter {quarter} of {year} to {(year + 1) % 100:02d}: "
        f"{MONTHS[first_month - 1]} to {MONTHS[first_month + 1]} {start.year}"
    )
    return Period(f"{year}-Q{quarter}", label, start, end)


def parse_quarter(text: str | None, today: date) -> Period:
    """``2026-Q1`` (April to June 2026; the financial year 2026 to 27 starts in April) to
    ``2026-Q4`` (January to March 2027): a quarter that has ended or is under way."""
    match = QUARTER_PATTERN.fullmatch((text or "").strip())
    if match is None or int(match.group(1)) < 1:
        raise BusinessRuleViolation(
            {"period": ["Enter a quarter like 2026-Q1 for April to June 2026"]}
        )
    period = _quarter(int(match.group(1)), int(match.group(2)))
    check_date_horizon("period", period.start, "The quarter", today=today)
    _started(period.start, today, "quarter")
    return period


def parse_half(text: str | None, today: date) -> Period:
    """``2026-H1`` (April to September 2026) or ``2026-H2`` (October 2026 to March 2027): a
    half-year that has ended or is under way."""
    match = HALF_YEAR_PATTERN.fullmatch((text or "").strip())
    if match is None or int(match.group(1)) < 1:
        raise BusinessRuleViolation(
            {"period": ["Enter a six-month period like 2026-H1 for April to September 2026"]}
        )
    half = HalfYear(int(match.group(1)), int(match.group(2)))
    check_date_horizon("period", half.start, "The period", today=today)
    _started(half.start, today, "six-month period")
    return Period(half.code, half.label, half.start, half.end)


def _utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """The UTC instants between which London's days ``start`` to ``end`` fall."""
    first = datetime.combine(start, time(), LONDON).astimezone(UTC)
    after = datetime.combine(end + timedelta(days=1), time(), LONDON).astimezone(UTC)
    return first, after


# ---------------------------------------------------------------------------------------------
# Whose export


def export_organisation(organisation_id: int | None, *, pcc_only: bool = False) -> Organisation:
    """The commissioner an export is for; an unknown one (or, for the PCC's export, one that is
    not a PCC) is not found."""
    organisation = db.session.get(Organisation, organisation_id) if organisation_id else None
    if organisation is None or not organisation.is_commissioner:
        raise NotFound("There is no commissioning organisation with that id")
    if pcc_only and organisation.type != OrganisationType.PCC:
        raise NotFound("That organisation is not a Police and Crime Commissioner")
    return organisation


def export_subject(
    viewer: Organisation, requested_id: int | None, *, pcc_only: bool = False
) -> Organisation:
    """Whose export: the viewer's own, or for the authority the commissioner it chose. Another
    organisation's is not found (404), so that its existence does not leak."""
    if viewer.is_authority:
        if requested_id is None:
            raise BusinessRuleViolation({"organisation": ["Choose the organisation"]})
        return export_organisation(requested_id, pcc_only=pcc_only)
    if requested_id is not None and requested_id != viewer.id:
        raise NotFound("Not found")
    return export_organisation(viewer.id, pcc_only=pcc_only)


def commissioners(pcc_only: bool = False) -> list[Organisation]:
    """The organisations the authority may choose between, by name."""
    types = {OrganisationType.PCC} if pcc_only else COMMISSIONER_TYPES
    return list(
        db.session.scalars(
            sa.select(Organisation)
            .where(Organisation.type.in_(types))
            .order_by(Organisation.name, Organisation.id)
        )
    )


# ---------------------------------------------------------------------------------------------
# Payments: an organisation's part of each invoice paid and each refund


@dataclass(frozen=True)
class Payment:
    day: date
    kind: str  # "payment" or "refund"
    reference: str  # the invoice's number, or the refunding credit note's
    invoice_number: str
    call_off: CallOff
    supplier: str
    amount_pence: int  # the organisation's part, VAT included


def _part(funders, organisation_id: int, net: int, vat: int) -> int:
    [part] = [p for p in split_among(funders, net, vat) if p.organisation_id == organisation_id]
    return part.gross_pence


def organisation_payments(organisation_id: int, start: date, end: date) -> list[Payment]:
    """The organisation's part of every payment and refund from ``start`` to ``end`` on the
    call-offs it funds, oldest first."""
    first, after = _utc_bounds(start, end)
    funded = sa.select(CallOffFunder.call_off_id).where(
        CallOffFunder.organisation_id == organisation_id
    )
    refunded = sa.select(CreditNote.invoice_id).where(
        CreditNote.created_at >= first, CreditNote.created_at < after
    )
    invoices = db.session.scalars(
        sa.select(Invoice)
        .where(
            Invoice.call_off_id.in_(funded),
            Invoice.status == InvoiceStatus.PAID,
            sa.or_(Invoice.paid_on.between(start, end), Invoice.id.in_(refunded)),
        )
        .options(
            selectinload(Invoice.credit_notes),
            selectinload(Invoice.provider),
            selectinload(Invoice.call_off).selectinload(CallOff.funders),
        )
    ).all()
    payments: list[Payment] = []
    for invoice in invoices:
        funders = invoice.call_off.funders
        before = [note for note in invoice.credit_notes if note.created_at <= invoice.paid_at]
        after_payment = [note for note in invoice.credit_notes if note.created_at > invoice.paid_at]

        def payment(day: date, kind: str, reference: str, amount: int, invoice=invoice) -> Payment:
            return Payment(
                day,
                kind,
                reference,
                invoice.number,
                invoice.call_off,
                invoice.provider.name,
                amount,
            )

        if start <= invoice.paid_on <= end:
            amount = _part(funders, organisation_id, invoice.net_pence, invoice.vat_pence) + sum(
                _part(funders, organisation_id, -note.net_pence, -note.vat_pence) for note in before
            )
            payments.append(payment(invoice.paid_on, "payment", invoice.number, amount))
        for note in after_payment:
            day = london_date(note.created_at)
            if start <= day <= end:
                amount = _part(funders, organisation_id, -note.net_pence, -note.vat_pence)
                payments.append(payment(day, "refund", note.number, amount))
    payments = [p for p in payments if p.amount_pence != 0]
    return sorted(payments, key=lambda p: (p.day, p.reference))


def _categories(call_offs) -> dict[int, str]:
    ids = {c.category_id for c in call_offs}
    if not ids:
        return {}
    return dict(
        db.session.execute(
            sa.select(ServiceCategory.id, ServiceCategory.name).where(ServiceCategory.id.in_(ids))
        ).all()
    )


def purpose(call_off: CallOff, categories: dict[int, str]) -> str:
    return f"{call_off.service_title} ({categories[call_off.category_id]})"


def value_for_money_reason(call_off: CallOff) -> str:
    """How it was bought: from the published rate card under the dynamic purchasing system,
    with the buyer's recorded reason for the provider, or after a further competition."""
    if call_off.award_route == AwardRoute.FURTHER_COMPETITION:
        return "Awarded after a further competition among the lot's members"
    reason = call_off.choice_reason.label if call_off.choice_reason else "no reason recorded"
    return f"Call-off at the published rate card price: {reason}"


# ---------------------------------------------------------------------------------------------
# 1. A PCC's spend over £500 in a month


@dataclass(frozen=True)
class SpendRow:
    paid_on: date
    supplier: str
    amount_pence: int
    purpose: str
    value_for_money: str
    transaction: str  # the invoice's (or refund's credit note's) number


def pcc_spend(organisation: Organisation, period: Period) -> list[SpendRow]:
    """Every payment (and refund) in the month where the PCC's part is over £500."""
    payments = [
        p
        for p in organisation_payments(organisation.id, period.start, period.end)
        if abs(p.amount_pence) > PCC_SPEND_THRESHOLD_PENCE
    ]
    categories = _categories(p.call_off for p in payments)
    return [
        SpendRow(
            p.day,
            p.supplier,
            p.amount_pence,
            purpose(p.call_off, categories),
            value_for_money_reason(p.call_off),
            p.reference,
        )
        for p in payments
    ]


# ---------------------------------------------------------------------------------------------
# 2. The contracts register: contracts over £5,000 awarded in a quarter


@dataclass(frozen=True)
class ContractRow:
    reference: str
    title: str
    supplier: str
    registration_number: str
    sme: bool
    vcse: bool
    value_pence: int  # the whole contract, VAT included
    share_pence: int  # the organisation's share of it
    start_date: date
    end_date: date
    awarded_on: date
    award_route: str
    status: str
    ocid: str


def award_route_label(call_off: CallOff) -> str:
    if call_off.award_route == AwardRoute.FURTHER_COMPETITION:
        return "Further competition (published invitation to tender)"
    return "Call-off from the rate card (no competition)"


def contracts_register(organisation: Organisation, period: Period) -> list[ContractRow]:
    """Every call-off the organisation funds that the provider accepted in the quarter (the
    contract was entered into) and whose whole value is over £5,000. A call-off withdrawn
    before acceptance (declined, expired, cancelled) never became a contract and is left out;
    one cancelled after acceptance was a contract and stays, its status saying so. SME and VCSE
    are the provider's classification in force on the day of acceptance."""
    first, after = _utc_bounds(period.start, period.end)
    rows = db.session.execute(
        sa.select(CallOff, CallOffFunder.share_pence)
        .join(CallOffFunder, CallOffFunder.call_off_id == CallOff.id)
        .where(
            CallOffFunder.organisation_id == organisation.id,
            CallOff.accepted_at >= first,
            CallOff.accepted_at < after,
            CallOff.gross_pence > CONTRACT_THRESHOLD_PENCE,
        )
        .options(selectinload(CallOff.provider))
        .order_by(CallOff.accepted_at, CallOff.id)
    ).all()
    by_day: dict[date, set[int]] = {}
    for call_off, _ in rows:
        by_day.setdefault(london_date(call_off.accepted_at), set()).add(call_off.provider_id)
    flags = {
        (day, provider_id): classification
        for day, ids in by_day.items()
        for provider_id, classification in classifications_in_force(ids, day).items()
    }
    register = []
    for call_off, share in rows:
        day = london_date(call_off.accepted_at)
        classification = flags.get((day, call_off.provider_id))
        provider = call_off.provider
        register.append(
            ContractRow(
                reference=call_off.reference,
                title=call_off.service_title,
                supplier=provider.name,
                registration_number=provider.companies_house_number
                or provider.charity_number
                or "",
                sme=bool(classification and classification.sme),
                vcse=bool(classification and classification.vcse),
                value_pence=call_off.gross_pence,
                share_pence=share,
                start_date=call_off.start_date,
                end_date=call_off.end_date,
                awarded_on=day,
                award_route=award_route_label(call_off),
                status=call_off.status.label
                if call_off.status != CallOffStatus.CANCELLED
                else "Cancelled after award",
                ocid=call_off_ocid(call_off.reference),
            )
        )
    return register


# ---------------------------------------------------------------------------------------------
# 3. Payments over £30,000 in a quarter


@dataclass(frozen=True)
class LargePaymentRow:
    paid_on: date
    supplier: str
    amount_pence: int
    contract_reference: str
    ocid: str
    description: str
    transaction: str


def large_payments(organisation: Organisation, period: Period) -> list[LargePaymentRow]:
    """Every payment (and refund) in the quarter where the organisation's part is over
    £30,000."""
    payments = [
        p
        for p in organisation_payments(organisation.id, period.start, period.end)
        if abs(p.amount_pence) > LARGE_PAYMENT_THRESHOLD_PENCE
    ]
    categories = _categories(p.call_off for p in payments)
    return [
        LargePaymentRow(
            p.day,
            p.supplier,
            p.amount_pence,
            p.call_off.reference,
            call_off_ocid(p.call_off.reference),
            ("Refund: " if p.kind == "refund" else "")
            + f"{purpose(p.call_off, categories)}, invoice {p.invoice_number}",
            p.reference,
        )
        for p in payments
    ]


# ---------------------------------------------------------------------------------------------
# 4. The payments compliance figures for a half-year


def payments_compliance(organisation: Organisation, period: Period) -> PaymentPerformance:
    """The organisation's invoices paid in the half-year (as the lead buyer, which pays them):
    the shares by number and by value paid within 30 days, in 31 to 60 and in 61 or more, and
    the average days to pay."""
    half = HalfYear(int(period.code[:4]), int(period.code[-1]))
    return payment_performance(half, organisation.id).total
