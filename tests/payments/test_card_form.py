"""Cards entered in Stripe's own form (a SetupIntent confirmed by Stripe.js) and payments that
the card's issuer asks the buyer to confirm (3-D Secure), against localstripe: the services, then
the pages. What Stripe.js does in the browser is done here by LocalStripe.confirm_card_setup /
confirm_card_payment, with the publishable key only."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.invoices.models import InvoiceStatus, PaymentMethod
from marketplace.payments.models import CardPayment, CardPaymentStatus
from marketplace.payments.queries import saved_card_for
from marketplace.payments.services import card_payments, gateway, saved_cards, webhooks
from tests.factories import make_member

VISA = "4242424242424242"
DECLINED_ON_SETUP = "4000000000000002"
ALWAYS_AUTHENTICATE = "4000002760003184"  # 3-D Secure on setting up and on every payment


def set_up_card(card_world, stripe_on, number=VISA, *, who=None, organisation=None):
    """The card page's round trip: the server's SetupIntent, Stripe.js's confirmation, the save."""
    who, organisation = who or card_world.buyer, organisation or card_world.region
    _, intent = saved_cards.start_card_setup(who, organisation)
    confirmed = stripe_on.confirm_card_setup(intent.client_secret, number)
    assert confirmed.get("status") == "succeeded", confirmed
    return saved_cards.save_card_from_setup(who, organisation, intent.id)


# --- saving a card from a SetupIntent ---------------------------------------------------------


def test_a_card_set_up_in_the_page_is_saved_from_what_stripe_says(stripe_on, card_world):
    customer = set_up_card(card_world, stripe_on)
    assert customer.card_label == "Visa ending 4242, expires 12/2031"
    [method] = [
        m
        for m in stripe_on.list(
            "payment_methods", customer=customer.stripe_customer_id, type="card"
        )
    ]
    assert method["id"] == customer.payment_method_id  # attached to the organisation's customer
    [intent] = stripe_on.list("setup_intents")
    assert intent["customer"] == customer.stripe_customer_id
    assert intent["metadata"] == {"organisation_id": str(card_world.region.id)}
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert actions.count("payment_card.saved") == 1
    # The same intent sent again (a double click) saves nothing more.
    assert saved_cards.save_card_from_setup(card_world.buyer, card_world.region, intent["id"])
    assert db.session.scalars(sa.select(AuditEvent.action)).all().count("payment_card.saved") == 1


def test_a_card_that_asked_for_3d_secure_on_setting_up_is_saved_once_confirmed(
    stripe_on, card_world
):
    customer = set_up_card(card_world, stripe_on, ALWAYS_AUTHENTICATE)
    assert customer.card_last4 == "3184"


def test_a_setup_intent_of_another_customer_is_refused_and_nothing_is_saved(stripe_on, card_world):
    # The co-funder's buyer sets up a card of its own; the lead buyer's page is sent its intent.
    pcc_buyer = make_member(Role.BUYER, card_world.pcc)
    _, theirs = saved_cards.start_card_setup(pcc_buyer, card_world.pcc)
    stripe_on.confirm_card_setup(theirs.client_secret)
    saved_cards.start_card_setup(card_world.buyer, card_world.region)  # ours exists too
    with pytest.raises(BusinessRuleViolation) as refused:
        saved_cards.save_card_from_setup(card_world.buyer, card_world.region, theirs.id)
    assert refused.value.errors == {"card": [gateway.CARD_NOT_SET_UP]}
    assert not saved_card_for(card_world.region.id).has_card
    assert not saved_card_for(card_world.pcc.id).has_card


def test_an_intent_before_the_organisation_has_a_customer_is_refused(stripe_on, card_world):
    pcc_buyer = make_member(Role.BUYER, card_world.pcc)
    _, theirs = saved_cards.start_card_setup(pcc_buyer, card_world.pcc)
    stripe_on.confirm_card_setup(theirs.client_secret)
    with pytest.raises(BusinessRuleViolation):
        saved_cards.save_card_from_setup(card_world.buyer, card_world.region, theirs.id)
    assert saved_card_for(card_world.region.id) is None


