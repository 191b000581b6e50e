"""A2 (JOURNEYS.md): an approver sets a buyer's spend limit on the Team page, the buyer places a
call-off above it, and the approver approves it from their home page; the call-off they placed
themselves waits for another approver and offers them no Approve button. Only by links, buttons
and forms, from the home page."""

from __future__ import annotations

import re
from datetime import timedelta

from marketplace.core.clock import add_working_days
from tests.e2e import worlds
from tests.factories import PASSWORD


def test_a2_an_approver_sets_a_buyers_spend_limit_and_approves_a_call_off_above_it(
    journey, live_server
):
    world = worlds.approval_world(live_server)
    people = world.buying.people
    buyer, approver = people.buyer, people.approver

    # The approver sets the buyer's limit from the Team page, with a slip of the keyboard first.
    journey.sign_in_from_home(approver.email, PASSWORD)
    journey.follow("Team", within="#service-navigation")
    assert "Spend limit: £5,000.00 (default)" in journey.main_text()
    journey.follow(f"Change limits for {buyer.name}")
    journey.fill("Spend limit, in pounds", "300.005")
    journey.press("Save limits")
    found = journey.expect_errors("Enter the spend limit in whole pence")
    assert [href for _, href in found] == ["#spend_limit_pence"]
    journey.fill("Spend limit, in pounds", "300")
    journey.press("Save limits")
    assert "Spend limit: £300.00" in journey.main_text()
    told = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject.startswith("Your limits")
    )
    assert "Your spend limit is now £300.00" in told.body
    journey.sign_out()

    # The buyer places ten sessions (£450.00): above the limit, so it waits for approval.
    journey.sign_in_from_home(buyer.email, PASSWORD)
    journey.follow("Home", within="#service-navigation")
    journey.follow("Find services", within="main")
    journey.fill("Search by service, outcome or provider", world.buying.word)
    journey.press("Search")
    journey.follow(world.buying.listing)
    journey.follow("Buy this service")
    start = add_working_days(worlds.london_today(), world.buying.lead_time_days + 2)
    journey.fill("How many units?", "10")
    journey.fill("Start date", worlds.day_month_year(start))
    journey.fill("Planned end date", worlds.day_month_year(start + timedelta(days=60)))
    journey.fill("The person's CRN", "X765432")
    journey.fill("Probation delivery unit (PDU)", "County Durham and Darlington")
    journey.fill("Purchase order number", "NE-PO-5120")
    journey.choose("Continuity for the person")
    journey.press("Continue")
    journey.press("Place call-off")
    assert "It is above your spend limit" in journey.main_text()
    reference = re.search(r"CO-\d{4}-\d{6}", journey.main_text()).group()
    journey.sign_out()

    # The approver approves it from her home page; the one she placed is not hers to approve.
    journey.sign_in_from_home(approver.email, PASSWORD)
    card = journey.page.locator(
        ".app-dashboard-card", has_text="Call-offs waiting for your approval"
    )
    assert "1 call-off above the spend limit" in card.inner_text()
    journey.follow("See call-offs to approve", within=".app-dashboard-card")
    waiting = journey.main_text()
    assert reference in waiting
    journey.follow(reference)
    journey.press("Approve call-off")
    assert "Call-off approved and sent to the provider." in journey.banner()
    assert "Sent" in journey.main_text()

    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(world.own)
    assert "Awaiting approval" in journey.main_text()
    assert journey.page.get_by_role("button", name="Approve call-off").count() == 0
