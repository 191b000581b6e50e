"""What a provider's e-invoices need, recorded through its pages (issue 19): from the home page a
new provider's administrator reaches the organisation settings, records its electronic address,
VAT registration and bank account (mistakes refused in the error summary), and sees only the last
four digits of the account afterwards; axe-core checks every page (conftest.py)."""

from __future__ import annotations

import uuid

import pytest

from marketplace.core.db import db
from tests.accreditation.builders import make_provider
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_a_provider_records_what_its_invoices_need(journey, live_server):
    tag = uuid.uuid4().hex[:8]
    with live_server.app.app_context():
        organisation, admin = make_provider(f"Kite Mentoring {tag}")
        organisation.vat_registered, organisation.vat_number = False, None
        organisation.endpoint_scheme = organisation.endpoint_id = None
        organisation.bank_details_sealed = organisation.bank_account_last4 = None
        admin.email = f"ama.owusu.{tag}@kite.example.org"
        email = admin.email
        db.session.commit()
        db.session.remove()

    journey.sign_in_from_home(email, PASSWORD)
    assert "Record what your invoices need" in journey.main_text()
    journey.follow("Organisation settings", within="main")
    assert journey.heading() == "Organisation settings"
    assert "Not registered for VAT" in journey.main_text()

    journey.follow("Change electronic address")
    journey.select("Kind of electronic address", "Global Location Number (GLN, GS1) (0088)")
    journey.fill("Electronic address", "5012345678901")
    journey.press("Save")
    journey.expect_errors("check digit")
    journey.fill("Electronic address", "5012345678900")
    journey.press("Save")
    assert "Electronic address saved" in journey.banner()

    journey.follow("Change VAT registration")
    journey.choose("Yes")
    journey.fill("VAT registration number", "GB 123 4567")
    journey.press("Save")
    journey.expect_errors("Enter a UK VAT registration number in the correct format")
    journey.fill("VAT registration number", "GB 123 4567 89")
    journey.press("Save")
    assert "Registered: GB123456789" in journey.main_text()

    journey.follow("Change bank account")
    journey.fill("Name on the account", f"Kite Mentoring {tag}")
    journey.fill("Sort code", "40-47")
    journey.fill("Account number", "4192681")
    journey.press("Save")
    journey.expect_errors("Enter a valid sort code", "Enter a valid account number")
    journey.fill("Sort code", "40-47-84")
    journey.fill("Account number", "41926819")
    journey.press("Save")
    text = journey.main_text()
    assert "Account ending 6819" in text and "41926819" not in text and "404784" not in text
