"""Card payment of invoices through Stripe (Government Procurement Cards are Visa cards).

Each buyer organisation has one Stripe customer, made the first time someone enters a card, with
at most one saved card (a Stripe PaymentMethod, set up in the page by Stripe.js confirming a
SetupIntent; only its brand, last four digits and expiry are kept here, for display). Paying an
invoice is one ``CardPayment`` per attempt: a PaymentIntent created and confirmed at once, under
an idempotency key made of the invoice's key and the attempt number; where the card's issuer asks
for 3-D Secure the attempt waits (``requires_action``) for the buyer to confirm it in the page.
A new attempt (and so a new key) is made only after a definite failure, so a double click or a
retry after a lost answer never charges twice. The invoice is marked paid when Stripe says so:
through the webhook (``payment_intent.succeeded``), or, after 3-D Secure, when the server reads
the PaymentIntent back; each webhook event is stored once, by its id, so a replayed event has no
effect.
"""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from marketplace.accounts.models import Organisation, User
from marketplace.core.db import TimestampMixin, UTCDateTime, db, enum_type
from marketplace.invoices.models import Invoice

STRIPE_ID_MAX = 255
IDEMPOTENCY_KEY_MAX = 255
CARD_BRAND_MAX = 20
FAILURE_MESSAGE_MAX = 500
EVENT_TYPE_MAX = 100
OUTCOME_MAX = 60
REFUND_KEY_MAX = 120
CURRENCY = "gbp"


