"""Stripe's webhook events, acted on once each."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.payments.models import (
    OUTCOME_MAX,
    STRIPE_ID_MAX,
    StripeEvent,
)
from marketplace.payments.services.payment_outcomes import _payment_failed, _succeeded


def handle_event(event: Any, *, now: datetime | None = None) -> str:
    """Act once on a verified Stripe event; returns what was done (stored on the event's row).

    A replay (an event id already stored) does nothing. ``payment_intent.succeeded`` marks the
    invoice paid, ``payment_intent.payment_failed`` records why it was not; other types are stored
    and ignored.
    """
    now = now or utcnow()
    event_id, event_type = str(event.id), str(event.type)
    if db.session.scalar(sa.select(StripeEvent.id).where(StripeEvent.event_id == event_id)):
        return "duplicate"
    intent = event.data.object if event_type.startswith("payment_intent.") else None
    row = StripeEvent(
        event_id=event_id[:STRIPE_ID_MAX],
        type=event_type[:100],
        payment_intent_id=str(intent.id)[:STRIPE_ID_MAX] if intent is not None else None,
        outcome="received",
        received_at=now,
    )
    db.session.add(row)
    # The unique event id: of two deliveries at once, the second fails here and does nothing.
    db.session.flush()
    if event_type == "payment_intent.succeeded":
        outcome = _succeeded(intent, now)
    elif event_type == "payment_intent.payment_failed":
        outcome = _payment_failed(intent, now)
    else:
        outcome = "ignored"
    row.outcome = outcome[:OUTCOME_MAX]
    db.session.flush()
    return outcome
