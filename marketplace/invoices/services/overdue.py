"""Overdue invoices: the lead buyer and the provider are told once per invoice."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.services.common import email_people
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.invoices.models import (
    Invoice,
)
from marketplace.invoices.permissions import PROVIDER_ISSUERS
from marketplace.orders.permissions import BUYER_ROLES


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
