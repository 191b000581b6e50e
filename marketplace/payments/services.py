"""Card payments: save a buyer organisation's card, pay a validated invoice, take Stripe's webhook
events, and refund (part of) a card payment for a credit note.

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
import re
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import stripe
from flask import current_app

from marketplace.accounts.models import Organisation, User
from marketplace.accounts.services import email_people
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import (
    BusinessRuleViolation,
    DomainError,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.state import lock, transition
from marketplace.invoices.models import CreditNote, Invoice, InvoiceStatus, PaymentMethod
from marketplace.invoices.services import issuing
from marketplace.invoices.signals import bacs_payment_recording, credit_note_raised
from marketplace.payments.models import (
    CARD_PAYMENT_TRANSITIONS,
    CURRENCY,
    FAILURE_MESSAGE_MAX,
    OUTCOME_MAX,
    REFUND_KEY_MAX,
    STRIPE_ID_MAX,
    CardPayment,
    CardPaymentStatus,
    CardRefund,
    StripeCustomer,
    StripeEvent,
)
from marketplace.payments.permissions import PAYERS, can_pay_for, can_pay_invoice
from marketplace.payments.queries import card_payment_for, saved_card_for

log = logging.getLogger(__name__)

PAYMENT_METHOD_ID = re.compile(r"pm_[A-Za-z0-9_]{1,200}")
SETUP_INTENT_ID = re.compile(r"seti_[A-Za-z0-9_]{1,200}")
PAYMENT_FIELDS = ["status", "payment_intent_id", "amount_pence", "attempt", "failure_message"]
DECLINED = "Your card was declined. Use another card, or pay by BACS."
NOT_AUTHENTICATED = (
    "Your card issuer did not confirm the payment. Try again, use another card, or pay by BACS."
)
CARD_NOT_SET_UP = "We could not find the card you entered. Enter the card again."
UNREACHABLE = (
    "We could not reach the card payment service, so nothing has changed. Try again in a few "
    "minutes: you will not be charged twice."
)


class CardPaymentsUnavailable(DomainError):
    """Stripe did not answer (or answered with its own error): the outcome is unknown, so nothing
    is recorded and the same request may be tried again."""

    status = 503
    title = "The card payment service is not available"


class CardDeclined(BusinessRuleViolation):
    """Stripe refused the card. What was done before (a new Stripe customer) is worth keeping, so
    the caller may commit before showing the message."""


# ---------------------------------------------------------------------------------------------
# Stripe


def stripe_client() -> stripe.StripeClient:
    """A Stripe client for the configured key (and API address: localstripe in tests)."""
    config = current_app.config
    key, base = config["STRIPE_SECRET_KEY"], config.get("STRIPE_API_BASE")
    clients = current_app.extensions.setdefault("stripe_clients", {})
    if (key, base) not in clients:
        options: dict[str, Any] = {"max_network_retries": 2}
        if base:
            options["base_addresses"] = {"api": base}
        clients[(key, base)] = stripe.StripeClient(key, **options)
    return clients[(key, base)]


def card_payments_enabled() -> bool:
    """Whether card payments are offered: a Stripe secret key and webhook secret are configured."""
    config = current_app.config
    return bool(config.get("STRIPE_SECRET_KEY") and config.get("STRIPE_WEBHOOK_SECRET"))


def _require_enabled() -> None:
    if not card_payments_enabled():
        raise NotFound("Card payments are not available")


def _unknown_outcome(error: stripe.StripeError) -> bool:
    """No answer, or an answer that does not say the request was refused: try again later."""
    return isinstance(
        error,
        stripe.APIConnectionError
        | stripe.APIError
        | stripe.RateLimitError
        | stripe.AuthenticationError
        | stripe.PermissionError,
    )


def _message(error: stripe.StripeError, default: str) -> str:
    text = getattr(error, "user_message", None) or default
    return str(text)[:FAILURE_MESSAGE_MAX]


# ---------------------------------------------------------------------------------------------
# The organisation's card


def _require_payer(actor: User, organisation_id: int) -> None:
    if not actor.roles_for(organisation_id):
        raise NotFound("Organisation not found")
    if not can_pay_for(actor, organisation_id):
        raise PermissionDenied("Only your organisation's buyers and approvers can do that")


def _require_invoice_payer(actor: User, invoice: Invoice) -> None:
    if not actor.roles_for(invoice.lead_buyer_id):
        raise NotFound("Invoice not found")
    if not can_pay_invoice(actor, invoice):
        raise PermissionDenied("Only the lead buyer's buyers and approvers can pay an invoice")


def _customer_for(actor: User, organisation: Organisation, now: datetime) -> StripeCustomer:
    customer = saved_card_for(organisation.id)
    if customer is not None:
        return customer
    try:
        made = stripe_client().v1.customers.create(
            params={
                "name": organisation.name[:250],
                "metadata": {"organisation_id": str(organisation.id)},
            },
            options={"idempotency_key": f"organisation-{organisation.id}-customer"},
        )
    except stripe.StripeError as error:
        log.warning("Stripe customer for organisation %s: %s", organisation.id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    customer = StripeCustomer(
        organisation_id=organisation.id,
        organisation=organisation,
        stripe_customer_id=made.id,
        created_at=now,
        updated_at=now,
    )
    db.session.add(customer)
    audit.record(actor, "stripe_customer.created", customer, after={"customer": made.id})
    return customer


def save_card(
    actor: User, organisation: Organisation, payment_method_id: str, *, now: datetime | None = None
) -> StripeCustomer:
    """Save a card (a Stripe PaymentMethod) for the organisation's card payments, in place of any
    card saved before. A declined card raises ``CardDeclined`` with the customer kept."""
    _require_enabled()
    _require_payer(actor, organisation.id)
    payment_method_id = (payment_method_id or "").strip()
    if not PAYMENT_METHOD_ID.fullmatch(payment_method_id):
        raise BusinessRuleViolation(
            {"payment_method_id": ["Enter the card's payment method, which starts pm_"]}
        )
    now = now or utcnow()
    customer = _customer_for(actor, organisation, now)
    client = stripe_client()
    try:
        # A card already attached to another customer (another organisation's) is not ours to
        # take: Stripe would move it, and that organisation's payments would charge our buyer.
        owner = _id_of(client.v1.payment_methods.retrieve(payment_method_id).customer)
        if owner is not None and owner != customer.stripe_customer_id:
            raise BusinessRuleViolation(
                {"payment_method_id": ["We could not find that card. Enter the card again."]}
            )
        method = client.v1.payment_methods.attach(
            payment_method_id, params={"customer": customer.stripe_customer_id}
        )
    except stripe.CardError as error:
        db.session.flush()
        raise CardDeclined({"payment_method_id": [_message(error, DECLINED)]}) from error
    except stripe.InvalidRequestError as error:
        raise BusinessRuleViolation(
            {"payment_method_id": ["We could not find that card. Enter the card again."]}
        ) from error
    except stripe.StripeError as error:
        log.warning("attaching a card for organisation %s: %s", organisation.id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    return _record_card(actor, customer, method, now, field="payment_method_id")


def _record_card(
    actor: User, customer: StripeCustomer, method: Any, now: datetime, *, field: str
) -> StripeCustomer:
    """Keep the card's brand, last four digits and expiry (never more) as the organisation's card,
    in place of any card saved before."""
    card = getattr(method, "card", None)
    if method.type != "card" or card is None:
        raise BusinessRuleViolation({field: ["That is not a card"]})
    previous = customer.payment_method_id
    before = _card_snapshot(customer)
    customer.payment_method_id = method.id
    customer.card_brand = str(card.brand or "card")[:20]
    customer.card_last4 = str(card.last4)[:4]
    customer.card_exp_month, customer.card_exp_year = int(card.exp_month), int(card.exp_year)
    customer.card_saved_at, customer.card_saved_by_id = now, actor.id
    customer.updated_at = now
    db.session.flush()
    audit.record(
        actor, "payment_card.saved", customer, before=before, after=_card_snapshot(customer)
    )
    if previous and previous != method.id:
        _detach(previous)
    return customer


def card_form_available() -> bool:
    """Whether cards can be entered in Stripe's own form (Stripe.js needs the publishable key)."""
    return card_payments_enabled() and bool(current_app.config.get("STRIPE_PUBLISHABLE_KEY"))


