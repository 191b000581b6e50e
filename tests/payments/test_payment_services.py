"""Card payment services against localstripe: saving a card, paying once however often asked,
declined cards, the webhook's events acted on once, and refunds."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.notifications.models import Notification
from marketplace.invoices.models import InvoiceStatus, PaymentMethod
from marketplace.invoices.services import credit_notes, issuing
from marketplace.payments.models import CardPayment, CardPaymentStatus, CardRefund, StripeEvent
from marketplace.payments.queries import card_payment_for, saved_card_for
from marketplace.payments.services import card_payments, gateway, refunds, saved_cards, webhooks
from tests.factories import make_member

GROSS = 5 * 12_345 * 6 // 5  # five sessions at £123.45 plus 20% VAT: £740.70


def stripe_event(localstripe, type_: str, intent_id: str):
    """The event localstripe made for the intent, as the SDK builds it from a webhook."""
    import stripe

    for event in localstripe.events(type_):
        if event["data"]["object"]["id"] == intent_id:
            return stripe.Event.construct_from(event, None)
    raise AssertionError(f"no {type_} event for {intent_id}")


def wait_for_event(localstripe, type_: str, intent_id: str):
    deadline = time.monotonic() + 5
    while True:
        try:
            return stripe_event(localstripe, type_, intent_id)
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def save_visa(card_world, card="pm_card_visa"):
    return saved_cards.save_card(card_world.buyer, card_world.region, card)


def test_saving_a_card_makes_one_customer_and_keeps_only_what_is_shown(stripe_on, card_world):
    customer = save_visa(card_world)
    assert customer.stripe_customer_id.startswith("cus_")
    assert customer.payment_method_id.startswith("pm_")
    assert (customer.card_brand, customer.card_last4) == ("visa", "4242")
    assert customer.card_label == "Visa ending 4242, expires 12/2030"
    # A second card replaces the first on the same customer.
    again = save_visa(card_world)
    assert again.id == customer.id and len(stripe_on.list("customers")) == 1
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert actions.count("payment_card.saved") == 2 and "stripe_customer.created" in actions


def test_a_declined_card_is_not_saved_and_says_why(stripe_on, card_world):
    with pytest.raises(gateway.CardDeclined) as declined:
        save_visa(card_world, "pm_card_visa_chargeDeclined")
    assert declined.value.errors == {"payment_method_id": ["Your card was declined."]}
    customer = saved_card_for(card_world.region.id)
    assert customer is not None and not customer.has_card  # the customer is kept, not the card


@pytest.mark.parametrize("bad", ["", "card_123", "pm_", "pm_x y", "pm_" + "a" * 300, "ＰＭ_1"])
def test_a_malformed_card_reference_is_refused_before_stripe(stripe_on, card_world, bad):
    with pytest.raises(BusinessRuleViolation) as refused:
        save_visa(card_world, bad)
    assert "payment_method_id" in refused.value.errors
    assert stripe_on.list("customers") == []


def test_an_unknown_card_reference_gets_a_clear_message(stripe_on, card_world):
    with pytest.raises(BusinessRuleViolation) as refused:
        save_visa(card_world, "pm_doesnotexist")
    assert refused.value.errors == {
        "payment_method_id": ["We could not find that card. Enter the card again."]
    }


def test_only_the_organisations_buyers_and_approvers_save_cards(stripe_on, card_world):
    with pytest.raises(NotFound):
        saved_cards.save_card(card_world.provider_admin, card_world.region, "pm_card_visa")
    assessor = make_member(Role.ASSESSOR, card_world.region)
    with pytest.raises(PermissionDenied):
        saved_cards.save_card(assessor, card_world.region, "pm_card_visa")


def test_paying_charges_once_and_the_webhook_marks_the_invoice_paid(stripe_on, card_world):
    save_visa(card_world)
    invoice = card_world.invoice
    payment = card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert payment.status == CardPaymentStatus.PROCESSING
    assert payment.amount_pence == invoice.gross_pence == GROSS
    assert payment.idempotency_key == f"invoice-{invoice.id}-payment-1"
    assert invoice.status == InvoiceStatus.VALIDATED  # paid only when Stripe says so

    # A retry (double click, back and resubmit) returns the same attempt: no second charge.
    assert card_payments.pay_invoice_by_card(card_world.approver, invoice) is payment
    [intent] = stripe_on.list("payment_intents")
    assert (intent["id"], intent["amount"], intent["currency"]) == (
        payment.payment_intent_id,
        GROSS,
        "gbp",
    )
    assert len(stripe_on.list("charges")) == 1

    event = wait_for_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    assert webhooks.handle_event(event) == "invoice_paid"
    assert invoice.status == InvoiceStatus.PAID and invoice.payment_method == PaymentMethod.CARD
    assert invoice.payment_reference == payment.payment_intent_id
    assert payment.status == CardPaymentStatus.SUCCEEDED
    db.session.commit()  # the CHECK constraint on invoices.payment_method allows a card
    # The replay of the same event does nothing more.
    assert webhooks.handle_event(event) == "duplicate"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 1
    paid = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "invoice.paid")
    ).all()
    assert len(paid) == 1 and paid[0].after["method"] == "card"
    emails = db.session.scalars(sa.select(Notification.template)).all()
    assert emails.count("invoices_paid_by_card") == 1  # to the provider
    # Paid: nothing more to pay.
    assert card_payments.pay_invoice_by_card(card_world.buyer, invoice) is payment
    assert len(stripe_on.list("payment_intents")) == 1


def test_a_bacs_payment_is_refused_while_a_card_payment_is_processing(stripe_on, card_world):
    """Recording BACS while the card may still take the money would pay the invoice twice."""
    save_visa(card_world)
    invoice = card_world.invoice
    payment = card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert payment.status == CardPaymentStatus.PROCESSING
    with pytest.raises(TransitionConflict) as refused:
        issuing.mark_paid_by_bacs(card_world.approver, invoice, "REM-9", invoice.received_at.date())
    assert "card payment of this invoice is being processed" in str(refused.value.errors)
    assert invoice.status == InvoiceStatus.VALIDATED and invoice.payment_method is None
    # Once Stripe says the card failed, BACS may be recorded.
    payment.status, payment.failure_message = CardPaymentStatus.FAILED, "Your card was declined"
    issuing.mark_paid_by_bacs(card_world.approver, invoice, "REM-9", invoice.received_at.date())
    assert invoice.status == InvoiceStatus.PAID and invoice.payment_method == PaymentMethod.BACS


def test_a_card_declined_on_payment_fails_clearly_and_a_new_attempt_gets_a_new_key(
    stripe_on, card_world
):
    save_visa(card_world, "pm_card_chargeCustomerFail")  # attaches, then every charge fails
    invoice = card_world.invoice
    failed = card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert failed.status == CardPaymentStatus.FAILED
    assert failed.failure_message == "Your card was declined."
    assert invoice.status == InvoiceStatus.VALIDATED and invoice.paid_at is None
    assert db.session.scalars(sa.select(Notification.template)).all().count("payments_failed") == 2

    # Stripe's payment_failed event finds the attempt by its metadata and changes nothing more.
    [intent] = stripe_on.list("payment_intents")
    event = wait_for_event(stripe_on, "payment_intent.payment_failed", intent["id"])
    assert webhooks.handle_event(event) == "already_failed"
    assert failed.payment_intent_id == intent["id"]
    assert db.session.scalars(sa.select(Notification.template)).all().count("payments_failed") == 2

    # With a good card the next attempt has a key of its own.
    save_visa(card_world)
    second = card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert (second.attempt, second.status) == (2, CardPaymentStatus.PROCESSING)
    assert second.idempotency_key == f"invoice-{invoice.id}-payment-2"
    assert card_payment_for(invoice.id) is second
    assert len(stripe_on.list("payment_intents")) == 2


def test_a_failed_payment_of_a_credited_invoice_names_the_amount_that_was_tried(
    stripe_on, card_world
):
    invoice = card_world.invoice
    credit_notes.raise_credit_note(
        card_world.provider_admin, invoice, 12_345, "One session cancelled"
    )
    save_visa(card_world, "pm_card_chargeCustomerFail")

    failed = card_payments.pay_invoice_by_card(card_world.buyer, invoice)

    assert failed.amount_pence == invoice.amount_due_pence == GROSS - 14_814
    bodies = db.session.scalars(
        sa.select(Notification.body).where(Notification.template == "payments_failed")
    ).all()
    assert bodies and all("The card payment of £592.56 " in body for body in bodies)


def test_a_failure_reported_only_by_the_webhook_is_shown(stripe_on, card_world):
    save_visa(card_world)
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    intent = stripe_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    failed = intent.to_dict()
    failed["id"] = "evt_failed_later"
    failed["type"] = "payment_intent.payment_failed"
    failed["data"]["object"]["last_payment_error"] = {
        "message": "Your card has insufficient funds."
    }
    import stripe

    assert webhooks.handle_event(stripe.Event.construct_from(failed, None)) == "payment_failed"
    assert payment.status == CardPaymentStatus.FAILED
    assert payment.failure_message == "Your card has insufficient funds."
    assert card_world.invoice.status == InvoiceStatus.VALIDATED


def test_events_for_other_intents_and_other_types_are_stored_and_ignored(stripe_on, card_world):
    import stripe

    event = stripe.Event.construct_from(
        {"id": "evt_other", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}, None
    )
    assert webhooks.handle_event(event) == "ignored"
    stranger = stripe.Event.construct_from(
        {
            "id": "evt_stranger",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_stranger", "metadata": {"invoice_id": "999"}}},
        },
        None,
    )
    assert webhooks.handle_event(stranger) == "unknown_payment"
    assert card_world.invoice.status == InvoiceStatus.VALIDATED


def test_who_may_pay_and_what(stripe_on, card_world):
    save_visa(card_world)
    invoice = card_world.invoice
    with pytest.raises(NotFound):  # the provider is not the payer
        card_payments.pay_invoice_by_card(card_world.provider_admin, invoice)
    with pytest.raises(NotFound):  # a co-funder or stranger
        card_payments.pay_invoice_by_card(card_world.pcc_approver, invoice)
    assessor = make_member(Role.ASSESSOR, card_world.region)
    with pytest.raises(PermissionDenied):
        card_payments.pay_invoice_by_card(assessor, invoice)
    assert stripe_on.list("payment_intents") == []


def test_only_a_validated_invoice_with_a_saved_card_is_paid(stripe_on, card_world):
    invoice = card_world.invoice
    with pytest.raises(BusinessRuleViolation) as no_card:
        card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert "card" in no_card.value.errors
    save_visa(card_world)
    issuing.mark_paid_by_bacs(card_world.buyer, invoice, "REM-1", invoice.received_at.date())
    with pytest.raises(BusinessRuleViolation) as paid:
        card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert paid.value.errors["status"] == [
        "This invoice is paid: only a validated invoice can be paid"
    ]
    assert stripe_on.list("payment_intents") == []


def test_without_keys_card_payments_are_off(app, card_world):
    assert not card_payments.can_pay_by_card(card_world.buyer, card_world.invoice)
    with pytest.raises(NotFound):
        card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)


def test_stripe_out_of_reach_records_nothing_so_the_retry_uses_the_same_key(
    app, stripe_on, card_world
):
    save_visa(card_world)
    db.session.commit()  # as a page would find it
    app.config["STRIPE_API_BASE"] = "http://127.0.0.1:9"  # nothing listens there
    with pytest.raises(gateway.CardPaymentsUnavailable):
        card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    db.session.rollback()
    app.config["STRIPE_API_BASE"] = stripe_on.url
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    assert payment.attempt == 1  # the same key as the attempt whose outcome was unknown


def paid_by_card(stripe_on, card_world):
    save_visa(card_world)
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    webhooks.handle_event(
        wait_for_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    )
    return payment


def test_a_refund_goes_back_through_stripe_once_per_credit_note(stripe_on, card_world):
    payment = paid_by_card(stripe_on, card_world)
    invoice = card_world.invoice
    refund = refunds.refund_card_payment(card_world.provider_admin, invoice, 10_000, "cn-1")
    assert refund.refund_id.startswith("re_") and refund.amount_pence == 10_000
    assert payment.refunded_pence == 10_000
    # The same credit note again: the same refund, nothing more given back.
    assert refunds.refund_card_payment(None, invoice, 10_000, "cn-1") is refund
    with pytest.raises(BusinessRuleViolation):
        refunds.refund_card_payment(None, invoice, 5_000, "cn-1")
    [stripe_refund] = stripe_on.list("refunds")
    assert (stripe_refund["id"], stripe_refund["amount"]) == (refund.refund_id, 10_000)

    with pytest.raises(BusinessRuleViolation) as too_much:
        refunds.refund_card_payment(None, invoice, GROSS - 10_000 + 1, "cn-2")
    assert too_much.value.errors["amount_pence"] == [
        "Only 640.70 pounds of the card payment is left to refund"
    ]
    refunds.refund_card_payment(None, invoice, GROSS - 10_000, "cn-2")
    assert payment.refundable_pence == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CardRefund)) == 2
    assert len(stripe_on.list("refunds")) == 2


@pytest.mark.parametrize("amount", [0, -1, 1.5, True, "100"])
def test_a_refund_of_a_bad_amount_is_refused(stripe_on, card_world, amount):
    paid_by_card(stripe_on, card_world)
    with pytest.raises(BusinessRuleViolation):
        refunds.refund_card_payment(None, card_world.invoice, amount, "cn-1")
    assert stripe_on.list("refunds") == []


def test_an_invoice_not_paid_by_card_cannot_be_refunded_by_card(stripe_on, card_world):
    invoice = card_world.invoice
    issuing.mark_paid_by_bacs(card_world.buyer, invoice, "REM-1", invoice.received_at.date())
    with pytest.raises(BusinessRuleViolation) as refused:
        refunds.refund_card_payment(None, invoice, 100, "cn-1")
    assert refused.value.errors == {
        "amount_pence": ["This invoice was not paid by card, so nothing can be refunded"]
    }
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CardPayment)) == 0


def test_a_credit_note_on_a_card_paid_invoice_refunds_the_card_once(stripe_on, card_world):
    payment = paid_by_card(stripe_on, card_world)
    invoice = card_world.invoice
    note = credit_notes.raise_credit_note(
        card_world.provider_admin, invoice, 12_345, "One session did not happen"
    )
    [stripe_refund] = stripe_on.list("refunds")
    # £123.45 + £24.69 VAT back to the card, recorded on the credit note.
    assert stripe_refund["amount"] == note.gross_pence == 14_814
    assert note.refund_reference == stripe_refund["id"]
    assert payment.refunded_pence == 14_814
    # More than is left on the invoice is refused before Stripe is asked.
    with pytest.raises(BusinessRuleViolation):
        credit_notes.raise_credit_note(card_world.provider_admin, invoice, 5 * 12_345, "Too much")
    assert len(stripe_on.list("refunds")) == 1


def test_after_a_credit_note_the_card_pays_only_what_is_due(stripe_on, card_world):
    invoice = card_world.invoice
    credit_notes.raise_credit_note(card_world.provider_admin, invoice, 12_345, "One session missed")
    save_visa(card_world)
    payment = card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert payment.amount_pence == GROSS - 14_814 == invoice.amount_due_pence
    [intent] = stripe_on.list("payment_intents")
    assert intent["amount"] == GROSS - 14_814


def test_an_invoice_credited_in_full_is_not_charged(stripe_on, card_world):
    invoice = card_world.invoice
    credit_notes.raise_credit_note(
        card_world.provider_admin, invoice, invoice.net_pence, "Cancelled"
    )
    save_visa(card_world)
    with pytest.raises(BusinessRuleViolation) as refused:
        card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert "nothing is due" in refused.value.errors["status"][0]
    assert stripe_on.list("payment_intents") == []
