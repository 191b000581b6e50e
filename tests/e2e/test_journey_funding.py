"""Money set by its owners (JOURNEYS.md A1 and the first part of C1), from each person's home page,
by links, buttons and forms alone; axe-core checks every page (conftest.py).

A1: a probation region's approver sets this and next financial year's budgets and a category
budget, raises one with a reason, and sees allocated, committed, spent and available; the other
approver is emailed. C1 (first part): a PCC's approver sets up a standing authorisation for the
probation region, and the region's approver, emailed, opens it."""

from __future__ import annotations

import pytest

from marketplace.core.clock import financial_year, financial_year_label
from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def _summary(journey) -> dict[str, str]:
    rows = journey.page.locator(".govuk-summary-list__row")
    return {
        rows.nth(i).locator("dt").inner_text().strip(): rows.nth(i)
        .locator("dd")
        .inner_text()
        .strip()
        for i in range(rows.count())
    }


def test_a1_set_this_and_next_years_budgets_and_a_category_budget_then_raise_one(
    journey, live_server
):
    world = worlds.funding_world(live_server)
    this_year = financial_year(worlds.london_today())
    this, following = financial_year_label(this_year), financial_year_label(this_year + 1)

    journey.sign_in_from_home(world.approver.email, PASSWORD)
    assert f"no budget for {this}" in journey.main_text()
    assert "Budgets" in journey.navigation()
    journey.follow("Set a budget")
    assert journey.heading() == "Set a budget"

    # The first go: no year chosen, and pence typed to three places.
    journey.fill("Amount", "100,000.555")
    journey.press("Set budget")
    found = journey.expect_errors("Choose the financial year", "Enter amount in pounds and pence")
    assert [href for _, href in found][1] == "#allocated"
    journey.choose_in("Financial year", this)
    journey.fill("Amount", "100,000")
    journey.press("Set budget")
    assert journey.heading() == f"{this} budget for all services"
    assert "Budget set." in journey.banner()

    journey.follow("Back to your budgets")
    journey.follow("Set a budget")
    journey.choose_in("Financial year", following)
    journey.fill("Amount", "120000")
    journey.fill("Note for the budget's history (optional)", "Indicative, to be confirmed")
    journey.press("Set budget")
    assert journey.heading() == f"{following} budget for all services"

    journey.follow("Back to your budgets")
    journey.follow("Set a budget")
    journey.choose_in("Financial year", this)
    journey.select("What the budget is for", world.category)
    journey.fill("Amount", "20000")
    journey.press("Set budget")
    assert journey.heading() == f"{this} budget for {world.category}"

    journey.follow("Back to your budgets")
    table = journey.page.locator("table").first.inner_text()
    assert table.count(this) == 2 and table.count(following) == 1
    assert "£120,000.00" in table and "£20,000.00" in table

    # Raise this year's budget for all services; the reason is forgotten the first time.
    journey.follow(f"{this} budget for all services")
    journey.follow("Raise or lower this budget")
    journey.fill("New amount", "150000")
    journey.press("Change budget")
    journey.expect_errors("Enter the reason for the change")
    journey.fill("Reason for the change", "In-year grant from the regional board")
    journey.press("Change budget")
    assert "Budget changed." in journey.banner()
    figures = _summary(journey)
    assert figures["Allocated"] == "£150,000.00"
    assert figures["Committed"].startswith("£0.00") and figures["Spent"].startswith("£0.00")
    assert figures["Available"] == "£150,000.00"
    history = journey.page.locator("table").first.inner_text()
    assert "In-year grant from the regional board" in history and "£100,000.00" in history

    raised = live_server.smtp.wait_for(
        lambda m: m.to == world.colleague.email and "raised the" in m.subject
    )
    assert "from £100,000.00 to £150,000.00" in raised.body


def test_c1_a_pcc_approver_sets_up_a_standing_authorisation_for_a_probation_region(
    journey, other_journey, live_server
):
    world = worlds.funding_world(live_server)
    this = financial_year_label(financial_year(worlds.london_today()))

    journey.sign_in_from_home(world.pcc.email, PASSWORD)
    journey.follow("Manage standing authorisations")
    assert journey.heading() == "Standing authorisations"
    journey.follow("Set up a standing authorisation")

    # The first go: the limits the wrong way round.
    journey.select("Lead buyer", world.region_name)
    journey.choose_in("Financial year", this)
    journey.fill("Limit per call-off", "10000")
    journey.fill("Total for the year", "2500")
    journey.press("Set up authorisation")
    journey.expect_errors("The limit per call-off cannot be more than the total for the year")
    journey.fill("Limit per call-off", "2500")
    journey.fill("Total for the year", "10000")
    journey.press("Set up authorisation")
    assert journey.heading() == f"Standing authorisation for {world.region_name}, {this}"
    assert "Standing authorisation set up." in journey.banner()
    terms = _summary(journey)
    assert (
        terms["Limit per call-off"] == "£2,500.00" and terms["Total for the year"] == "£10,000.00"
    )
    assert terms["Used so far"] == "£0.00" and terms["Status"] == "In force"

    # The region's approver is told, and opens it from the email.
    told = live_server.smtp.wait_for(
        lambda m: m.to == world.approver.email and "authorised your call-offs" in m.subject
    )
    other_journey.sign_in_from_home(world.approver.email, PASSWORD)
    other_journey.open_link_in_email(told, "/funding-authorisations/")
    assert other_journey.heading() == journey.heading()
    assert "Change the limits" not in other_journey.main_text()
    other_journey.follow("Back to standing authorisations")
    assert world.pcc_name in other_journey.page.locator("table").first.inner_text()
