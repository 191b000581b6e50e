"""The invoice rules: the monthly run, issuing with gapless numbers, validation, disputes, payment.

Every function that changes data takes the ``actor`` (None for the scheduled run), flushes and
never commits; the caller commits once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import groupby

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import User
from marketplace.accounts.services.common import email_people
from marketplace.catalogue.models import Listing
from marketplace.catalogue.services.vat import VAT_REGISTRATION_TREATMENTS
from marketplace.core import audit, store
from marketplace.core.clock import LONDON, london_date, utcnow
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
)
from marketplace.core.filters import pounds
from marketplace.core.money import split_by_basis_points, vat_pence
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import check_date_horizon, date_horizon_error
from marketplace.invoices.models import (
    DESCRIPTION_MAX,
    INVOICE_TRANSITIONS,
    PAYMENT_DAYS,
    PAYMENT_REFERENCE_MAX,
    REASON_MAX,
    CreditNote,
    Invoice,
    InvoiceCounter,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
    PaymentMethod,
)
from marketplace.invoices.permissions import PROVIDER_ISSUERS, can_issue, can_settle
from marketplace.invoices.signals import bacs_payment_recording, credit_note_raised
from marketplace.orders import signals as orders_signals
from marketplace.orders.models import CallOff, CallOffFunder, Delivery
from marketplace.orders.permissions import BUYER_ROLES
from marketplace.outcomes.models import ClaimStatus, OutcomeClaim

PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")
INVOICE_FIELDS = ["status", "number", "net_pence", "vat_pence", "gross_pence", "due_on"]
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
    if not 1 <= month <= 12 or not year >= 1:
        raise BusinessRuleViolation({"period": ["Enter a real month, like 2026-10"]})
    start = date(year, month, 1)
    check_date_horizon("period", start, "The month")
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
    """Payable deliveries with units in the period that no invoice line bills yet (a missed
    session is payable only where its listing charged for missed sessions)."""
    billed = sa.select(InvoiceLine.delivery_id).where(InvoiceLine.delivery_id == Delivery.id)
    return [
        Delivery.delivered_on.between(start, end),
        Delivery.units > 0,
        Delivery.payable,
        ~sa.exists(billed),
    ]


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


def check_month_ended(start: date, end: date, *, now: datetime | None = None) -> None:
    """Months are billed in arrears: the current month, or one still to come, is refused (its
    delivery is not all recorded, and an invoice for it would bill part of a month)."""
    today = london_date(now or utcnow())
    if end >= today:
        when = "the current month" if start <= today else "a month still to come"
        raise BusinessRuleViolation(
            {
                "period": [
                    f"{start:%B %Y} is {when}: only a month that has ended can be billed. "
                    f"Run it on or after {end + timedelta(days=1):%-d %B %Y}"
                ]
            }
        )


def run_period(period: str, *, now: datetime | None = None) -> RunResult:
    """Draft an invoice per call-off for its delivery in the month ``YYYY-MM`` not yet billed
    (see ``bill_period``); only a month that has ended."""
    start, end = parse_period(period)
    check_month_ended(start, end, now=now)
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
    # The period's open drafts and all its unbilled delivery, each found by one query: asked
    # batch by batch, the same scans would be repeated for every batch.
    drafts = dict(
        db.session.execute(
            sa.select(Invoice.call_off_id, Invoice.id).where(
                Invoice.kind == InvoiceKind.MONTHLY,
                Invoice.period_start == start,
                Invoice.status == InvoiceStatus.DRAFT,
            )
        ).all()
    )
    unbilled = {
        call_off_id: list(rows)
        for call_off_id, rows in groupby(
            db.session.execute(_unbilled_rows(start, end)).all(), key=lambda row: row.call_off_id
        )
    }
    for offset in range(0, len(call_off_ids), RUN_BATCH):
        batch = [i for i in call_off_ids[offset : offset + RUN_BATCH] if i in unbilled]
        late = {i: drafts[i] for i in batch if i in drafts}
        if late:
            _extend_drafts(late, [row.id for i in late for row in unbilled[i]], result)
        fresh = [unbilled[i] for i in batch if i not in drafts]
        if fresh:
            _draft_in_bulk(fresh, start, end, now, result)
        if progress is not None:
            progress(len(call_off_ids[offset : offset + RUN_BATCH]))
    return result


def _unbilled_rows(start: date, end: date) -> sa.Select:
    """Each unbilled delivery of the period with what its line needs from the call-off and
    listing, by call-off then day."""
    return (
        sa.select(
            Delivery.id,
            Delivery.call_off_id,
            Delivery.delivered_on,
            Delivery.units,
            CallOff.provider_id,
            CallOff.lead_buyer_id,
            CallOff.po_number,
            CallOff.reference,
            CallOff.unit_price_pence,
            CallOff.vat_treatment,
            CallOff.unit,
            Listing.title,
        )
        .join(CallOff, CallOff.id == Delivery.call_off_id)
        .join(Listing, Listing.id == CallOff.listing_id)
        .where(*_unbilled_in(start, end))
        .order_by(Delivery.call_off_id, Delivery.delivered_on, Delivery.id)
    )


def _extend_drafts(draft_ids: dict[int, int], delivery_ids: list[int], result: RunResult) -> None:
    """Late-recorded delivery joins the period's draft of its call-off (the rare case: objects)."""
    drafts = {
        invoice.call_off_id: invoice
        for invoice in db.session.scalars(
            sa.select(Invoice)
            .where(Invoice.id.in_(draft_ids.values()))
            .options(selectinload(Invoice.lines))
        )
    }
    call_offs = {
        c.id: c
        for c in db.session.scalars(
            sa.select(CallOff).where(CallOff.id.in_(drafts)).options(selectinload(CallOff.listing))
        )
    }
    touched: dict[int, Invoice] = {}
    for delivery in db.session.scalars(
        sa.select(Delivery)
        .where(Delivery.id.in_(delivery_ids))
        .order_by(Delivery.call_off_id, Delivery.delivered_on, Delivery.id)
    ):
        call_off = call_offs[delivery.call_off_id]
        invoice = drafts[call_off.id]
        if call_off.id not in touched:
            result.extended += 1
        touched[call_off.id] = invoice
        invoice.lines.append(_delivery_line(call_off, delivery))
        result.lines += 1
    for invoice in touched.values():
        _total(invoice)
    db.session.flush()
    for invoice in touched.values():
        _record_drafted(invoice)


