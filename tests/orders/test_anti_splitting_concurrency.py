"""Anti-splitting under concurrency, on PostgreSQL (issue 18): placements across several listings
of one provider in one lot are checked one after another under the lock on the buyer's total
for that provider and lot, so that together they never pass the direct-award limit."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.core.db import commit, db
from marketplace.orders.models import CallOff
from marketplace.orders.services import placing
from tests.catalogue.factories import make_listing
from tests.factories import make_member
from tests.orders.factories import build_orders_world, details
from tests.orders.test_call_off_concurrency import race

pytestmark = pytest.mark.postgres_only


def _listings(world, n: int) -> list[int]:
    """The world's listing and ``n - 1`` more of the same provider in the same lot."""
    others = [
        make_listing(
            world.listing.lot,
            world.provider,
            title=f"Service {i}",
            price_pence=10_000,
            price_from=date.today() - timedelta(days=30),
            max_units=500,
        )
        for i in range(1, n)
    ]
    return [world.listing.id, *(listing.id for listing in others)]


def _placing(world, user_id: int, region_id: int, listing_id: int, quantity: int):
    def job() -> None:
        actor = db.session.get(User, user_id)
        region = db.session.get(Organisation, region_id)
        placing.place_call_off(actor, region, listing_id, details(world, quantity=quantity))

    return job


def test_two_placements_across_two_listings_cannot_both_pass_the_limit(app):
    # £30,000 each under a £50,000 limit: either fits alone, not both together.
    world = build_orders_world(
        price_pence=10_000, limit_pence=5_000_000, allocated_pence=50_000_000
    )
    listing_ids = _listings(world, 2)
    users = [make_member(Role.BUYER, world.region).id for _ in listing_ids]
    commit()

    outcomes = race(
        app,
        [
            _placing(world, user, world.region.id, listing, 300)
            for user, listing in zip(users, listing_ids, strict=True)
        ],
    )

    assert sorted(o == "ok" for o in outcomes) == [False, True], outcomes
    [refused] = [o for o in outcomes if o != "ok"]
    assert "with Harbour Housing in the Accommodation lot" in refused
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.sum(CallOff.gross_pence))) == 3_000_000


def test_many_placements_across_a_providers_listings_stop_exactly_at_the_limit(app):
    # 24 buyers of one organisation, £1,000 each across four listings of one provider in one
    # lot, under a £5,000 limit: five fit, whoever asks and whichever listing they buy.
    world = build_orders_world(price_pence=10_000, limit_pence=500_000)
    listing_ids = _listings(world, 4)
    users = [make_member(Role.BUYER, world.region).id for _ in range(24)]
    commit()

    outcomes = race(
        app,
        [
            _placing(world, user, world.region.id, listing_ids[n % len(listing_ids)], 10)
            for n, user in enumerate(users)
        ],
    )

    assert outcomes.count("ok") == 5, outcomes
    assert all("further competition" in o for o in outcomes if o != "ok")
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.sum(CallOff.gross_pence))) == 500_000
