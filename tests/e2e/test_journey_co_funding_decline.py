"""Declining a co-funded share (JOURNEYS.md B3 with the decline, and C1's confirm and decline),
from each person's home page, by links, buttons and forms alone; axe-core checks every page.

B3: the PCC's approver confirms its share of one call-off and declines two others with a reason;
the buyer sees the decline on the call-off, re-splits one (the re-split page catches a mistake as
the question page does) and cancels the other. C1: the PCC's staff confirm a share and decline
another with a reason, and see what they co-fund."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class DecliningWorld:
    co_funding: worlds.CoFundingWorld
    to_confirm: str  # waiting for the PCC's 25% (£180.00 of 8 sessions)
    to_resplit: str  # waiting for its 40% (£432.00 of 12 sessions): declined, then re-split
    to_cancel: str  # waiting for its 30% (£162.00 of 6 sessions): declined, then cancelled


def declining_world(live_server) -> DecliningWorld:
    """The co-funding world with three call-offs of the probation region waiting for the
    PCC's share."""
    from marketplace.orders.services import placing
    from tests.orders.factories import details, shares

    def call_offs(world):
        return [
            placing.place_call_off(
                world.buyer,
                world.region,
                world.listing.id,
                details(
                    world,
                    quantity=quantity,
                    crn=crn,
                    po_number=f"PO-{crn}",
                    shares=shares((world.region, 10_000 - points), (world.pcc, points)),
                ),
            ).reference
            for quantity, crn, points in (
                (8, "D300001", 2_500),
                (12, "D300002", 4_000),
                (6, "D300003", 3_000),
            )
        ]

    co_funding, references = worlds._co_funding_world(live_server, call_offs)
    return DecliningWorld(co_funding, *references)


def _funding_row(journey, funder: str) -> str:
    return journey.page.locator("tr", has_text=funder).first.inner_text()


def _decline(journey, reference: str, reason: str) -> None:
    """From the home page: the share to confirm, declined with ``reason`` (a blank reason first,
    answered with an error)."""
    journey.follow("Home", within="#service-navigation")
    journey.follow("See shares to confirm")
    journey.follow(reference)
    assert "Awaiting funding" in journey.heading() or "Funding declined" in journey.heading()
    journey.follow("Decline our share")
    assert journey.heading() == "Decline your organisation's share"
    journey.press("Decline our share")
    [(_, href)] = journey.expect_errors("Enter why your organisation is declining its share")
    assert href == "#reason"
    journey.fill("Why is your organisation declining its share?", reason)
    journey.press("Decline our share")
    assert "You have declined your organisation's share" in journey.banner()
    assert "Funding declined" in journey.heading()
    assert "Decline our share" not in journey.main_text()