def _draft_in_bulk(
    groups: Sequence[Sequence], start: date, end: date, now: datetime, result: RunResult
) -> None:
    """A new draft per call-off (``groups``: each call-off's unbilled delivery rows), written as
    rows rather than objects: the run bills a whole month at once, and an object built and
    flushed per invoice, line and audit event would cost more than the database's work.
    Invariant: the same amounts as ``_delivery_line`` (``line_amounts``) and the same audit as
    ``_record_drafted``. Measured by ``benchmarks/invoice_run.py`` (100,000 call-offs; the
    invoices row of benchmarks/RESULTS.md)."""
    invoices: list[dict] = []
    lines: list[list[dict]] = []
    for group in groups:
        first = group[0]
        invoice_lines = []
        for row in group:
            net, vat, gross = line_amounts(row.units, row.unit_price_pence, row.vat_treatment)
            invoice_lines.append(
                {
                    "delivery_id": row.id,
                    "delivered_on": row.delivered_on,
                    "description": _line_description(row.title, row.unit, row.delivered_on),
                    "units": row.units,
                    "unit_price_pence": row.unit_price_pence,
                    "vat_treatment": row.vat_treatment,
                    "net_pence": net,
                    "vat_pence": vat,
                    "gross_pence": gross,
                }
            )
        net = sum(line["net_pence"] for line in invoice_lines)
        vat = sum(line["vat_pence"] for line in invoice_lines)
        invoices.append(
            {
                "provider_id": first.provider_id,
                "lead_buyer_id": first.lead_buyer_id,
                "call_off_id": first.call_off_id,
                "kind": InvoiceKind.MONTHLY,
                "period_start": start,
                "period_end": end,
                "status": InvoiceStatus.DRAFT,
                "po_number": first.po_number,
                "call_off_reference": first.reference,
                "net_pence": net,
                "vat_pence": vat,
                "gross_pence": net + vat,
                "created_at": now,
            }
        )
        lines.append(invoice_lines)
    if not invoices:
        return
    invoice_ids = store.insert_rows(Invoice, invoices, keys=True)
    store.insert_rows(
        InvoiceLine,
        [
            {"invoice_id": invoice_id, **line}
            for invoice_id, invoice_lines in zip(invoice_ids, lines, strict=True)
            for line in invoice_lines
        ],
    )
    store.insert_rows(
        audit.AuditEvent,
        [
            {
                "occurred_at": now,
                "actor_id": None,
                "organisation_id": invoice["provider_id"],
                "action": "invoice.drafted",
                "object_type": Invoice.audit_type,
                "object_id": str(invoice_id),
                "before": None,
                "after": {
                    "status": InvoiceStatus.DRAFT.value,
                    "number": None,
                    "net_pence": invoice["net_pence"],
                    "vat_pence": invoice["vat_pence"],
                    "gross_pence": invoice["gross_pence"],
                    "due_on": None,
                    "lines": len(invoice_lines),
                },
                "request_id": None,
                "ip_address": None,
            }
            for invoice_id, invoice, invoice_lines in zip(invoice_ids, invoices, lines, strict=True)
        ],
    )
    result.created += len(invoices)
    result.lines += sum(len(invoice_lines) for invoice_lines in lines)


