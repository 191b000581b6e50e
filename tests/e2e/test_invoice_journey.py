"""Getting paid through a real browser (issue 6, acceptance 5): a provider issues an invoice, the
buyer validates it, saves a card and pays by card; localstripe (started by the test run on
127.0.0.1) delivers the webhook to the live server, which marks the invoice paid. axe-core checks
every page (conftest.py)."""

from __future__ import annotations

import re
import time
import uuid

import pytest
import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.invoices.services import monthly_run
from tests.e2e.cards import CARD_ELEMENT, DECLINED, VISA, type_card
from tests.factories import PASSWORD, after_month
from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of
from tests.orders.factories import build_orders_world

pytestmark = pytest.mark.e2e

WEBHOOK_WAIT_SECONDS = 20


def build_invoice(live_server):
    """A drafted invoice: three sessions at £123.45 + 20% VAT delivered and run for the month."""
    tag = uuid.uuid4().hex[:6]
    with live_server.app.app_context():
        world = build_orders_world(price_pence=12_345, vat_treatment="standard")
        world.provider.name = f"Harbour Housing {tag}"
        call_off = accepted_call_off(world, po_number=f"PO-{tag}")
        deliver(world, call_off, call_off.start_date, 3)
        monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
        invoice_id = db.session.scalar(
            sa.select(Invoice.id).where(Invoice.call_off_id == call_off.id)
        )
        emails = (world.provider_admin.email, world.buyer.email)
        db.session.commit()
        db.session.remove()
    return invoice_id, emails


def invoice_status(live_server, invoice_id: int) -> InvoiceStatus:
    with live_server.app.app_context():
        status = db.session.get(Invoice, invoice_id).status
        db.session.remove()
    return status


def test_provider_issues_buyer_validates_and_pays_by_card(ui, live_server, card_payments):
    invoice_id, (provider_email, buyer_email) = build_invoice(live_server)
    page = ui.page

    ui.sign_in(provider_email, PASSWORD)
    ui.goto("/invoices/")
    ui.click_and_wait(page.get_by_role("link", name=f"Draft {invoice_id}"))
    assert ui.heading().startswith("Draft invoice")
    assert "£444.42" in page.locator("main").inner_text()
    ui.press_button("Issue invoice")
    assert "Invoice issued" in ui.banner()
    number = re.search(r"INV-\d{6}", ui.heading()).group()
    ui.sign_out()

    ui.sign_in(buyer_email, PASSWORD)
    ui.goto("/invoices/")
    ui.click_and_wait(page.get_by_role("link", name=number))
    ui.press_button("Validate invoice")
    assert "Invoice validated" in ui.banner()

    # No card yet: enter the organisation's Visa (a Stripe test card) in Stripe's card form.
    # axe-core checks every page but the test double's card element (Stripe's own iframe).
    ui.axe_exclude = [CARD_ELEMENT]
    ui.goto("/invoices/")
    ui.click_and_wait(page.get_by_role("link", name="Your organisation's payment card"))
    ui.click_and_wait(page.get_by_role("button", name="Add a card"))
    assert ui.heading() == "Enter a payment card"
    # Stripe.js loaded: the form is shown and the fallback hidden.
    type_card(page, DECLINED)
    assert not page.get_by_text("The card form is not available").is_visible()
    page.get_by_role("button", name="Save card").click()
    # Declined by Stripe in the page: said there, nothing sent to the service.
    error = page.locator("#card-error")
    error.get_by_text("Your card was declined.").wait_for()
    assert page.url.endswith("/organisation/payment-card/new")
    ui.audit()
    type_card(page, VISA)
    ui.press_button("Save card")
    assert "Card saved" in ui.banner()
    assert "Visa ending 4242" in page.locator("main").inner_text()

    ui.goto(f"/invoices/{invoice_id}")
    ui.click_and_wait(page.get_by_role("button", name="Pay by card"))
    assert ui.heading() == f"Pay invoice {number} by card"
    ui.press_button("Pay £444.42")
    assert ui.heading().startswith(f"Invoice {number}")

    # localstripe sends payment_intent.succeeded to the live server's webhook on its own.
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while invoice_status(live_server, invoice_id) != InvoiceStatus.PAID:
        assert time.monotonic() < deadline, "the webhook never marked the invoice paid"
        time.sleep(0.1)
    ui.goto(f"/invoices/{invoice_id}")
    assert "Paid" in ui.heading()
    assert "Paid by card on" in page.locator("main").inner_text()
    # One charge, however the journey went.
    assert len(card_payments.list("payment_intents")) == 1
    assert len(card_payments.list("charges")) == 1
