"""The bulk insert helper and write_new: the same rows as SQLAlchemy's own insert, on both
databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from marketplace.catalogue.models import ListingStatus
from marketplace.core import db as db_module
from marketplace.core.audit import AuditEvent
from marketplace.core.cache import CacheGeneration
from marketplace.core.cache.declarations import watches_by_model
from marketplace.core.db import DirectlyWritten, db, insert_many, write_new
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.orders import services
from marketplace.orders.models import CallOff, CallOffFunder
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
# write_new: the session's new rows with plain INSERTs


def _flushes():
    """A counter of the session's ordinary flushes."""
    seen = []
    sa.event.listen(db.session(), "after_flush", lambda *args: seen.append(1))
    return seen


def test_write_new_inserts_each_row_once_and_leaves_it_loaded_as_a_flush_would(app, count_queries):
    with app.app_context():
        flushes = _flushes()
        email = Notification(to_email="a@example.org", subject="S", body="B\n", template="t")
        event = AuditEvent(action="direct.test", object_type="notification", before=None)
        db.session.add_all([email, event])
        with count_queries() as writing:
            write_new()
        if db.engine.dialect.name == "postgresql":  # both in one statement
            [statement] = writing.statements
            assert statement.startswith("WITH") and statement.count("INSERT INTO") == 2
        else:
            assert writing.count == 2
            assert all(s.startswith("INSERT INTO") for s in writing.statements)
        assert flushes == []  # no unit of work
        # Persistent, with their keys and the Python-side defaults filled in on the object.
        assert not db.session.new
        assert sa.inspect(email).persistent and sa.inspect(event).persistent
        assert email.id and event.id
        assert (email.status, email.attempts) == (NotificationStatus.PENDING, 0)
        assert email.created_at.tzinfo is not None and event.occurred_at.tzinfo is not None
        # Everything is loaded: reading it back asks nothing of the database.
        with count_queries() as reading:
            read = [getattr(email, c.key) for c in sa.inspect(Notification).column_attrs]
            read += [getattr(event, c.key) for c in sa.inspect(AuditEvent).column_attrs]
        assert reading.count == 0, reading.statements
        # The rows hold what the objects say.
        row = db.session.execute(
            sa.select(Notification.__table__).where(Notification.id == email.id)
        ).one()
        assert (row.status, row.attempts, row.to_email) == ("pending", 0, "a@example.org")
        assert row.created_at.replace(tzinfo=UTC) == email.created_at.replace(tzinfo=UTC)
        # A later change is an ordinary UPDATE of the persistent object.
        email.attempts = 3
        db.session.flush()
        assert (
            db.session.scalar(
                sa.select(Notification.__table__.c.attempts).where(Notification.id == email.id)
            )
            == 3
        )
        # Rolled back, they leave the session as a flushed new object does: nothing to reload.
        db.session.rollback()
        assert sa.inspect(email).transient and sa.inspect(event).transient


def _write_emails(count: int) -> list[Notification]:
    emails = [
        Notification(to_email=f"p{n}@example.org", subject="S", body="B\n", template="t")
        for n in range(count)
    ]
    db.session.add_all(emails)
    write_new()
    return emails


def test_write_new_keeps_each_statement_within_the_parameters_psycopg_caches(app, count_queries):
    with app.app_context():
        params = sum(1 for c in Notification.__table__.columns if c.name not in NULLS_AND_KEY)
        per_statement = db_module._MOST_PARAMETERS // params
        count = per_statement * 2 + 3  # two full statements and part of a third
        with count_queries() as writing:
            emails = _write_emails(count)
        if db.engine.dialect.name == "postgresql":
            assert [s.count("INSERT INTO") for s in writing.statements] == [
                per_statement,
                per_statement,
                3,
            ]
        else:
            assert writing.count == count
        assert len({e.id for e in emails}) == count
        stored = db.session.scalars(
            sa.select(Notification.to_email).where(Notification.id.in_([e.id for e in emails]))
        ).all()
        assert sorted(stored) == sorted(e.to_email for e in emails)
        db.session.rollback()


@pytest.mark.postgres_only
def test_psycopg_keeps_the_conversion_of_statements_up_to_our_limit(app):
    # A statement of more than psycopg's default 50 parameters, written twice: the second time
    # psycopg finds its SQL already converted instead of parsing it again.
    import psycopg._queries

    with app.app_context():
        params = sum(1 for c in Notification.__table__.columns if c.name not in NULLS_AND_KEY)
        rows = db_module._MOST_PARAMETERS // params
        assert rows * params > 50
        _write_emails(rows)
        before = psycopg._queries._query2pg.cache_info()
        _write_emails(rows)
        after = psycopg._queries._query2pg.cache_info()
        assert after.hits > before.hits
        assert after.misses == before.misses
        db.session.rollback()


