"""F3 (JOURNEYS.md): an evaluator, from their home page, declares no conflict of interest,
scores each bid alone (one mistake: a score without a reason, answered on the same page with a
linked error summary), then moderates with the other evaluator's scores side by side and ranks
the bids. By links, buttons and forms alone; axe-core checks every page."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class PanelWorld:
    evaluator: worlds.Person
    competition_id: int
    reference: str
    bidders: tuple[str, ...]


def panel_world(live_server) -> PanelWorld:
    """A co-funded competition whose bid deadline passed a week ago (not yet closed: the
    evaluator's pages close it), with two bids from invited members."""
    from datetime import timedelta

    from marketplace.core.clock import utcnow
    from tests.competitions.factories import add_bid, build_competition_world, publish_directly

    t = worlds.tag()
    with live_server.app.app_context():
        world = build_competition_world(members=2)
        for n, provider in enumerate(world.providers, start=1):
            provider.name = f"Bidder {n} {t}"
        evaluator = world.evaluators[0]
        evaluator.name = f"Eve Evaluator {t}"
        now = utcnow()
        publish_directly(world, now=now - timedelta(days=21), bid_deadline=now - timedelta(days=7))
        for n, provider in enumerate(world.providers):
            add_bid(
                world,
                provider,
                unit_price_pence=25_000 - n * 2_000,
                submitted_at=now - timedelta(days=10, minutes=n),
            )
        built = PanelWorld(
            evaluator=worlds.person(evaluator),
            competition_id=world.competition.id,
            reference=world.competition.reference,
            bidders=tuple(p.name for p in world.providers),
        )
        worlds.commit_and_close()
    return built


def other_evaluator_scores(live_server, competition_id: int) -> None:
    """The second evaluator declares and scores every bid on their own computer."""
    from marketplace.competitions.models import Competition
    from marketplace.competitions.services import evaluation

    with live_server.app.app_context():
        competition = worlds.db.session.get(Competition, competition_id)
        other = competition.evaluators[1].user
        evaluation.declare_conflicts(other, competition, has_conflict=False)
        questions = evaluation.scored_questions(competition)
        for bid in evaluation.in_the_running(competition):
            evaluation.score_bid(
                other,
                competition,
                bid.id,
                {q.id: evaluation.ScoreEntry(2, "Evan: some gaps in the plan") for q in questions},
            )
        worlds.commit_and_close()


def test_f3_an_evaluator_declares_scores_and_moderates(journey, live_server):
    world = panel_world(live_server)
    journey.sign_in_from_home(world.evaluator.email, PASSWORD, world.evaluator.totp_secret)
    journey.follow("Go to competitions to evaluate")
    assert journey.heading() == "Competitions to evaluate"
    journey.follow(f"Declare conflicts for {world.reference}")
    assert journey.heading() == "Declare conflicts of interest"
    assert all(name in journey.main_text() for name in world.bidders)
    journey.choose("No")
    journey.press("Declare")
    assert "Your declaration is recorded" in journey.banner()
    assert journey.heading() == "Evaluate the bids"

    for n, bidder in enumerate(world.bidders):
        journey.follow(f"Score this bid from {bidder}")
        for number in (1, 2, 3):
            journey.fill(f"Your score for question {number} (0 to 4)", str(3 + (n == 0)))
            if not (n == 0 and number == 2):
                journey.fill(f"Your reason for question {number}", f"Evidence for {number}")
        journey.press("Save scores")
        if n == 0:
            [(_, href)] = journey.expect_errors("Enter the reason for your score for question 2")
            assert href.startswith("#reason_")
            journey.fill("Your reason for question 2", "Named contacts in every office")
            journey.press("Save scores")
        assert f"Your scores for {bidder} are saved" in journey.banner()
    assert "Moderation opens when every evaluator has scored every bid" in journey.main_text()

    other_evaluator_scores(live_server, world.competition_id)
    journey.follow("Home", within="#service-navigation")
    journey.follow("Go to competitions to evaluate")
    journey.follow(f"Score and moderate {world.reference}")
    journey.follow("Go to moderation")
    assert journey.heading() == "Moderation"
    for n, bidder in enumerate(world.bidders):
        journey.follow(f"Agree the results for {bidder}")
        assert "Evan: some gaps in the plan" in journey.main_text()  # side by side
        for number in (1, 2, 3):
            journey.fill(f"Agreed score for question {number} (0 to 4)", str(3 + (n == 0)))
            journey.fill(f"Agreed reason for question {number}", "The panel agreed")
        journey.choose_in("Does the bid pass question 4?", "Pass")
        journey.fill("Agreed reason for question 4", "Certificate seen")
        journey.press("Save agreed scores")
        assert f"The agreed results for {bidder} are saved" in journey.banner()
    journey.press("Confirm the agreed results and rank the bids")
    assert "The bids are ranked" in journey.banner()
    assert journey.heading() == "Evaluation and award"
    ranking = journey.main_text()
    assert world.bidders[0] in ranking and "Ranking" in ranking