@pytest.mark.parametrize("bad", ["", "pm_card_visa", "seti_", "seti_x y", "seti_nosuchintent"])
def test_a_malformed_or_unknown_setup_intent_is_refused(stripe_on, card_world, bad):
    saved_cards.start_card_setup(card_world.buyer, card_world.region)
    with pytest.raises(BusinessRuleViolation) as refused:
        saved_cards.save_card_from_setup(card_world.buyer, card_world.region, bad)
    assert refused.value.errors == {"card": [gateway.CARD_NOT_SET_UP]}
    assert not saved_card_for(card_world.region.id).has_card


def test_a_card_declined_on_setting_up_is_not_saved(stripe_on, card_world):
    _, intent = saved_cards.start_card_setup(card_world.buyer, card_world.region)
    declined = stripe_on.confirm_card_setup(intent.client_secret, DECLINED_ON_SETUP)
    assert declined["error"]["message"] == "Your card was declined."  # what the page shows
    # A page that sends the intent anyway gets a clear refusal.
    with pytest.raises(BusinessRuleViolation) as refused:
        saved_cards.save_card_from_setup(card_world.buyer, card_world.region, intent.id)
    assert "The card was not saved. Enter it again." in refused.value.errors["card"][0]
    assert not saved_card_for(card_world.region.id).has_card


def test_an_unconfirmed_setup_intent_is_refused(stripe_on, card_world):
    _, intent = saved_cards.start_card_setup(card_world.buyer, card_world.region)
    with pytest.raises(BusinessRuleViolation):
        saved_cards.save_card_from_setup(card_world.buyer, card_world.region, intent.id)
    assert not saved_card_for(card_world.region.id).has_card


def test_a_payment_method_of_another_organisation_is_refused(stripe_on, card_world):
    pcc_buyer = make_member(Role.BUYER, card_world.pcc)
    theirs = set_up_card(card_world, stripe_on, who=pcc_buyer, organisation=card_world.pcc)
    with pytest.raises(BusinessRuleViolation) as refused:
        saved_cards.save_card(card_world.buyer, card_world.region, theirs.payment_method_id)
    assert refused.value.errors == {
        "payment_method_id": ["We could not find that card. Enter the card again."]
    }
    assert not saved_card_for(card_world.region.id).has_card
    [method] = stripe_on.list("payment_methods", customer=theirs.stripe_customer_id, type="card")
    assert method["id"] == theirs.payment_method_id  # still theirs


def test_only_buyers_and_approvers_set_up_cards(stripe_on, card_world):
    with pytest.raises(NotFound):
        saved_cards.start_card_setup(card_world.provider_admin, card_world.region)
    with pytest.raises(PermissionDenied):
        saved_cards.start_card_setup(
            make_member(Role.ASSESSOR, card_world.region), card_world.region
        )
    assert stripe_on.list("setup_intents") == []


# --- paying when the card's issuer asks for authentication ------------------------------------


def pay_with_authentication(card_world, stripe_on):
    set_up_card(card_world, stripe_on, ALWAYS_AUTHENTICATE)
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    assert payment.status == CardPaymentStatus.REQUIRES_ACTION
    return payment


