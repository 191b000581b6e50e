"""Read-only look-ups for card payments (the invoice page's partial uses ``card_payment_for``)."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.payments.models import CardPayment, StripeCustomer


def card_payment_for(invoice_id: int) -> CardPayment | None:
    """The invoice's latest card payment attempt, if any."""
    return db.session.scalar(
        sa.select(CardPayment)
        .where(CardPayment.invoice_id == invoice_id)
        .order_by(CardPayment.attempt.desc())
        .limit(1)
    )


def saved_card_for(organisation_id: int) -> StripeCustomer | None:
    """The organisation's Stripe customer (with its saved card, if any)."""
    return db.session.scalar(
        sa.select(StripeCustomer).where(StripeCustomer.organisation_id == organisation_id)
    )
