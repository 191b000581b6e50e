"""The evaluation and award pages: who may open them, the error summary, the seal, bounded
queries, and that an evaluator never sees another's scores before moderation."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.competitions.models import (
    CompetitionStatus,
    EvaluatorScore,
)
from marketplace.competitions.services import evaluation
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from tests.competitions.evaluation_helpers import (
    closed_with_bids,
    declare_all,
    evaluated,
)
from tests.competitions.factories import add_bid, build_competition_world, publish_directly
from tests.factories import make_member, make_organisation


def test_the_panel_home_is_linked_from_the_evaluator_home_page_and_closes_lazily(app, web):
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now - timedelta(days=20), bid_deadline=now - timedelta(hours=1))
    add_bid(world, world.providers[0], submitted_at=now - timedelta(days=1))
    evaluator = world.evaluators[0]
    home = web.as_user(evaluator, world.buyer_org).get("/")
    assert "Competitions to evaluate" in home.text
    assert "/competitions/evaluation" in home.text
    page = web.get("/competitions/evaluation")
    assert page.status_code == 200
    db.session.expire_all()
    assert world.competition.status is CompetitionStatus.CLOSED
    assert world.competition.bids_received == 1
    assert f"/competitions/{world.competition.id}/evaluation/declare" in page.text


def test_a_score_without_a_reason_is_answered_on_the_page_with_a_linked_error(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    competition = world.competition
    web.as_user(world.evaluators[0], world.buyer_org)
    declared = web.post(
        f"/competitions/{competition.id}/evaluation/declare", data={"has_conflict": "no"}
    )
    assert declared.status_code == 302
    questions = evaluation.scored_questions(competition)
    data = {f"score_{q.id}": "3" for q in questions}
    data |= {f"reason_{q.id}": "Good evidence" for q in questions}
    data[f"reason_{questions[0].id}"] = ""
    page = web.post(f"/competitions/{competition.id}/evaluation/bids/{bids[0].id}", data=data)
    assert page.status_code == 422
    assert "There is a problem" in page.text
    assert f'href="#reason_{questions[0].id}"' in page.text
    assert "Enter the reason for your score for question 1" in page.text
    assert db.session.scalar(sa.select(sa.func.count(EvaluatorScore.id))) == 0
    data[f"reason_{questions[0].id}"] = "Clear plan"
    saved = web.post(f"/competitions/{competition.id}/evaluation/bids/{bids[0].id}", data=data)
    assert saved.status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(EvaluatorScore.id))) == len(questions)


def test_scoring_before_declaring_sends_the_evaluator_to_declare(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    page = web.as_user(world.evaluators[0], world.buyer_org).get(
        f"/competitions/{world.competition.id}/evaluation/bids/{bids[0].id}"
    )
    assert page.status_code == 302 and page.location.endswith("/evaluation/declare")


def test_an_evaluator_never_sees_another_evaluators_scores_before_moderation(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    declare_all(world)
    competition = world.competition
    questions = evaluation.scored_questions(competition)
    for bid in bids:
        evaluation.score_bid(
            world.evaluators[0],
            competition,
            bid.id,
            {q.id: evaluation.ScoreEntry(4, "Eve's secret reason") for q in questions},
        )
    web.as_user(world.evaluators[1], world.pcc)
    for url in (
        f"/competitions/{competition.id}/evaluation",
        f"/competitions/{competition.id}/evaluation/bids/{bids[0].id}",
    ):
        page = web.get(url)
        assert page.status_code == 200
        assert "Eve's secret reason" not in page.text
    assert web.get(f"/competitions/{competition.id}/moderation").status_code == 404
    assert (
        web.get(f"/competitions/{competition.id}/moderation/bids/{bids[0].id}").status_code == 404
    )
    ranking = web.get(f"/api/v1/competitions/{competition.id}/ranking")
    assert "secret" not in ranking.text
    # Once every score is in, moderation shows them side by side.
    for bid in bids:
        evaluation.score_bid(
            world.evaluators[1],
            competition,
            bid.id,
            {q.id: evaluation.ScoreEntry(2, "Evan's reason") for q in questions},
        )
    side_by_side = web.get(f"/competitions/{competition.id}/moderation/bids/{bids[0].id}")
    assert side_by_side.status_code == 200
    assert (
        "Eve&#39;s secret reason" in side_by_side.text and "Evan&#39;s reason" in side_by_side.text
    )


def test_the_pages_refuse_while_bids_are_sealed(app, web):
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now, bid_deadline=now + timedelta(days=10))
    bid = add_bid(world, world.providers[0])
    competition = world.competition
    for user, organisation in (
        (world.evaluators[0], world.buyer_org),
        (world.buyer, world.buyer_org),
    ):
        web.as_user(user, organisation)
        for url in (
            f"/competitions/{competition.id}/evaluation",
            f"/competitions/{competition.id}/evaluation/declare",
            f"/competitions/{competition.id}/evaluation/bids/{bid.id}",
            f"/competitions/{competition.id}/ranking",
            f"/competitions/{competition.id}/scores.csv",
        ):
            assert web.get(url).status_code in (403, 404), url
    assert web.get(f"/competitions/{competition.id}/ranking").status_code == 403


def test_wrong_roles_and_other_organisations_get_not_found(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids)
    competition = world.competition
    other = make_organisation(OrganisationType.PROBATION_REGION, name="Elsewhere Probation")
    other_buyer = make_member(Role.BUYER, other)
    ranking = f"/competitions/{competition.id}/ranking"
    assert web.as_user(other_buyer, other).get(ranking).status_code == 404
    assert web.as_user(world.provider_admins[0], world.providers[0]).get(ranking).status_code == (
        404
    )
    assert web.get(f"/competitions/{competition.id}/scores.csv").status_code == 404
    # A co-funder oversees (reads the ranking) but does not run the award.
    web.as_user(world.pcc_approver, world.pcc)
    assert web.get(ranking).status_code == 200
    assert web.get(f"/competitions/{competition.id}/award-decision").status_code == 404
    # The buyer (not an evaluator) has no evaluation pages.
    web.as_user(world.buyer, world.buyer_org)
    assert web.get(f"/competitions/{competition.id}/evaluation").status_code == 404
    assert web.get(ranking).status_code == 200


def test_the_buyer_decides_then_confirms_after_the_standstill_from_the_ranking(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4, bids[1].id: 2})
    competition = world.competition
    web.as_user(world.buyer, world.buyer_org)
    page = web.get(f"/competitions/{competition.id}/ranking")
    assert "Record the award decision" in page.text
    refused = web.post(
        f"/competitions/{competition.id}/award-decision", data={"bid_id": str(bids[1].id)}
    )
    assert refused.status_code == 422 and 'href="#reason"' in refused.text
    decided = web.post(
        f"/competitions/{competition.id}/award-decision", data={"bid_id": str(bids[0].id)}
    )
    assert decided.status_code == 302
    during = web.post(f"/competitions/{competition.id}/confirm-award")
    assert during.status_code == 302
    db.session.expire_all()
    assert competition.status is CompetitionStatus.EVALUATED
    assert "standstill period runs to the end of" in web.get(during.location).text
    # The provider reads its summary from its home page.
    web.as_user(world.provider_admins[1], world.providers[1])
    home = web.get("/")
    assert f"/competitions/{competition.id}/assessment-summary" in home.text
    summary = web.get(f"/competitions/{competition.id}/assessment-summary")
    assert summary.status_code == 200 and "The winning bid" in summary.text
    web.as_user(world.outsider_admin, world.outsider)
    assert web.get(f"/competitions/{competition.id}/assessment-summary").status_code == 404


def test_the_scores_csv_has_every_question_with_its_moderated_score_and_rank(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4, bids[1].id: 2}, failed={bids[2].id})
    csv = web.as_user(world.buyer, world.buyer_org).get(
        f"/competitions/{world.competition.id}/scores.csv"
    )
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.text.splitlines()
    assert lines[0].startswith("Bidder,Status,Criterion")
    assert any("Provider 1,scored,Price,50" in line and line.endswith(",90.00,1") for line in lines)
    assert any(line.startswith("Provider 3,excluded,Excluded") for line in lines)


def _ranked_world(bids: int):
    world = build_competition_world(members=bids)
    placed = closed_with_bids(world, tuple(20_000 + n * 100 for n in range(bids)))
    evaluated(world, placed)
    return world


@pytest.mark.parametrize(
    "path", ["ranking", "scores.csv", "moderation", "evaluation"], ids=lambda p: p
)
def test_evaluation_and_ranking_pages_answer_in_a_bounded_number_of_queries(
    app, web, count_queries, path
):
    counts = []
    for bids in (5, 50):
        world = _ranked_world(bids)
        url = f"/competitions/{world.competition.id}/{path}"
        web.as_user(world.evaluators[0], world.buyer_org)
        assert web.get(url).status_code == 200  # warm: the session and caches
        with count_queries() as counter:
            assert web.get(url).status_code == 200
        counts.append(counter.count)
        from tests.conftest import empty_tables

        empty_tables()
    assert counts[0] == counts[1], counts


def test_no_award_from_the_ranking_page(app, web):
    world = build_competition_world()
    closed_with_bids(world, ())
    competition = world.competition
    web.as_user(world.buyer, world.buyer_org)
    refused = web.post(f"/competitions/{competition.id}/no-award", data={"reason": ""})
    assert refused.status_code == 422 and "There is a problem" in refused.text
    done = web.post(f"/competitions/{competition.id}/no-award", data={"reason": "No bids"})
    assert done.status_code == 302
    db.session.expire_all()
    assert competition.status is CompetitionStatus.NO_AWARD


def test_an_evaluator_with_a_conflict_reads_no_answers(app, web):
    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluation.declare_conflicts(
        world.evaluators[1], world.competition, has_conflict=True, details="I chair Provider 1"
    )
    web.as_user(world.evaluators[1], world.pcc)
    base = f"/competitions/{world.competition.id}"
    page = web.get(f"{base}/evaluation")
    assert "You declared a conflict of interest" in page.text
    assert web.get(f"{base}/evaluation/bids/{bids[0].id}").status_code == 404
    assert web.get(f"{base}/moderation/bids/{bids[0].id}").status_code == 404