def _line_description(title: str, unit, delivered_on: date) -> str:
    return (f"{title} ({unit.value.replace('_', '-')}), {delivered_on.day} {delivered_on:%B %Y}")[
        :DESCRIPTION_MAX
    ]


def _new_draft(call_off: CallOff, kind: InvoiceKind, start: date, end: date, now) -> Invoice:
    invoice = Invoice(
        provider_id=call_off.provider_id,
        lead_buyer_id=call_off.lead_buyer_id,
        call_off_id=call_off.id,
        kind=kind,
        period_start=start,
        period_end=end,
        status=InvoiceStatus.DRAFT,
        po_number=call_off.po_number,
        call_off_reference=call_off.reference,
        created_at=now,
        lines=[],
    )
    db.session.add(invoice)
    return invoice


def _delivery_line(call_off: CallOff, delivery: Delivery) -> InvoiceLine:
    """One delivery record billed at the call-off's locked unit price and VAT treatment."""
    net, vat, gross = line_amounts(
        delivery.units, call_off.unit_price_pence, call_off.vat_treatment
    )
    return InvoiceLine(
        delivery_id=delivery.id,
        delivered_on=delivery.delivered_on,
        description=_line_description(call_off.listing.title, call_off.unit, delivery.delivered_on),
        units=delivery.units,
        unit_price_pence=call_off.unit_price_pence,
        vat_treatment=call_off.vat_treatment,
        net_pence=net,
        vat_pence=vat,
        gross_pence=gross,
    )


def _record_drafted(invoice: Invoice) -> None:
    audit.record(
        None,
        "invoice.drafted",
        invoice,
        organisation=invoice.provider_id,
        after={**audit.snapshot(invoice, INVOICE_FIELDS), "lines": len(invoice.lines)},
    )


@orders_signals.call_off_completed.connect
def _bill_completed_call_off(call_off: CallOff, *, now: datetime, **_: object) -> None:
    """A completed call-off's unbilled delivery is invoiced at once (``bill_on_completion``)."""
    bill_on_completion(call_off, now=now)


