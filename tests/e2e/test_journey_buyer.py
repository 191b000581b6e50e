"""Journeys of a commissioning organisation's people (JOURNEYS.md B1–B5, A1–A3, C1), from their
home page, by links, buttons and forms alone; axe-core checks every page (conftest.py).

A3's second half, paying another invoice by card with the card entered in the page, waits for
the card form of issue 19."""

from __future__ import annotations

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_a3_the_approver_validates_an_invoice_and_pays_it_by_bacs(journey, live_server):
    world = worlds.invoice_world(live_server, issued=True)
    approver, provider, number = world.people.approver, world.people.provider, world.number
    issued = live_server.smtp.wait_for(lambda m: m.to == approver.email and number in m.subject)
    assert f"Dear {approver.name}," in issued.body
    assert f"Amount due: {world.gross}" in issued.body

    journey.sign_in_from_home(approver.email, PASSWORD)
    journey.follow("Invoices", within="#service-navigation")
    row = journey.page.locator(f"tr:has-text('{number}')")
    assert "Issued" in row.inner_text() and world.gross in row.inner_text()
    journey.follow(number)
    assert journey.heading().startswith(f"Invoice {number}")
    main = journey.main_text()
    assert world.call_off in main and world.po_number in main and world.gross in main
    journey.press("Validate invoice")
    assert "Invoice validated" in journey.banner()
    validated = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith(f"Invoice {number} has been val")
    )
    assert world.people.buyer_name in validated.subject and world.gross in validated.body

    # The payment went out today; the first try leaves out the remittance reference and types
    # a date that does not exist.
    journey.follow("Record a BACS payment")
    assert journey.heading() == "Record a BACS payment"
    journey.fill("Date paid", "31 2 2026")
    journey.press("Record payment")
    journey.expect_errors(
        "Enter the remittance reference of the payment", "Date paid must be a real date"
    )
    today = worlds.london_today()
    journey.fill("Remittance reference", "NEP-REM-55810")
    journey.fill("Date paid", worlds.day_month_year(today))
    journey.press("Record payment")
    assert "Payment recorded" in journey.banner()
    assert "Paid" in journey.heading()
    assert "by BACS, reference NEP-REM-55810" in journey.main_text()
    paid = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject == f"Invoice {number} has been paid"
    )
    assert f"{world.gross} by BACS" in paid.body and "NEP-REM-55810" in paid.body

    # The list shows it paid.
    journey.follow("Invoices", within="#service-navigation")
    assert "Paid" in journey.page.locator(f"tr:has-text('{number}')").inner_text()
