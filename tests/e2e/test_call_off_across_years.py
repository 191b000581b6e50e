"""A call-off whose planned months span 31 March, placed in the browser: the budgets page shows
each year's budget moved by exactly its part (the planned units in each year), and the call-off
page shows the split by year. Only by links, buttons and forms, from the home page."""

from __future__ import annotations

import re

from tests.e2e import worlds
from tests.factories import PASSWORD


def _budget_rows(journey) -> dict[str, list[str]]:
    """The budgets page's rows by year: allocated, committed, spent, available."""
    rows = journey.page.locator("main table tbody tr")
    found = {}
    for i in range(rows.count()):
        cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
        found[cells[0].split()[0]] = cells[2:]  # the year, without its hidden words
    return found


def test_a_call_off_across_31_march_moves_each_years_budget_by_its_part(journey, live_server):
    world = worlds.across_years_world(live_server)
    buyer = world.buying.people.buyer
    first = f"{world.first_year}-{str(world.first_year + 1)[-2:]}"
    second = f"{world.first_year + 1}-{str(world.first_year + 2)[-2:]}"

    journey.sign_in_from_home(buyer.email, PASSWORD)
    journey.follow("See your budgets", within=".app-dashboard-card")
    rows = _budget_rows(journey)
    assert rows[first] == ["£10,000.00", "£0.00", "£0.00", "£10,000.00"]
    assert rows[second] == ["£10,000.00", "£0.00", "£0.00", "£10,000.00"]

    journey.follow("Home", within="#service-navigation")
    journey.follow("Find services", within="main")
    journey.fill("Search by service, outcome or provider", world.buying.word)
    journey.press("Search")
    journey.follow(world.buying.listing)
    journey.follow("Buy this service")
    # Ten sessions from 1 February to 31 May: 3, 3, 2 and 2 a month, so 6 sessions (£270.00)
    # in the first year and 4 (£180.00) in the next.
    journey.fill("How many units?", "10")
    journey.fill("Start date", worlds.day_month_year(world.start))
    journey.fill("Planned end date", worlds.day_month_year(world.end))
    journey.fill("The person's CRN", "X246810")
    journey.fill("Probation delivery unit (PDU)", "County Durham and Darlington")
    journey.fill("Purchase order number", "NE-PO-7001")
    journey.choose("Continuity for the person")
    journey.press("Continue")
    assert "£450.00 excluding VAT, £450.00 including VAT" in journey.main_text()
    journey.press("Place call-off")
    reference = re.search(r"CO-\d{4}-\d{6}", journey.main_text()).group()

    journey.follow("See the call-off")
    assert journey.heading().startswith(f"Call-off {reference}")
    by_year = journey.page.locator("#funding-by-year tbody tr")
    assert [
        [c.strip() for c in by_year.nth(i).locator("td").all_inner_texts()][1:3]
        for i in range(by_year.count())
    ] == [[first, "£270.00"], [second, "£180.00"]]

    journey.follow("Home", within="#service-navigation")
    journey.follow("See your budgets", within=".app-dashboard-card")
    rows = _budget_rows(journey)
    assert rows[first] == ["£10,000.00", "£270.00", "£0.00", "£9,730.00"]
    assert rows[second] == ["£10,000.00", "£180.00", "£0.00", "£9,820.00"]
