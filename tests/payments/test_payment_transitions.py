"""A card payment moves once: a second word from Stripe that it succeeded (another event, or one
handled by a worker that read the payment before the first was committed) changes nothing."""

from __future__ import annotations

import sqlalchemy as sa
import stripe

from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.payments.models import CardPayment, CardPaymentStatus
from marketplace.payments.services import card_payments, webhooks
from tests.payments.test_payment_services import save_visa, wait_for_event
from tests.racing import elsewhere


def actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def emails() -> list[str]:
    return list(db.session.scalars(sa.select(Notification.template).order_by(Notification.id)))


def test_a_second_success_event_read_before_the_first_was_handled_changes_nothing(
    app, stripe_on, card_world
):
    save_visa(card_world)
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    commit()
    event = wait_for_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    again = event.to_dict()
    again["id"] = "evt_the_same_success_again"
    # This worker has read the payment (processing) and its invoice (validated)...
    payment = db.session.get(CardPayment, payment.id)
    invoice = db.session.get(Invoice, card_world.invoice.id)
    assert (payment.status, invoice.status) == (
        CardPaymentStatus.PROCESSING,
        InvoiceStatus.VALIDATED,
    )
    # ...when another worker handles Stripe's first event.
    elsewhere(app, lambda: webhooks.handle_event(event))
    before = (actions(), emails())
    assert before[0].count("card_payment.succeeded") == 1

    assert webhooks.handle_event(stripe.Event.construct_from(again, None)) == "already_succeeded"
    commit()
    assert (payment.status, invoice.status) == (CardPaymentStatus.SUCCEEDED, InvoiceStatus.PAID)
    # No second success, no second payment of the invoice, no false call for a refund.
    assert (actions(), emails()) == before
    assert "card_payment.needs_refund" not in before[0]


def test_a_failure_event_after_the_success_was_handled_elsewhere_changes_nothing(
    app, stripe_on, card_world
):
    save_visa(card_world)
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    commit()
    succeeded = wait_for_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    failed = succeeded.to_dict()
    failed["id"], failed["type"] = "evt_failed_too_late", "payment_intent.payment_failed"
    payment = db.session.get(CardPayment, payment.id)
    assert payment.status == CardPaymentStatus.PROCESSING
    elsewhere(app, lambda: webhooks.handle_event(succeeded))
    before = (actions(), emails())

    outcome = webhooks.handle_event(stripe.Event.construct_from(failed, None))
    commit()
    assert outcome == "already_succeeded"
    assert payment.status == CardPaymentStatus.SUCCEEDED and payment.failure_message is None
    assert (actions(), emails()) == before
