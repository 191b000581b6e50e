"""Stripe: the client for the configured key, whether card payments are offered, and how
Stripe's errors are told apart (refused, or outcome unknown) and shown.
"""

from __future__ import annotations

from typing import Any

import stripe
from flask import current_app

from marketplace.core.errors import (
    BusinessRuleViolation,
    DomainError,
    NotFound,
)
from marketplace.payments.models import (
    FAILURE_MESSAGE_MAX,
)

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


def _id_of(value: Any) -> str | None:
    """A Stripe reference as its id, whether the SDK gave the id or the expanded object."""
    if value is None or isinstance(value, str):
        return value
    found = getattr(value, "id", None)
    return str(found) if found else None
