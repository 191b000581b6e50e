"""The invoice rules: the monthly run, issuing with gapless numbers, validation, disputes, payment.

Every function that changes data takes the ``actor`` (None for the scheduled run), flushes and
never commits; the caller commits once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from marketplace import audit
from marketplace.accounts.models import Role, User
from marketplace.accreditation.services.applications import london_date
from marketplace.db import db, lock_rows, utcnow
from marketplace.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.invoices.models import (
    DESCRIPTION_MAX,
    INVOICE_TRANSITIONS,
    PAYMENT_DAYS,
    PAYMENT_REFERENCE_MAX,
    REASON_MAX,
    Invoice,
    InvoiceCounter,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    PaymentMethod,
)
from marketplace.money import split_by_basis_points, vat_pence
from marketplace.notifications.services import email_people
from marketplace.orders.models import CallOff, Delivery
from marketplace.orders.permissions import BUYER_ROLES
from marketplace.outcomes.models import ClaimStatus, OutcomeClaim

LONDON = ZoneInfo("Europe/London")
PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")
INVOICE_FIELDS = ["status", "number", "net_pence", "vat_pence", "gross_pence", "due_on"]
PROVIDER_ISSUERS = frozenset({Role.PROVIDER_ADMIN})
# How many call-offs the run writes per flush: bounded memory whatever the size of the month.
RUN_BATCH = 500


def parse_period(text: str) -> tuple[date, date]:
    """The first and last day of the month ``YYYY-MM``; a clear error otherwise."""
    match = PERIOD_PATTERN.fullmatch((text or "").strip())
    if match is None:
        raise BusinessRuleViolation(
            {"period": ["Enter the period as a year and month, like 2026-10"]}
        )
    year, month = int(match.group(1)), int(match.group(2))
    if not 1 <= month <= 12 or not 2000 <= year <= 2999:
        raise BusinessRuleViolation({"period": ["Enter a real month, like 2026-10"]})
    start = date(year, month, 1)
    end = (start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return start, end


def line_amounts(units: int, unit_price_pence: int, treatment) -> tuple[int, int, int]:
    """Net, VAT (this line's, rounded half up) and gross pence of one line."""
    net = units * unit_price_pence
    vat = vat_pence(net, treatment)
    return net, vat, net + vat


def _total(invoice: Invoice) -> None:
    invoice.net_pence = sum(line.net_pence for line in invoice.lines)
    invoice.vat_pence = sum(line.vat_pence for line in invoice.lines)
    invoice.gross_pence = invoice.net_pence + invoice.vat_pence


# ---------------------------------------------------------------------------------------------
# The monthly run


@dataclass
class RunResult:
    period_start: date
    period_end: date
    call_offs: int = 0  # with delivery not yet billed in the period
    created: int = 0  # new draft invoices
    extended: int = 0  # drafts of the period that took late-recorded delivery
    lines: int = 0
    outcome_invoices: int = 0  # new outcome invoices (verified outcome claims)
    outcome_lines: int = 0


def _unbilled_in(start: date, end: date) -> list:
    """Deliveries with units in the period that no invoice line bills yet."""
    billed = sa.select(InvoiceLine.delivery_id).where(InvoiceLine.delivery_id == Delivery.id)
    return [Delivery.delivered_on.between(start, end), Delivery.units > 0, ~sa.exists(billed)]


def unbilled_call_off_ids(start: date, end: date) -> list[int]:
    """Call-offs with delivery in the period that no invoice line bills yet."""
    return list(
        db.session.scalars(
            sa.select(Delivery.call_off_id)
            .where(*_unbilled_in(start, end))
            .distinct()
            .order_by(Delivery.call_off_id)
        )
    )


def run_period(period: str, *, now: datetime | None = None) -> RunResult:
    """Draft an invoice per call-off for its delivery in the month ``YYYY-MM`` not yet billed
    (see ``bill_period``)."""
    start, end = parse_period(period)
    result = bill_period(start, end, unbilled_call_off_ids(start, end), now=now)
    outcomes = bill_outcome_claims(start, end, now=now)
    result.outcome_invoices, result.outcome_lines = outcomes.created, outcomes.lines
    return result


def bill_period(
    start: date,
    end: date,
    call_off_ids: Sequence[int],
    *,
    now: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> RunResult:
    """Draft an invoice per call-off among ``call_off_ids`` for its delivery in the period not
    yet billed.

    Safe to repeat: a delivery already on a line is skipped, and late-recorded delivery joins the
    period's draft while it is still a draft (else it gets a new draft of its own). Delivery of a
    call-off cancelled later stays payable, so it is billed like any other; units never
    delivered are never billed. ``progress(n)`` is told after each batch of ``n`` call-offs.
    """
    now = now or utcnow()
    result = RunResult(start, end, call_offs=len(call_off_ids))
    for offset in range(0, len(call_off_ids), RUN_BATCH):
        batch = call_off_ids[offset : offset + RUN_BATCH]
        _bill_batch(batch, start, end, now, result)
        if progress is not None:
            progress(len(batch))
    return result


def _bill_batch(
    call_off_ids: Sequence[int], start: date, end: date, now: datetime, result: RunResult
) -> None:
    call_offs = {
        c.id: c
        for c in db.session.scalars(
            sa.select(CallOff)
            .where(CallOff.id.in_(call_off_ids))
            .options(selectinload(CallOff.listing))
        )
    }
    drafts = {
        invoice.call_off_id: invoice
        for invoice in db.session.scalars(
            sa.select(Invoice)
            .where(
                Invoice.call_off_id.in_(call_off_ids),
                Invoice.kind == InvoiceKind.MONTHLY,
                Invoice.period_start == start,
                Invoice.status == InvoiceStatus.DRAFT,
            )
            .options(selectinload(Invoice.lines))
        )
    }
    deliveries = db.session.scalars(
        sa.select(Delivery)
        .where(Delivery.call_off_id.in_(call_off_ids), *_unbilled_in(start, end))
        .order_by(Delivery.call_off_id, Delivery.delivered_on, Delivery.id)
    )
    touched: dict[int, Invoice] = {}
    for delivery in deliveries:
        call_off = call_offs[delivery.call_off_id]
        invoice = touched.get(call_off.id) or drafts.get(call_off.id)
        if invoice is None:
            invoice = Invoice(
                provider_id=call_off.provider_id,
                lead_buyer_id=call_off.lead_buyer_id,
                call_off_id=call_off.id,
                kind=InvoiceKind.MONTHLY,
                period_start=start,
                period_end=end,
                status=InvoiceStatus.DRAFT,
                po_number=call_off.po_number,
                call_off_reference=call_off.reference,
                created_at=now,
                lines=[],
            )
            db.session.add(invoice)
            result.created += 1
        elif call_off.id not in touched:
            result.extended += 1
        touched[call_off.id] = invoice
        net, vat, gross = line_amounts(
            delivery.units, call_off.unit_price_pence, call_off.vat_treatment
        )
        invoice.lines.append(
            InvoiceLine(
                delivery_id=delivery.id,
                delivered_on=delivery.delivered_on,
                description=(
                    f"{call_off.listing.title} ({call_off.unit.value.replace('_', '-')}), "
                    f"{delivery.delivered_on.day} {delivery.delivered_on:%B %Y}"
                )[:DESCRIPTION_MAX],
                units=delivery.units,
                unit_price_pence=call_off.unit_price_pence,
                vat_treatment=call_off.vat_treatment,
                net_pence=net,
                vat_pence=vat,
                gross_pence=gross,
            )
        )
        result.lines += 1
    for invoice in touched.values():
        _total(invoice)
    db.session.flush()
    for invoice in touched.values():
        audit.record(
            None,
            "invoice.drafted",
            invoice,
            organisation=invoice.provider_id,
            after={**audit.snapshot(invoice, INVOICE_FIELDS), "lines": len(invoice.lines)},
        )


# ---------------------------------------------------------------------------------------------
# Who may act


def visible_invoice(actor: User, invoice_id: int, organisation_id: int | None = None) -> Invoice:
    """The invoice if the actor's organisation (``organisation_id``, else any of theirs) is its
    provider, or its lead buyer once it is issued (a draft is the provider's own); else NotFound,
    so nobody learns of another organisation's invoices."""
    invoice = db.session.get(Invoice, invoice_id)
    mine = {m.organisation_id for m in actor.memberships}
    if organisation_id is not None:
        mine &= {organisation_id}
    if invoice is None:
        raise NotFound("Invoice not found")
    provider_side = invoice.provider_id in mine
    buyer_side = invoice.lead_buyer_id in mine and invoice.status != InvoiceStatus.DRAFT
    if not (provider_side or buyer_side):
        raise NotFound("Invoice not found")
    return invoice


def _require_provider(actor: User, invoice: Invoice) -> None:
    roles = actor.roles_for(invoice.provider_id)
    if not roles:
        raise NotFound("Invoice not found")
    if not roles & PROVIDER_ISSUERS:
        raise PermissionDenied("Only a provider administrator can do that")


def _require_buyer(actor: User, invoice: Invoice) -> None:
    roles = actor.roles_for(invoice.lead_buyer_id)
    if not roles:
        raise NotFound("Invoice not found")
    if not roles & BUYER_ROLES:
        raise PermissionDenied("Only the lead buyer's buyers and approvers can do that")


def _transition(invoice: Invoice, new_status: InvoiceStatus) -> None:
    _check_transition(invoice, new_status)
    invoice.status = new_status


def _check_transition(invoice: Invoice, new_status: InvoiceStatus) -> None:
    if new_status not in INVOICE_TRANSITIONS[invoice.status]:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This invoice is {invoice.status.label.lower()}, so it cannot become "
                    f"{new_status.label.lower()}"
                ]
            }
        )


