"""The monthly run: a draft invoice per call-off for its delivery in a month that has ended."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from itertools import groupby

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.core import audit, store
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
)
from marketplace.invoices.models import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
)
from marketplace.invoices.services.common import (
    RunResult,
    _delivery_line,
    _line_description,
    _record_drafted,
    _total,
    line_amounts,
    parse_period,
)
from marketplace.invoices.services.outcome_billing import bill_outcome_claims
from marketplace.orders.models import CallOff, Delivery

# How many call-offs the run writes per flush: bounded memory whatever the size of the month.
RUN_BATCH = 500


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
    """Each unbilled delivery of the period with what its line needs from the call-off (its
    service title, kept with it: a call-off awarded by further competition has no listing), by
    call-off then day."""
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
            CallOff.service_title.label("title"),
        )
        .join(CallOff, CallOff.id == Delivery.call_off_id)
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
        c.id: c for c in db.session.scalars(sa.select(CallOff).where(CallOff.id.in_(drafts)))
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
    invoices = [_invoice_row(group, start, end, now) for group in groups]
    if not invoices:
        return
    lines = [[_line_row(row) for row in group] for group in groups]
    for invoice, invoice_lines in zip(invoices, lines, strict=True):
        invoice["net_pence"] = sum(line["net_pence"] for line in invoice_lines)
        invoice["vat_pence"] = sum(line["vat_pence"] for line in invoice_lines)
        invoice["gross_pence"] = invoice["net_pence"] + invoice["vat_pence"]
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
            _drafted_audit_row(invoice_id, invoice, len(invoice_lines), now)
            for invoice_id, invoice, invoice_lines in zip(invoice_ids, invoices, lines, strict=True)
        ],
    )
    result.created += len(invoices)
    result.lines += sum(len(invoice_lines) for invoice_lines in lines)


def _line_row(row) -> dict:
    """One unbilled delivery row as an invoice line row (the amounts of ``_delivery_line``)."""
    net, vat, gross = line_amounts(row.units, row.unit_price_pence, row.vat_treatment)
    return {
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


def _invoice_row(group: Sequence, start: date, end: date, now: datetime) -> dict:
    """A call-off's new monthly draft as a row; its totals are added from its line rows."""
    first = group[0]
    return {
        "provider_id": first.provider_id,
        "lead_buyer_id": first.lead_buyer_id,
        "call_off_id": first.call_off_id,
        "kind": InvoiceKind.MONTHLY,
        "period_start": start,
        "period_end": end,
        "status": InvoiceStatus.DRAFT,
        "po_number": first.po_number,
        "call_off_reference": first.reference,
        "created_at": now,
    }


def _drafted_audit_row(invoice_id: int, invoice: dict, lines: int, now: datetime) -> dict:
    """The audit event ``_record_drafted`` would record for the draft, as a row."""
    return {
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
            "lines": lines,
        },
        "request_id": None,
        "ip_address": None,
    }