def test_a_payment_confirmed_in_the_page_is_checked_with_stripe_and_paid_once(
    stripe_on, card_world
):
    invoice = card_world.invoice
    payment = pay_with_authentication(card_world, stripe_on)
    # Pressing Pay again, while the issuer's check is waiting, makes no second intent.
    assert card_payments.pay_invoice_by_card(card_world.approver, invoice) is payment
    assert len(stripe_on.list("payment_intents")) == 1 and stripe_on.list("charges") == []
    # Checked before the buyer confirmed: still waiting, nothing paid.
    assert card_payments.check_card_payment(card_world.buyer, invoice).status == (
        CardPaymentStatus.REQUIRES_ACTION
    )
    assert invoice.status == InvoiceStatus.VALIDATED

    stripe_on.confirm_card_payment(card_payments.authentication_secret(payment))
    checked = card_payments.check_card_payment(card_world.buyer, invoice)
    assert checked is payment and payment.status == CardPaymentStatus.SUCCEEDED
    assert invoice.status == InvoiceStatus.PAID and invoice.payment_method == PaymentMethod.CARD
    assert invoice.payment_reference == payment.payment_intent_id
    # The second check (a double click) and Stripe's webhook both find it done.
    assert card_payments.check_card_payment(card_world.buyer, invoice) is payment
    from tests.payments.test_payment_services import wait_for_event

    event = wait_for_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    assert webhooks.handle_event(event) == "already_succeeded"
    assert len(stripe_on.list("charges")) == 1
    paid = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "invoice.paid"))
    assert len(paid.all()) == 1


def test_failed_authentication_fails_the_attempt_and_a_new_one_may_be_made(stripe_on, card_world):
    invoice = card_world.invoice
    payment = pay_with_authentication(card_world, stripe_on)
    stripe_on.confirm_card_payment(card_payments.authentication_secret(payment), success=False)
    checked = card_payments.check_card_payment(card_world.buyer, invoice)
    assert checked.status == CardPaymentStatus.FAILED
    assert checked.failure_message == gateway.NOT_AUTHENTICATED
    assert invoice.status == InvoiceStatus.VALIDATED and invoice.paid_at is None
    again = card_payments.pay_invoice_by_card(card_world.buyer, invoice)
    assert again.attempt == 2 and again.status == CardPaymentStatus.REQUIRES_ACTION


def test_a_payment_waiting_for_authentication_can_be_cancelled(stripe_on, card_world):
    invoice = card_world.invoice
    payment = pay_with_authentication(card_world, stripe_on)
    card_payments.cancel_card_payment(card_world.buyer, invoice)
    assert payment.status == CardPaymentStatus.FAILED
    [intent] = stripe_on.list("payment_intents")
    assert intent["status"] == "canceled" and stripe_on.list("charges") == []
    with pytest.raises(BusinessRuleViolation):
        card_payments.cancel_card_payment(card_world.buyer, invoice)


def test_only_the_lead_buyers_payers_check_a_payment(stripe_on, card_world):
    pay_with_authentication(card_world, stripe_on)
    with pytest.raises(NotFound):
        card_payments.check_card_payment(card_world.provider_admin, card_world.invoice)
    with pytest.raises(PermissionDenied):
        card_payments.check_card_payment(
            make_member(Role.ASSESSOR, card_world.region), card_world.invoice
        )
    assert db.session.scalars(sa.select(CardPayment.status)).all() == [
        CardPaymentStatus.REQUIRES_ACTION
    ]


# --- the pages of a payment that needs authentication -----------------------------------------


def test_paying_through_the_page_with_3d_secure(stripe_on, card_world, web):
    import re

    set_up_card(card_world, stripe_on, ALWAYS_AUTHENTICATE)
    db.session.commit()
    invoice = card_world.invoice
    web.as_user(card_world.buyer, card_world.region)
    paid = web.post(f"/invoices/{invoice.id}/pay-by-card", data={})
    confirm_url = f"/invoices/{invoice.id}/pay-by-card/confirm"
    assert paid.status_code == 302 and paid.headers["Location"].endswith(confirm_url)
    # The invoice's page and the pay page lead back to the confirmation while it waits.
    shown = web.get(f"/invoices/{invoice.id}").text
    assert "Card payment waiting for you." in shown and f'href="{confirm_url}"' in shown
    assert web.get(f"/invoices/{invoice.id}/pay-by-card").headers["Location"].endswith(confirm_url)
    page = web.get(confirm_url)
    assert page.status_code == 200 and "Confirm the card payment" in page.text
    assert stripe_on.url in page.headers["Content-Security-Policy"]
    assert "Confirming the payment is not available" in page.text  # until Stripe.js loads
    secret = re.search(r'data-client-secret="([^"]+)"', page.text).group(1)

    # Sent before the buyer passed the issuer's check: told so, nothing paid.
    early = web.post(confirm_url, data={})
    assert early.status_code == 422 and "has not confirmed the payment yet" in early.text

    stripe_on.confirm_card_payment(secret)
    done = web.post(confirm_url, data={})
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/invoices/{invoice.id}")
    db.session.refresh(invoice)
    assert invoice.status == InvoiceStatus.PAID
    # A second press finds it paid: back to the invoice, no second charge.
    assert web.post(confirm_url, data={}).status_code == 302
    assert len(stripe_on.list("charges")) == 1


