"""Finding a service through a real browser (issue 4, acceptance 5): a buyer searches, filters by
region, compares two listings side by side and opens one. axe-core checks every page (conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.db import db
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import PASSWORD, make_member, make_organisation

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class Setting:
    buyer_email: str
    word: str  # a word only this test's listings contain
    region_code: str
    region_name: str
    in_region: tuple[str, str]  # titles of the two listings offered in the region
    elsewhere: str  # a matching listing offered only in another region


def build_setting(live_server) -> Setting:
    tag = uuid.uuid4().hex[:8]
    word = f"zeph{tag}"
    with live_server.app.app_context():
        world = make_world()
        providers = []
        for name in ("Harbour Trust", "Beacon Works", "Northern Light CIC"):
            organisation, _ = make_provider(f"{name} {tag}")
            for region in (world.region_1, world.region_2):
                make_lot_membership(world.lot_a, organisation, region_code=region.code)
            providers.append(organisation)
        titles = (
            f"Move-on housing with a key worker {word}",
            f"Supported lodgings {word}",
        )
        make_listing(
            world.lot_a,
            providers[0],
            title=titles[0],
            summary=f"Shared houses with staff on site ({word})",
            region_codes=(world.region_1.code,),
            price_pence=4_250,
        )
        make_listing(
            world.lot_a,
            providers[1],
            title=titles[1],
            summary=f"A room in a host's home ({word})",
            region_codes=(world.region_1.code, world.region_2.code),
            price_pence=3_900,
        )
        elsewhere = f"Tenancy sustainment {word}"
        make_listing(
            world.lot_a,
            providers[2],
            title=elsewhere,
            summary=f"Help to keep a tenancy ({word})",
            region_codes=(world.region_2.code,),
        )
        commissioner = make_organisation(OrganisationType.PROBATION_REGION, name=f"Probation {tag}")
        buyer = make_member(Role.BUYER, commissioner, email=f"buyer.{tag}@example.org")
        setting = Setting(
            buyer_email=buyer.email,
            word=word,
            region_code=world.region_1.code,
            region_name=world.region_1.name,
            in_region=titles,
            elsewhere=elsewhere,
        )
        db.session.commit()
        db.session.remove()
    return setting


def test_buyer_searches_filters_compares_and_opens_a_listing(ui, live_server):
    setting = build_setting(live_server)
    page = ui.page
    ui.sign_in(setting.buyer_email, PASSWORD)

    ui.goto("/services")
    ui.fill("Search by service, outcome or provider", setting.word)
    ui.press_button("Search")
    results = page.locator("main").inner_text()
    for title in (*setting.in_region, setting.elsewhere):
        assert title in results

    page.locator("#region").select_option(setting.region_code)
    ui.press_button("Apply filters")
    assert f"region={setting.region_code}" in page.url  # the search can be shared as a link
    results = page.locator("main").inner_text()
    assert all(title in results for title in setting.in_region)
    assert setting.elsewhere not in results

    for title in setting.in_region:
        page.get_by_label(f"Compare {title}").check()
    ui.press_button("Compare selected services (up to 4)")
    comparison = page.locator("main").inner_text()
    assert "£42.50" in comparison and "£39.00" in comparison
    assert all(title in comparison for title in setting.in_region)

    ui.click_and_wait(page.get_by_role("link", name=setting.in_region[1]).first)
    assert ui.heading() == setting.in_region[1]
    listing = page.locator("main").inner_text()
    assert "£39.00" in listing
    assert "Referrals team" in listing  # signed-in buyers see who takes referrals
