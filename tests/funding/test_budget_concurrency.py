"""Changes of one budget at the same moment: none is lost, and none takes the budget below what
open call-offs commit and delivery has spent, whatever commits against it meanwhile.

Two clients run on every backend (SQLite too); more run on PostgreSQL, as real parallel clients
with connections of their own (tests/racing.py: each reads first, then all act together).
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.core import clock
from marketplace.core.db import commit, db
from marketplace.funding import services
from marketplace.funding.models import BudgetChange
from marketplace.orders.models import Budget, CallOff
from marketplace.orders.services import placing as order_placing
from tests.factories import make_member
from tests.orders.factories import build_orders_world, details
from tests.racing import OK, race

CLIENTS = 10
several = pytest.mark.parametrize(
    "clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)]
)


def history(budget_id: int) -> list[tuple[int | None, int]]:
    return [
        (c.old_allocated_pence, c.new_allocated_pence)
        for c in db.session.scalars(
            sa.select(BudgetChange)
            .where(BudgetChange.budget_id == budget_id)
            .order_by(BudgetChange.id)
        )
    ]


def changing(user_id: int, budget_id: int, allocated: int, expected: int | None = None):
    """A client that reads the person and the budget, as the change page does, then changes
    the budget to ``allocated``."""

    def client():
        actor = db.session.get(User, user_id)
        budget = db.session.get(Budget, budget_id)
        budget.allocated_pence  # noqa: B018 - read before the others act
        return lambda: services.change_budget(
            actor, budget, allocated, f"To {allocated}", expected_allocated_pence=expected
        )

    return client


def approvers(world, n: int) -> list[int]:
    return [world.approver.id] + [make_member(Role.APPROVER, world.region).id for _ in range(n - 1)]


@several
def test_changes_from_the_same_reading_change_it_once(app, clients):
    world = build_orders_world(allocated_pence=1_000_000)
    people = approvers(world, clients)
    commit()
    targets = [1_000_000 + 1_000 * (i + 1) for i in range(clients)]

    outcomes = race(
        app,
        [
            changing(person, world.budget.id, target, expected=1_000_000)
            for person, target in zip(people, targets, strict=True)
        ],
    )

    assert outcomes.count(OK) == 1, outcomes
    assert all("Someone else changed this budget" in o for o in outcomes if o != OK), outcomes
    db.session.expire_all()
    [(old, new)] = history(world.budget.id)
    assert old == 1_000_000 and new in targets
    assert db.session.get(Budget, world.budget.id).allocated_pence == new


@several
def test_changes_at_once_each_start_from_the_one_before(app, clients):
    # Without the reading to compare with, each change still starts from the allocation the
    # one before it left: the history is a chain, and none of the changes is lost from it.
    world = build_orders_world(allocated_pence=1_000_000)
    people = approvers(world, clients)
    commit()
    targets = [2_000_000 + 1_000 * i for i in range(clients)]

    outcomes = race(
        app,
        [
            changing(person, world.budget.id, target)
            for person, target in zip(people, targets, strict=True)
        ],
    )

    assert outcomes == [OK] * clients
    db.session.expire_all()
    chain = history(world.budget.id)
    assert len(chain) == clients and chain[0][0] == 1_000_000
    assert all(chain[i][1] == chain[i + 1][0] for i in range(clients - 1)), chain
    assert sorted(new for _, new in chain) == targets
    assert db.session.get(Budget, world.budget.id).allocated_pence == chain[-1][1]


def placing(user_id: int, organisation_id: int, world_listing_id: int, call_off_details):
    def client():
        actor = db.session.get(User, user_id)
        organisation = db.session.get(Organisation, organisation_id)
        return lambda: order_placing.place_call_off(
            actor, organisation, world_listing_id, call_off_details
        )

    return client


def test_a_lowering_and_a_placement_at_once_never_go_below_committed(app):
    # £1,500 allocated; a call-off of £1,000 and a lowering to £600 race: one of them wins, the
    # other is refused, and the budget never holds less than it commits.
    world = build_orders_world(allocated_pence=150_000)
    commit()

    outcomes = race(
        app,
        [
            changing(world.approver.id, world.budget.id, 60_000),
            placing(world.buyer.id, world.region.id, world.listing.id, details(world)),
        ],
    )

    assert outcomes.count(OK) == 1, outcomes
    db.session.expire_all()
    budget = db.session.get(Budget, world.budget.id)
    assert budget.allocated_pence >= budget.committed_pence + budget.spent_pence
    placed = db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))
    if placed:
        assert (budget.allocated_pence, budget.committed_pence) == (150_000, 100_000)
        assert history(budget.id) == []
        [refusal] = [o for o in outcomes if o != OK]
        assert "cannot be less than £1,000.00" in refusal
    else:
        assert (budget.allocated_pence, budget.committed_pence) == (60_000, 0)
        assert history(budget.id) == [(150_000, 60_000)]


@several
def test_two_lowerings_that_together_pass_the_floor(app, clients):
    # Committed £800; each client lowers to a figure above it, from the same reading: one wins.
    world = build_orders_world(allocated_pence=200_000)
    order_placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=8)
    )
    people = approvers(world, clients)
    commit()
    outcomes = race(
        app,
        [
            changing(person, world.budget.id, 80_000 + i * 100, expected=200_000)
            for i, person in enumerate(people)
        ],
    )
    one_wins_any(outcomes)
    db.session.expire_all()
    budget = db.session.get(Budget, world.budget.id)
    assert budget.committed_pence == 80_000 and budget.allocated_pence >= 80_000
    assert len(history(budget.id)) == 1


def one_wins_any(outcomes: list[str]) -> None:
    assert outcomes.count(OK) == 1, outcomes
    assert all(o.startswith("409: ") for o in outcomes if o != OK), outcomes


def test_lowering_an_authorisation_while_a_call_off_uses_it_never_goes_below_used(app):
    # £1,000 a year, up to £600 a call-off; a call-off whose PCC share is £500 is placed while
    # the total is lowered to £400: the share is taken first and the lowering refused, or the
    # lowering comes first and the share waits for the PCC to confirm it.
    from marketplace.orders.models import FundingAuthorisation
    from tests.orders.factories import shares

    world = build_orders_world()
    given = services.create_authorisation(
        world.pcc_approver,
        world.pcc,
        services.NewAuthorisation(
            world.region.id, clock.financial_year(world.start), 60_000, 100_000
        ),
    )
    commit()
    # Keys read here: the world's objects belong to this thread's session, not the clients'.
    approver_id, authorisation_id = world.pcc_approver.id, given.id

    def lowering():
        actor = db.session.get(User, approver_id)
        authorisation = db.session.get(FundingAuthorisation, authorisation_id)
        authorisation.used_pence  # noqa: B018 - read before the others act
        return lambda: services.change_authorisation(actor, authorisation, 40_000, 40_000, "Cut")

    co_funded = details(world, shares=shares((world.region, 5_000), (world.pcc, 5_000)))
    outcomes = race(
        app,
        [lowering, placing(world.buyer.id, world.region.id, world.listing.id, co_funded)],
    )

    db.session.expire_all()
    authorisation = db.session.get(FundingAuthorisation, authorisation_id)
    assert authorisation.used_pence <= authorisation.annual_limit_pence
    [call_off] = db.session.scalars(sa.select(CallOff)).all()  # placing is never refused here
    share = next(f for f in call_off.funders if f.organisation_id == world.pcc.id)
    if authorisation.annual_limit_pence == 40_000:
        assert outcomes == [OK, OK] and not share.preauthorised and authorisation.used_pence == 0
    else:
        assert share.preauthorised and authorisation.used_pence == 50_000
        assert sorted(outcomes)[0].startswith("422: The total for the year cannot be less")