def start_card_setup(
    actor: User, organisation: Organisation, *, now: datetime | None = None
) -> tuple[StripeCustomer, Any]:
    """Make a SetupIntent for the organisation's Stripe customer (made first if need be), for the
    page to confirm with the card entered in Stripe's form. Returns the customer and the intent
    (its ``client_secret`` is for that page only)."""
    _require_enabled()
    _require_payer(actor, organisation.id)
    customer = _customer_for(actor, organisation, now or utcnow())
    try:
        intent = stripe_client().v1.setup_intents.create(
            params={
                "customer": customer.stripe_customer_id,
                "usage": "off_session",
                "payment_method_types": ["card"],
                "metadata": {"organisation_id": str(organisation.id)},
            }
        )
    except stripe.StripeError as error:
        log.warning("SetupIntent for organisation %s: %s", organisation.id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    return customer, intent


def save_card_from_setup(
    actor: User, organisation: Organisation, setup_intent_id: str, *, now: datetime | None = None
) -> StripeCustomer:
    """Save the card confirmed in the page by the SetupIntent ``setup_intent_id``.

    The browser only names the SetupIntent: what it set up is read from Stripe with the secret
    key, and kept only if the intent is the organisation's own customer's and succeeded.
    """
    _require_enabled()
    _require_payer(actor, organisation.id)
    setup_intent_id = (setup_intent_id or "").strip()
    field = "card"
    if not SETUP_INTENT_ID.fullmatch(setup_intent_id):
        raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]})
    now = now or utcnow()
    customer = saved_card_for(organisation.id)
    if customer is None:  # no SetupIntent was ever made for this organisation
        raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]})
    client = stripe_client()
    try:
        intent = client.v1.setup_intents.retrieve(setup_intent_id)
    except stripe.InvalidRequestError as error:
        raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]}) from error
    except stripe.StripeError as error:
        log.warning("reading %s: %s", setup_intent_id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    # Another customer's intent is answered as one that does not exist: nothing about it leaks.
    if _id_of(getattr(intent, "customer", None)) != customer.stripe_customer_id:
        log.warning(
            "organisation %s named %s, which is not its customer's", organisation.id, intent.id
        )
        raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]})
    if intent.status != "succeeded":
        error = getattr(intent, "last_setup_error", None)
        message = str(getattr(error, "message", None) or "")
        raise BusinessRuleViolation(
            {
                field: [
                    (message + " " if message else "") + "The card was not saved. Enter it again."
                ]
            }
        )
    method_id = _id_of(getattr(intent, "payment_method", None))
    if not method_id:
        raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]})
    try:
        method = client.v1.payment_methods.retrieve(method_id)
        owner = _id_of(getattr(method, "customer", None))
        if owner is None:
            # Stripe attaches the card to the intent's customer when the intent succeeds (the
            # test double does not): attach it, so that payments may use it.
            method = client.v1.payment_methods.attach(
                method_id, params={"customer": customer.stripe_customer_id}
            )
        elif owner != customer.stripe_customer_id:
            raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]})
    except stripe.CardError as error:
        raise BusinessRuleViolation({field: [_message(error, DECLINED)]}) from error
    except stripe.InvalidRequestError as error:
        raise BusinessRuleViolation({field: [CARD_NOT_SET_UP]}) from error
    except stripe.StripeError as error:
        log.warning("reading %s: %s", method_id, error)
        raise CardPaymentsUnavailable(UNREACHABLE) from error
    if customer.payment_method_id == method.id:
        return customer  # the same intent sent twice (a double click): saved once
    return _record_card(actor, customer, method, now, field=field)


