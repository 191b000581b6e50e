"""Card payment pages and the Stripe webhook: who sees what, the confirmation page, bad input, and
a webhook delivered by localstripe itself to a live server."""

from __future__ import annotations

import json
import re
import threading
import time

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from marketplace.accounts.models import Role
from marketplace.core.db import db
from marketplace.invoices.models import InvoiceStatus
from marketplace.payments.models import CardPayment, CardPaymentStatus, StripeEvent
from marketplace.payments.queries import saved_card_for
from marketplace.payments.services import card_payments, gateway, saved_cards
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


def client_secret_in(page) -> str:
    found = re.search(r'data-client-secret="([^"]+)"', page.text)
    assert found, "the page has no Stripe form"
    return found.group(1)


def test_a_buyer_enters_a_card_in_stripes_form_and_it_is_saved(stripe_on, card_world, web):
    page = web.as_user(card_world.buyer, card_world.region).get("/organisation/payment-card")
    assert page.status_code == 200 and "Add a card" in page.text
    assert 'name="payment_method_id"' not in page.text  # no typing of Stripe ids any more
    form = web.get("/organisation/payment-card/new")
    assert form.status_code == 200
    # The page loads Stripe.js and the form's script (no inline script), and says what to do
    # where they do not load.
    assert f'<script src="{stripe_on.js_url}"></script>' in form.text
    assert "/static/js/card-form.js" in form.text and "<script>" not in form.text
    assert "The card form is not available" in form.text and "pay an invoice by BACS" in form.text
    secret = client_secret_in(form)
    assert stripe_on.confirm_card_setup(secret)["status"] == "succeeded"  # as Stripe.js does
    saved = web.post(
        "/organisation/payment-card/new", data={"setup_intent": secret.split("_secret_")[0]}
    )
    assert saved.status_code == 302 and saved.headers["Location"].endswith(
        "/organisation/payment-card"
    )
    page = web.get("/organisation/payment-card")
    assert "Visa ending 4242, expires 12/2031" in page.text and "Remove card" in page.text
    assert "Use another card" in page.text


def test_only_the_card_pages_open_the_policy_to_stripe_js(stripe_on, card_world, web):
    web.as_user(card_world.buyer, card_world.region)
    host = stripe_on.url
    policy = web.get("/organisation/payment-card/new").headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == f"'self' {host}"
    assert directives["frame-src"] == f"'self' {host}"
    assert directives["connect-src"] == f"'self' {host}"
    assert directives["style-src"] == "'self'" and "unsafe-inline" not in policy
    for other in ("/organisation/payment-card", f"/invoices/{card_world.invoice.id}"):
        assert host not in web.get(other).headers["Content-Security-Policy"]


def test_with_stripes_own_addresses_the_policy_names_the_hosts_stripe_documents(
    app, stripe_on, card_world, web
):
    from marketplace.payments.views import stripe_js_policy

    app.config.update(STRIPE_JS_URL="https://js.stripe.com/v3/", STRIPE_API_BASE=None)
    with app.test_request_context():
        directives = dict(part.strip().split(" ", 1) for part in stripe_js_policy().split(";"))
    assert directives["script-src"] == "'self' https://js.stripe.com https://*.js.stripe.com"
    assert directives["frame-src"] == (
        "'self' https://js.stripe.com https://*.js.stripe.com https://hooks.stripe.com"
    )
    assert directives["connect-src"] == "'self' https://api.stripe.com"
    assert directives["default-src"] == "'self'" and directives["img-src"] == "'self' data:"


def test_without_a_publishable_key_the_card_page_says_to_pay_by_bacs(
    app, stripe_on, card_world, web
):
    app.config["STRIPE_PUBLISHABLE_KEY"] = None
    page = web.as_user(card_world.buyer, card_world.region).get("/organisation/payment-card/new")
    assert (
        page.status_code == 200 and "<form" not in page.text.split("<main")[1].split("</main>")[0]
    )
    assert "Entering a card is not available" in page.text and "by BACS" in page.text
    assert stripe_on.url not in page.headers["Content-Security-Policy"]
    assert stripe_on.list("setup_intents") == []


def test_another_customers_setup_intent_is_an_error_on_the_page(stripe_on, card_world, web):
    pcc_buyer = make_member(Role.BUYER, card_world.pcc)
    _, theirs = saved_cards.start_card_setup(pcc_buyer, card_world.pcc)
    stripe_on.confirm_card_setup(theirs.client_secret)
    db.session.commit()
    web.as_user(card_world.buyer, card_world.region).get("/organisation/payment-card/new")
    page = web.post("/organisation/payment-card/new", data={"setup_intent": theirs.id})
    assert page.status_code == 422 and "govuk-error-summary" in page.text
    assert 'href="#card-element"' in page.text and 'id="card-element"' in page.text
    assert gateway.CARD_NOT_SET_UP in page.text
    assert not saved_card_for(card_world.region.id).has_card


@pytest.mark.parametrize("data", [{}, {"setup_intent": ""}, {"setup_intent": "4242424242424242"}])
def test_a_missing_or_malformed_setup_is_a_form_error(stripe_on, card_world, web, data):
    page = web.as_user(card_world.buyer, card_world.region).post(
        "/organisation/payment-card/new", data=data
    )
    assert page.status_code == 422 and "govuk-error-summary" in page.text
    assert not saved_card_for(card_world.region.id).has_card


def test_providers_cannot_use_the_card_pages(stripe_on, card_world, web):
    web.as_user(card_world.provider_admin, card_world.provider)
    assert web.get("/organisation/payment-card").status_code == 403
    assert web.get("/organisation/payment-card/new").status_code == 403
    assert stripe_on.list("customers") == []


def test_the_card_form_needs_its_csrf_token(stripe_on, card_world, web, csrf_enabled):
    _, intent = saved_cards.start_card_setup(card_world.buyer, card_world.region)
    stripe_on.confirm_card_setup(intent.client_secret)
    db.session.commit()
    page = web.as_user(card_world.buyer, card_world.region).post(
        "/organisation/payment-card/new", data={"setup_intent": intent.id}
    )
    assert page.status_code in (400, 422)
    assert not saved_card_for(card_world.region.id).has_card


# --- paying an invoice -------------------------------------------------------------------------


def test_a_buyer_pays_and_sees_processing_until_the_webhook_then_paid(stripe_on, card_world, web):
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_visa")
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
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_chargeCustomerFail")
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
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_visa")
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
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_visa")
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
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    payment = card_payments.pay_invoice_by_card(card_world.buyer, card_world.invoice)
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
    from marketplace.core.audit import AuditEvent

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
        saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_visa")
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
