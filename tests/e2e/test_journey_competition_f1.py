"""F1 (JOURNEYS.md): a buyer and a PCC run a co-funded further competition to award. The buyer
sets it up and publishes it in the pages (the set-up journey's steps) and answers a member's
question from its home page (sent empty first; published to every invited provider without the
asker's name); the invited members bid
(through the services: F2 bids in the browser), the service's clock moves past the bid
deadline, the panel scores and ranks (through the services: F3 does it in the browser); then,
from the home page by links, buttons and forms alone, the buyer opens the ranking, records the
award decision (one mistake: a bid not ranked first with no reason, answered on the same page
with a linked error summary), sees the standstill, and after it confirms the award; the
resulting call-off shows its route, and the PCC's approver confirms its share from its home
page; then the normal lifecycle: the region's approver approves it (above the buyer's spend
limit), the winner accepts it and records the first nights delivered, each from their home page.
axe-core checks every page (conftest.py).

The live server runs in this process's threads, so ``clock.travelled_to`` moves its time too.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from marketplace.core import clock
from tests.e2e import worlds
from tests.e2e.test_competition_setup_journey import competition_world, set_up_and_publish
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e

# Unit prices (pence, exempt from VAT) of the three invited members' bids: the second is the
# cheapest and, with every quality answer scored alike, ranks first.
PRICES = (31_000, 29_500, 30_000)


def provider_asks(live_server, world: dict, question: str) -> str:
    """The first invited member asks a question (F2 asks in the browser); its name."""
    from marketplace.accounts.models import Organisation, User
    from marketplace.competitions.models import Competition
    from marketplace.competitions.services import clarifications
    from marketplace.core.db import db

    with live_server.app.app_context():
        competition = db.session.scalar(
            sa.select(Competition).where(Competition.title == world["title"])
        )
        provider = db.session.get(Organisation, world["ids"]["providers"][0])
        admin = db.session.get(User, world["ids"]["provider_admins"][0])
        clarifications.ask_clarification(admin, provider, competition, question)
        name = provider.name
        worlds.commit_and_close()
    return name


def members_bid(live_server, world: dict) -> tuple[int, str, datetime]:
    """Each invited member bids (the providers' part: F2 in the browser); the competition's key,
    reference and bid deadline."""
    from marketplace.accounts.models import Organisation, OrganisationType, User
    from marketplace.competitions.models import Competition
    from marketplace.competitions.services import bids
    from marketplace.core.db import db
    from marketplace.core.money import VatTreatment

    with live_server.app.app_context():
        competition = db.session.scalar(
            sa.select(Competition).where(Competition.title == world["title"])
        )
        pairs = zip(world["ids"]["providers"], world["ids"]["provider_admins"], strict=True)
        for (provider_id, admin_id), price in zip(pairs, PRICES, strict=True):
            provider = db.session.get(Organisation, provider_id)
            admin = db.session.get(User, admin_id)
            bid = bids.save_bid(
                admin,
                provider,
                competition,
                bids.BidInput(
                    answers=[
                        bids.AnswerInput(q.id, f"{provider.name}'s plan")
                        for q in competition.questions
                    ],
                    unit_price_pence=price,
                    vat_treatment=VatTreatment.EXEMPT,
                    # A public body is not an SME.
                    is_sme=provider.type is not OrganisationType.PROVIDER_PUBLIC,
                ),
            )
            bids.submit_bid(admin, provider, bid)
        facts = (competition.id, competition.reference, competition.bid_deadline)
        worlds.commit_and_close()
    return facts


def panel_ranks(live_server, world: dict, competition_id: int) -> None:
    """The two evaluators declare, score each bid alike and agree (F3 in the browser); the
    bids are ranked on price."""
    from marketplace.accounts.models import User
    from marketplace.competitions.models import Competition
    from marketplace.competitions.services import evaluation
    from marketplace.core.db import db

    with live_server.app.app_context():
        competition = db.session.get(Competition, competition_id)
        evaluators = [db.session.get(User, pk) for pk in world["ids"]["evaluators"]]
        evaluation.close_if_due(competition)
        questions = evaluation.scored_questions(competition)
        in_the_running = evaluation.in_the_running(competition)
        for user in evaluators:
            evaluation.declare_conflicts(user, competition, has_conflict=False)
            for bid in in_the_running:
                evaluation.score_bid(
                    user,
                    competition,
                    bid.id,
                    {q.id: evaluation.ScoreEntry(3, "Sound plan") for q in questions},
                )
        for bid in in_the_running:
            evaluation.moderate_bid(
                evaluators[0],
                competition,
                bid.id,
                {q.id: evaluation.ModerationEntry(score=3, reason="Agreed") for q in questions},
            )
        evaluation.finish_evaluation(evaluators[0], competition)
        worlds.commit_and_close()


def standstill_end(live_server, competition_id: int) -> datetime:
    from marketplace.competitions.models import Competition
    from marketplace.core.db import db

    with live_server.app.app_context():
        ends = db.session.get(Competition, competition_id).standstill_ends_at
        db.session.remove()
    return ends


def test_f1_a_buyer_and_a_pcc_run_a_co_funded_competition_to_award(
    journey, other_journey, live_server
):
    world = competition_world(live_server)
    journey.sign_in_from_home(world["buyer"].email, PASSWORD)
    set_up_and_publish(journey, world)
    question = "Must the accommodation be self-contained?"
    asker = provider_asks(live_server, world, question)

    # The buyer answers from the home page (sent empty first); every invited provider is told,
    # without the asker's name.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Answer questions")
    assert journey.heading() == "Questions to answer"
    assert question in journey.main_text()
    journey.follow(f"Answer the question from {asker} about {world['title']}")
    journey.press("Publish answer")
    journey.expect_errors("Enter your answer")
    journey.fill("Your answer", "No: shared houses with their own rooms are fine.")
    journey.press("Publish answer")
    assert "Answer published to every invited provider" in journey.banner()
    for admin in world["provider_admins"]:
        told = live_server.smtp.wait_for(
            lambda m, to=admin.email: m.to == to and "clarification was published" in m.subject
        )
        assert question in told.body and "shared houses" in told.body
        if admin.email != world["provider_admins"][0].email:
            assert asker not in told.body

    competition_id, reference, deadline = members_bid(live_server, world)
    first, second, third = world["providers"][1], world["providers"][2], world["providers"][0]

    with clock.travelled_to(deadline + timedelta(hours=1)):
        panel_ranks(live_server, world, competition_id)
        journey.follow("Home", within="#service-navigation")
        assert "Competitions to evaluate" in journey.main_text()
        journey.follow("Go to competitions to evaluate")
        journey.follow(f"{reference}: {world['title']}")
        assert journey.heading() == "Evaluation and award"
        ranking = journey.page.locator("table").first.inner_text()
        assert ranking.index(first) < ranking.index(second) < ranking.index(third)
        assert "3 (1 from VCSE and 2 from SME bidders)" in journey.main_text().replace("\n", " ")

        journey.follow("Record the award decision")
        assert journey.heading() == "Record the award decision"
        journey.choose(f"{second}: ranked 2", exact=False)
        journey.press("Record the award decision")
        [(_, href)] = journey.expect_errors(
            "Enter why you are awarding to a bid that is not ranked first"
        )
        assert href == "#reason"
        journey.choose(f"{first}: ranked 1", exact=False)
        journey.press("Record the award decision")
        assert "The award decision is recorded" in journey.banner()
        assert journey.heading() == "Evaluation and award"
        page = journey.main_text()
        assert f"{first}, recorded" in page and "Runs to the end of" in page
        assert "You can confirm the award once the standstill period has ended." in page
        assert not journey.page.get_by_role("button", name="Confirm the award").count()

    ends = standstill_end(live_server, competition_id)
    with clock.travelled_to(ends + timedelta(hours=9)):
        journey.follow("Home", within="#service-navigation")
        journey.follow("Go to competitions to evaluate")
        journey.follow(f"{reference}: {world['title']}")
        assert "Ended on" in journey.main_text()
        journey.press("Confirm the award and place the call-off")
        assert "The award is confirmed: the call-off has been placed." in journey.banner()
        call_off = journey.page.locator("dt", has_text="Call-off").locator("xpath=..").inner_text()
        call_off_reference = call_off.split()[-1]
        journey.follow(call_off_reference)
        page = journey.main_text()
        assert "Awarded by further competition among the members of the lot" in page
        assert first in page

        pcc = world["pcc_approver"]
        other_journey.sign_in_from_home(pcc.email, PASSWORD, pcc.totp_secret)
        other_journey.follow("See shares to confirm")
        other_journey.follow(call_off_reference)
        assert "Awarded by further competition" in other_journey.main_text()
        other_journey.press("Confirm our share")
        assert "You have confirmed your organisation's share" in other_journey.banner()

        # The normal lifecycle follows: above the buyer's spend limit, the region's approver
        # approves it from her home page; the winner accepts it from its home page.
        # The competition's overview, from "Your competitions", leads to all of it too.
        journey.follow("Home", within="#service-navigation")
        journey.follow("Your competitions")
        journey.follow(world["title"])
        assert call_off_reference in journey.main_text()
        journey.follow("See the bids received")
        received = journey.main_text()
        assert all(name in received for name in world["providers"])

        journey.sign_out()
        journey.sign_in_from_home(world["approver"].email, PASSWORD)
        journey.follow("See call-offs to approve", within=".app-dashboard-card")
        journey.follow(call_off_reference)
        journey.press("Approve call-off")
        assert "Call-off approved and sent to the provider." in journey.banner()

        winner = world["provider_admins"][1]
        other_journey.sign_out()
        other_journey.sign_in_from_home(winner.email, PASSWORD, winner.totp_secret)
        other_journey.follow("See call-offs to respond to")
        other_journey.follow(call_off_reference, within=".govuk-inset-text")
        assert "Awarded by further competition" in other_journey.main_text()
        other_journey.press("Accept call-off")
        assert "Call-off accepted. The buyer has been told." in other_journey.banner()

    # A week into the contract the provider records the first nights delivered.
    with clock.travelled_to(
        datetime.combine(world["start"] + timedelta(days=7), time(10), tzinfo=UTC)
    ):
        other_journey.follow("Home", within="#service-navigation")
        other_journey.follow(
            "See call-offs", within=".app-dashboard-card:has-text('Delivery to record')"
        )
        other_journey.follow(call_off_reference)
        other_journey.follow("Record delivery")
        other_journey.fill("Date of the session", worlds.day_month_year(world["start"]))
        other_journey.fill("Units delivered", "7")
        other_journey.choose_in("Attendance", "Attended")
        other_journey.press("Record delivery")
        assert "Delivery recorded" in other_journey.banner()
        assert "In delivery" in other_journey.heading()
    # The delivery page's "Did not attend" reveals its reason (GOV.UK's aria-expanded).
    assert other_journey.excuse_govuk_conditional_reveals()
