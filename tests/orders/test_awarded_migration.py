"""The revision that lets a call-off be awarded by further competition keeps every existing
call-off and gives each its listing's title (SQLite edits the table in place, PostgreSQL alters
it: neither loses the rows that refer to call-offs); going back removes only the call-offs the
older schema cannot hold."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from marketplace.core.db import db
from marketplace.orders.models import CallOff, CallOffFunder
from marketplace.orders.services import placing
from marketplace.orders.services.awarded import place_awarded_call_off
from tests.orders.awarded_factories import award, next_year_budgets
from tests.orders.factories import build_orders_world, details, shares
from tests.test_migrations import fresh_database_url, migrations_app  # noqa: F401

REVISION, BEFORE = "e3a91f0c7d42", "c52ade5bfeee"


def rows(sql: str) -> list:
    with db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(sa.text(sql))]


def test_existing_call_offs_get_their_listings_titles_and_keep_their_funders(migrations_app):  # noqa: F811
    upgrade()
    world = build_orders_world()
    next_year_budgets(world)
    direct = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    awarded = place_awarded_call_off(
        world.buyer, world.region, award(world, shares=shares((world.region, 10_000)))
    )
    direct_id, awarded_id = direct.id, awarded.id
    db.session.commit()
    db.session.remove()

    downgrade(revision=BEFORE)
    # The award cannot be held without a listing; the direct award and its funder stay.
    assert rows("SELECT id FROM call_offs") == [(direct_id,)]
    assert rows("SELECT call_off_id FROM call_off_funders") == [(direct_id,)]
    # The older schema names the service only through the listing.
    db.session.execute(sa.text("UPDATE listings SET title = 'Supported housing (renamed)'"))
    db.session.commit()

    upgrade(revision=REVISION)
    assert rows("SELECT id, service_title, missed_sessions_chargeable FROM call_offs") == [
        (direct_id, "Supported housing (renamed)", False)
    ]
    assert rows("SELECT call_off_id FROM call_off_funders") == [(direct_id,)]
    call_off = db.session.get(CallOff, direct_id)
    assert call_off.service_title == "Supported housing (renamed)"
    assert [f.call_off_id for f in db.session.scalars(sa.select(CallOffFunder))] == [direct_id]
    assert awarded_id not in {c.id for c in db.session.scalars(sa.select(CallOff))}
    db.session.remove()