def _id_of(value: Any) -> str | None:
    """A Stripe reference as its id, whether the SDK gave the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return str(found) if found else None


def remove_card(actor: User, organisation: Organisation, *, now: datetime | None = None) -> None:
    """Forget the organisation's saved card (and detach it from the Stripe customer)."""
    _require_enabled()
    _require_payer(actor, organisation.id)
    customer = saved_card_for(organisation.id)
    if customer is None or not customer.has_card:
        raise BusinessRuleViolation("Your organisation has no saved card")
    before = _card_snapshot(customer)
    previous = customer.payment_method_id
    customer.payment_method_id = customer.card_brand = customer.card_last4 = None
    customer.card_exp_month = customer.card_exp_year = None
    customer.updated_at = now or utcnow()
    db.session.flush()
    audit.record(actor, "payment_card.removed", customer, before=before, after={})
    _detach(previous)


def _detach(payment_method_id: str) -> None:
    # Best effort: a card we no longer use cannot be charged by us anyway.
    try:
        stripe_client().v1.payment_methods.detach(payment_method_id)
    except stripe.StripeError as error:
        log.warning("detaching %s: %s", payment_method_id, error)


def _card_snapshot(customer: StripeCustomer) -> dict:
    if not customer.has_card:
        return {}
    return {"card": customer.card_label, "payment_method": customer.payment_method_id}