def bill_on_completion(call_off: CallOff, *, now: datetime | None = None) -> Invoice | None:
    """When a call-off completes, draft one invoice for every delivery not yet billed, whatever
    its month, so the provider need not wait for the next monthly run. None if all is billed.

    Delivery already on a draft of a monthly run stays there (each delivery is billed once).
    """
    now = now or utcnow()
    deliveries = list(
        db.session.scalars(
            sa.select(Delivery)
            .where(
                Delivery.call_off_id == call_off.id,
                Delivery.units > 0,
                Delivery.payable,
                ~sa.exists(
                    sa.select(InvoiceLine.delivery_id).where(InvoiceLine.delivery_id == Delivery.id)
                ),
            )
            .order_by(Delivery.delivered_on, Delivery.id)
        )
    )
    if not deliveries:
        return None
    invoice = _new_draft(
        call_off,
        InvoiceKind.COMPLETION,
        deliveries[0].delivered_on,
        deliveries[-1].delivered_on,
        now,
    )
    invoice.lines.extend(_delivery_line(call_off, delivery) for delivery in deliveries)
    _total(invoice)
    db.session.flush()
    _record_drafted(invoice)
    email_people(
        invoice.provider_id, PROVIDER_ISSUERS, "invoices_drafted_on_completion", invoice=invoice
    )
    return invoice


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
    if not actor.roles_for(invoice.provider_id):
        raise NotFound("Invoice not found")
    if not can_issue(actor, invoice):
        raise PermissionDenied("Only a provider administrator can do that")


def _require_buyer(actor: User, invoice: Invoice) -> None:
    if not actor.roles_for(invoice.lead_buyer_id):
        raise NotFound("Invoice not found")
    if not can_settle(actor, invoice):
        raise PermissionDenied("Only the lead buyer's buyers and approvers can do that")


def _record(actor: User | None, action: str, invoice: Invoice, before: dict, **extra) -> None:
    after = audit.snapshot(invoice, INVOICE_FIELDS)
    after.update(extra)
    audit.record(actor, action, invoice, before=before, after=after)


# ---------------------------------------------------------------------------------------------
# The provider issues; the lead buyer validates, disputes and pays


def _check_can_send(invoice: Invoice) -> None:
    """What the provider must have recorded before an invoice goes out: no VAT charged without a
    VAT registration; an electronic address and a bank account for the e-invoice to name."""
    provider = invoice.provider
    errors: list[str] = []
    if invoice.vat_treatment in VAT_REGISTRATION_TREATMENTS and not provider.vat_registered:
        errors.append(
            "This invoice charges VAT, and your organisation is not registered for VAT: record "
            "your VAT registration on your organisation settings page before issuing it"
        )
    if not provider.endpoint_id:
        errors.append(
            "Record your organisation's electronic address on its settings page before issuing"
        )
    if not provider.has_bank_details:
        errors.append(
            "Record the bank account you are paid into on your organisation settings page "
            "before issuing"
        )
    if errors:
        raise BusinessRuleViolation({"status": errors})


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
    check_transition(invoice, InvoiceStatus.ISSUED, INVOICE_TRANSITIONS, noun="invoice")
    if not invoice.lines:
        raise BusinessRuleViolation({"status": ["An invoice with no lines cannot be issued"]})
    _check_can_send(invoice)
    now = now or utcnow()
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    # The counter row is locked until the commit: two invoices issued at once take consecutive
    # numbers, and a rolled-back issue gives its number back, so the numbers have no gaps.
    _ensure_counter(invoice.provider_id)
    [counter] = lock_rows(InvoiceCounter, [invoice.provider_id])
    counter.last_number += 1
    transition(invoice, InvoiceStatus.ISSUED, INVOICE_TRANSITIONS, noun="invoice")
    invoice.sequence = counter.last_number
    invoice.number = invoice_number(counter.last_number)
    invoice.issued_at = invoice.received_at = now
    invoice.issued_by_id = actor.id
    invoice.provider_vat_number = invoice.provider.vat_number
    invoice.due_on = london_date(now) + timedelta(days=PAYMENT_DAYS)
    _record(actor, "invoice.issued", invoice, before)
    email_people(invoice.lead_buyer_id, BUYER_ROLES, "invoices_issued", invoice=invoice)
    return invoice


