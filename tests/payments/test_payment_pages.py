"""Card payment pages and the Stripe webhook: who sees what, the confirmation page, bad input, and
a webhook delivered by localstripe itself to a live server."""

from __future__ import annotations

import json
import threading
import time

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from marketplace.accounts.models import Role
from marketplace.db import db
from marketplace.invoices.models import InvoiceStatus
from marketplace.payments import services
from marketplace.payments.models import CardPayment, CardPaymentStatus, StripeEvent
from tests.factories import make_member
from tests.payments.conftest import WEBHOOK_SECRET, post_event, signed
from tests.smtp_sink import HOST, free_port


def pay_url(invoice):
    return f"/invoices/{invoice.id}/pay-by-card"


def status_url(invoice):
    return f"/invoices/{invoice.id}/card-payment"


def event_for(localstripe, type_, intent_id, timeout=5.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        for event in localstripe.events(type_):
            if event["data"]["object"]["id"] == intent_id:
                return event
        assert time.monotonic() < deadline, f"no {type_} event for {intent_id}"
        time.sleep(0.05)


# --- the organisation's card -------------------------------------------------------------------


def test_a_buyer_saves_a_card_on_the_payment_card_page(stripe_on, card_world, web):
    page = web.as_user(card_world.buyer, card_world.region).get("/organisation/payment-card")
    assert page.status_code == 200 and "Save a card" in page.text
    saved = web.post("/organisation/payment-card", data={"payment_method_id": "pm_card_visa"})
    assert saved.status_code == 302
    page = web.get("/organisation/payment-card")
    assert "Visa ending 4242, expires 12/2030" in page.text and "Remove card" in page.text


def test_a_declined_card_shows_in_the_error_summary(stripe_on, card_world, web):
    web.as_user(card_world.buyer, card_world.region)
    page = web.post(
        "/organisation/payment-card", data={"payment_method_id": "pm_card_visa_chargeDeclined"}
    )
    assert page.status_code == 422
    assert "govuk-error-summary" in page.text and "Your card was declined." in page.text


@pytest.mark.parametrize("data", [{}, {"payment_method_id": ""}, {"payment_method_id": "4242"}])
def test_a_missing_or_malformed_card_is_a_form_error(stripe_on, card_world, web, data):
    page = web.as_user(card_world.buyer, card_world.region).post(
        "/organisation/payment-card", data=data
    )
    assert page.status_code == 422 and "govuk-error-summary" in page.text


def test_providers_cannot_use_the_card_page(stripe_on, card_world, web):
    page = web.as_user(card_world.provider_admin, card_world.provider).get(
        "/organisation/payment-card"
    )
    assert page.status_code == 403


def test_the_card_form_needs_its_csrf_token(stripe_on, card_world, web, csrf_enabled):
    page = web.as_user(card_world.buyer, card_world.region).post(
        "/organisation/payment-card", data={"payment_method_id": "pm_card_visa"}
    )
    assert page.status_code in (400, 422)
    assert services.saved_card_for(card_world.region.id) is None


# --- paying an invoice -------------------------------------------------------------------------


def test_a_buyer_pays_and_sees_processing_until_the_webhook_then_paid(stripe_on, card_world, web):
    services.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    invoice = card_world.invoice
    web.as_user(card_world.buyer, card_world.region)
    status = web.get(status_url(invoice))
    assert f'href="{pay_url(invoice)}"' in status.text
    confirm = web.get(pay_url(invoice))
    assert confirm.status_code == 200
    assert "£740.70" in confirm.text and "Visa ending 4242" in confirm.text
    paid = web.post(pay_url(invoice), data={})
    # Back to the invoice's page, which shows the payment processing.
    assert paid.status_code == 302 and paid.headers["Location"].endswith(f"/invoices/{invoice.id}")
    assert "Card payment processing." in web.get(f"/invoices/{invoice.id}").text
    # A second click (or the back button and pay again) charges nothing more.
    again = web.post(pay_url(invoice), data={})
    assert again.status_code == 302
    assert len(stripe_on.list("payment_intents")) == 1 and len(stripe_on.list("charges")) == 1
    processing = web.get(status_url(invoice))
    assert "Card payment processing." in processing.text and "pay-by-card" not in processing.text

    payment = db.session.scalars(sa.select(CardPayment)).one()
    event = event_for(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    answer = post_event(web, event)
    assert answer.status_code == 200 and answer.json["outcome"] == "invoice_paid"
    db.session.refresh(invoice)
    assert invoice.status == InvoiceStatus.PAID
    assert "Paid by card on" in web.get(status_url(invoice)).text


def test_a_declined_payment_is_shown_and_the_invoice_stays_unpaid(stripe_on, card_world, web):
    services.save_card(card_world.buyer, card_world.region, "pm_card_chargeCustomerFail")
    invoice = card_world.invoice
    page = web.as_user(card_world.buyer, card_world.region).post(pay_url(invoice), data={})
    assert page.status_code == 422
    assert "The payment did not go through. Your card was declined." in page.text
    db.session.refresh(invoice)
    assert invoice.status == InvoiceStatus.VALIDATED
    status = web.get(status_url(invoice))
    assert "The card payment failed" in status.text and "Your card was declined." in status.text
    assert "Try paying by card again" in status.text
    assert db.session.scalars(sa.select(CardPayment.status)).all() == [CardPaymentStatus.FAILED]


def test_another_organisations_buyer_gets_404(stripe_on, card_world, web):
    stranger = make_member(Role.BUYER, card_world.pcc)  # a co-funder, not the lead buyer
    web.as_user(stranger, card_world.pcc)
    assert web.get(pay_url(card_world.invoice)).status_code == 404
    assert web.post(pay_url(card_world.invoice), data={}).status_code == 404
    assert web.get(status_url(card_world.invoice)).status_code == 404
    assert web.get("/invoices/2147483647/pay-by-card").status_code == 404
    assert stripe_on.list("payment_intents") == []


def test_people_without_a_buying_role_cannot_pay(stripe_on, card_world, web):
    services.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    invoice = card_world.invoice
    # The provider sees the payment's progress but may not pay its own invoice.
    web.as_user(card_world.provider_admin, card_world.provider)
    assert web.get(status_url(invoice)).status_code == 200
    assert "pay-by-card" not in web.get(status_url(invoice)).text
    assert web.post(pay_url(invoice), data={}).status_code == 403
    # Someone in the lead buyer's organisation without a buying role.
    assessor = make_member(Role.ASSESSOR, card_world.region)
    assert web.as_user(assessor, card_world.region).post(pay_url(invoice)).status_code == 403
    assert stripe_on.list("payment_intents") == []


def test_an_unvalidated_invoice_offers_no_card_payment(stripe_on, card_world, web):
    services.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    invoice = card_world.invoice
    invoice.status = InvoiceStatus.DISPUTED  # as a dispute would leave it
    invoice.disputed_at, invoice.dispute_reason = invoice.validated_at, "Wrong units"
    web.as_user(card_world.buyer, card_world.region)
    assert "pay-by-card" not in web.get(status_url(invoice)).text
    page = web.post(pay_url(invoice), data={})
    assert page.status_code == 422 and "only a validated invoice can be paid" in page.text
    assert stripe_on.list("payment_intents") == []


def test_without_stripe_keys_there_is_no_card_option(app, card_world, web):
    web.as_user(card_world.buyer, card_world.region)
    assert web.get("/organisation/payment-card").status_code == 404
    assert web.get(pay_url(card_world.invoice)).status_code == 404
    assert web.get(status_url(card_world.invoice)).status_code == 404
    with app.test_request_context():
        html = app.jinja_env.get_template("payments/_invoice_card_payment.html").render(
            invoice=card_world.invoice
        )
    assert html.strip() == ""
    assert web.post("/webhooks/stripe", data=b"{}").status_code == 404


# --- the webhook -------------------------------------------------------------------------------


def paid_invoice_event(stripe_on, card_world):
    services.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    payment = services.pay_invoice_by_card(card_world.buyer, card_world.invoice)
    db.session.commit()
    return event_for(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)


@pytest.mark.parametrize(
    "signature",
    [
        None,
        "",
        "garbage",
        "t=1,v1=00",
        "WRONG_SECRET",
        "OLD",
    ],
)
def test_a_badly_signed_event_is_refused_and_changes_nothing(
    stripe_on, card_world, client, signature
):
    event = paid_invoice_event(stripe_on, card_world)
    payload = json.dumps(event).encode()
    if signature == "WRONG_SECRET":
        signature = signed(payload, "whsec_someone_else")
    elif signature == "OLD":
        signature = signed(payload, WEBHOOK_SECRET, at=int(time.time()) - 3600)
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    answer = client.post("/webhooks/stripe", data=payload, headers=headers)
    assert answer.status_code == 400
    assert answer.mimetype == "application/problem+json"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0
    db.session.refresh(card_world.invoice)
    assert card_world.invoice.status == InvoiceStatus.VALIDATED


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        b"{}",
        b'{"id": 5, "type": "x"}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {}}',
        b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": []}}',
        b"\xff\xfe",
    ],
)
def test_a_signed_event_that_is_not_an_event_is_a_400(stripe_on, client, payload):
    answer = client.post(
        "/webhooks/stripe", data=payload, headers={"Stripe-Signature": signed(payload)}
    )
    assert answer.status_code == 400 and answer.mimetype == "application/problem+json"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 0


