"""What a card payment's outcome does, whoever reports it (the webhook, or the page checking
Stripe after 3-D Secure): success pays the invoice, failure records why and tells the payers.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from marketplace.accounts.services.common import email_people
from marketplace.core import audit
from marketplace.core.db import db
from marketplace.core.state import lock, transition
from marketplace.invoices.models import InvoiceStatus
from marketplace.invoices.services import issuing
from marketplace.payments.models import (
    CARD_PAYMENT_TRANSITIONS,
    FAILURE_MESSAGE_MAX,
    STRIPE_ID_MAX,
    CardPayment,
    CardPaymentStatus,
)
from marketplace.payments.permissions import PAYERS
from marketplace.payments.services.gateway import DECLINED

log = logging.getLogger(__name__)


PAYMENT_FIELDS = ["status", "payment_intent_id", "amount_pence", "attempt", "failure_message"]


def _snapshot(payment: CardPayment) -> dict:
    return audit.snapshot(payment, PAYMENT_FIELDS)


def _fail(payment: CardPayment, message: str, now: datetime) -> None:
    if payment.status in (CardPaymentStatus.PROCESSING, CardPaymentStatus.REQUIRES_ACTION):
        transition(payment, CardPaymentStatus.FAILED, CARD_PAYMENT_TRANSITIONS, noun="card payment")
        payment.failure_message = message[:FAILURE_MESSAGE_MAX]
        payment.failed_at = now
        db.session.flush()
        invoice = payment.invoice
        email_people(
            invoice.lead_buyer_id, PAYERS, "payments_failed", invoice=invoice, payment=payment
        )


def _payment_for_intent(intent: Any) -> CardPayment | None:
    payment = db.session.scalar(
        sa.select(CardPayment).where(CardPayment.payment_intent_id == str(intent.id))
    )
    if payment is not None:
        return payment
    # Refused at creation, Stripe may not have told us the intent's id: the metadata says which.
    metadata = getattr(intent, "metadata", None)
    metadata = metadata.to_dict() if hasattr(metadata, "to_dict") else dict(metadata or {})
    invoice_id, attempt = str(metadata.get("invoice_id", "")), str(metadata.get("attempt", ""))
    if not (invoice_id.isdigit() and attempt.isdigit() and len(invoice_id + attempt) < 19):
        return None
    payment = db.session.scalar(
        sa.select(CardPayment).where(
            CardPayment.invoice_id == int(invoice_id), CardPayment.attempt == int(attempt)
        )
    )
    if payment is not None and payment.payment_intent_id is None:
        payment.payment_intent_id = str(intent.id)[:STRIPE_ID_MAX]
        return payment
    return None


def _succeeded(intent: Any, now: datetime) -> str:
    payment = _payment_for_intent(intent)
    if payment is None:
        return "unknown_payment"
    # The invoice, then the payment (every path that locks both takes this order): of two
    # events for one payment at once, the second sees what the first did.
    invoice = lock(payment.invoice)
    lock(payment)
    if payment.status == CardPaymentStatus.SUCCEEDED:
        return "already_succeeded"
    before = _snapshot(payment)
    transition(payment, CardPaymentStatus.SUCCEEDED, CARD_PAYMENT_TRANSITIONS, noun="card payment")
    payment.succeeded_at = now
    payment.failure_message = None
    audit.record(None, "card_payment.succeeded", payment, before=before, after=_snapshot(payment))
    if invoice.status == InvoiceStatus.VALIDATED:
        issuing.mark_paid_by_card(invoice, str(intent.id), now=now)
        return "invoice_paid"
    # Paid some other way meanwhile (or never payable): the money must go back; say so loudly.
    log.error(
        "card payment %s succeeded for invoice %s, which is %s",
        intent.id,
        invoice.id,
        invoice.status,
    )
    audit.record(
        None,
        "card_payment.needs_refund",
        payment,
        after={"invoice_status": invoice.status.value, "payment_intent": str(intent.id)},
    )
    return "invoice_not_payable"


def _payment_failed(intent: Any, now: datetime) -> str:
    payment = _payment_for_intent(intent)
    if payment is None:
        return "unknown_payment"
    lock(payment)
    if payment.status not in (CardPaymentStatus.PROCESSING, CardPaymentStatus.REQUIRES_ACTION):
        return "already_" + payment.status.value
    before = _snapshot(payment)
    error = getattr(intent, "last_payment_error", None)
    _fail(payment, str(getattr(error, "message", None) or DECLINED), now)
    audit.record(None, "card_payment.failed", payment, before=before, after=_snapshot(payment))
    return "payment_failed"
