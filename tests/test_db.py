"""The bulk insert helper and write_new: the same rows as SQLAlchemy's own insert, on both
databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from marketplace import db as db_module
from marketplace import page_cache
from marketplace.audit import AuditEvent
from marketplace.catalogue.models import ListingStatus
from marketplace.db import DirectlyWritten, db, insert_many, write_new
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.orders import services
from marketplace.orders.models import CallOff, CallOffFunder
from marketplace.page_cache import CacheGeneration
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


def test_write_new_keeps_each_statement_within_the_parameters_psycopg_caches(app, count_queries):
    with app.app_context():
        emails = [
            Notification(to_email=f"p{n}@example.org", subject="S", body="B\n", template="t")
            for n in range(12)
        ]
        db.session.add_all(emails)
        with count_queries() as writing:
            write_new()
        params = sum(1 for c in Notification.__table__.columns if c.name not in NULLS_AND_KEY)
        if db.engine.dialect.name == "postgresql":
            per_statement = db_module._MOST_PARAMETERS // params
            assert [s.count("INSERT INTO") for s in writing.statements] == [
                min(per_statement, 12 - n) for n in range(0, 12, per_statement)
            ]
        else:
            assert writing.count == 12
        assert len({e.id for e in emails}) == 12
        stored = db.session.scalars(
            sa.select(Notification.to_email).where(Notification.id.in_([e.id for e in emails]))
        ).all()
        assert sorted(stored) == sorted(e.to_email for e in emails)
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


def test_rows_written_directly_are_ones_no_flush_listener_needs_to_see():
    # write_new skips the flush events: the page cache's and the search index's listeners
    # (both declared through page_cache.watch) must not be watching these classes.
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
        assert cls not in page_cache._watches, cls
        assert mapper.inherits is None and not mapper.polymorphic_map, cls
        assert mapper.version_id_col is None, cls
        for hook in ("before_insert", "after_insert"):
            assert not getattr(mapper.dispatch, hook), (cls, hook)
