"""The organisation's card: saved (by payment method or through Stripe's form), replaced and
removed. Every function that changes data flushes and never commits; the caller commits once.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

import stripe
from flask import current_app

from marketplace.accounts.models import Organisation, User
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
)
from marketplace.payments.models import (
    StripeCustomer,
)
from marketplace.payments.permissions import can_pay_for
from marketplace.payments.queries import saved_card_for
from marketplace.payments.services.gateway import (
    CARD_NOT_SET_UP,
    DECLINED,
    UNREACHABLE,
    CardDeclined,
    CardPaymentsUnavailable,
    _id_of,
    _message,
    _require_enabled,
    card_payments_enabled,
    stripe_client,
)

log = logging.getLogger(__name__)


PAYMENT_METHOD_ID = re.compile(r"pm_[A-Za-z0-9_]{1,200}")
SETUP_INTENT_ID = re.compile(r"seti_[A-Za-z0-9_]{1,200}")


def _require_payer(actor: User, organisation_id: int) -> None:
    if not actor.roles_for(organisation_id):
        raise NotFound("Organisation not found")
    if not can_pay_for(actor, organisation_id):
        raise PermissionDenied("Only your organisation's buyers and approvers can do that")


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