def test_a_replayed_event_has_no_second_effect(stripe_on, card_world, client):
    event = paid_invoice_event(stripe_on, card_world)
    first = post_event(client, event)
    second = post_event(client, event)
    assert (first.status_code, first.json["outcome"]) == (200, "invoice_paid")
    assert (second.status_code, second.json["outcome"]) == (200, "duplicate")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StripeEvent)) == 1
    from marketplace.audit import AuditEvent

    paid = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "invoice.paid"))
    assert len(paid.all()) == 1


def test_the_webhook_needs_no_csrf_token(stripe_on, card_world, client, csrf_enabled):
    event = paid_invoice_event(stripe_on, card_world)
    assert post_event(client, event).status_code == 200


# --- end to end: localstripe delivers the webhook to a live server -----------------------------


@pytest.fixture
def live_app(app):
    """The test app served on 127.0.0.1 so that localstripe can call its webhook."""
    port = free_port()
    server = make_server(HOST, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="stripe-webhook-server")
    thread.start()
    try:
        yield f"http://{HOST}:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_localstripe_delivers_the_webhook_and_the_invoice_is_paid(
    stripe_on, card_world, live_app, web
):
    # Registered under one name for the whole session: each registration replaces the last.
    stripe_on.register_webhook("marketplace", f"{live_app}/webhooks/stripe")
    try:
        services.save_card(card_world.buyer, card_world.region, "pm_card_visa")
        invoice = card_world.invoice
        web.as_user(card_world.buyer, card_world.region)
        assert web.post(pay_url(invoice), data={}).status_code == 302
        deadline = time.monotonic() + 15
        while True:
            db.session.expire_all()
            db.session.commit()  # end the read transaction, to see the live server's commit
            if db.session.get(type(invoice), invoice.id).status == InvoiceStatus.PAID:
                break
            assert time.monotonic() < deadline, "localstripe's webhook never marked it paid"
            time.sleep(0.1)
        events = db.session.scalars(sa.select(StripeEvent.type)).all()
        assert "payment_intent.succeeded" in events
        assert "Paid by card on" in web.get(status_url(invoice)).text
    finally:
        # Stop deliveries to the server that is about to stop.
        stripe_on.register_webhook("marketplace", "http://127.0.0.1:9/nowhere")
