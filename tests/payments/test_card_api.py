"""The card payment API: the saved cards, paying an invoice with one (once however often asked),
a payment that needs the payer's authentication, and bad input answered with problem+json."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.core.db import db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.invoices.models import InvoiceStatus
from marketplace.payments.models import CardPayment
from marketplace.payments.queries import saved_card_for
from marketplace.payments.services import saved_cards
from tests.factories import make_member
from tests.orders.test_call_off_api import bearer
from tests.payments.test_card_form import ALWAYS_AUTHENTICATE, set_up_card


def pay(client, invoice_id, card, headers):
    return client.post(
        f"/api/v1/invoices/{invoice_id}/pay-by-card", json={"card": card}, headers=headers
    )


def test_list_cards_and_pay_an_invoice_once(client, stripe_on, card_world):
    headers = bearer(card_world.buyer, card_world.region)
    assert client.get("/api/v1/payment-cards", headers=headers).json == {"items": []}
    customer = set_up_card(card_world, stripe_on)
    db.session.commit()
    listed = client.get("/api/v1/payment-cards", headers=headers)
    assert listed.status_code == 200
    [card] = listed.json["items"]
    assert card["id"] == customer.payment_method_id
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == (
        "visa",
        "4242",
        12,
        2031,
    )
    invoice_id = card_world.invoice.id
    first = pay(client, invoice_id, card["id"], headers)
    assert first.status_code == 200, first.json
    assert first.json["status"] == "processing" and first.json["amount_pence"] == 74_070
    assert first.json["client_secret"] is None
    # A retry (lost answer, double send) returns the same attempt and charges nothing more.
    again = pay(client, invoice_id, card["id"], bearer(card_world.approver, card_world.region))
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert len(stripe_on.list("payment_intents")) == 1 and len(stripe_on.list("charges")) == 1
    seen = client.get(f"/api/v1/invoices/{invoice_id}/card-payment", headers=headers)
    assert seen.status_code == 200 and seen.json["id"] == first.json["id"]


def test_a_payment_needing_authentication_gives_the_client_secret_then_is_checked(
    client, stripe_on, card_world
):
    headers = bearer(card_world.buyer, card_world.region)
    customer = set_up_card(card_world, stripe_on, ALWAYS_AUTHENTICATE)
    db.session.commit()
    invoice_id = card_world.invoice.id
    waiting = pay(client, invoice_id, customer.payment_method_id, headers)
    assert waiting.status_code == 200 and waiting.json["status"] == "requires_action"
    secret = waiting.json["client_secret"]
    assert secret.startswith(waiting.json["payment_intent_id"] + "_secret_")
    stripe_on.confirm_card_payment(secret)  # Stripe.js in the payer's browser
    checked = client.post(f"/api/v1/invoices/{invoice_id}/card-payment/check", headers=headers)
    assert checked.status_code == 200 and checked.json["status"] == "succeeded"
    invoice = client.get(f"/api/v1/invoices/{invoice_id}", headers=headers).json
    assert invoice["status"] == "paid" and invoice["payment_method"] == "card"


def test_a_declined_card_is_a_402_problem_and_nothing_is_paid(client, stripe_on, card_world):
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_chargeCustomerFail")
    customer = saved_card_for(card_world.region.id)
    db.session.commit()
    answer = pay(
        client,
        card_world.invoice.id,
        customer.payment_method_id,
        bearer(card_world.buyer, card_world.region),
    )
    assert answer.status_code == 402 and answer.content_type == PROBLEM_JSON
    assert answer.json["errors"] == {"card": ["Your card was declined."]}
    db.session.refresh(card_world.invoice)
    assert card_world.invoice.status == InvoiceStatus.VALIDATED
    assert [p.status.value for p in db.session.scalars(sa.select(CardPayment))] == ["failed"]


def test_an_invoice_that_is_not_payable_is_a_422_problem(client, stripe_on, card_world):
    from marketplace.core.clock import london_date
    from marketplace.invoices.services import issuing

    customer = set_up_card(card_world, stripe_on)
    issuing.mark_paid_by_bacs(card_world.buyer, card_world.invoice, "REM-1", london_date())
    db.session.commit()
    answer = pay(
        client,
        card_world.invoice.id,
        customer.payment_method_id,
        bearer(card_world.buyer, card_world.region),
    )
    assert answer.status_code == 422 and answer.content_type == PROBLEM_JSON
    assert "only a validated invoice can be paid" in answer.json["errors"]["status"][0]
    assert stripe_on.list("payment_intents") == []


def test_another_organisations_card_or_invoice_is_not_found(client, stripe_on, card_world):
    ours = set_up_card(card_world, stripe_on)
    pcc_buyer = make_member(Role.BUYER, card_world.pcc)
    theirs = set_up_card(card_world, stripe_on, who=pcc_buyer, organisation=card_world.pcc)
    db.session.commit()
    headers = bearer(card_world.buyer, card_world.region)
    # Their card, our invoice.
    answer = pay(client, card_world.invoice.id, theirs.payment_method_id, headers)
    assert answer.status_code == 404 and answer.content_type == PROBLEM_JSON
    # Our card, an invoice that is not theirs to pay (they co-fund, the region leads).
    pcc = bearer(pcc_buyer, card_world.pcc)
    assert pay(client, card_world.invoice.id, theirs.payment_method_id, pcc).status_code == 404
    assert pay(client, card_world.invoice.id, ours.payment_method_id, pcc).status_code == 404
    assert (
        client.get(
            f"/api/v1/invoices/{card_world.invoice.id}/card-payment", headers=pcc
        ).status_code
        == 404
    )
    # The provider sees the invoice, but it is not its to pay; nor does it keep cards.
    provider = bearer(card_world.provider_admin, card_world.provider)
    assert client.get("/api/v1/payment-cards", headers=provider).status_code == 403
    assert stripe_on.list("payment_intents") == []


def test_people_without_a_buying_role_cannot_pay_or_list_cards(client, stripe_on, card_world):
    customer = set_up_card(card_world, stripe_on)
    assessor = make_member(Role.ASSESSOR, card_world.region)
    db.session.commit()
    headers = bearer(assessor, card_world.region)
    assert client.get("/api/v1/payment-cards", headers=headers).status_code == 403
    answer = pay(client, card_world.invoice.id, customer.payment_method_id, headers)
    assert answer.status_code in (403, 404) and answer.content_type == PROBLEM_JSON
    assert stripe_on.list("payment_intents") == []


def test_bad_bodies_are_422_problems(client, stripe_on, card_world):
    set_up_card(card_world, stripe_on)
    db.session.commit()
    headers = bearer(card_world.buyer, card_world.region)
    url = f"/api/v1/invoices/{card_world.invoice.id}/pay-by-card"
    for body in ({}, {"card": ""}, {"card": 4242}, {"card": "pm_" + "x" * 300}):
        answer = client.post(url, json=body, headers=headers)
        assert answer.status_code == 422 and answer.content_type == PROBLEM_JSON, body
    assert stripe_on.list("payment_intents") == []


def test_without_stripe_the_endpoints_are_not_found(client, card_world):
    headers = bearer(card_world.buyer, card_world.region)
    answer = client.get("/api/v1/payment-cards", headers=headers)
    assert answer.status_code == 404 and answer.content_type == PROBLEM_JSON
