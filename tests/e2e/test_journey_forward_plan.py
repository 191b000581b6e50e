"""F3: a commissioner's buyer adds a planned further competition to its forward plan from its
home page (a mistake first: the form sent empty, answered with a linked error summary),
publishes it, and a member of the lot in the area finds it from its own home page, among the
plans for its lots; the buyer opens the market map and a region and lot's details from the same
home card. axe-core checks every page (conftest.py)."""

from __future__ import annotations

import pytest

from marketplace.core.clock import financial_year, financial_year_label
from tests.e2e import worlds
from tests.e2e.test_competition_setup_journey import competition_world
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_f3_a_commissioner_publishes_a_plan_and_a_member_sees_it(
    journey, other_journey, live_server
):
    world = competition_world(live_server)
    title = world["title"].replace("Move-on accommodation, co-funded", "Planned move-on housing")
    next_year = financial_year_label(financial_year(worlds.london_today()) + 1)

    journey.sign_in_from_home(world["buyer"].email, PASSWORD)
    journey.follow("Your forward plan")
    assert journey.heading() == "Your forward plan"
    journey.follow("Add a planned procurement")
    journey.press("Save as a draft")
    errors = dict(journey.expect_errors("Enter a title", "Choose a lot from the list"))
    assert errors["Enter a title"] == "#title"

    journey.fill("Title", title)
    journey.select("Lot", world["lot"].split(": ", 1)[1])
    journey.select("Area", world["region"].replace("(probation region)", "(region)"))
    journey.choose("Further competition")
    journey.choose("£100,000 to £500,000")
    journey.select("Financial year", next_year)
    journey.choose("Q1: April to June")
    journey.press("Save as a draft")
    assert journey.heading() == title
    journey.follow("Publish")
    assert journey.heading() == f"Publish {title}?"
    journey.press("Publish")
    assert "published" in journey.banner()
    assert "Published" in journey.main_text()
    # The market map from the same card, and the region and lot's details.
    journey.home()
    journey.follow("The market map")
    assert journey.heading() == "Market map"
    lot, region_name = world["lot"].split(": ", 1)[1], world["region"].split(" (")[0]
    journey.follow(f"{lot} in {region_name}")
    assert journey.heading() == f"{lot} in {region_name}"
    assert world["providers"][0] in journey.main_text()

    admin = world["provider_admins"][0]
    other_journey.sign_in_from_home(admin.email, PASSWORD, admin.totp_secret)
    other_journey.follow("What commissioners plan to buy in your lots")
    assert other_journey.heading() == "Forward plans"
    text = other_journey.main_text()
    assert title in text
    assert world["buyer_org"] in text
    assert f"Q1 {next_year}" in text
