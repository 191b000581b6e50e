"""Billing on completion: a completed call-off's unbilled delivery is drafted at once.

Connects to ``orders.signals.call_off_completed`` when imported; the app factory imports this
module so the receiver is connected whenever the app runs.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.services.common import email_people
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.invoices.models import (
    Invoice,
    InvoiceKind,
    InvoiceLine,
)
from marketplace.invoices.permissions import PROVIDER_ISSUERS
from marketplace.invoices.services.common import (
    _delivery_line,
    _new_draft,
    _record_drafted,
    _total,
)
from marketplace.orders import signals as orders_signals
from marketplace.orders.models import CallOff, Delivery


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
