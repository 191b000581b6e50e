"""The evaluation and award API: declare, score, moderate, finish, ranking, award decision,
award and no award, with problem+json refusals."""

from datetime import timedelta

import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.competitions.models import CompetitionStatus
from marketplace.competitions.services import evaluation
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.orders.models import CallOff
from tests.competitions.evaluation_helpers import closed_with_bids
from tests.competitions.factories import add_bid, build_competition_world, publish_directly
from tests.factories import make_member, make_organisation


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def test_an_evaluator_and_the_buyer_take_a_competition_to_a_call_off(app, client):
    world = build_competition_world()
    competition = world.competition
    competition.standstill_working_days = 0
    competition.standstill_reason = "Light-touch service"
    bids = closed_with_bids(world)
    base = f"/api/v1/competitions/{competition.id}"
    panel = [
        bearer(world.evaluators[0], world.buyer_org),
        bearer(world.evaluators[1], world.pcc),
    ]
    questions = evaluation.scored_questions(competition)
    pass_fail = evaluation.pass_fail_questions(competition)
    early = client.put(
        f"{base}/bids/{bids[0].id}/scores",
        json={"scores": [{"question_id": q.id, "score": 3, "reason": "ok"} for q in questions]},
        headers=panel[0],
    )
    assert early.status_code == 422 and early.mimetype == "application/problem+json"
    assert "Declare whether you have a conflict" in early.json["detail"]
    for headers in panel:
        declared = client.post(f"{base}/declaration", json={"has_conflict": False}, headers=headers)
        assert declared.status_code == 200 and declared.json["has_conflict"] is False
        for n, bid in enumerate(bids):
            scored = client.put(
                f"{base}/bids/{bid.id}/scores",
                json={
                    "scores": [
                        {"question_id": q.id, "score": 4 - n, "reason": "Evidence"}
                        for q in questions
                    ]
                },
                headers=headers,
            )
            assert scored.status_code == 200, scored.json
            assert {r["score"] for r in scored.json["scores"]} == {4 - n}
    for n, bid in enumerate(bids):
        moderated = client.put(
            f"{base}/bids/{bid.id}/moderation",
            json={
                "scores": [
                    {"question_id": q.id, "passed": True, "reason": "Certificate seen"}
                    for q in pass_fail
                ]
                + [{"question_id": q.id, "score": 4 - n, "reason": "Agreed"} for q in questions]
            },
            headers=panel[1],
        )
        assert moderated.status_code == 200, moderated.json
    finished = client.post(f"{base}/evaluation/finish", headers=panel[0])
    assert finished.status_code == 200
    assert finished.json["status"] == "evaluated"
    top = next(b for b in finished.json["bids"] if b["rank"] == 1)
    buyer = bearer(world.buyer, world.buyer_org)
    early_award = client.post(f"{base}/award", headers=buyer)
    assert early_award.status_code == 422  # no decision yet
    decided = client.post(f"{base}/award-decision", json={"bid_id": top["bid_id"]}, headers=buyer)
    assert decided.status_code == 200 and decided.json["winning_bid_id"] == top["bid_id"]
    awarded = client.post(f"{base}/award", headers=buyer)
    assert awarded.status_code == 200, awarded.json
    assert awarded.json["status"] == "awarded" and awarded.json["call_off_id"]
    again = client.post(f"{base}/award", headers=buyer)
    assert again.status_code == 409
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count(CallOff.id))) == 1


def test_the_api_refuses_reading_the_ranking_while_sealed_and_hides_others(app, client):
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now, bid_deadline=now + timedelta(days=10))
    add_bid(world, world.providers[0])
    base = f"/api/v1/competitions/{world.competition.id}"
    sealed = client.get(f"{base}/ranking", headers=bearer(world.buyer, world.buyer_org))
    assert sealed.status_code == 403 and sealed.mimetype == "application/problem+json"
    other = make_organisation(OrganisationType.PROBATION_REGION, name="Elsewhere Probation")
    stranger = client.get(f"{base}/ranking", headers=bearer(make_member(Role.BUYER, other), other))
    assert stranger.status_code == 404
    bidder = client.get(
        f"{base}/ranking", headers=bearer(world.provider_admins[0], world.providers[0])
    )
    assert bidder.status_code == 404


def test_a_bidder_sees_no_prices_or_ranks_before_the_award_decision(app, client):
    world = build_competition_world()
    bids = closed_with_bids(world)
    from tests.competitions.evaluation_helpers import evaluated

    evaluated(world, bids)
    base = f"/api/v1/competitions/{world.competition.id}"
    headers = bearer(world.provider_admins[0], world.providers[0])
    assert client.get(f"{base}/ranking", headers=headers).status_code == 404
    from tests.conftest import sign_in_as

    sign_in_as(client, world.provider_admins[0], world.providers[0])
    for url in (
        f"/competitions/{world.competition.id}/ranking",
        f"/competitions/{world.competition.id}/scores.csv",
        f"/competitions/{world.competition.id}/assessment-summary",
    ):
        assert client.get(url).status_code == 404, url


def test_no_award_through_the_api_needs_a_reason_and_the_buyer(app, client):
    world = build_competition_world()
    closed_with_bids(world, ())
    base = f"/api/v1/competitions/{world.competition.id}"
    evaluator = bearer(world.evaluators[1], world.pcc)  # a co-funder: oversees, does not run
    assert client.post(f"{base}/no-award", json={"reason": "x"}, headers=evaluator).status_code == (
        404
    )
    buyer = bearer(world.buyer, world.buyer_org)
    blank = client.post(f"{base}/no-award", json={"reason": " "}, headers=buyer)
    assert blank.status_code == 422
    done = client.post(f"{base}/no-award", json={"reason": "No bids received"}, headers=buyer)
    assert done.status_code == 200 and done.json["status"] == CompetitionStatus.NO_AWARD.value
