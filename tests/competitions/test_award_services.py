"""The award decision with assessment summaries and standstill, its confirmation into a
call-off, and closing without award, through the services."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.competitions.models import (
    AssessmentSummary,
    CompetitionStatus,
)
from marketplace.competitions.services import award
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.notifications.models import Notification
from marketplace.orders.models import AwardRoute, Budget, CallOff
from tests.competitions.evaluation_helpers import closed_with_bids, evaluated


def _emails(template):
    return db.session.scalars(
        sa.select(Notification.to_email).where(Notification.template == template)
    ).all()


@pytest.fixture
def ranked(app):
    from tests.competitions.factories import build_competition_world

    world = build_competition_world()
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4, bids[1].id: 2}, failed={bids[2].id})
    return world, bids


def test_the_award_decision_writes_each_bidder_its_summary_once_and_starts_the_standstill(ranked):
    world, bids = ranked
    competition = world.competition
    now = utcnow()
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=now)
    summaries = {s.bid_id: s for s in db.session.scalars(sa.select(AssessmentSummary)).all()}
    assert set(summaries) == {b.id for b in bids}
    winner, loser, excluded = (summaries[b.id] for b in bids)
    assert winner.successful and not loser.successful and not excluded.successful
    assert [c["points"] for c in loser.content["criteria"]][0] == bids[1].price_score
    assert loser.content["criteria"][1]["reason"] == "Agreed"
    assert loser.content["winner_total"] == 9000
    assert "15.00 fewer than the winning bid's 90.00" in loser.content["why"]
    assert excluded.content["excluded"] and "excluded" in excluded.content["why"]
    assert world.provider_admins[1].email in _emails("competitions_assessment_summary")
    last = add_working_days(london_date(now), 8)
    assert award.last_day_of_standstill(competition) == last
    with pytest.raises(TransitionConflict, match="already been recorded"):
        award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=now)


def test_awarding_to_a_bid_not_ranked_first_needs_a_reason(ranked):
    world, bids = ranked
    with pytest.raises(BusinessRuleViolation) as refused:
        award.decide_award(world.buyer, world.buyer_org, world.competition, bids[1].id)
    assert "reason" in refused.value.errors
    assert world.competition.award_decided_at is None
    with pytest.raises(BusinessRuleViolation):
        award.decide_award(world.buyer, world.buyer_org, world.competition, bids[2].id, "x")


def test_another_organisation_or_an_evaluator_cannot_decide(ranked):
    world, bids = ranked
    with pytest.raises(NotFound):
        award.decide_award(world.pcc_approver, world.pcc, world.competition, bids[0].id)
    with pytest.raises(NotFound):
        award.decide_award(
            world.provider_admins[0], world.providers[0], world.competition, bids[0].id
        )


def test_confirming_during_the_standstill_is_refused_and_after_it_places_the_call_off(ranked):
    world, bids = ranked
    competition = world.competition
    now = utcnow()
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=now)
    with pytest.raises(BusinessRuleViolation, match="standstill period runs to the end of"):
        award.confirm_award(world.buyer, world.buyer_org, competition, now=now + timedelta(days=1))
    assert db.session.scalar(sa.select(sa.func.count(CallOff.id))) == 0
    after = competition.standstill_ends_at + timedelta(minutes=1)
    award.confirm_award(world.buyer, world.buyer_org, competition, now=after)
    assert competition.status is CompetitionStatus.AWARDED
    call_off = competition.call_off
    assert call_off.award_route is AwardRoute.FURTHER_COMPETITION
    assert call_off.provider_id == world.providers[0].id
    assert call_off.unit_price_pence == bids[0].unit_price_pence
    assert call_off.quantity == competition.quantity
    assert call_off.competition_id == competition.id
    assert call_off.service_title == competition.title
    assert sorted(f.basis_points for f in call_off.funders) == [4_000, 6_000]
    assert world.provider_admins[0].email in _emails("competitions_awarded")
    with pytest.raises(TransitionConflict):
        award.confirm_award(world.buyer, world.buyer_org, competition, now=after)


def test_a_standstill_of_zero_working_days_ends_at_once(ranked):
    world, bids = ranked
    competition = world.competition
    competition.standstill_working_days = 0
    competition.standstill_reason = "Light-touch service"
    now = utcnow()
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=now)
    assert competition.standstill_ends_at == now
    award.confirm_award(world.buyer, world.buyer_org, competition, now=now)
    assert competition.status is CompetitionStatus.AWARDED


def test_a_funder_whose_budget_no_longer_covers_its_share_refuses_the_award(ranked):
    world, bids = ranked
    competition = world.competition
    now = utcnow()
    award.decide_award(world.buyer, world.buyer_org, competition, bids[0].id, now=now)
    db.session.commit()
    for budget in db.session.scalars(
        sa.select(Budget).where(Budget.organisation_id == world.pcc.id)
    ):
        budget.allocated_pence = 100
    db.session.commit()
    with pytest.raises(BusinessRuleViolation) as refused:
        award.confirm_award(
            world.buyer, world.buyer_org, competition, now=competition.standstill_ends_at
        )
    assert "Durham PCC" in refused.value.detail
    db.session.rollback()
    assert competition.status is CompetitionStatus.EVALUATED
    assert competition.call_off_id is None
    assert db.session.scalar(sa.select(sa.func.count(CallOff.id))) == 0


def test_no_award_tells_everyone_invited(app):
    from tests.competitions.factories import build_competition_world

    world = build_competition_world()
    closed_with_bids(world, ())
    competition = world.competition
    assert competition.status is CompetitionStatus.CLOSED and competition.bids_received == 0
    with pytest.raises(BusinessRuleViolation):
        award.close_without_award(world.buyer, world.buyer_org, competition, " ")
    award.close_without_award(world.buyer, world.buyer_org, competition, "No bids were received")
    assert competition.status is CompetitionStatus.NO_AWARD
    assert set(_emails("competitions_no_award")) == {a.email for a in world.provider_admins}
    with pytest.raises(TransitionConflict):
        award.close_without_award(world.buyer, world.buyer_org, competition, "Again")


def test_no_award_is_refused_while_bids_are_open(app):
    from tests.competitions.factories import build_competition_world, publish_directly

    world = build_competition_world()
    publish_directly(world)
    with pytest.raises(TransitionConflict, match="Bids are still open"):
        award.close_without_award(world.buyer, world.buyer_org, world.competition, "Nothing")
    assert world.competition.status is CompetitionStatus.PUBLISHED
