"""Buying through a real browser (issue 5, acceptance 4): a buyer finds a service, buys it,
checks the answers and sees the confirmation; then the provider accepts it. axe-core checks
every page (conftest.py)."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.clock import add_working_days, financial_year
from marketplace.core.db import db
from marketplace.orders.models import Budget
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import PASSWORD, make_member, make_organisation

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Setting:
    buyer_email: str
    provider_email: str
    word: str
    title: str
    start: date


def build_setting(live_server) -> Setting:
    tag = uuid.uuid4().hex[:8]
    word = f"kwel{tag}"
    with live_server.app.app_context():
        world = make_world()
        organisation, admin = make_provider(f"Harbour Trust {tag}")
        make_lot_membership(world.lot_a, organisation, region_code=world.region_1.code)
        title = f"Move-on housing {word}"
        make_listing(
            world.lot_a,
            organisation,
            title=title,
            summary=f"Shared houses with staff on site ({word})",
            region_codes=(world.region_1.code,),
            price_pence=4_250,
            lead_time_days=2,
        )
        commissioner = make_organisation(OrganisationType.PROBATION_REGION, name=f"Probation {tag}")
        buyer = make_member(Role.BUYER, commissioner, email=f"buyer.{tag}@example.org")
        start = add_working_days(date.today(), 5)
        db.session.add(
            Budget(
                organisation=commissioner,
                financial_year=financial_year(start),
                allocated_pence=1_000_000,
            )
        )
        setting = Setting(buyer.email, admin.email, word, title, start)
        db.session.commit()
        db.session.remove()
    return setting


def test_buyer_buys_a_service_and_the_provider_accepts_it(ui, live_server):
    setting = build_setting(live_server)
    page = ui.page
    ui.sign_in(setting.buyer_email, PASSWORD)

    ui.goto(f"/services?q={setting.word}")
    ui.click_and_wait(page.get_by_role("link", name=setting.title).first)
    ui.click_and_wait(page.get_by_role("link", name="Buy this service"))
    assert ui.heading() == f"Buy {setting.title}"

    ui.fill("How many units?", "6")
    ui.fill("Start date", setting.start.isoformat())
    ui.fill("Planned end date", setting.start.isoformat())
    ui.fill("The person's CRN", "X654321")
    ui.fill("Probation delivery unit (PDU)", "Manchester North")
    ui.fill("Purchase order number", "PO-E2E-1")
    page.get_by_label("Continuity for the person").check()
    ui.press_button("Continue")
    assert ui.heading() == "Check your answers before placing the call-off"
    answers = page.locator("main").inner_text()
    assert "X654321" in answers and "£255.00" in answers  # 6 × £42.50, exempt from VAT

    ui.press_button("Place call-off")
    assert "Call-off placed" in page.locator("main").inner_text()
    reference = re.search(r"CO-\d{4}-\d{6}", page.locator("main").inner_text()).group()
    ui.sign_out()

    ui.sign_in(setting.provider_email, PASSWORD)
    ui.goto("/call-offs/")
    ui.click_and_wait(page.get_by_role("link", name=reference).first)
    assert reference in ui.heading()
    ui.press_button("Accept call-off")
    assert "Call-off accepted" in ui.banner()
    assert "Accepted" in ui.heading()
