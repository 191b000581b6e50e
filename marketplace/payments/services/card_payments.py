"""Paying a validated invoice with the lead buyer's saved card.

Every function that changes data flushes and never commits; the caller commits once. Calls to
Stripe happen inside the caller's transaction: paying locks the invoice's row first, so two
payments of one invoice at once are made one after the other, and the second finds the first.

Idempotency: a PaymentIntent is created under the key ``invoice-<id>-payment-<attempt>``; the
attempt number only moves on after a definite failure (Stripe refused the card or the request).
When the outcome is unknown (no answer from Stripe, or our commit failed after Stripe answered)
nothing is recorded, so the retry sends the same key and Stripe answers with the same
PaymentIntent instead of charging again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import stripe

from marketplace.accounts.models import User
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
)
from marketplace.core.state import lock, transition
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.payments.models import (
    CARD_PAYMENT_TRANSITIONS,
    CURRENCY,
    STRIPE_ID_MAX,
    CardPayment,
    CardPaymentStatus,
    StripeCustomer,
)
from marketplace.payments.permissions import can_pay_invoice
from marketplace.payments.queries import card_payment_for, saved_card_for
from marketplace.payments.services.gateway import (
    DECLINED,
    NOT_AUTHENTICATED,
    UNREACHABLE,
    CardPaymentsUnavailable,
    _message,
    _require_enabled,
    _unknown_outcome,
    card_payments_enabled,
    stripe_client,
)
from marketplace.payments.services.payment_outcomes import _fail, _snapshot, _succeeded

log = logging.getLogger(__name__)


def _require_invoice_payer(actor: User, invoice: Invoice) -> None:
    if not actor.roles_for(invoice.lead_buyer_id):
        raise NotFound("Invoice not found")
    if not can_pay_invoice(actor, invoice):
        raise PermissionDenied("Only the lead buyer's buyers and approvers can pay an invoice")


def can_pay_by_card(user: User, invoice: Invoice) -> bool:
    """The user is a buyer or approver of the invoice's lead buyer, and it is validated."""
    return (
        card_payments_enabled()
        and invoice.status == InvoiceStatus.VALIDATED
        and can_pay_invoice(user, invoice)
    )


def idempotency_key(invoice: Invoice, attempt: int) -> str:
    return f"invoice-{invoice.id}-payment-{attempt}"


def pay_invoice_by_card(
    actor: User, invoice: Invoice, *, now: datetime | None = None
) -> CardPayment:
    """Charge the lead buyer's saved card for a validated invoice.

    Returns the attempt: PROCESSING until Stripe's webhook says the payment succeeded (then the
    invoice is paid), or FAILED with the reason (the invoice stays unpaid, and paying again makes
    a new attempt). While an attempt is processing or has succeeded, paying again returns it and
    charges nothing.
    """
    _require_enabled()
    _require_invoice_payer(actor, invoice)
    now = now or utcnow()
    lock(invoice)
    latest = card_payment_for(invoice.id)
    if latest is not None and latest.status != CardPaymentStatus.FAILED:
        return latest  # already under way or done: never a second charge
    _check_payable(invoice)
    customer = _saved_card_of(invoice)
    payment = _new_attempt(actor, invoice, latest, now)
    try:
        intent = _create_intent(invoice, customer, payment)
    except stripe.StripeError as error:
        if _unknown_outcome(error):
            log.warning("paying invoice %s (%s): %s", invoice.id, payment.idempotency_key, error)
            raise CardPaymentsUnavailable(UNREACHABLE) from error
        # A definite refusal: this attempt failed, and the next one gets a new key.
        payment.payment_intent_id = _intent_id_of(error)
        db.session.add(payment)
        _fail(payment, _message(error, DECLINED), now)
        audit.record(actor, "card_payment.failed", payment, after=_snapshot(payment))
        return payment
    _record_intent(actor, payment, intent, now)
    return payment


def _check_payable(invoice: Invoice) -> None:
    """Only a validated invoice with something still due is paid."""
    if invoice.status != InvoiceStatus.VALIDATED:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This invoice is {invoice.status.label.lower()}: only a validated invoice "
                    "can be paid"
                ]
            }
        )
    if invoice.amount_due_pence <= 0:
        raise BusinessRuleViolation(
            {
                "status": [
                    "Credit notes have taken the whole amount off this invoice: nothing is due"
                ]
            }
        )


def _saved_card_of(invoice: Invoice) -> StripeCustomer:
    customer = saved_card_for(invoice.lead_buyer_id)
    if customer is None or not customer.has_card:
        raise BusinessRuleViolation(
            {"card": ["Save a payment card for your organisation before paying by card"]}
        )
    return customer


def _new_attempt(
    actor: User, invoice: Invoice, latest: CardPayment | None, now: datetime
) -> CardPayment:
    """The next attempt (not yet added to the session) under its own idempotency key: a new
    attempt only ever follows a failed one."""
    attempt = latest.attempt + 1 if latest is not None else 1
    return CardPayment(
        invoice_id=invoice.id,
        invoice=invoice,
        attempt=attempt,
        idempotency_key=idempotency_key(invoice, attempt),
        amount_pence=invoice.amount_due_pence,
        currency=CURRENCY,
        status=CardPaymentStatus.PROCESSING,
        refunded_pence=0,
        created_at=now,
        created_by_id=actor.id,
    )


