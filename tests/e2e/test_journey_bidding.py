"""F2, first half (JOURNEYS.md): a small charity's administrator, from its home page, reads a
further competition it is invited to, asks a question, reads the answer published to every
invited provider (set by the buyer through the service here), and bids as the lead of a
two-member consortium; an answer over its word limit is refused on the same page with a linked
error summary; it submits and gets a receipt. axe-core checks every page (conftest.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class BiddingWorld:
    admin: worlds.Person
    charity: str
    partner: str
    competition_id: int
    title: str
    questions: list[str]  # quality and social value questions, in order
    word_limit: int
    pass_fail: str


def bidding_world(live_server) -> BiddingWorld:
    from tests.competitions.factories import build_competition_world, publish_directly

    with live_server.app.app_context():
        world = build_competition_world()
        tag = worlds.tag()
        # Names of their own: other tests on this live server build worlds too.
        world.providers[0].name = f"Small Steps Charity {tag}"
        world.providers[1].name = f"Open Doors Trust {tag}"
        world.competition.title = f"Move-on accommodation {tag}"
        publish_directly(world)
        competition = world.competition
        built = BiddingWorld(
            admin=worlds.person(world.provider_admins[0]),
            charity=world.providers[0].name,
            partner=world.providers[1].name,
            competition_id=competition.id,
            title=competition.title,
            questions=[q.text for q in competition.questions if q.kind.scored],
            word_limit=competition.questions[0].word_limit,
            pass_fail=next(q.text for q in competition.questions if not q.kind.scored),
        )
        worlds.commit_and_close()
    return built


def answer_the_question(live_server, competition_id: int, answer: str) -> None:
    """The buyer answers (the buyer's pages are another journey's)."""
    from marketplace.accounts.models import Role
    from marketplace.competitions.models import Clarification, Competition
    from marketplace.competitions.services.clarifications import answer_clarification
    from marketplace.core.db import db

    with live_server.app.app_context():
        competition = db.session.get(Competition, competition_id)
        asked = db.session.scalar(
            sa.select(Clarification).where(Clarification.competition_id == competition_id)
        )
        buyer = next(m.user for m in competition.buyer.memberships if m.role is Role.BUYER)
        answer_clarification(buyer, competition.buyer, asked, answer)
        worlds.commit_and_close()


def test_f2_a_small_charity_asks_a_question_and_bids_as_the_lead_of_a_consortium(
    journey, live_server
):
    world = bidding_world(live_server)
    journey.sign_in_from_home(world.admin.email, PASSWORD)
    home = journey.main_text()
    assert "Further competitions you are invited to" in home
    assert f"{world.title}: bids close" in home and "your bid: not started" in home

    journey.follow("Your competitions")
    assert journey.heading() == "Your competitions"
    assert "Not started" in journey.main_text()
    journey.follow(world.title)
    assert journey.heading() == world.title
    page = journey.main_text()
    assert world.questions[0] in page and "No answers have been published yet." in page

    # A question, first sent empty.
    journey.follow("Ask a question")
    journey.press("Send question")
    journey.expect_errors("Enter your question")
    journey.fill("Your question", "May tenants keep a pet?")
    journey.press("Send question")
    assert "Your question is sent" in journey.banner()

    answer_the_question(live_server, world.competition_id, "Small pets only, by agreement.")
    published = live_server.smtp.wait_for(
        lambda m: m.to == world.admin.email and "clarification was published" in m.subject
    )
    assert world.charity not in published.body  # never who asked
    journey.open_link_in_email(published, f"/competitions/{world.competition_id}/bid")
    page = journey.main_text()
    assert "May tenants keep a pet?" in page and "Small pets only, by agreement." in page

    # The bid: the first answer is over its word limit.
    journey.follow("Start your bid")
    journey.fill(f"Question 1: {world.questions[0]}", "tenancy " * (world.word_limit + 1))
    journey.fill(f"Question 2: {world.questions[1]}", "Weekly meetings with each practitioner.")
    journey.fill(f"Question 3: {world.questions[2]}", "Apprenticeships for local young people.")
    journey.choose_in(f"Question 4: {world.pass_fail}", "Yes")
    journey.fill("How you meet question 4", "Policy with Acme Insurance, £10m cover.")
    journey.fill("Unit price, before VAT", "42.50")
    journey.choose_in("VAT treatment of your price", "Exempt from VAT")
    journey.fill("Commitment 1: what you will do", "Apprenticeships")
    journey.fill("Commitment 1: how much", "Two a year")
    journey.fill("Commitment 1: by when", "31 3 2028")
    journey.fill("Organisation 1: name", world.partner)
    journey.select("Organisation 1: part it plays", "Consortium member")
    journey.fill("Organisation 1: share of the work", "30")
    journey.choose_in("Is your organisation a small or medium-sized enterprise (SME)?", "Yes")
    journey.press("Save and check your bid")
    found = journey.expect_errors(f"has {world.word_limit + 1} words")
    assert found[0][0].endswith(f"use {world.word_limit} words or fewer")

    journey.fill(f"Question 1: {world.questions[0]}", "We keep tenancies going with weekly visits.")
    journey.press("Save and check your bid")
    assert journey.heading() == "Check your bid"
    check = journey.main_text()
    assert world.partner in check and "30%" in check and "70%" in check
    assert "£17,000.00" in check  # 400 bed-nights at £42.50, exempt from VAT
    journey.press("Submit your bid")
    assert journey.heading() == world.title
    assert "Your bid is submitted" in journey.banner()
    assert "Submitted" in journey.main_text()

    receipt = live_server.smtp.wait_for(
        lambda m: m.to == world.admin.email and "was submitted" in m.subject
    )
    assert "17,000" not in receipt.body  # a receipt, not the bid's content
    journey.home()
    assert "your bid: submitted" in journey.main_text()


@dataclass(frozen=True)
class DecidedWorld:
    admin: worlds.Person
    charity: str
    winner: str
    reference: str
    title: str


def decided_world(live_server) -> DecidedWorld:
    """A competition whose bids closed a week ago, evaluated (every answer agreed at 3 of 4) and
    awarded to the cheapest bid, not the small charity's (through the services: F1 and F3 take
    these steps in the browser)."""
    from marketplace.competitions.services import award
    from tests.competitions.evaluation_helpers import closed_with_bids, evaluated
    from tests.competitions.factories import build_competition_world

    with live_server.app.app_context():
        world = build_competition_world()
        tag = worlds.tag()
        world.providers[0].name = f"Small Steps Charity {tag}"
        world.providers[1].name = f"Open Doors Trust {tag}"
        world.competition.title = f"Move-on accommodation {tag}"
        # 400 bed-nights exempt from VAT at £250.00, £200.00 and £300.00 a night.
        bids = closed_with_bids(world, (25_000, 20_000, 30_000))
        evaluated(world, bids)
        award.decide_award(world.buyer, world.buyer_org, world.competition, bids[1].id)
        built = DecidedWorld(
            admin=worlds.person(world.provider_admins[0]),
            charity=world.providers[0].name,
            winner=world.providers[1].name,
            reference=world.competition.reference,
            title=world.competition.title,
        )
        worlds.commit_and_close()
    return built


def test_f2_the_small_charity_reads_its_assessment_summary_from_its_home_page(journey, live_server):
    world = decided_world(live_server)
    email = live_server.smtp.wait_for(
        lambda m: m.to == world.admin.email and "assessment summary" in m.subject
    )
    assert f"Your assessment summary for {world.reference}: unsuccessful" == email.subject

    journey.sign_in_from_home(world.admin.email, PASSWORD)
    assert "Further competitions you are invited to" in journey.main_text()
    journey.follow(f"Your assessment summary for {world.reference}: {world.title}")
    assert journey.heading() == "Your assessment summary"
    page = journey.main_text()
    assert "Your bid was not successful." in page
    assert "The standstill period runs to the end of" in page
    own = journey.page.locator("table", has_text="Your scores").inner_text()
    # Price: £8,000 (the lowest) ÷ £10,000 × 50 = 40.00; each answer 3 of 4 of its weight:
    # 18.75 + 11.25 + 7.50; total 77.50. The winner: 50.00 for price, the same answers: 87.50.
    for figure in ("40.00", "18.75", "11.25", "7.50", "77.50", "3 of 4", "Agreed"):
        assert figure in own
    winner = journey.page.locator("table", has_text="The winning bid's scores").inner_text()
    assert world.winner in winner and "50.00" in winner and "87.50" in winner
    assert world.charity not in winner

    # The competition's own page leads there too, and no longer offers to ask a question.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Your competitions")
    journey.follow(world.title)
    assert "Ask a question" not in journey.main_text()
    journey.follow("Read your assessment summary")
    assert journey.heading() == "Your assessment summary"
