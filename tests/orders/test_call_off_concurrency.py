"""Many buyers and providers at once, on PostgreSQL: the last units of capacity, the last pounds of a
budget and the last headroom under the direct-award limit are never overbooked or overspent, and
every refused request gets a clear error (not a deadlock, a 500 or a duplicate)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace import create_app
from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.catalogue.models import CapacityCommitment, Listing
from marketplace.core.db import commit, db, lock_rows
from marketplace.core.errors import BusinessRuleViolation
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services import responses
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, shares

pytestmark = pytest.mark.postgres_only

CLIENTS = 24


def race(app, work: list[Callable[[], None]]) -> list[str]:
    """Run each piece of work in its own thread and connection, released together; return
    "ok" or the refusal's message for each (any other exception fails the test)."""
    racing_app = create_app(
        {
            **app.config,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": len(work) + 2, "max_overflow": 0},
        }
    )
    barrier = threading.Barrier(len(work))
    outcomes: list[str] = []
    lock = threading.Lock()

    def run(job: Callable[[], None]) -> None:
        with racing_app.app_context():
            try:
                barrier.wait(timeout=30)
                job()
                commit()
                result = "ok"
            except BusinessRuleViolation as refusal:
                db.session.rollback()
                result = f"refused: {refusal.detail}"
            except Exception as error:  # recorded, then asserted below
                db.session.rollback()
                result = f"error: {error!r}"
            finally:
                db.session.remove()
            with lock:
                outcomes.append(result)

    threads = [threading.Thread(target=run, args=(job,)) for job in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with racing_app.app_context():
        db.engine.dispose()
    assert len(outcomes) == len(work), "a client did not finish"
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    return outcomes


def test_the_last_pounds_of_a_co_funders_budget_are_committed_once(app):
    # 24 probation regions each co-fund 50/50 with one PCC whose budget holds 8 shares exactly.
    world = build_orders_world(price_pence=10_000, pcc_allocated_pence=8 * 50_000)
    year = world.budget.financial_year
    buyers: list[tuple[int, int]] = []
    for n in range(CLIENTS):
        region = make_organisation(OrganisationType.PROBATION_REGION, name=f"Region {n}")
        db.session.add(Budget(organisation=region, financial_year=year, allocated_pence=10**7))
        buyers.append((make_member(Role.BUYER, region).id, region.id))
    commit()
    listing_id, pcc_id, start = world.listing.id, world.pcc.id, world.start

    def place(user_id: int, region_id: int) -> Callable[[], None]:
        def job() -> None:
            actor = db.session.get(User, user_id)
            region = db.session.get(Organisation, region_id)
            pcc = db.session.get(Organisation, pcc_id)
            request = details(world, quantity=10, start_date=start, end_date=start)
            request.shares = shares((region, 5_000), (pcc, 5_000))
            order_placing.place_call_off(actor, region, listing_id, request)

        return job

    outcomes = race(app, [place(user, region) for user, region in buyers])

    assert outcomes.count("ok") == 8, outcomes
    refused = [o for o in outcomes if o != "ok"]
    assert all("Durham PCC has £0.00 left" in o for o in refused), refused
    db.session.expire_all()
    pcc_budget = db.session.get(Budget, world.pcc_budget.id)
    assert pcc_budget.committed_pence == pcc_budget.allocated_pence == 400_000
    placed = db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))
    assert placed == 8
    # Every region's budget moved only if its call-off was placed.
    committed = db.session.scalars(
        sa.select(Budget.committed_pence).where(Budget.organisation_id.in_([r for _, r in buyers]))
    ).all()
    assert sorted(committed) == [0] * 16 + [50_000] * 8


def test_one_buyers_parallel_call_offs_never_pass_the_direct_award_limit(app):
    # £1,000 call-offs for the same service under a £5,000 limit: five fit, whoever asks.
    world = build_orders_world(price_pence=10_000, limit_pence=500_000)
    users = [make_member(Role.BUYER, world.region).id for _ in range(CLIENTS)]
    commit()
    listing_id, region_id = world.listing.id, world.region.id

    def place(user_id: int) -> Callable[[], None]:
        def job() -> None:
            actor = db.session.get(User, user_id)
            region = db.session.get(Organisation, region_id)
            order_placing.place_call_off(actor, region, listing_id, details(world, quantity=10))

        return job

    outcomes = race(app, [place(user) for user in users])

    assert outcomes.count("ok") == 5, outcomes
    assert all("further competition" in o for o in outcomes if o != "ok")
    db.session.expire_all()
    total = db.session.scalar(sa.select(sa.func.sum(CallOff.gross_pence)))
    assert total == 500_000
    assert db.session.get(Budget, world.budget.id).committed_pence == 500_000


