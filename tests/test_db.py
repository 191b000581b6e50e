"""The bulk insert helper: the same rows as SQLAlchemy's own insert, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from marketplace.audit import AuditEvent
from marketplace.catalogue.models import ListingStatus
from marketplace.db import db, insert_many

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
