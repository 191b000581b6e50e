"""Co-funding with a Police and Crime Commissioner (JOURNEYS.md B3 and C1), from each person's
home page, by links, buttons and forms alone; axe-core checks every page (conftest.py).

B3's decline and re-split, and C1's standing authorisation and declining a share with a reason,
come with issue 19's pages (a co-funder cannot decline its share before them)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from marketplace.core.clock import add_working_days
from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def _funding_row(journey, funder: str) -> str:
    """The row of the call-off page's funding table for ``funder``."""
    return journey.page.locator("tr", has_text=funder).first.inner_text()


# --- B3: the buyer co-funds with a PCC, and sees the PCC confirm its share ---------------------------


def test_b3_co_fund_with_a_pcc_set_shares_place_and_see_the_pcc_confirm_its_share(
    journey, other_journey, live_server
):
    world = worlds.co_funding_world(live_server)
    buyer, provider, pcc = world.people.buyer, world.people.provider, world.pcc
    lead = world.people.buyer_name
    start = add_working_days(worlds.london_today(), world.lead_time_days + 2)

    journey.sign_in_from_home(buyer.email, PASSWORD)
    journey.follow("Find services", within="#service-navigation")
    journey.fill("Search by service, outcome or provider", world.word)
    journey.press("Search")
    journey.follow(world.listing)
    journey.follow("Buy this service")
    assert journey.heading() == f"Buy {world.listing}"

    journey.fill("How many units?", "10")
    journey.fill("Start date", worlds.day_month_year(start))
    journey.fill("Planned end date", worlds.day_month_year(start + timedelta(days=60)))
    journey.fill("The person's CRN", "K481516")
    journey.fill("Probation delivery unit (PDU)", "County Durham and Darlington")
    journey.fill("Purchase order number", "NE-PO-7302")
    journey.choose("Specialist need")
    journey.fill("Explain your choice", "A women-only service, as her plan asks")
    # The first go at the shares: the two PCCs that talked of funding, at shares that leave the
    # region nothing, and a third share typed before its funder was chosen.
    journey.select("First co-funder", world.pcc_name)
    journey.fill("First co-funder's share", "70")
    journey.select("Second co-funder", world.other_pcc_name)
    journey.fill("Second co-funder's share", "40")
    journey.fill("Third co-funder's share", "10")
    journey.press("Continue")
    found = journey.expect_errors(
        "The co-funders' shares add up to 110%: together they must come to less than 100%",
        "Choose the co-funder for this share, or clear it",
    )
    assert [href for _, href in found] == ["#share_1", "#co_funder_3"]
    # What was typed is kept, to be put right.
    assert journey.page.get_by_label("Third co-funder's share", exact=True).input_value() == "10"

    # Durham's PCC funds a quarter; Cleveland is not in after all.
    journey.fill("First co-funder's share", "25")
    journey.select("Second co-funder", "None")
    journey.fill("Second co-funder's share", "")
    journey.fill("Third co-funder's share", "")
    journey.press("Continue")
    assert journey.heading() == "Check your answers before placing the call-off"
    funding = journey.page.locator(".govuk-summary-list").last
    shares = [
        (row.locator("dt").inner_text().strip(), row.locator("dd").first.inner_text().strip())
        for row in funding.locator(".govuk-summary-list__row").all()
    ]
    assert shares == [(f"{lead} (lead)", "75%"), (world.pcc_name, "25%")]
    assert world.other_pcc_name not in journey.main_text()
    assert "£900.00 excluding VAT, £900.00 including VAT" in journey.main_text()  # 10 × £90.00
    journey.press("Place call-off")

    assert "Call-off placed" in journey.main_text()
    reference = re.search(r"CO-\d{4}-\d{6}", journey.main_text()).group()
    assert (
        "asked each co-funder's approvers to confirm their share, and we will email you as each "
        "one does"
    ) in journey.main_text()
    journey.follow("See the call-off")
    assert "Awaiting funding" in journey.heading()
    assert "25%" in _funding_row(journey, world.pcc_name)
    assert "£225.00" in _funding_row(journey, world.pcc_name)  # a quarter of £900.00
    assert "Waiting" in _funding_row(journey, world.pcc_name)

    # The PCC's approver is asked to confirm, and does, from their own home page.
    asked = live_server.smtp.wait_for(
        lambda m: m.to == pcc.email and m.subject == f"Confirm your share of call-off {reference}"
    )
    assert "Your share: 25%, £225.00 including VAT" in " ".join(asked.body.split())
    other_journey.sign_in_from_home(pcc.email, PASSWORD, pcc.totp_secret)
    other_journey.follow("See shares to confirm")
    other_journey.follow(reference)
    assert "Awaiting funding" in other_journey.heading()
    asked_on_page = other_journey.page.locator("#share-to-confirm").inner_text()
    assert f"{world.pcc_name} is asked to fund 25% of this call-off: £225.00" in asked_on_page
    other_journey.press("Confirm our share")
    assert "You have confirmed your organisation's share" in other_journey.banner()
    assert "Sent" in other_journey.heading()
    assert "Confirm our share" not in other_journey.main_text()

    # The buyer is told, and the link in the email opens the call-off, now with the provider.
    told = live_server.smtp.wait_for(
        lambda m: (
            m.to == buyer.email
            and m.subject == f"{world.pcc_name} confirmed its share of call-off {reference}"
        )
    )
    body = " ".join(told.body.split())
    assert f"Dear {buyer.name}," in body
    assert f"Every funder has confirmed, so it has gone to {world.people.provider_name}" in body
    journey.open_link_in_email(told, "/call-offs/")
    assert reference in journey.heading() and "Sent" in journey.heading()
    assert "Waiting" not in _funding_row(journey, world.pcc_name)
    timeline = journey.main_text()
    assert "Co-funder's share confirmed" in timeline and pcc.name in timeline
    live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith(f"New call-off {reference}")
    )