# Left out of a new notification's INSERT: its key, and the columns it leaves NULL.
NULLS_AND_KEY = {"id", "sent_at", "last_error"}


def test_write_new_takes_a_foreign_key_from_the_related_object_and_writes_parents_first(
    app, count_queries
):
    # A funder added before its call-off, and linked to it only through the relationship.
    with app.app_context():
        world = build_orders_world()
        placed = services.place_call_off(
            world.buyer, world.region, world.listing.id, details(world)
        )
        call_off = CallOff(
            **{
                attr.key: getattr(placed, attr.key)
                for attr in sa.inspect(CallOff).column_attrs
                if attr.key not in {"id", "reference", "created_at", "updated_at"}
            },
            reference="CO-TEST-WRITE",
        )
        funder = CallOffFunder(
            organisation_id=world.region.id,
            basis_points=10_000,
            share_pence=call_off.gross_pence,
            budget=world.budget,
        )
        db.session.add(funder)
        funder.call_off = call_off
        db.session.add(call_off)
        with count_queries() as writing:
            write_new()
        # The funder waits for its call-off's key: it cannot go in the call-off's statement.
        assert [s.split()[2] for s in writing.statements] == ["call_offs", "call_off_funders"]
        assert call_off.id not in (None, placed.id)
        assert (funder.call_off_id, funder.budget_id) == (call_off.id, world.budget.id)
        assert (funder.is_lead, funder.preauthorised, funder.committed_pence) == (False, False, 0)
        assert [f.id for f in call_off.funders] == [funder.id]
        stored = db.session.execute(
            sa.select(CallOffFunder.__table__).where(CallOffFunder.id == funder.id)
        ).one()
        assert (stored.call_off_id, stored.budget_id) == (call_off.id, world.budget.id)
        db.session.rollback()


def test_write_new_falls_back_to_the_ordinary_flush_for_other_rows(app):
    with app.app_context():
        flushes = _flushes()
        email = Notification(to_email="b@example.org", subject="S", body="B\n", template="t")
        other = CacheGeneration(topic="direct-write-test", generation=1)
        db.session.add_all([email, other])
        write_new()
        assert flushes == [1]
        assert sa.inspect(email).persistent and sa.inspect(other).persistent
        db.session.rollback()


def _copy_values(placed: CallOff, **changes) -> dict:
    values = {
        attr.key: getattr(placed, attr.key)
        for attr in sa.inspect(CallOff).column_attrs
        if attr.key not in {"id", "created_at", "updated_at"}
    }
    values.update(changes)
    return values


def _stored(call_off: CallOff) -> dict:
    row = (
        db.session.execute(sa.select(CallOff.__table__).where(CallOff.id == call_off.id))
        .one()
        ._asdict()
    )
    # Each gets its own time of writing.
    return {
        k: v for k, v in row.items() if k not in {"id", "reference", "created_at", "updated_at"}
    }


@pytest.mark.parametrize("written_by", ["write_new", "flush"])
def test_new_row_makes_the_row_the_constructor_makes(app, written_by):
    # The same call-off made both ways and written (by write_new, and by the unit of work when
    # another kind of row is new too): the same rows, the same loaded objects.
    with app.app_context():
        world = build_orders_world()
        placed = services.place_call_off(
            world.buyer, world.region, world.listing.id, details(world)
        )
        relations = {
            "listing": world.listing,
            "provider": world.listing.organisation,
            "lead_buyer": world.region,
            "placed_by": world.buyer,
            "deliveries": [],
        }
        made = CallOff(**_copy_values(placed, reference="CO-TEST-CTOR"), **relations)
        quick = db_module.new_row(
            CallOff, **_copy_values(placed, reference="CO-TEST-NEW"), **relations
        )
        assert not sa.inspect(quick).attrs.quantity.history.added  # nothing recorded
        db.session.add_all([made, quick])
        if written_by == "flush":
            db.session.add(CacheGeneration(topic="new-row-test", generation=1))
            flushes = _flushes()
            write_new()
            assert flushes == [1]
        else:
            write_new()
        assert sa.inspect(quick).persistent and quick.id not in (None, made.id)
        assert _stored(quick) == _stored(made)
        assert quick.created_at is not None and quick.listing is world.listing
        assert quick.provider_id == world.listing.organisation_id and quick.deliveries == []
        db.session.rollback()


