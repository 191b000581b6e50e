"""A co-funder's decline, and the lead buyer's re-split or cancellation after it, happen once
however many clients ask at the same moment: two declines, a decline and a confirmation, a
re-split and a cancellation. Two clients on every backend; twenty on PostgreSQL."""

from __future__ import annotations

import pytest

from marketplace.accounts.models import Organisation, Role
from marketplace.core.db import commit, db
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import funding, placing, responses
from marketplace.orders.services.details import FundingShare
from tests.factories import make_member
from tests.orders.factories import build_orders_world, details, shares
from tests.orders.test_transition_concurrency import CLIENTS, acting, audited, emailed
from tests.racing import OK, one_wins, race

several = pytest.mark.parametrize(
    "clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)]
)


def co_funded(world) -> CallOff:
    """£1,000: the region 60%, the PCC 40%, waiting for the PCC."""
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 6_000), (world.pcc, 4_000))),
    )
    commit()
    return call_off


def pcc_approvers(world, clients: int) -> list[int]:
    return [world.pcc_approver.id] + [
        make_member(Role.APPROVER, world.pcc).id for _ in range(clients - 1)
    ]


def declining(user_id: int, call_off_id: int, pcc_id: int):
    return acting(
        user_id,
        call_off_id,
        lambda actor, c: funding.decline_funding(
            actor, c, db.session.get(Organisation, pcc_id), "Spent elsewhere"
        ),
    )


def confirming(user_id: int, call_off_id: int, pcc_id: int):
    return acting(
        user_id,
        call_off_id,
        lambda actor, c: funding.confirm_funding(actor, c, db.session.get(Organisation, pcc_id)),
    )


def committed(budget_id: int) -> int:
    return db.session.get(Budget, budget_id).committed_pence


@several
def test_declines_at_once_decline_once_and_release_the_share_once(app, clients):
    world = build_orders_world(price_pence=10_000)
    call_off = co_funded(world)
    approvers = pcc_approvers(world, clients)
    pcc_id = world.pcc.id
    commit()

    outcomes = race(app, [declining(a, call_off.id, pcc_id) for a in approvers])

    one_wins(outcomes, "409: Your organisation has already declined its share")
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.FUNDING_DECLINED
    assert committed(world.pcc_budget.id) == 0  # released once: never below nothing
    assert committed(world.budget.id) == 60_000
    assert audited("call_off.funding_declined") == 1
    assert emailed("orders_funding_declined") == 2  # the placer and the approver, once each


@several
def test_a_decline_and_a_confirmation_at_once_answer_the_share_once(app, clients):
    world = build_orders_world(price_pence=10_000)
    call_off = co_funded(world)
    approvers = pcc_approvers(world, clients)
    pcc_id = world.pcc.id
    commit()

    racers = [declining(approvers[0], call_off.id, pcc_id)] + [
        confirming(a, call_off.id, pcc_id) for a in approvers[1:]
    ]
    outcomes = race(app, racers)

    assert outcomes.count(OK) == 1, outcomes
    db.session.expire_all()
    answered = db.session.get(CallOff, call_off.id)
    declines, confirmations = (
        audited("call_off.funding_declined"),
        audited("call_off.funding_confirmed"),
    )
    assert declines + confirmations == 1
    refusals = set(outcomes) - {OK}
    if declines:
        assert answered.status == CallOffStatus.FUNDING_DECLINED
        assert committed(world.pcc_budget.id) == 0
        assert refusals == {"409: Your organisation has already declined its share"}
    else:
        assert answered.status == CallOffStatus.SENT
        assert committed(world.pcc_budget.id) == 40_000
        assert refusals == {"409: Your organisation has already confirmed its share"}


@several
def test_a_re_split_and_a_cancellation_at_once_leave_the_budgets_right(app, clients):
    """Cancelling first refuses the re-split (409); re-splitting first, the cancellation then
    cancels the re-split call-off: either way it ends cancelled with nothing committed, and
    each is done at most once."""
    world = build_orders_world(price_pence=10_000)
    call_off = co_funded(world)
    funding.decline_funding(world.pcc_approver, call_off, world.pcc, "Spent elsewhere")
    commit()
    region_id = world.region.id

    def resplitting(actor, c):
        funding.resplit_funding(actor, c, [FundingShare(region_id, 10_000)])

    def cancelling(actor, c):
        responses.cancel(actor, c, "other", "The co-funder could not pay")

    racers = [acting(world.buyer.id, call_off.id, cancelling)] + [
        acting(world.approver.id, call_off.id, resplitting) for _ in range(clients - 1)
    ]
    outcomes = race(app, racers)

    db.session.expire_all()
    ended = db.session.get(CallOff, call_off.id)
    assert ended.status == CallOffStatus.CANCELLED
    assert audited("call_off.cancelled") == 1
    resplits = audited("call_off.funding_resplit")
    assert resplits in (0, 1)
    assert outcomes.count(OK) == 1 + resplits, outcomes
    refusals = set(outcomes) - {OK}
    assert refusals <= {
        "409: This call-off is cancelled, so its shares cannot be changed",
        "409: No co-funder has declined its share of this call-off, so its shares cannot be "
        "changed",
    }, outcomes
    assert committed(world.budget.id) == 0 and committed(world.pcc_budget.id) == 0