def test_the_last_units_of_capacity_are_accepted_once(app):
    # 24 call-offs of 5 units in one month; the listing has room for 7 of them.
    world = build_orders_world(price_pence=1_000, monthly_capacity=35)
    start = world.start.replace(day=1) + timedelta(days=32)
    start = start.replace(day=1)
    call_off_ids = [
        order_placing.place_call_off(
            world.buyer,
            world.region,
            world.listing.id,
            details(world, quantity=5, start_date=start, end_date=start + timedelta(days=20)),
        ).id
        for _ in range(CLIENTS)
    ]
    assert {db.session.get(CallOff, pk).status for pk in call_off_ids} == {CallOffStatus.SENT}
    commit()
    provider_admin_id = world.provider_admin.id

    def accept(call_off_id: int) -> Callable[[], None]:
        def job() -> None:
            actor = db.session.get(User, provider_admin_id)
            responses.accept(actor, db.session.get(CallOff, call_off_id))

        return job

    outcomes = race(app, [accept(pk) for pk in call_off_ids])

    assert outcomes.count("ok") == 7, outcomes
    assert all("monthly capacity of 35" in o for o in outcomes if o != "ok")
    db.session.expire_all()
    taken = db.session.scalar(
        sa.select(sa.func.sum(CapacityCommitment.units)).where(
            CapacityCommitment.listing_id == world.listing.id
        )
    )
    assert taken == 35
    accepted = db.session.scalar(
        sa.select(sa.func.count())
        .select_from(CallOff)
        .where(CallOff.status == CallOffStatus.ACCEPTED)
    )
    assert accepted == 7


def test_a_call_off_is_placed_while_the_listing_is_locked_for_an_acceptance(app):
    # accept() locks the listing's row to count its capacity; placing another call-off for the
    # listing only checks that the row exists (its foreign key), which that lock must not block.
    world = build_orders_world(price_pence=1_000)
    commit()
    listing_id = world.listing.id
    holder_app = create_app(dict(app.config))
    locked, release = threading.Event(), threading.Event()
    failures: list[BaseException] = []

    def hold_the_lock() -> None:
        with holder_app.app_context():
            try:
                lock_rows(Listing, [listing_id])
                locked.set()
                release.wait(timeout=60)
            except BaseException as error:  # reported by the test below
                failures.append(error)
                locked.set()
            finally:
                db.session.rollback()
                db.session.remove()
                db.engine.dispose()

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert locked.wait(timeout=60) and not failures, failures
        # Waiting on the lock would fail after 5 s instead of passing late.
        db.session.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
        placed = order_placing.place_call_off(
            world.buyer, world.region, listing_id, details(world, quantity=5)
        )
        commit()
    finally:
        release.set()
        holder.join(timeout=60)
    assert db.session.get(CallOff, placed.id).status == CallOffStatus.SENT


def test_the_same_idempotency_key_sent_at_once_places_one_call_off(app):
    from marketplace.accounts.services.tokens import create_api_token

    world = build_orders_world(price_pence=1_000)
    _, secret = create_api_token(world.buyer, world.region, "race")
    commit()
    body = {
        "listing_id": world.listing.id,
        "quantity": 2,
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "X111111",
        "pdu": "Durham",
        "po_number": "PO-RACE",
        "choice_reason": "continuity",
    }
    headers = {"Authorization": f"Bearer {secret}", "Idempotency-Key": "one-order"}
    racing_app = create_app(
        {**app.config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CLIENTS + 2, "max_overflow": 0}}
    )
    barrier = threading.Barrier(CLIENTS)
    answers: list[tuple[int, int | None]] = []
    lock = threading.Lock()

    def send() -> None:
        client = racing_app.test_client()
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/orders", json=body, headers=headers)
            result = (response.status_code, (response.json or {}).get("id"))
        except Exception as error:  # recorded, then asserted below
            result = (0, repr(error))
        with lock:
            answers.append(result)

    threads = [threading.Thread(target=send) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    with racing_app.app_context():
        db.engine.dispose()

    assert len(answers) == CLIENTS
    assert {status for status, _ in answers} <= {200, 201}, answers
    assert [status for status, _ in answers].count(201) == 1, answers
    assert len({pk for _, pk in answers}) == 1
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CallOff)) == 1
    assert db.session.get(Budget, world.budget.id).committed_pence == 2_000
