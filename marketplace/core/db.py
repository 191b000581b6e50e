"""Database base class, column types, the single commit point and locks.

Services flush and never commit. Views, API methods and CLI commands call
``commit()`` once; after the transaction is durable, the hooks registered with
``after_commit()`` run (sending queued email, refreshing search data).

Writing many rows at once, the hottest reads and keys taken before their rows are written
live in ``marketplace.core.store``.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from flask import g, has_app_context
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from marketplace.core.clock import utcnow

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base, disable_autonaming=True)


# ---------------------------------------------------------------------------------------------
# Checking pooled connections


def ping_idle_connections(engine: sa.Engine, idle_seconds: float) -> None:
    """Check a pooled connection with a round trip before handing it out, as ``pool_pre_ping``
    does, but only if it has been idle in the pool for ``idle_seconds`` or more.

    Dropped connections (a restarted server, a proxy's idle timeout) are the ones left idle;
    one used a moment ago is as good as its last answer said. ``pool_pre_ping`` pings before
    every checkout, a round trip more for each request, where the busiest requests need only a
    few (``benchmarks/hello.py`` and ``benchmarks/place_call_offs.py`` measure them). A
    connection that fails its ping is replaced, and so is every connection of the pool opened
    before it (as ``pool_pre_ping`` does).
    """

    def note_new(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = None  # just opened: nothing to check

    def note_idle_from_now(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if not engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise
            alive = False
        if not alive:
            raise sa.exc.InvalidatePoolError("the pooled connection did not answer a ping")

    sa.event.listen(engine, "connect", note_new)
    sa.event.listen(engine, "checkin", note_idle_from_now)
    sa.event.listen(engine, "checkout", ping_if_idle)


class UTCDateTime(sa.types.TypeDecorator):
    """An aware UTC timestamp on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so the value is
    stored as naive UTC and made aware again when read.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def enum_type(enum_class: type[enum.StrEnum], name: str) -> sa.Enum:
    """A string column restricted by a CHECK constraint to the enum's values."""
    return sa.Enum(
        enum_class,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(member.value) for member in enum_class) + 8,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=utcnow, onupdate=utcnow, nullable=False
    )


def after_commit(callback: Callable[[], Any]) -> None:
    """Run ``callback`` once the current request's transaction has committed."""
    if not has_app_context():
        raise RuntimeError("after_commit needs an application context")
    g.setdefault("_after_commit_hooks", []).append(callback)


def on_rollback(callback: Callable[[], Any]) -> None:
    """Run ``callback`` if the current unit of work is rolled back or never committed.

    For work outside the database that must not outlive a failed transaction, such as a file
    written for a row that is then not saved.
    """
    if not has_app_context():
        raise RuntimeError("on_rollback needs an application context")
    g.setdefault("_rollback_hooks", []).append(callback)


def commit(*, keep_loaded: bool = False) -> None:
    """Commit the unit of work, then run the hooks queued by the services.

    With ``keep_loaded`` the objects keep the values just committed instead of being reloaded
    when next read: for an API answer that describes what the request wrote.
    """
    session = db.session()
    if keep_loaded:
        previous, session.expire_on_commit = session.expire_on_commit, False
        try:
            session.commit()
        finally:
            session.expire_on_commit = previous
    else:
        session.commit()
    hooks = g.pop("_after_commit_hooks", []) if has_app_context() else []
    if has_app_context():
        g.pop("_rollback_hooks", None)
    for hook in hooks:
        hook()


def rollback() -> None:
    """Roll back the unit of work, forget its after-commit hooks and undo what it did outside."""
    db.session.rollback()
    if has_app_context():
        g.pop("_after_commit_hooks", None)
        run_rollback_hooks()


def run_rollback_hooks() -> None:
    """Undo outside work of a unit of work that ended without a commit."""
    for hook in reversed(g.pop("_rollback_hooks", [])):
        with contextlib.suppress(OSError):  # best effort: a file already gone is fine
            hook()


def lock_rows(model: type, ids: Iterable[int]) -> list:
    """Lock these rows for the rest of the transaction, in key order (so two transactions that
    lock the same rows never wait on each other in a circle), and return them as they are now.

    PostgreSQL: ``SELECT … FOR NO KEY UPDATE``: it keeps out every other writer of these rows,
    but not the inserts elsewhere that refer to them (their foreign-key checks only share the
    key, which no caller changes), so a call-off can be placed for a listing while another is
    being accepted against its capacity. SQLite has one writer at a time: a write that changes
    nothing takes the database's write lock now, before the rows are read. Either way the objects
    this session already holds are overwritten with the locked rows (they may be older).
    """
    keys = sorted({pk for pk in ids if pk is not None})
    if not keys:
        return []
    table = model.__table__
    [key] = table.primary_key.columns
    statement = (
        sa.select(model)
        .where(key.in_(keys))
        .order_by(key)
        .execution_options(populate_existing=True)
    )
    if db.session.get_bind().dialect.name == "postgresql":
        statement = statement.with_for_update(of=table, key_share=True)
    else:
        db.session.execute(table.update().where(key.in_(keys)).values({key.name: key}))
    return list(db.session.scalars(statement))


# PostgreSQL's transaction-level lock on the 64-bit hash of the parameter ``name``.
_LOCK_ON_NAME = sa.func.pg_advisory_xact_lock(
    sa.func.hashtextextended(sa.bindparam("name", type_=sa.Text), 0)
)
_ADVISORY_LOCK = sa.select(_LOCK_ON_NAME)
# Any table will do; this one exists in every database the app builds (page_cache.py).
_SQLITE_WRITE_LOCK = sa.text("UPDATE cache_generations SET generation = generation WHERE 0")


def lock_name(name: str) -> None:
    """Hold a lock on ``name`` until the transaction ends: for a rule that reads a total over many
    rows and then adds a row to it (no single row stands for the total, so there is no row to lock).

    PostgreSQL: a transaction-level advisory lock on the name's 64-bit hash; transactions that lock
    other names go on in parallel (two names that share a hash merely wait for each other). SQLite
    has one writer at a time: a write that changes nothing takes the database's write lock now.
    """
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(_ADVISORY_LOCK, {"name": name})
    else:
        db.session.execute(_SQLITE_WRITE_LOCK)


# Integer primary keys are 32-bit on PostgreSQL: a larger number can name no row, and sending it
# to the database would fail with an error instead of finding nothing.
MAX_ID = 2**31 - 1


def parse_id(value: object) -> int | None:
    """An id from user input (query string, form, path), or None if it cannot name a row."""
    text = str(value if value is not None else "").strip()
    if not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None