def test_a_failed_check_on_the_page_says_so_and_nothing_is_paid(stripe_on, card_world, web):
    import re

    set_up_card(card_world, stripe_on, ALWAYS_AUTHENTICATE)
    db.session.commit()
    invoice = card_world.invoice
    web.as_user(card_world.buyer, card_world.region)
    web.post(f"/invoices/{invoice.id}/pay-by-card", data={})
    page = web.get(f"/invoices/{invoice.id}/pay-by-card/confirm")
    secret = re.search(r'data-client-secret="([^"]+)"', page.text).group(1)
    stripe_on.confirm_card_payment(secret, success=False)
    failed = web.post(f"/invoices/{invoice.id}/pay-by-card/confirm", data={})
    assert failed.status_code == 422 and "govuk-error-summary" in failed.text
    assert gateway.NOT_AUTHENTICATED in failed.text
    db.session.refresh(invoice)
    assert invoice.status == InvoiceStatus.VALIDATED and invoice.paid_at is None


def test_cancelling_a_payment_waiting_for_authentication(stripe_on, card_world, web):
    set_up_card(card_world, stripe_on, ALWAYS_AUTHENTICATE)
    db.session.commit()
    invoice = card_world.invoice
    web.as_user(card_world.buyer, card_world.region)
    web.post(f"/invoices/{invoice.id}/pay-by-card", data={})
    cancelled = web.post(f"/invoices/{invoice.id}/pay-by-card/cancel", data={})
    assert cancelled.status_code == 302
    assert "Try paying by card again" in web.get(f"/invoices/{invoice.id}").text
    assert stripe_on.list("charges") == []


def test_the_confirmation_page_is_not_found_for_another_organisation(stripe_on, card_world, web):
    pay_with_authentication(card_world, stripe_on)
    db.session.commit()
    stranger = make_member(Role.BUYER, card_world.pcc)
    web.as_user(stranger, card_world.pcc)
    url = f"/invoices/{card_world.invoice.id}/pay-by-card/confirm"
    assert web.get(url).status_code == 404
    assert web.post(url, data={}).status_code == 404
    assert web.post(f"/invoices/{card_world.invoice.id}/pay-by-card/cancel").status_code == 404


def test_a_payment_still_waiting_when_the_invoice_is_paid_by_bacs_is_cancelled_not_offered(
    stripe_on, card_world, web
):
    from marketplace.core.clock import london_date
    from marketplace.invoices.services import issuing

    payment = pay_with_authentication(card_world, stripe_on)
    issuing.mark_paid_by_bacs(card_world.approver, card_world.invoice, "REM-9", london_date())
    db.session.commit()
    web.as_user(card_world.buyer, card_world.region)
    page = web.get(f"/invoices/{card_world.invoice.id}/pay-by-card/confirm")
    assert page.status_code == 302 and "data-client-secret" not in page.text
    db.session.refresh(payment)
    assert payment.status == CardPaymentStatus.FAILED
    [intent] = stripe_on.list("payment_intents")
    assert intent["status"] == "canceled" and stripe_on.list("charges") == []