def _create_intent(invoice: Invoice, customer: StripeCustomer, payment: CardPayment) -> Any:
    """The attempt's PaymentIntent, confirmed at once with the saved card, under the attempt's
    idempotency key (a retry after an unknown outcome gets the same intent back)."""
    return stripe_client().v1.payment_intents.create(
        params={
            "amount": invoice.amount_due_pence,
            "currency": CURRENCY,
            "customer": customer.stripe_customer_id,
            "payment_method": customer.payment_method_id,
            "payment_method_types": ["card"],
            "confirm": True,
            "metadata": {
                "invoice_id": str(invoice.id),
                "invoice_number": invoice.number or "",
                "attempt": str(payment.attempt),
            },
        },
        options={"idempotency_key": payment.idempotency_key},
    )


def _record_intent(actor: User, payment: CardPayment, intent: Any, now: datetime) -> None:
    """The attempt as Stripe answered it: processing, waiting for 3-D Secure, or failed."""
    payment.payment_intent_id = intent.id
    db.session.add(payment)
    if intent.status == "requires_action":
        # 3-D Secure: the buyer confirms the intent in the page with Stripe.js, and then
        # check_card_payment reads the outcome from Stripe. Until then this attempt stands, so
        # paying again returns it and never makes a second PaymentIntent.
        payment.status = CardPaymentStatus.REQUIRES_ACTION
    elif intent.status in ("requires_payment_method", "canceled"):
        error = getattr(intent, "last_payment_error", None)
        _fail(payment, str(getattr(error, "message", None) or DECLINED), now)
    db.session.flush()
    audit.record(
        actor,
        "card_payment.failed"
        if payment.status == CardPaymentStatus.FAILED
        else "card_payment.made",
        payment,
        after=_snapshot(payment),
    )


def authentication_secret(payment: CardPayment) -> str:
    """The client secret of a payment waiting for authentication, for the page's Stripe.js only
    (never stored: read from Stripe each time)."""
    if payment.status != CardPaymentStatus.REQUIRES_ACTION or not payment.payment_intent_id:
        raise BusinessRuleViolation({"card": ["This payment is not waiting for authentication"]})
    try:
        intent = stripe_client().v1.payment_intents.retrieve(payment.payment_intent_id)
    except stripe.StripeError as error:
        log.warning("reading %s: %s", payment.payment_intent_id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    return str(intent.client_secret)


def check_card_payment(
    actor: User, invoice: Invoice, *, now: datetime | None = None
) -> CardPayment:
    """After the page confirmed a payment that needed authentication: read its PaymentIntent
    from Stripe (never the browser's word) and move the payment (and the invoice) on.

    Succeeded: the invoice is paid (as the webhook would; whichever comes second does nothing).
    Refused or authentication failed: the attempt failed with the reason. Still waiting: as it
    was. Returns the invoice's latest attempt.
    """
    _require_enabled()
    _require_invoice_payer(actor, invoice)
    now = now or utcnow()
    lock(invoice)
    payment = card_payment_for(invoice.id)
    if payment is None:
        raise BusinessRuleViolation({"card": ["This invoice has no card payment to check"]})
    if payment.status != CardPaymentStatus.REQUIRES_ACTION or not payment.payment_intent_id:
        return payment  # already decided (the webhook, or a second press): nothing to do
    try:
        intent = stripe_client().v1.payment_intents.retrieve(payment.payment_intent_id)
    except stripe.StripeError as error:
        log.warning("checking %s: %s", payment.payment_intent_id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    if intent.status == "succeeded":
        _succeeded(intent, now)
    elif intent.status == "processing":
        lock(payment)
        before = _snapshot(payment)
        transition(
            payment, CardPaymentStatus.PROCESSING, CARD_PAYMENT_TRANSITIONS, noun="card payment"
        )
        audit.record(
            actor, "card_payment.authenticated", payment, before=before, after=_snapshot(payment)
        )
    elif intent.status in ("requires_payment_method", "canceled"):
        lock(payment)
        before = _snapshot(payment)
        error = getattr(intent, "last_payment_error", None)
        code = str(getattr(error, "code", None) or "")
        message = str(getattr(error, "message", None) or "")
        if not message or code == "payment_intent_authentication_failure":
            message = NOT_AUTHENTICATED
        _fail(payment, message, now)
        audit.record(actor, "card_payment.failed", payment, before=before, after=_snapshot(payment))
    db.session.flush()
    return payment


def cancel_card_payment(
    actor: User, invoice: Invoice, *, now: datetime | None = None
) -> CardPayment:
    """Give up a payment waiting for authentication (the buyer will pay another way or try
    again): Stripe cancels the PaymentIntent, and the attempt fails."""
    _require_enabled()
    _require_invoice_payer(actor, invoice)
    lock(invoice)
    payment = card_payment_for(invoice.id)
    if payment is None or payment.status != CardPaymentStatus.REQUIRES_ACTION:
        raise BusinessRuleViolation({"card": ["There is no card payment waiting to be cancelled"]})
    try:
        intent = stripe_client().v1.payment_intents.cancel(payment.payment_intent_id)
    except stripe.InvalidRequestError:
        # Stripe would not cancel it: it moved on meanwhile. Its own state decides.
        return check_card_payment(actor, invoice, now=now)
    except stripe.StripeError as error:
        log.warning("cancelling %s: %s", payment.payment_intent_id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    lock(payment)
    if intent.status == "canceled" and payment.status == CardPaymentStatus.REQUIRES_ACTION:
        before = _snapshot(payment)
        _fail(payment, "You cancelled the card payment.", now or utcnow())
        audit.record(
            actor, "card_payment.cancelled", payment, before=before, after=_snapshot(payment)
        )
    return payment


def _intent_id_of(error: stripe.StripeError) -> str | None:
    intent = getattr(getattr(error, "error", None), "payment_intent", None)
    intent_id = getattr(intent, "id", None) or (intent if isinstance(intent, str) else None)
    return intent_id[:STRIPE_ID_MAX] if intent_id else None
