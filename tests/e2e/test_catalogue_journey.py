"""Finding a service through a real browser (issue 4, acceptance 5): a buyer searches, filters by
region, compares two listings side by side and opens one. axe-core checks every page (conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.db import db
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


# --- B1 (JOURNEYS.md): find a service for a person with the words a person types, compare two
# side by side, choose one. Issue 18: stemming, places, and a comparison that reads as a table.

# Words in the comparison's cells that the browser has broken across two lines (a hyphen may
# end a line; an email address may break anywhere).
_BROKEN_WORDS = """
() => {
  const broken = [];
  for (const cell of document.querySelectorAll(".app-compare th, .app-compare td")) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement.closest('a[href^="mailto:"]')) continue;
      for (const match of node.data.matchAll(/[^\\s\\-–]+/g)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));
        if (lines.size > 1) broken.push(match[0]);
      }
    }
  }
  return broken;
}
"""


@dataclass(frozen=True)
class B1Setting:
    buyer_email: str
    word: str
    mentoring: tuple[str, str]  # "mentoring" and "mentors": both found by "mentor"
    manchester: str  # housing in Greater Manchester
    elsewhere: str  # housing in the North East


def build_b1_setting(live_server) -> B1Setting:
    tag = uuid.uuid4().hex[:8]
    word = f"qx{tag}"
    with live_server.app.app_context():
        world = make_world()
        organisation, _ = make_provider(f"Harbour Trust {tag}")
        for code in (world.region_1.code, "L"):  # the North East and Greater Manchester
            make_lot_membership(world.lot_a, organisation, region_code=code)
        mentoring = (f"Peer mentoring {word}", f"Mentors for care leavers {word}")
        make_listing(
            world.lot_a,
            organisation,
            title=mentoring[0],
            summary="Weekly sessions with someone who has been there",
            region_codes=(world.region_1.code,),
            price_pence=3_500,
        )
        make_listing(
            world.lot_a,
            organisation,
            title=mentoring[1],
            summary="A volunteer who stays in touch",
            region_codes=(world.region_1.code,),
            price_pence=4_000,
        )
        manchester = f"Move-on housing {word}"
        make_listing(
            world.lot_a,
            organisation,
            title=manchester,
            summary="Flats with a support worker",
            region_codes=("L",),
            price_pence=9_000,
        )
        elsewhere = f"Supported housing {word}"
        make_listing(
            world.lot_a,
            organisation,
            title=elsewhere,
            summary="Shared houses",
            region_codes=(world.region_1.code,),
            price_pence=8_000,
        )
        commissioner = make_organisation(OrganisationType.PROBATION_REGION, name=f"Probation {tag}")
        buyer = make_member(Role.BUYER, commissioner, email=f"b1.{tag}@example.org")
        setting = B1Setting(buyer.email, word, mentoring, manchester, elsewhere)
        db.session.commit()
        db.session.remove()
    return setting


def test_b1_buyer_finds_with_everyday_words_compares_two_and_chooses_one(ui, live_server):
    setting = build_b1_setting(live_server)
    page = ui.page
    ui.sign_in(setting.buyer_email, PASSWORD)  # lands on the buyer's home page
    ui.click_and_wait(page.locator("#service-navigation").get_by_role("link", name="Find services"))
    assert ui.heading() == "Find services"

    def search(words: str) -> str:
        ui.fill("Search by service, outcome or provider", words)
        ui.press_button("Search")
        return page.locator("main").inner_text()

    found = search(f"mentor {setting.word}")
    assert all(title in found for title in setting.mentoring)  # mentoring, mentors
    assert setting.manchester not in found
    assert "Services that mention mentor and" in found

    found = search(f"housing Manchester {setting.word}")
    assert setting.manchester in found
    assert setting.elsewhere not in found

    # Filter the mentoring services by region and price.
    search(f"mentor or housing {setting.word}")
    page.locator("#region").select_option("A")
    ui.fill("Maximum unit price (excluding VAT)", "85")
    ui.press_button("Apply filters")
    found = page.locator("main").inner_text()
    assert all(title in found for title in setting.mentoring)
    assert setting.elsewhere in found  # £80.00
    assert setting.manchester not in found  # £90.00 and not in the North East
    results_url = page.url

    # A mistake: one service chosen to compare, answered on the same page.
    page.get_by_label(f"Compare {setting.mentoring[0]}").check()
    ui.press_button("Compare selected services (up to 4)")
    summary = page.locator(".govuk-error-summary")
    assert "Select at least 2 services to compare: you selected 1" in summary.inner_text()
    summary.get_by_role("link").click()
    chosen = page.get_by_label(f"Compare {setting.mentoring[0]}")
    assert chosen.is_checked()
    assert page.evaluate("document.activeElement.id") == chosen.get_attribute("id")

    page.get_by_label(f"Compare {setting.mentoring[1]}").check()
    ui.press_button("Compare selected services (up to 4)")
    assert ui.heading() == "Compare services"
    table = page.locator("table.govuk-table")
    assert table.locator('th[scope="col"]').all_inner_texts() == list(setting.mentoring)
    assert "Price including VAT" in table.locator('th[scope="row"]').all_inner_texts()
    for width in (1280, 375):  # desktop and phone: words wrap whole, never broken inside
        page.set_viewport_size({"width": width, "height": 900})
        assert page.evaluate(_BROKEN_WORDS) == [], width
    page.set_viewport_size({"width": 1280, "height": 900})

    # Back to the same results, the same filters and the selection as it was.
    ui.click_and_wait(page.get_by_role("link", name="Back to your search results").first)
    assert page.url.startswith(results_url.split("#")[0])
    assert page.locator("#region").input_value() == "A"
    assert all(page.get_by_label(f"Compare {title}").is_checked() for title in setting.mentoring)

    # Choose one.
    ui.click_and_wait(page.get_by_role("link", name=setting.mentoring[1], exact=True))
    assert ui.heading() == setting.mentoring[1]
    assert "£40.00" in page.locator("main").inner_text()