# --- C1: the PCC's staff confirm a share and see what the PCC co-funds ---------------------------------


def test_c1_confirm_a_share_and_see_what_the_pcc_co_funds_its_contingent_liability_and_recharges(
    journey, live_server
):
    world = worlds.commissioner_world(live_server)
    pcc, buyer = world.co_funding.pcc, world.co_funding.people.buyer
    pcc_name = world.co_funding.pcc_name

    # Staff of a commissioner, not of the authority: a password is enough (no security code).
    assert pcc.totp_secret is None
    journey.sign_in_from_home(pcc.email, PASSWORD)
    assert "Funding shares to confirm" in journey.main_text()
    journey.follow("See shares to confirm")
    waiting = journey.main_text()
    assert world.to_confirm in waiting and world.also_waiting in waiting
    journey.follow(world.to_confirm)
    assert "Awaiting funding" in journey.heading()
    # 8 sessions at £90.00, exempt from VAT: £720.00, a quarter of it £180.00, shown beside
    # the button that confirms it.
    assert "is asked to fund 25% of this call-off: £180.00 including VAT" in (
        journey.page.locator("#share-to-confirm").inner_text()
    )
    row = _funding_row(journey, pcc_name)
    assert "25%" in row and "£180.00" in row and "Waiting" in row
    journey.press("Confirm our share")
    assert "You have confirmed your organisation's share" in journey.banner()
    assert "Awaiting funding" not in journey.heading()
    assert "Waiting" not in _funding_row(journey, pcc_name)
    # Confirmed once: the button is gone, so a second tab's double click has nothing to press.
    assert "Confirm our share" not in journey.main_text()
    told = live_server.smtp.wait_for(
        lambda m: (
            m.to == buyer.email
            and m.subject == f"{pcc_name} confirmed its share of call-off {world.to_confirm}"
        )
    )
    assert "25%, £180.00 including VAT" in " ".join(told.body.split())

    # Every call-off it co-funds, the one still waiting for its share among them.
    journey.follow("Call-offs", within="#service-navigation")
    listed = journey.main_text()
    for reference in (world.to_confirm, world.also_waiting, world.delivered):
        assert reference in listed
    assert (
        "Awaiting funding" in journey.page.locator("tr", has_text=world.also_waiting).inner_text()
    )

    # Its contingent liability: the delivered call-off's outcome, at most 2 claims of £500.01
    # (exempt from VAT), none verified yet: £1,000.02, of which its 40% is £400.01 (the parts
    # add up to the whole: the odd penny goes to the larger remainder).
    journey.follow("Home", within="#service-navigation")
    journey.follow("See your budgets")
    journey.follow("see the contingent liability")
    row = journey.page.locator("tr", has_text=world.delivered).inner_text()
    assert world.outcome in row and "£1,000.02" in row and "£400.01" in row

    # Its recharge statement: 40% of the provider's invoice for 3 sessions (£270.00).
    journey.follow("Invoices", within="#service-navigation")
    journey.follow("Recharge statement: your share of co-funded call-offs")
    row = journey.page.locator("tr", has_text=world.invoice).inner_text()
    assert world.delivered in row and "£270.00" in row and "40.00%" in row and "£108.00" in row
