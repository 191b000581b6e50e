"""Confirming the award happens once however many buyers press it at the same moment: one
award, one call-off. Two clients on every backend; twenty on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.competitions.models import Competition, CompetitionStatus
from marketplace.competitions.services import award
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.orders.models import CallOff
from tests.competitions.evaluation_helpers import closed_with_bids, evaluated
from tests.competitions.factories import build_competition_world
from tests.factories import make_member
from tests.orders.test_transition_concurrency import CLIENTS, audited
from tests.racing import one_wins, race


def confirming(user_id: int, organisation_id: int, competition_id: int):
    def client():
        actor = db.session.get(User, user_id)
        organisation = db.session.get(Organisation, organisation_id)
        competition = db.session.get(Competition, competition_id)
        list(competition.funders)
        return lambda: award.confirm_award(actor, organisation, competition)

    return client


@pytest.mark.parametrize("clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)])
def test_awarding_at_once_awards_once_with_one_call_off(app, clients):
    world = build_competition_world()
    competition = world.competition
    competition.standstill_working_days = 0
    competition.standstill_reason = "Light-touch service: no standstill"
    bids = closed_with_bids(world)
    evaluated(world, bids)
    top = next(b for b in bids if b.rank == 1)
    award.decide_award(world.buyer, world.buyer_org, competition, top.id, now=utcnow())
    buyers = [world.buyer.id] + [
        make_member(Role.BUYER, world.buyer_org).id for _ in range(clients - 1)
    ]
    commit()

    outcomes = race(app, [confirming(b, world.buyer_org.id, competition.id) for b in buyers])

    one_wins(outcomes, "409: This competition has already been awarded")
    db.session.expire_all()
    assert db.session.get(Competition, competition.id).status is CompetitionStatus.AWARDED
    assert db.session.scalar(sa.select(sa.func.count(CallOff.id))) == 1
    assert audited("competition.awarded") == 1


def closing(competition_id: int):
    from marketplace.competitions.services import evaluation

    def client():
        competition = db.session.get(Competition, competition_id)
        return lambda: evaluation.close_if_due(competition)

    return client


@pytest.mark.parametrize("clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)])
def test_pages_opened_at_once_after_the_deadline_close_the_competition_once(app, clients):
    from datetime import timedelta

    from marketplace.core.notifications.models import Notification
    from tests.competitions.factories import add_bid, publish_directly

    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now - timedelta(days=20), bid_deadline=now - timedelta(hours=1))
    add_bid(world, world.providers[0], submitted_at=now - timedelta(days=1))
    commit()

    outcomes = race(app, [closing(world.competition.id) for _ in range(clients)])

    assert set(outcomes) == {"ok"}, outcomes
    db.session.expire_all()
    assert db.session.get(Competition, world.competition.id).status is CompetitionStatus.CLOSED
    assert audited("competition.closed") == 1
    closed_emails = sa.select(sa.func.count(Notification.id)).where(
        Notification.template == "competitions_closed"
    )
    assert db.session.scalar(closed_emails) == 4  # the buyer, the approver, two evaluators


def deciding(user_id: int, organisation_id: int, competition_id: int, bid_id: int):
    def client():
        actor = db.session.get(User, user_id)
        organisation = db.session.get(Organisation, organisation_id)
        competition = db.session.get(Competition, competition_id)
        return lambda: award.decide_award(actor, organisation, competition, bid_id)

    return client


@pytest.mark.parametrize("clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)])
def test_deciding_at_once_decides_once_with_one_summary_per_bidder(app, clients):
    from marketplace.competitions.models import AssessmentSummary

    world = build_competition_world()
    competition = world.competition
    bids = closed_with_bids(world)
    evaluated(world, bids)
    top = next(b for b in bids if b.rank == 1)
    buyers = [world.buyer.id] + [
        make_member(Role.BUYER, world.buyer_org).id for _ in range(clients - 1)
    ]
    commit()

    outcomes = race(app, [deciding(b, world.buyer_org.id, competition.id, top.id) for b in buyers])

    assert sum(outcome == "ok" for outcome in outcomes) == 1, outcomes
    assert all(outcome == "ok" or outcome.startswith(("409", "422")) for outcome in outcomes)
    assert db.session.scalar(sa.select(sa.func.count(AssessmentSummary.id))) == len(bids)
    assert audited("competition.award_decided") == 1


def cancelling(user_id: int, competition_id: int):
    from marketplace.competitions.services.cancelling import cancel

    def client():
        actor = db.session.get(User, user_id)
        competition = db.session.get(Competition, competition_id)
        return lambda: cancel(actor, competition, "The need has gone")

    return client


@pytest.mark.parametrize("clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)])
def test_cancelling_at_once_cancels_once(app, clients):
    from tests.competitions.factories import publish_directly

    world = build_competition_world()
    competition = publish_directly(world)
    buyers = [world.buyer.id] + [
        make_member(Role.BUYER, world.buyer_org).id for _ in range(clients - 1)
    ]
    commit()

    outcomes = race(app, [cancelling(b, competition.id) for b in buyers])

    one_wins(outcomes, "409: This competition has already been cancelled")
    db.session.expire_all()
    assert db.session.get(Competition, competition.id).status is CompetitionStatus.CANCELLED
    assert audited("competition.cancelled") == 1