def validate(actor: User, invoice: Invoice, *, now: datetime | None = None) -> Invoice:
    """The lead buyer accepts the invoice as right (after a dispute: the dispute is resolved)."""
    _require_buyer(actor, invoice)
    now = now or utcnow()
    lock(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    was_disputed = invoice.status == InvoiceStatus.DISPUTED
    transition(invoice, InvoiceStatus.VALIDATED, INVOICE_TRANSITIONS, noun="invoice")
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
    lock(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    transition(invoice, InvoiceStatus.DISPUTED, INVOICE_TRANSITIONS, noun="invoice")
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
    elif message := date_horizon_error(paid_on, "The payment date", today=london_date(now)):
        errors["paid_on"] = [message]
    elif paid_on > london_date(now):
        errors["paid_on"] = ["The payment date must be today or in the past"]
    elif invoice.received_at is not None and paid_on < london_date(invoice.received_at):
        errors["paid_on"] = ["The payment date cannot be before the invoice was received"]
    if errors:
        raise BusinessRuleViolation(errors)
    lock(invoice)
    # A payment by card already under way refuses this (payments' receiver): recording a BACS
    # payment too would pay the invoice twice.
    bacs_payment_recording.send(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    transition(invoice, InvoiceStatus.PAID, INVOICE_TRANSITIONS, noun="invoice")
    invoice.paid_at, invoice.paid_on = now, paid_on
    invoice.payment_method, invoice.payment_reference = PaymentMethod.BACS, reference
    _record(actor, "invoice.paid", invoice, before, method="bacs", reference=reference)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_paid", invoice=invoice)
    return invoice


def mark_paid_by_card(
    invoice: Invoice, payment_intent_id: str, *, now: datetime | None = None
) -> Invoice:
    """Stripe confirmed a card payment of a validated invoice (no actor: the webhook)."""
    now = now or utcnow()
    lock(invoice)
    before = audit.snapshot(invoice, INVOICE_FIELDS)
    transition(invoice, InvoiceStatus.PAID, INVOICE_TRANSITIONS, noun="invoice")
    invoice.paid_at, invoice.paid_on = now, london_date(now)
    invoice.payment_method = PaymentMethod.CARD
    invoice.payment_reference = payment_intent_id[:PAYMENT_REFERENCE_MAX]
    _record(None, "invoice.paid", invoice, before, method="card", reference=payment_intent_id)
    email_people(invoice.provider_id, PROVIDER_ISSUERS, "invoices_paid_by_card", invoice=invoice)
    return invoice


# ---------------------------------------------------------------------------------------------
# Overdue invoices


def notify_overdue(*, now: datetime | None = None) -> list[Invoice]:
    """Tell the lead buyer's buyers and approvers, and the provider's administrators, of each
    invoice that has passed its due date unpaid (not yet told): once per invoice, so the
    command is safe to run every day. An invoice credited to nothing owes nothing and is
    skipped."""
    now = now or utcnow()
    today = london_date(now)
    overdue = db.session.scalars(
        sa.select(Invoice)
        .where(Invoice.past_due(today), Invoice.overdue_notified_at.is_(None))
        .options(selectinload(Invoice.credit_notes))
        .order_by(Invoice.id)
    ).all()
    told = []
    for invoice in overdue:
        if invoice.amount_due_pence <= 0:
            continue
        invoice.overdue_notified_at = now
        days = (today - invoice.due_on).days
        audit.record(
            None,
            "invoice.overdue",
            invoice,
            after={"due_on": invoice.due_on.isoformat(), "days_late": days},
        )
        email_people(
            invoice.lead_buyer_id, BUYER_ROLES, "invoices_overdue_buyer", invoice=invoice, days=days
        )
        email_people(
            invoice.provider_id,
            PROVIDER_ISSUERS,
            "invoices_overdue_provider",
            invoice=invoice,
            days=days,
        )
        told.append(invoice)
    db.session.flush()
    return told


# ---------------------------------------------------------------------------------------------
# Credit notes: how an issued invoice is corrected


def credit_note_number(sequence: int) -> str:
    return f"CN-{sequence:06d}"


def credit_vat_pence(net_pence: int, net_left: int, vat_left: int, treatment) -> int:
    """The VAT a credit of ``net_pence`` takes off: the treatment's rate rounded half up, never
    more than the VAT left on the invoice, and exactly what is left when the rest is credited
    (the invoice's VAT was rounded per line, so the rate on the remainder may differ by pence)."""
    if net_pence == net_left:
        return vat_left
    return min(vat_pence(net_pence, treatment), vat_left)


def raise_credit_note(
    actor: User,
    invoice: Invoice,
    net_pence: object,
    reason: str,
    *,
    now: datetime | None = None,
) -> CreditNote:
    """The provider credits part or all of an issued invoice, with a reason the buyer sees.

    The VAT is the invoice's treatment on the credited amount, rounded half up; crediting all
    that is left takes off exactly the VAT that is left, so a fully credited invoice nets to
    nothing. The credit note takes the provider's next credit-note number, without gaps.
    """
    _require_provider(actor, invoice)
    # What is left to credit is read from the locked invoice and its credit notes: two credit
    # notes raised at once cannot take off more than the invoice holds between them.
    lock(invoice, "credit_notes")
    errors: dict[str, list[str]] = {}
    left = invoice.creditable_net_pence
    if invoice.status == InvoiceStatus.DRAFT:
        raise BusinessRuleViolation(
            {"status": ["A draft has not been issued, so there is nothing to credit"]}
        )
    if not isinstance(net_pence, int) or isinstance(net_pence, bool) or net_pence <= 0:
        errors["amount"] = ["Enter the amount to credit in pounds and pence, like 125.50"]
    elif net_pence > left:
        errors["amount"] = [
            f"The credit cannot be more than what is left on the invoice: {pounds(left)} before VAT"
        ]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Enter why you are crediting the invoice"]
    elif len(reason) > REASON_MAX:
        errors["reason"] = [f"The reason must be {REASON_MAX:,} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    assert isinstance(net_pence, int)
    vat_left = invoice.vat_pence - sum(note.vat_pence for note in invoice.credit_notes)
    vat = credit_vat_pence(net_pence, left, vat_left, invoice.vat_treatment)
    now = now or utcnow()
    _ensure_counter(invoice.provider_id)
    [counter] = lock_rows(InvoiceCounter, [invoice.provider_id])
    counter.last_credit_note_number += 1
    note = CreditNote(
        invoice=invoice,
        provider_id=invoice.provider_id,
        sequence=counter.last_credit_note_number,
        number=credit_note_number(counter.last_credit_note_number),
        reason=reason,
        net_pence=net_pence,
        vat_pence=vat,
        gross_pence=net_pence + vat,
        created_at=now,
        created_by_id=actor.id,
    )
    db.session.add(note)
    db.session.flush()
    # Paid by card: payments' receiver gives the credit back to the card.
    credit_note_raised.send(invoice, note=note, actor=actor)
    audit.record(
        actor,
        "credit_note.raised",
        note,
        after={
            "invoice": invoice.number,
            "number": note.number,
            "net_pence": note.net_pence,
            "vat_pence": note.vat_pence,
            "gross_pence": note.gross_pence,
            "reason": reason,
            "refund": note.refund_reference,
        },
    )
    email_people(
        invoice.lead_buyer_id, BUYER_ROLES, "invoices_credited", invoice=invoice, note=note
    )
    return note


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
    """The invoice split by the call-off's funder shares (see ``split_among``)."""
    call_off = call_off or invoice.call_off
    return split_among(call_off.funders, invoice.net_pence, invoice.vat_pence)


def split_among(funders: Sequence[CallOffFunder], net: int, vat: int) -> list[RechargePart]:
    """A document's net and VAT (negative for a credit note) split by the funders' shares, lead
    first, each amount by largest remainder so the parts of the net, the VAT and the gross each
    sum exactly to the document's. The gross parts are the net and VAT parts added, so each
    funder's part is itself consistent."""
    funders = sorted(funders, key=lambda f: (not f.is_lead, f.organisation_id))
    shares = [f.basis_points for f in funders]
    nets = split_by_basis_points(net, shares)
    vats = split_by_basis_points(vat, shares)
    return [
        RechargePart(f.organisation_id, f.basis_points, part_net, part_vat, part_net + part_vat)
        for f, part_net, part_vat in zip(funders, nets, vats, strict=True)
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
            invoice = _new_draft(call_off, InvoiceKind.OUTCOME, start, end, now)
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
        _record_drafted(invoice)
    return result
