"""Outcome invoices (payment by results): verified outcome claims billed apart from delivery."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.core.clock import LONDON, utcnow
from marketplace.core.db import db
from marketplace.invoices.models import (
    DESCRIPTION_MAX,
    Invoice,
    InvoiceKind,
    InvoiceLine,
    InvoiceStatus,
)
from marketplace.invoices.services.common import (
    RunResult,
    _new_draft,
    _record_drafted,
    _total,
    line_amounts,
)
from marketplace.outcomes.models import ClaimStatus, OutcomeClaim


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