# ---------------------------------------------------------------------------------------------
# Paying an invoice


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
    customer = saved_card_for(invoice.lead_buyer_id)
    if customer is None or not customer.has_card:
        raise BusinessRuleViolation(
            {"card": ["Save a payment card for your organisation before paying by card"]}
        )
    attempt = latest.attempt + 1 if latest is not None else 1
    key = idempotency_key(invoice, attempt)
    payment = CardPayment(
        invoice_id=invoice.id,
        invoice=invoice,
        attempt=attempt,
        idempotency_key=key,
        amount_pence=invoice.amount_due_pence,
        currency=CURRENCY,
        status=CardPaymentStatus.PROCESSING,
        refunded_pence=0,
        created_at=now,
        created_by_id=actor.id,
    )
    try:
        intent = stripe_client().v1.payment_intents.create(
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
                    "attempt": str(attempt),
                },
            },
            options={"idempotency_key": key},
        )
    except stripe.StripeError as error:
        if _unknown_outcome(error):
            log.warning("paying invoice %s (%s): %s", invoice.id, key, error)
            raise CardPaymentsUnavailable(UNREACHABLE) from error
        # A definite refusal: this attempt failed, and the next one gets a new key.
        payment.payment_intent_id = _intent_id_of(error)
        db.session.add(payment)
        _fail(payment, _message(error, DECLINED), now)
        audit.record(actor, "card_payment.failed", payment, after=_snapshot(payment))
        return payment
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
    return payment


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


# ---------------------------------------------------------------------------------------------
# The webhook


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


# ---------------------------------------------------------------------------------------------
# Refunds (for credit notes)


@credit_note_raised.connect
def refund_credit_note(invoice: Invoice, *, note: CreditNote, actor: User) -> None:
    """A credit note on an invoice paid by card goes back to the card, once per credit note
    however often the credit note's request is retried."""
    if invoice.payment_method != PaymentMethod.CARD:
        return
    refund = refund_card_payment(actor, invoice, note.gross_pence, f"credit-note-{note.id}")
    note.refund_reference = refund.refund_id


