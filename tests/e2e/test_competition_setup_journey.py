"""F1 (its start): a probation region's buyer sets up a further competition co-funded by a PCC,
from the home page, by links, buttons and forms alone, sees the error summaries, checks the
answers and publishes it to the frozen invited list; the public list then shows it, signed out.
axe-core checks every page (conftest.py)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def competition_world(live_server) -> dict:
    """The factory world (a lot with members in region A, a probation region and a PCC with
    budgets, two panel members), as the facts a person sees: the buyer sets the competition up
    in the pages from here. Its title has a tag of its own (one live server for every test)."""
    from tests.accreditation.factories import region
    from tests.competitions.factories import build_competition_world

    with live_server.app.app_context():
        world = build_competition_world()
        tag = worlds.tag()
        # A PCC of its own name: the funding page chooses the co-funder by name, and other
        # tests on this live server build worlds with a "Durham PCC" too.
        world.pcc.name = f"Durham PCC {tag}"
        facts = {
            "title": f"Move-on accommodation, co-funded {tag}",
            "buyer": worlds.person(world.buyer),
            "lot": f"{world.lot.arrangement.name}: {world.lot.category.name}",
            "region": f"{region('A').name} (probation region)",
            "pcc": world.pcc.name,
            "buyer_org": world.buyer_org.name,
            "evaluators": [
                f"{u.name} ({o.name})"
                for u, o in zip(world.evaluators, (world.buyer_org, world.pcc), strict=True)
            ],
            "start": world.start,
            "providers": [p.name for p in world.providers],
            "outsider": world.outsider.name,
            # For the steps other journeys take through the services (bids, the panel).
            "ids": {
                "buyer_org": world.buyer_org.id,
                "providers": [p.id for p in world.providers],
                "provider_admins": [a.id for a in world.provider_admins],
                "evaluators": [u.id for u in world.evaluators],
            },
            "pcc_approver": worlds.person(world.pcc_approver),
            "approver": worlds.person(world.approver),
            "provider_admins": [worlds.person(a) for a in world.provider_admins],
        }
        worlds.commit_and_close()
    return facts


def set_up_and_publish(journey, world: dict) -> None:
    """The buyer, signed in on its home page, sets up the co-funded competition by the pages
    (with a mistake on three of them) and publishes it."""
    journey.follow("Start a further competition")
    assert journey.heading() == "Start a further competition"

    journey.press("Save and continue")
    journey.expect_errors(
        "Enter a title for the competition", "Choose the arrangement and lot from the list"
    )
    journey.fill("Title", world["title"])
    journey.fill("What do you need?", "Supported move-on accommodation for young adults.")
    journey.select("Arrangement and lot", world["lot"])
    journey.choose(world["region"])
    journey.fill("Estimated whole-life value, including VAT", "120,000")
    journey.fill("Contract start date", worlds.day_month_year(world["start"]))
    journey.fill("Contract end date", worlds.day_month_year(world["start"] + timedelta(days=364)))
    journey.fill("Number of units", "400")
    journey.select("Unit", "bed-night")
    journey.press("Save and continue")
    assert journey.heading() == "Set up the competition"
    assert "Competition started" in journey.banner()

    journey.follow("Funding")
    journey.fill("Your organisation's share", "60")
    journey.select("Co-funder 1", world["pcc"])
    journey.fill("Co-funder 1's share", "30")
    journey.press("Save and continue")
    journey.expect_errors("The shares must add up to exactly 100% (they add up to 90%)")
    journey.fill("Co-funder 1's share", "40")
    journey.press("Save and continue")
    assert journey.heading() == "Set up the competition"

    journey.follow("Award criteria")
    journey.fill("Price weight", "50")
    journey.press("Save price and tie-break")
    for kind, text, weight in (
        ("Quality", "How will you keep tenancies going?", "40"),
        ("Social value", "What social value will you add locally?", "10"),
    ):
        journey.follow("Add a question")
        journey.choose_in("Kind of question", kind)
        journey.fill("Question", text)
        journey.fill("Word limit for answers", "300")
        journey.fill("Scoring scheme", "0 none, 1 poor, 2 fair, 3 good, 4 excellent")
        journey.fill("Top score", "4")
        journey.fill("Weight", weight)
        journey.press("Add question")
        assert journey.heading() == "Award criteria"
    journey.follow("Back to the task list")

    journey.follow("Deadlines and standstill")
    soon = worlds.london_today() + timedelta(days=3)
    journey.fill("Questions close: date", worlds.day_month_year(soon))
    journey.fill("Bids close: date", worlds.day_month_year(soon + timedelta(days=1)))
    journey.press("Save and continue")
    journey.expect_errors(
        "The bid deadline must be at least 10 days after the competition is published"
    )
    journey.fill("Questions close: date", worlds.day_month_year(soon + timedelta(days=7)))
    journey.fill("Bids close: date", worlds.day_month_year(soon + timedelta(days=14)))
    journey.press("Save and continue")

    journey.follow("Evaluation panel")
    for evaluator in world["evaluators"]:
        journey.choose(evaluator)
    journey.press("Save and continue")
    assert journey.main_text().count("Incomplete") == 0

    journey.follow("Check your answers")
    assert journey.heading() == "Check your answers before publishing"
    journey.press("Publish the competition")
    assert journey.heading() == world["title"]
    assert "Competition published" in journey.banner()
    page = journey.main_text()
    assert "Invited providers (3)" in page
    for name in world["providers"]:
        assert name in page
    assert world["outsider"] not in page


def test_f1_start_a_buyer_sets_up_and_publishes_a_co_funded_competition(journey, live_server):
    world = competition_world(live_server)
    journey.sign_in_from_home(world["buyer"].email, PASSWORD)
    set_up_and_publish(journey, world)

    journey.sign_out()
    journey.home()
    journey.follow("Open further competitions")
    assert world["title"] in journey.main_text()
    assert "£100,000 to £500,000" in journey.main_text()
    journey.follow(world["title"])
    assert "How will you keep tenancies going?" in journey.main_text()
