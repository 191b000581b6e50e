"""What the invoice rules share: periods, line amounts, drafts and their audit, who may act,
and the provider's number counter.

Every function that changes data takes the ``actor`` (None for the scheduled run), flushes and
never commits; the caller commits once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy.dialects import postgresql, sqlite

from marketplace.accounts.models import User
from marketplace.core import audit
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
)
from marketplace.core.money import vat_pence
from marketplace.core.validation import check_date_horizon
from marketplace.invoices.models import (
    DESCRIPTION_MAX,
    Invoice,
    InvoiceCounter,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
)
from marketplace.invoices.permissions import can_issue, can_settle
from marketplace.orders.models import CallOff, Delivery

PERIOD_PATTERN = re.compile(r"(\d{4})-(\d{2})")


INVOICE_FIELDS = ["status", "number", "net_pence", "vat_pence", "gross_pence", "due_on"]


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
        description=_line_description(call_off.service_title, call_off.unit, delivery.delivered_on),
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