class StripeCustomer(TimestampMixin, db.Model):
    """A buyer organisation's Stripe customer and the card it saved (if any)."""

    __tablename__ = "stripe_customers"
    __table_args__ = (
        sa.CheckConstraint(
            "(payment_method_id IS NULL) = (card_last4 IS NULL)", name="card_shown_when_saved"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organisation_id: Mapped[int] = mapped_column(sa.ForeignKey("organisations.id"), unique=True)
    stripe_customer_id: Mapped[str] = mapped_column(sa.String(STRIPE_ID_MAX), unique=True)
    payment_method_id: Mapped[str | None] = mapped_column(sa.String(STRIPE_ID_MAX))
    card_brand: Mapped[str | None] = mapped_column(sa.String(CARD_BRAND_MAX))
    card_last4: Mapped[str | None] = mapped_column(sa.String(4))
    card_exp_month: Mapped[int | None] = mapped_column()
    card_exp_year: Mapped[int | None] = mapped_column()
    card_saved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    card_saved_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    organisation: Mapped[Organisation] = relationship()
    card_saved_by: Mapped[User | None] = relationship()

    audit_type = "stripe_customer"

    @property
    def audit_organisation(self) -> Organisation:
        return self.organisation

    @property
    def has_card(self) -> bool:
        return self.payment_method_id is not None

    @property
    def card_label(self) -> str:
        """'Visa ending 4242, expires 12/2030'."""
        brand = (self.card_brand or "card").replace("_", " ").title()
        if brand == "Amex":
            brand = "American Express"
        return (
            f"{brand} ending {self.card_last4}, expires "
            f"{self.card_exp_month or 0:02d}/{self.card_exp_year or 0}"
        )


class CardPaymentStatus(enum.StrEnum):
    PROCESSING = "processing"  # the PaymentIntent is made; waiting for Stripe's word
    # The card's issuer asked for authentication (3-D Secure): the buyer confirms the
    # PaymentIntent in the page with Stripe.js, then the server reads its outcome from Stripe.
    REQUIRES_ACTION = "requires_action"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def label(self) -> str:
        if self is CardPaymentStatus.REQUIRES_ACTION:
            return "Waiting for you to confirm it with your card issuer"
        return self.value.capitalize()


# Stripe's word wins: a payment we took for failed may still be reported as succeeded.
CARD_PAYMENT_TRANSITIONS: dict[CardPaymentStatus, frozenset[CardPaymentStatus]] = {
    CardPaymentStatus.PROCESSING: frozenset(
        {CardPaymentStatus.SUCCEEDED, CardPaymentStatus.FAILED}
    ),
    CardPaymentStatus.REQUIRES_ACTION: frozenset(
        {CardPaymentStatus.PROCESSING, CardPaymentStatus.SUCCEEDED, CardPaymentStatus.FAILED}
    ),
    CardPaymentStatus.FAILED: frozenset({CardPaymentStatus.SUCCEEDED}),
    CardPaymentStatus.SUCCEEDED: frozenset(),
}


class CardPayment(db.Model):
    """One attempt to pay an invoice by card: one PaymentIntent, one idempotency key."""

    __tablename__ = "card_payments"
    __table_args__ = (
        sa.UniqueConstraint("invoice_id", "attempt", name="uq_card_payments_invoice_attempt"),
        sa.CheckConstraint("attempt > 0", name="attempt_positive"),
        sa.CheckConstraint("amount_pence > 0", name="amount_positive"),
        sa.CheckConstraint(
            "refunded_pence >= 0 AND refunded_pence <= amount_pence", name="refund_within_amount"
        ),
        sa.CheckConstraint(
            "(status = 'succeeded') = (succeeded_at IS NOT NULL)", name="succeeded_when_stamped"
        ),
        sa.CheckConstraint(
            "status <> 'failed' OR failure_message IS NOT NULL", name="failure_has_message"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"))
    attempt: Mapped[int] = mapped_column()
    idempotency_key: Mapped[str] = mapped_column(sa.String(IDEMPOTENCY_KEY_MAX), unique=True)
    # Unknown only when Stripe refused the card without telling us the PaymentIntent's id; the
    # webhook fills it in.
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(STRIPE_ID_MAX), unique=True)
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger)
    currency: Mapped[str] = mapped_column(sa.String(3), default=CURRENCY)
    status: Mapped[CardPaymentStatus] = mapped_column(
        enum_type(CardPaymentStatus, "card_payment_status")
    )
    failure_message: Mapped[str | None] = mapped_column(sa.String(FAILURE_MESSAGE_MAX))
    refunded_pence: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )
    succeeded_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    invoice: Mapped[Invoice] = relationship()
    created_by: Mapped[User | None] = relationship()
    refunds: Mapped[list[CardRefund]] = relationship(
        back_populates="card_payment", order_by="CardRefund.id"
    )

    audit_type = "card_payment"

    @property
    def audit_organisation(self) -> int:
        return self.invoice.lead_buyer_id

    @property
    def refundable_pence(self) -> int:
        return self.amount_pence - self.refunded_pence if self.status == "succeeded" else 0


class CardRefund(db.Model):
    """Money given back on a card payment, once per key (a credit note)."""

    __tablename__ = "card_refunds"
    __table_args__ = (
        sa.UniqueConstraint("card_payment_id", "key", name="uq_card_refunds_payment_key"),
        sa.CheckConstraint("amount_pence > 0", name="amount_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    card_payment_id: Mapped[int] = mapped_column(sa.ForeignKey("card_payments.id"))
    invoice_id: Mapped[int] = mapped_column(sa.ForeignKey("invoices.id"), index=True)
    key: Mapped[str] = mapped_column(sa.String(REFUND_KEY_MAX))
    idempotency_key: Mapped[str] = mapped_column(sa.String(IDEMPOTENCY_KEY_MAX), unique=True)
    refund_id: Mapped[str] = mapped_column(sa.String(STRIPE_ID_MAX), unique=True)
    amount_pence: Mapped[int] = mapped_column(sa.BigInteger)
    status: Mapped[str] = mapped_column(sa.String(30))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL")
    )

    card_payment: Mapped[CardPayment] = relationship(back_populates="refunds")

    audit_type = "card_refund"

    @property
    def audit_organisation(self) -> int:
        return self.card_payment.invoice.provider_id


class StripeEvent(db.Model):
    """A webhook event received from Stripe, stored once by its id (a replay does nothing)."""

    __tablename__ = "stripe_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(sa.String(STRIPE_ID_MAX), unique=True)
    type: Mapped[str] = mapped_column(sa.String(EVENT_TYPE_MAX))
    payment_intent_id: Mapped[str | None] = mapped_column(sa.String(STRIPE_ID_MAX), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(OUTCOME_MAX))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