def _record(actor: User | None, action: str, invoice: Invoice, before: dict, **extra) -> None:
    after = audit.snapshot(invoice, INVOICE_FIELDS)
    after.update(extra)
    audit.record(actor, action, invoice, before=before, after=after)


# ---------------------------------------------------------------------------------------------
# The provider issues; the lead buyer validates, disputes and pays


def invoice_number(sequence: int) -> str:
    return f"INV-{sequence:06d}"


def _ensure_counter(organisation_id: int) -> None:
    """The provider's counter row, made by its first issue; two first issues at once both go on
    (the second insert does nothing) instead of one failing on the key."""
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(
        insert(InvoiceCounter.__table__)
        .values(organisation_id=organisation_id, last_number=0)
        .on_conflict_do_nothing(index_elements=["organisation_id"])
    )


def issue(actor: User, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """The provider issues a draft: it takes the provider's next number and goes to the lead buyer,
    who receives it now; it is due 30 days later."""
    _require_provider(actor, invoice)
    if not invoice.lines:
        raise BusinessRuleViolation({"status": ["An invoice with no lines cannot be issued"]})
    now = now or utcnow()
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    _check_transition(invoice, InvoiceStatus.ISSUED)
    # The counter row is locked until the commit: two invoices issued at once take consecutive
    # numbers, and a rolled-back issue gives its number back, so the numbers have no gaps.
    _ensure_counter(invoice.provider_id)
    [counter] = lock_rows(InvoiceCounter, [invoice.provider_id])
    counter.last_number += 1
    invoice.status = InvoiceStatus.ISSUED
    invoice.sequence = counter.last_number
    invoice.number = invoice_number(counter.last_number)
    invoice.issued_at = invoice.received_at = now
    invoice.issued_by_id = actor.id
    invoice.due_on = london_date(now) + timedelta(days=PAYMENT_DAYS)
    _record(actor, "invoice.issued", invoice, before)
    email_people(invoice.lead_buyer_id, BUYER_ROLES, "invoices_issued", invoice=invoice)
    return invoice


def validate(actor: User, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """The lead buyer accepts the invoice as right (after a dispute: the dispute is resolved)."""
    _require_buyer(actor, invoice)
    now = now or utcnow()
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    was_disputed = invoice.status == InvoiceStatus.DISPUTED
    _transition(invoice, InvoiceStatus.VALIDATED)
    invoice.validated_at = now
    if was_disputed:
        invoice.resolved_at = now
    _record(actor, "invoice.validated", invoice, before, resolved=was_disputed)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_validated", invoice=invoice)
    return invoice


def dispute(actor: User, invoice: Invoice, reason: str, *, now: datetime | None = None) -> Invoice:
    """The lead buyer disputes an issued invoice with a reason, which the provider sees at once."""
    _require_buyer(actor, invoice)
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({"reason": ["Enter why you dispute the invoice"]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX:,} characters or fewer"]}
        )
    now = now or utcnow()
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    _transition(invoice, InvoiceStatus.DISPUTED)
    invoice.disputed_at, invoice.dispute_reason = now, reason
    _record(actor, "invoice.disputed", invoice, before, reason=reason)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_disputed", invoice=invoice)
    return invoice


def mark_paid_by_bacs(
    actor: User,
    invoice: Invoice,
    remittance_reference: str,
    paid_on: object,
    *,
    now: datetime | None = None,
) -> Invoice:
    """The lead buyer records a BACS payment of a validated invoice."""
    _require_buyer(actor, invoice)
    now = now or utcnow()
    errors: dict[str, list[str]] = {}
    reference = (remittance_reference or "").strip()
    if not reference:
        errors["payment_reference"] = ["Enter the remittance reference of the payment"]
    elif len(reference) > PAYMENT_REFERENCE_MAX:
        errors["payment_reference"] = [
            f"The remittance reference must be {PAYMENT_REFERENCE_MAX} characters or fewer"
        ]
    if not isinstance(paid_on, date) or isinstance(paid_on, datetime):
        errors["paid_on"] = ["Enter the date the payment was made"]
    elif paid_on > london_date(now):
        errors["paid_on"] = ["The payment date must be today or in the past"]
    elif invoice.received_at is not None and paid_on < london_date(invoice.received_at):
        errors["paid_on"] = ["The payment date cannot be before the invoice was received"]
    if errors:
        raise BusinessRuleViolation(errors)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    _transition(invoice, InvoiceStatus.PAID)
    invoice.paid_at, invoice.paid_on = now, paid_on
    invoice.payment_method, invoice.payment_reference = PaymentMethod.BACS, reference
    _record(actor, "invoice.paid", invoice, before, method="bacs", reference=reference)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_paid", invoice=invoice)
    return invoice


# ---------------------------------------------------------------------------------------------
# Co-funders' recharges


@dataclass(frozen=True)
class RechargePart:
    organisation_id: int
    basis_points: int
    net_pence: int
    vat_pence: int
    gross_pence: int


def recharge_parts(invoice: Invoice, call_off: CallOff | None = None) -> list[RechargePart]:
    """The invoice split by the call-off's funder shares (lead first), each amount by largest
    remainder so the parts of the net, the VAT and the gross each sum exactly to the invoice's.

    The gross parts are the net and VAT parts added, so each funder's part is itself consistent.
    """
    call_off = call_off or invoice.call_off
    funders = sorted(call_off.funders, key=lambda f: (not f.is_lead, f.organisation_id))
    shares = [f.basis_points for f in funders]
    nets = split_by_basis_points(invoice.net_pence, shares)
    vats = split_by_basis_points(invoice.vat_pence, shares)
    return [
        RechargePart(f.organisation_id, f.basis_points, net, vat, net + vat)
        for f, net, vat in zip(funders, nets, vats, strict=True)
    ]


# ---------------------------------------------------------------------------------------------
# Outcome invoices (payment by results)


def _verified_unbilled(end: date) -> list:
    """Verified outcome claims, verified by the end of ``end`` (London), on no invoice line."""
    until = datetime.combine(end + timedelta(days=1), datetime.min.time(), tzinfo=LONDON)
    billed = sa.select(InvoiceLine.outcome_claim_id).where(
        InvoiceLine.outcome_claim_id == OutcomeClaim.id
    )
    return [
        OutcomeClaim.status == ClaimStatus.VERIFIED,
        OutcomeClaim.verified_at < until,
        ~sa.exists(billed),
    ]


def bill_outcome_claims(start: date, end: date, *, now: datetime | None = None) -> RunResult:
    """Draft one outcome invoice per call-off for its verified claims not yet billed (verified
    up to the end of the period), apart from the monthly delivery invoices.

    A line per claim: one unit at the outcome's tariff, VAT at the call-off's locked treatment,
    rounded per line. Safe to repeat: a claim already on a line is skipped, and a claim verified
    late joins the period's outcome draft while it is still a draft.
    """
    now = now or utcnow()
    result = RunResult(start, end)
    claims = list(
        db.session.scalars(
            sa.select(OutcomeClaim)
            .where(*_verified_unbilled(end))
            .options(selectinload(OutcomeClaim.term), selectinload(OutcomeClaim.call_off))
            .order_by(OutcomeClaim.call_off_id, OutcomeClaim.achieved_on, OutcomeClaim.id)
        )
    )
    call_off_ids = sorted({claim.call_off_id for claim in claims})
    result.call_offs = len(call_off_ids)
    drafts = {
        invoice.call_off_id: invoice
        for invoice in db.session.scalars(
            sa.select(Invoice)
            .where(
                Invoice.call_off_id.in_(call_off_ids),
                Invoice.kind == InvoiceKind.OUTCOME,
                Invoice.period_start == start,
                Invoice.status == InvoiceStatus.DRAFT,
            )
            .options(selectinload(Invoice.lines))
        )
    }
    touched: dict[int, Invoice] = {}
    for claim in claims:
        call_off = claim.call_off
        invoice = touched.get(call_off.id) or drafts.get(call_off.id)
        if invoice is None:
            invoice = Invoice(
                provider_id=call_off.provider_id,
                lead_buyer_id=call_off.lead_buyer_id,
                call_off_id=call_off.id,
                kind=InvoiceKind.OUTCOME,
                period_start=start,
                period_end=end,
                status=InvoiceStatus.DRAFT,
                po_number=call_off.po_number,
                call_off_reference=call_off.reference,
                created_at=now,
                lines=[],
            )
            db.session.add(invoice)
            result.created += 1
        elif call_off.id not in touched:
            result.extended += 1
        touched[call_off.id] = invoice
        tariff = claim.term.tariff_pence
        net, vat, gross = line_amounts(1, tariff, call_off.vat_treatment)
        invoice.lines.append(
            InvoiceLine(
                outcome_claim_id=claim.id,
                delivered_on=claim.achieved_on,
                description=(
                    f"Outcome: {claim.term.outcome} ({claim.reference}), achieved "
                    f"{claim.achieved_on.day} {claim.achieved_on:%B %Y}"
                )[:DESCRIPTION_MAX],
                units=1,
                unit_price_pence=tariff,
                vat_treatment=call_off.vat_treatment,
                net_pence=net,
                vat_pence=vat,
                gross_pence=gross,
            )
        )
        result.lines += 1
    for invoice in touched.values():
        _total(invoice)
    db.session.flush()
    for invoice in touched.values():
        audit.record(
            None,
            "invoice.drafted",
            invoice,
            organisation=invoice.provider_id,
            after={**audit.snapshot(invoice, INVOICE_FIELDS), "lines": len(invoice.lines)},
        )
    return result
