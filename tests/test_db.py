"""The store's bulk insert: the same rows as SQLAlchemy's own insert, on both databases; keys
taken before their rows; pinging idle connections; precompiled reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from marketplace.catalogue.models import ListingStatus
from marketplace.core import db as db_module
from marketplace.core import store
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.store import insert_many
from marketplace.orders.models import CallOff
from marketplace.orders.services import placing
from tests.orders.factories import build_orders_world, details

WHEN = datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)


def test_insert_many_converts_each_column_as_the_orm_would(app):
    # The same instant given in two zones, an enum, JSON documents and None in one batch.
    paris = WHEN.astimezone(timezone(timedelta(hours=1)))
    rows = [
        {
            "occurred_at": when,
            "actor_id": None,
            "organisation_id": None,
            "action": f"bulk.test.{n}",
            "object_type": "listing",
            "object_id": str(n),
            "before": None if n % 2 else {"status": ListingStatus.DRAFT.value},
            "after": {"status": ListingStatus.PUBLISHED.value, "n": n},
            "request_id": None,
            "ip_address": None,
        }
        for n, when in enumerate([WHEN, paris, WHEN + timedelta(days=1)])
    ]
    with app.app_context():
        insert_many(db.session.connection(), AuditEvent.__table__, rows)
        stored = db.session.scalars(
            sa.select(AuditEvent)
            .where(AuditEvent.action.like("bulk.test.%"))
            .order_by(AuditEvent.object_id)
        ).all()
        assert [event.occurred_at for event in stored] == [WHEN, WHEN, WHEN + timedelta(days=1)]
        assert all(event.occurred_at.tzinfo is not None for event in stored)
        assert [event.before for event in stored] == [
            {"status": "draft"},
            None,
            {"status": "draft"},
        ]
        assert [event.after["n"] for event in stored] == [0, 1, 2]
        db.session.rollback()


def test_insert_rows_returns_each_new_rows_key_in_the_order_of_the_rows(app):
    # Child rows are written with these keys (an invoice's lines), so the order must hold.
    def event(n: int) -> dict:
        return {
            "occurred_at": WHEN,
            "actor_id": None,
            "organisation_id": None,
            "action": "keyed.test",
            "object_type": "listing",
            "object_id": str(n),
            "before": None,
            "after": {"n": n},
            "request_id": None,
            "ip_address": None,
        }

    with app.app_context():
        keys = store.insert_rows(AuditEvent, [event(n) for n in range(5)], keys=True)
        assert keys is not None and len(set(keys)) == 5
        written = dict(
            db.session.execute(
                sa.select(AuditEvent.id, AuditEvent.object_id).where(
                    AuditEvent.action == "keyed.test"
                )
            ).all()
        )
        assert [written[key] for key in keys] == ["0", "1", "2", "3", "4"]
        assert store.insert_rows(AuditEvent, [], keys=True) == []
        assert store.insert_rows(AuditEvent, [event(9)]) is None
        db.session.rollback()


def test_insert_many_refuses_to_leave_out_a_column_with_a_python_default(app):
    with app.app_context():
        with pytest.raises(ValueError, match="occurred_at"):
            insert_many(
                db.session.connection(),
                AuditEvent.__table__,
                [{"action": "bulk.test", "object_type": "listing"}],
            )
        db.session.rollback()


def test_insert_many_refuses_a_naive_timestamp(app):
    with app.app_context():
        with pytest.raises(ValueError, match="naive"):
            insert_many(
                db.session.connection(),
                AuditEvent.__table__,
                [{"occurred_at": datetime(2026, 11, 2), "action": "a", "object_type": "b"}],
            )
        db.session.rollback()


# ---------------------------------------------------------------------------------------------
# next_id: a new row's key before it is written


def test_next_id_is_the_key_the_row_is_written_with_and_never_given_twice(app):
    world = build_orders_world()
    first = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    db.session.flush()
    taken = store.next_id(CallOff)
    assert taken > first.id
    # Another taken before the first is used is another key.
    second = store.next_id(CallOff)
    placed = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, po_number="PO-2")
    )
    db.session.flush()
    assert len({first.id, taken, placed.id}) == 3 and placed.id > taken
    assert placed.reference.endswith(f"-{placed.id:06d}")
    stored = db.session.scalar(sa.select(CallOff.reference).where(CallOff.id == placed.id))
    assert stored == placed.reference
    assert second != taken


# ---------------------------------------------------------------------------------------------
# Pinging connections left idle in the pool


def _engine_pinging_after(app, idle_seconds: float, monkeypatch) -> tuple[sa.Engine, list]:
    with app.app_context():
        url = db.engine.url
    engine = sa.create_engine(url, pool_size=1, max_overflow=0)
    db_module.ping_idle_connections(engine, idle_seconds)
    pings = []
    real_ping = engine.dialect.do_ping

    def counted_ping(dbapi_connection):
        pings.append(dbapi_connection)
        return real_ping(dbapi_connection)

    monkeypatch.setattr(engine.dialect, "do_ping", counted_ping)
    return engine, pings


def _backend_pid(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.text("SELECT pg_backend_pid()"))


def _terminate(app, pid: int) -> None:
    with app.app_context(), db.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.postgres_only
def test_a_connection_used_within_the_idle_time_is_handed_out_without_a_ping(app, monkeypatch):
    engine, pings = _engine_pinging_after(app, 3600, monkeypatch)
    try:
        first = _backend_pid(engine)  # a new connection: nothing to ping
        assert _backend_pid(engine) == first  # back from the pool a moment later
        assert pings == []
    finally:
        engine.dispose()


@pytest.mark.postgres_only
def test_a_connection_idle_too_long_is_pinged_and_replaced_with_the_pool_if_dead(app, monkeypatch):
    engine, pings = _engine_pinging_after(app, 0, monkeypatch)
    try:
        first = _backend_pid(engine)
        assert pings == []  # new: nothing to check
        # The server drops it (a restart, an idle timeout) while it is in the pool.
        _terminate(app, first)
        replaced = _backend_pid(engine)
        assert len(pings) == 1 and replaced != first
        # A live connection idle too long is pinged and kept.
        assert _backend_pid(engine) == replaced
        assert len(pings) == 2
    finally:
        engine.dispose()


@pytest.mark.postgres_only
def test_the_apps_engine_pings_idle_connections_instead_of_every_one(app):
    with app.app_context():
        assert app.config["DATABASE_PING_AFTER_IDLE_SECONDS"] == 1.0
        assert db.engine.pool.dispatch.checkout  # ping_idle_connections' listener
        assert not db.engine.pool._pre_ping


def test_a_precompiled_read_answers_as_the_same_statement_run_by_sqlalchemy(app, count_queries):
    """Constants converted once (enums, dates), named parameters converted on each call, on
    the session's connection: the same row as ``session.execute`` for other values each time."""
    world = build_orders_world()
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    db.session.flush()
    statement = sa.select(
        sa.func.count(CallOff.id).filter(
            CallOff.status == call_off.status,  # an enum constant
            CallOff.start_date >= sa.bindparam("from_day"),  # a date each call gives
        ),
        sa.func.count(CallOff.id).filter(CallOff.crn == "X123456"),
    ).where(CallOff.lead_buyer_id == sa.bindparam("buyer_id"))
    read = store.PrecompiledRead(statement)
    cases = [
        {"buyer_id": world.region.id, "from_day": call_off.start_date},
        {"buyer_id": world.region.id, "from_day": call_off.start_date + timedelta(days=1)},
        {"buyer_id": world.provider.id, "from_day": call_off.start_date},
    ]
    expected = [tuple(db.session.execute(statement, case).one()) for case in cases]
    assert expected == [(1, 1), (0, 1), (0, 0)]
    with count_queries() as counter:
        answers = [tuple(read.one(db.session.connection(), **case)) for case in cases]
    assert answers == expected and counter.count == 3
    # On the session's connection, in its transaction: what it has flushed is seen.
    call_off.crn = "Y654321"
    db.session.flush()
    assert tuple(read.one(db.session.connection(), **cases[0])) == (1, 0)


def test_a_precompiled_read_refuses_a_list_and_a_missing_parameter(app):
    listed = store.PrecompiledRead(
        sa.select(sa.func.count(CallOff.id)).where(CallOff.status.in_(["sent", "accepted"]))
    )
    with pytest.raises(ValueError, match="list parameter"):
        listed.one(db.session.connection())
    named = store.PrecompiledRead(
        sa.select(sa.func.count(CallOff.id)).where(CallOff.id == sa.bindparam("call_off_id"))
    )
    with pytest.raises(KeyError):
        named.one(db.session.connection())
    assert tuple(named.one(db.session.connection(), call_off_id=1)) == (0,)
