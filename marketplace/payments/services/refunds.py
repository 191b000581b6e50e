"""Refunds to the card, for credit notes on invoices paid by card.

Connects to ``invoices.signals.credit_note_raised`` when imported; the app factory imports this
module so the receiver is connected whenever the app runs.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
import stripe

from marketplace.accounts.models import User
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import (
    BusinessRuleViolation,
)
from marketplace.invoices.models import CreditNote, Invoice, PaymentMethod
from marketplace.invoices.signals import credit_note_raised
from marketplace.payments.models import (
    REFUND_KEY_MAX,
    STRIPE_ID_MAX,
    CardPayment,
    CardPaymentStatus,
    CardRefund,
)
from marketplace.payments.services.gateway import (
    UNREACHABLE,
    CardPaymentsUnavailable,
    _message,
    _require_enabled,
    _unknown_outcome,
    stripe_client,
)


@credit_note_raised.connect
def refund_credit_note(invoice: Invoice, *, note: CreditNote, actor: User) -> None:
    """A credit note on an invoice paid by card goes back to the card, once per credit note
    however often the credit note's request is retried."""
    if invoice.payment_method != PaymentMethod.CARD:
        return
    refund = refund_card_payment(actor, invoice, note.gross_pence, f"credit-note-{note.id}")
    note.refund_reference = refund.refund_id


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
    payment = _locked_card_payment(invoice)
    done = _earlier_refund(payment, key, amount_pence)
    if done is not None:
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
    refund = _create_refund(invoice, payment, amount_pence, key, refund_key)
    return _record_refund(actor, payment, refund, amount_pence, key, refund_key)


def _locked_card_payment(invoice: Invoice) -> CardPayment:
    """The invoice's succeeded card payment, locked: two refunds at once are made one after the
    other, so together they never give back more than was paid."""
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
    return payment


def _earlier_refund(payment: CardPayment, key: str, amount_pence: int) -> CardRefund | None:
    """The refund already made under ``key``, if any (the same amount, or refused)."""
    done = db.session.scalar(
        sa.select(CardRefund).where(CardRefund.card_payment_id == payment.id, CardRefund.key == key)
    )
    if done is not None and done.amount_pence != amount_pence:
        raise BusinessRuleViolation(
            {"amount_pence": [f"A refund of a different amount was already made for {key}"]}
        )
    return done


def _create_refund(
    invoice: Invoice, payment: CardPayment, amount_pence: int, key: str, refund_key: str
) -> Any:
    """Stripe's refund, under its own idempotency key: a retry gets the same refund back."""
    try:
        return stripe_client().v1.refunds.create(
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


def _record_refund(
    actor: User | None,
    payment: CardPayment,
    refund: Any,
    amount_pence: int,
    key: str,
    refund_key: str,
) -> CardRefund:
    now = utcnow()
    row = CardRefund(
        card_payment_id=payment.id,
        card_payment=payment,
        invoice_id=payment.invoice_id,
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