def test_b3_the_pcc_confirms_one_share_declines_two_and_the_buyer_re_splits_one_and_cancels_one(
    journey, other_journey, live_server
):
    world = declining_world(live_server)
    co = world.co_funding
    buyer, pcc = co.people.buyer, co.pcc

    # The PCC's approver confirms one share and declines two, each with a reason.
    other_journey.sign_in_from_home(pcc.email, PASSWORD, pcc.totp_secret)
    other_journey.follow("See shares to confirm")
    other_journey.follow(world.to_confirm)
    other_journey.press("Confirm our share")
    assert "You have confirmed your organisation's share" in other_journey.banner()
    _decline(other_journey, world.to_resplit, "Our budget this year is for victim services")
    _decline(other_journey, world.to_cancel, "She lives outside our area")

    # The buyer is emailed with the reason and a link; their home page shows both to act on.
    told = live_server.smtp.wait_for(
        lambda m: (
            m.to == buyer.email
            and m.subject == f"{co.pcc_name} declined its share of call-off {world.to_resplit}"
        )
    )
    assert "Their reason: Our budget this year is for victim services" in " ".join(
        told.body.split()
    )
    journey.sign_in_from_home(buyer.email, PASSWORD)
    assert "Co-funding declined" in journey.main_text()
    journey.follow("See call-offs with a declined share")
    listed = journey.main_text()
    assert world.to_resplit in listed and world.to_cancel in listed
    journey.follow(world.to_resplit)
    assert "Funding declined" in journey.heading()
    declined = journey.page.locator("#funding-declined").inner_text()
    assert f"{co.pcc_name} declined its share of 40% (£432.00)" in declined
    assert "Our budget this year is for victim services" in declined
    assert "Declined" in _funding_row(journey, co.pcc_name)

    # Re-split: the other PCC takes a share, by mistake too large at first.
    journey.follow("Share out again")
    assert journey.heading() == "Share out the call-off again"
    assert journey.page.get_by_label("First co-funder", exact=True).input_value() == ""
    journey.select("First co-funder", co.other_pcc_name)
    journey.fill("First co-funder's share", "100")
    journey.press("Save the new shares")
    journey.expect_errors("Enter the co-funder's share as a percentage above 0 and below 100")
    journey.fill("First co-funder's share", "30")
    journey.press("Save the new shares")
    assert "New shares saved" in journey.banner()
    assert "Awaiting funding" in journey.heading()
    assert "30%" in _funding_row(journey, co.other_pcc_name)
    assert "Waiting" in _funding_row(journey, co.other_pcc_name)
    assert "70%" in _funding_row(journey, co.people.buyer_name)
    assert co.pcc_name not in journey.page.locator("table").first.inner_text()
    timeline = journey.main_text()
    assert "Shares changed" in timeline and "Co-funder declined its share" in timeline

    # The other is cancelled, with a reason.
    journey.follow("Home", within="#service-navigation")
    journey.follow("See call-offs with a declined share")
    journey.follow(world.to_cancel)
    assert "She lives outside our area" in journey.page.locator("#funding-declined").inner_text()
    journey.follow("Cancel call-off")
    journey.choose("Needs met elsewhere")
    journey.press("Cancel call-off")
    assert "Call-off cancelled" in journey.banner()
    assert "Cancelled" in journey.heading()
    journey.follow("Home", within="#service-navigation")
    assert "Co-funding declined" not in journey.main_text()


def test_c1_the_pcc_confirms_a_share_declines_another_and_sees_what_it_co_funds(
    journey, live_server
):
    world = declining_world(live_server)
    co = world.co_funding
    pcc, buyer = co.pcc, co.people.buyer

    journey.sign_in_from_home(pcc.email, PASSWORD, pcc.totp_secret)
    assert "Funding shares to confirm" in journey.main_text()
    journey.follow("See shares to confirm")
    journey.follow(world.to_confirm)
    assert "is asked to fund 25% of this call-off: £180.00 including VAT" in (
        journey.page.locator("#share-to-confirm").inner_text()
    )
    journey.press("Confirm our share")
    assert "You have confirmed your organisation's share" in journey.banner()

    _decline(journey, world.to_resplit, "Not a priority in our police and crime plan")
    row = _funding_row(journey, co.pcc_name)
    assert "40%" in row and "Declined" in row
    live_server.smtp.wait_for(
        lambda m: (
            m.to == buyer.email
            and m.subject == f"{co.pcc_name} declined its share of call-off {world.to_resplit}"
        )
    )

    # What it co-funds: the confirmed one, the declined one (waiting for the lead buyer), and
    # the one still waiting for its answer.
    journey.follow("Call-offs", within="#service-navigation")
    for reference, status in (
        (world.to_confirm, "Sent"),
        (world.to_resplit, "Funding declined"),
        (world.to_cancel, "Awaiting funding"),
    ):
        assert status in journey.page.locator("tr", has_text=reference).inner_text()
    journey.follow("Home", within="#service-navigation")
    journey.follow("See shares to confirm")
    waiting = journey.main_text()
    assert world.to_cancel in waiting and world.to_resplit not in waiting