@bacs_payment_recording.connect
def refuse_bacs_while_card_processing(invoice: Invoice) -> None:
    """A card payment under way may still take the money: a BACS payment recorded as well would
    pay the invoice twice. (One waiting for 3-D Secure has taken nothing; the card pages cancel
    it once the invoice is paid.)"""
    attempt = card_payment_for(invoice.id)
    if attempt is not None and attempt.status == CardPaymentStatus.PROCESSING:
        raise TransitionConflict(
            {
                "status": [
                    "A card payment of this invoice is being processed. Wait for its result "
                    "before recording a BACS payment: if it succeeds, the invoice is paid"
                ]
            }
        )


def refund_card_payment(
    actor: User | None, invoice: Invoice, amount_pence: int, key: str
) -> CardRefund:
    """Give back ``amount_pence`` of the card payment of ``invoice`` through Stripe, once per
    ``key`` (say ``credit-note-<id>``): calling again with the same key returns the first refund.

    The caller (the credit-note service) decides who may do this. Raises BusinessRuleViolation when
    the invoice was not paid by card or the amount is more than is left to refund.
    """
    _require_enabled()
    key = (key or "").strip()
    if not key or len(key) > REFUND_KEY_MAX:
        raise ValueError(f"a refund needs a key of 1 to {REFUND_KEY_MAX} characters")
    if isinstance(amount_pence, bool) or not isinstance(amount_pence, int) or amount_pence <= 0:
        raise BusinessRuleViolation({"amount_pence": ["Enter an amount to refund above £0"]})
    payment = db.session.scalar(
        sa.select(CardPayment).where(
            CardPayment.invoice_id == invoice.id,
            CardPayment.status == CardPaymentStatus.SUCCEEDED,
        )
    )
    if payment is None or invoice.payment_method != PaymentMethod.CARD:
        raise BusinessRuleViolation(
            {"amount_pence": ["This invoice was not paid by card, so nothing can be refunded"]}
        )
    [payment] = lock_rows(CardPayment, [payment.id])
    done = db.session.scalar(
        sa.select(CardRefund).where(CardRefund.card_payment_id == payment.id, CardRefund.key == key)
    )
    if done is not None:
        if done.amount_pence != amount_pence:
            raise BusinessRuleViolation(
                {"amount_pence": [f"A refund of a different amount was already made for {key}"]}
            )
        return done
    if amount_pence > payment.refundable_pence:
        raise BusinessRuleViolation(
            {
                "amount_pence": [
                    f"Only {payment.refundable_pence / 100:,.2f} pounds of the card payment is "
                    "left to refund"
                ]
            }
        )
    refund_key = f"{payment.idempotency_key}-refund-{key}"
    try:
        refund = stripe_client().v1.refunds.create(
            params={
                "payment_intent": payment.payment_intent_id,
                "amount": amount_pence,
                "metadata": {"invoice_id": str(invoice.id), "key": key},
            },
            options={"idempotency_key": refund_key},
        )
    except stripe.StripeError as error:
        if _unknown_outcome(error):
            raise CardPaymentsUnavailable(UNREACHABLE) from error
        raise BusinessRuleViolation(
            {"amount_pence": [_message(error, "The card payment service refused the refund")]}
        ) from error
    now = utcnow()
    row = CardRefund(
        card_payment_id=payment.id,
        card_payment=payment,
        invoice_id=invoice.id,
        key=key,
        idempotency_key=refund_key,
        refund_id=str(refund.id)[:STRIPE_ID_MAX],
        amount_pence=amount_pence,
        status=str(refund.status or "pending")[:30],
        created_at=now,
        created_by_id=getattr(actor, "id", None),
    )
    db.session.add(row)
    payment.refunded_pence += amount_pence
    db.session.flush()
    audit.record(
        actor,
        "card_payment.refunded",
        row,
        after={
            "amount_pence": amount_pence,
            "key": key,
            "refund": row.refund_id,
            "refunded_pence": payment.refunded_pence,
        },
    )
    return row