def test_new_row_refuses_what_the_constructor_would_and_what_it_cannot_keep_in_step(app):
    with app.app_context():
        world = build_orders_world()
        with pytest.raises(TypeError, match="not an attribute"):
            db_module.new_row(Notification, to_email="a@example.org", colour="red")
        with pytest.raises(TypeError, match="not written directly"):
            db_module.new_row(CacheGeneration, topic="t", generation=1)
        # A many-to-one whose object has no key yet, or whose key the row contradicts.
        with pytest.raises(ValueError, match="no key"):
            db_module.new_row(CallOffFunder, organisation=type(world.region)(name="New"))
        with pytest.raises(ValueError, match="says otherwise"):
            db_module.new_row(
                CallOffFunder, organisation_id=world.region.id + 1, organisation=world.region
            )
        # The funder's call-off keeps its funders in step: append to them instead.
        placed = services.place_call_off(
            world.buyer, world.region, world.listing.id, details(world)
        )
        with pytest.raises(TypeError, match="kept in step"):
            db_module.new_row(CallOffFunder, call_off=placed)
        db.session.rollback()


_BUMP = (
    sa.update(CacheGeneration.__table__)
    .where(CacheGeneration.topic == sa.bindparam("bump_topic"))
    .values(generation=CacheGeneration.generation + 1)
    .returning(CacheGeneration.generation)
)


def test_write_new_runs_its_then_with_the_rows_in_one_statement_on_postgresql(app, count_queries):
    with app.app_context():
        db.session.add(CacheGeneration(topic="then-test", generation=4))
        db.session.flush()
        email = Notification(to_email="t@example.org", subject="S", body="B\n", template="t")
        db.session.add(email)
        with count_queries() as writing:
            bumped = write_new(db_module.Then(_BUMP, {"bump_topic": "then-test"}))
        assert bumped == 5 and email.id is not None and sa.inspect(email).persistent
        if db.engine.dialect.name == "postgresql":
            [statement] = writing.statements
            assert (
                "INSERT INTO notifications" in statement and "UPDATE cache_generations" in statement
            )
        else:
            assert [s.split()[0] for s in writing.statements] == ["INSERT", "UPDATE"]
        # Changing no row: None. With nothing new to write, it runs on its own.
        assert write_new(db_module.Then(_BUMP, {"bump_topic": "no-such-topic"})) is None
        assert write_new(db_module.Then(_BUMP, {"bump_topic": "then-test"})) == 6
        # With other new objects, after the ordinary flush.
        other = CacheGeneration(topic="then-other", generation=1)
        db.session.add(other)
        assert write_new(db_module.Then(_BUMP, {"bump_topic": "then-other"})) == 2
        db.session.rollback()


def test_rows_written_directly_are_ones_no_flush_listener_needs_to_see():
    # write_new skips the flush events: the search index's listener (which looks at classes
    # core.cache's watch declares) must not be watching these classes. (The cache generations
    # are moved on by the database's triggers, which see every write.)
    directly = [
        m.class_ for m in db.Model.registry.mappers if issubclass(m.class_, DirectlyWritten)
    ]
    assert {c.__name__ for c in directly} >= {
        "CallOff",
        "CallOffFunder",
        "AuditEvent",
        "Notification",
    }
    for cls in directly:
        mapper = sa.inspect(cls)
        assert cls not in watches_by_model(), cls
        assert mapper.inherits is None and not mapper.polymorphic_map, cls
        assert mapper.version_id_col is None, cls
        for hook in ("before_insert", "after_insert"):
            assert not getattr(mapper.dispatch, hook), (cls, hook)


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
    call_off = services.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    db.session.flush()
    statement = sa.select(
        sa.func.count(CallOff.id).filter(
            CallOff.status == call_off.status,  # an enum constant
            CallOff.start_date >= sa.bindparam("from_day"),  # a date each call gives
        ),
        sa.func.count(CallOff.id).filter(CallOff.crn == "X123456"),
    ).where(CallOff.lead_buyer_id == sa.bindparam("buyer_id"))
    read = db_module.PrecompiledRead(statement)
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
    listed = db_module.PrecompiledRead(
        sa.select(sa.func.count(CallOff.id)).where(CallOff.status.in_(["sent", "accepted"]))
    )
    with pytest.raises(ValueError, match="list parameter"):
        listed.one(db.session.connection())
    named = db_module.PrecompiledRead(
        sa.select(sa.func.count(CallOff.id)).where(CallOff.id == sa.bindparam("call_off_id"))
    )
    with pytest.raises(KeyError):
        named.one(db.session.connection())
    assert tuple(named.one(db.session.connection(), call_off_id=1)) == (0,)
