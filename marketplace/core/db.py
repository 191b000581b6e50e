"""Database base class, column helpers and the single commit point.

Services flush and never commit. Views, API methods and CLI commands call
``commit()`` once; after the transaction is durable, the hooks registered with
``after_commit()`` run (sending queued email, refreshing search data).
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, TypeVar

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
    every request, which cost a round trip and a fifth of a millisecond of CPU on each, where
    the busiest requests need only a few. A connection that fails its ping is replaced, and so
    is every connection of the pool opened before it (as ``pool_pre_ping`` does).
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


_ADVISORY_LOCK_AND_NEXT_ID = sa.select(
    _LOCK_ON_NAME,
    sa.func.nextval(sa.func.pg_get_serial_sequence(sa.bindparam("table", type_=sa.Text), "id")),
)


def lock_name_and_reserve_id(name: str, table: sa.Table) -> int | None:
    """``lock_name(name)``, and a new id from the table's sequence (``reserve_ids``) on
    PostgreSQL, where the two take one round trip instead of two; None for the id on SQLite.

    For a rule whose check comes before the row it guards is written (placing a call-off): the
    lock must come first, and the row's key is wanted anyway.
    """
    if db.session.get_bind().dialect.name != "postgresql":
        lock_name(name)
        return None
    values = {"name": name, "table": table.name}
    return db.session.connection().execute(_ADVISORY_LOCK_AND_NEXT_ID, values).one()[1]


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


def insert_many(connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) in one driver-level executemany.

    SQLAlchemy's own executemany builds and converts every row's parameters in Python, which
    costs more than the database's work for bulk writes of thousands of rows (a rate-card import,
    the search index). Here each column's conversion (enums, JSON, UTC timestamps, SQLite dates)
    is looked up once, and a value repeated down a column (the same timestamp, enum or flag) is
    converted once. Columns with a Python-side default must be given: none is filled in.
    """
    if not rows:
        return
    keys = list(rows[0])
    missing_defaults = [
        column.name
        for column in table.columns
        if column.name not in keys and column.default is not None and column.server_default is None
    ]
    if missing_defaults:
        raise ValueError(f"insert_many into {table.name} needs values for {missing_defaults}")
    dialect = connection.dialect
    compiled = (
        table.insert().values({key: sa.bindparam(key) for key in keys}).compile(dialect=dialect)
    )
    order = (
        [compiled.binds[name].key for name in compiled.positiontup] if compiled.positional else keys
    )
    columns = []
    for key in order:
        processor = table.c[key].type.dialect_impl(dialect).bind_processor(dialect)
        columns.append((key, _memoised(processor) if processor is not None else None))
    converted = [
        [row[key] if convert is None else convert(row[key]) for key, convert in columns]
        for row in rows
    ]
    if dialect.name == "postgresql":
        # COPY streams the rows in one command: several times faster than executemany, whose
        # rows psycopg still sends one statement each.
        _copy(connection, table, order, converted)
        return
    if compiled.positional:
        parameters: list[Any] = [tuple(values) for values in converted]
    else:
        parameters = [dict(zip(order, values, strict=True)) for values in converted]
    connection.exec_driver_sql(compiled.string, parameters)


class PrecompiledRead:
    """A read run on nearly every page view, compiled once per database dialect: ``one`` runs
    it with ``exec_driver_sql`` on a connection (the session's: in its transaction, and seen by
    query logging and counting like any other statement); ``prepared`` gives its SQL and
    parameters in the driver's form (``page_cache.read_committed`` runs them outside the
    session).

    For such a statement SQLAlchemy's own work on each execution (its cache lookup, converting
    every literal's parameter, the ORM's result set-up) costs several times what the database
    does. Here the statement's constants are converted once, and each call converts only the
    named ``sa.bindparam`` values it is given. Rows come back as the driver gives them: use it
    for numbers, not for values whose type converts results (dates, enums). Lists (``IN``) are
    refused: their SQL changes with their length.
    """

    def __init__(self, statement: sa.Executable) -> None:
        self._statement = statement
        self._by_dialect: dict[str, tuple[str, bool, list[tuple[str, bool, Any]]]] = {}

    def _compiled(self, dialect: sa.Dialect) -> tuple[str, bool, list[tuple[str, bool, Any]]]:
        found = self._by_dialect.get(dialect.name)
        if found is None:
            compiled = self._statement.compile(dialect=dialect)
            names = (
                list(compiled.positiontup or ()) if compiled.positional else list(compiled.binds)
            )
            parts = []
            for name in names:
                bind = compiled.binds[name]
                if bind.expanding or bind.literal_execute:
                    raise ValueError(f"PrecompiledRead cannot run a list parameter ({name})")
                processor = bind.type.dialect_impl(dialect).bind_processor(dialect)
                if bind.required:  # a named parameter each call gives
                    parts.append((name, True, (bind.key, processor)))
                else:  # a constant in the statement: converted now, once
                    value = bind.effective_value
                    parts.append((name, False, processor(value) if processor else value))
            found = (compiled.string, compiled.positional, parts)
            self._by_dialect[dialect.name] = found
        return found

    def one(self, connection: sa.Connection, **values: Any) -> sa.Row:
        """Its one row, run on ``connection``."""
        sql, parameters = self.prepared(connection.dialect, values)
        return connection.exec_driver_sql(sql, parameters).one()

    def prepared(self, dialect: sa.Dialect, values: dict[str, Any]) -> tuple[str, Any]:
        """The SQL and the parameters in the driver's form, for ``values``."""
        sql, positional, parts = self._compiled(dialect)
        converted = []
        for name, given, part in parts:
            if given:
                key, processor = part
                value = values[key]
                converted.append((name, processor(value) if processor else value))
            else:
                converted.append((name, part))
        parameters = tuple(value for _, value in converted) if positional else dict(converted)
        return sql, parameters


# Told of each statement sent on the driver's own cursor (COPY), which SQLAlchemy's events do
# not see, as (connection, SQL, rows): whoever watches the statements the app sends (the page
# cache's note of what a transaction wrote, the tests' cache guard) listens here too.
raw_statement_listeners: list[Callable[[sa.Connection, str, int], None]] = []


def _copy(connection: sa.Connection, table: sa.Table, keys: list[str], rows: list[list]) -> None:
    preparer = connection.dialect.identifier_preparer
    names = ", ".join(preparer.quote(table.c[key].name) for key in keys)
    statement = f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"
    for listener in raw_statement_listeners:
        listener(connection, statement, len(rows))
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(statement) as copy:
        for values in rows:
            copy.write_row(values)


def reserve_ids(connection: sa.Connection, table: sa.Table, count: int) -> list[int] | None:
    """``count`` new ids from the table's ``id`` sequence on PostgreSQL, so that rows can be
    written with ``insert_many`` and their children refer to them; None on SQLite, which has no
    sequence to reserve from (insert with RETURNING instead)."""
    if connection.dialect.name != "postgresql":
        return None
    return list(
        connection.scalars(
            sa.text(
                "SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :count)"
            ),
            {"table": table.name, "count": count},
        )
    )


def _memoised(processor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``processor`` with a cache for hashable values (JSON documents are dicts: converted each time)."""
    cache: dict[Any, Any] = {}

    def convert(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            result = cache[value] = processor(value)
            return result
        except TypeError:  # unhashable
            return processor(value)

    return convert


# ---------------------------------------------------------------------------------------------
# Writing new rows without the unit of work


class DirectlyWritten:
    """A model whose new rows ``write_new`` may insert directly.

    Only for simple rows that nothing watches at flush time: no ``Session`` flush listener (the
    page cache's ``watch``, the search index) looks at the class, it maps one table, and it has
    no version counter. ``tests/test_db.py`` checks the classes that say so.
    """


_INSERTS: dict[tuple[sa.Table, frozenset[str]], sa.Insert] = {}
_TABLE_ORDER: dict[sa.Table, int] = {}


def _insert_for(table: sa.Table, keys: frozenset[str]) -> sa.Insert:
    statement = _INSERTS.get((table, keys))
    if statement is None:
        statement = _INSERTS[(table, keys)] = table.insert().values(
            {key: sa.bindparam(key, type_=table.c[key].type) for key in keys}
        )
    return statement


@dataclasses.dataclass(frozen=True)
class _Column:
    attribute: str
    column: str
    primary_key: bool
    stores_none: bool  # a None is written as it is (a JSON null), not as NULL
    default: sa.ColumnDefault | None
    server_default: bool


@dataclasses.dataclass(frozen=True)
class _RowPlan:
    """What writing a class's new rows reads from its mapping, worked out once per class:
    looking it up through the mapper for every row cost more than the rest of the work."""

    # Each many-to-one relationship: its key, and its (foreign key, related key) attributes.
    parents: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    columns: tuple[_Column, ...]
    # The primary key's attributes, in the table's order of its columns.
    key_attributes: tuple[str, ...]


_ROW_PLANS: dict[sa.orm.Mapper, _RowPlan] = {}


def _plan_for(mapper: sa.orm.Mapper) -> _RowPlan:
    plan = _ROW_PLANS.get(mapper)
    if plan is not None:
        return plan
    parents = []
    for relationship in mapper.relationships:
        if relationship.direction is not sa.orm.MANYTOONE:
            continue
        pairs = tuple(
            (
                mapper.get_property_by_column(local).key,
                relationship.mapper.get_property_by_column(remote).key,
            )
            for local, remote in relationship.local_remote_pairs
        )
        parents.append((relationship.key, pairs))
    columns = []
    for prop in mapper.column_attrs:
        column = prop.columns[0]
        columns.append(
            _Column(
                attribute=prop.key,
                column=column.key,
                primary_key=column.primary_key,
                stores_none=column.type.should_evaluate_none,
                default=column.default,
                server_default=column.server_default is not None,
            )
        )
    key_attributes = tuple(
        mapper.get_property_by_column(column).key
        for column in mapper.local_table.primary_key.columns
    )
    plan = _ROW_PLANS[mapper] = _RowPlan(tuple(parents), tuple(columns), key_attributes)
    return plan


def _row_values(state: sa.orm.InstanceState) -> dict[str, Any]:
    """The INSERT's values from the object, filling in on it what a flush would: each
    many-to-one foreign key from its related object, and each Python-side column default. A
    column left to a server default is left out, and forgotten on the object (read when used);
    so is a NULL."""
    plan, values, obj = _plan_for(state.mapper), state.dict, state.obj()
    for key, pairs in plan.parents:
        related = values.get(key)
        if related is None:
            continue
        for local, remote in pairs:
            if values.get(local) is None:
                setattr(obj, local, getattr(related, remote))
    row: dict[str, Any] = {}
    for column in plan.columns:
        value = values.get(column.attribute)
        if value is None and column.primary_key:
            continue  # given by the INSERT
        if value is None and not column.stores_none:
            default = column.default
            if default is not None:
                if not (default.is_scalar or default.is_callable):
                    raise TypeError(f"{column.column}: only Python-side defaults can be filled in")
                value = default.arg if default.is_scalar else default.arg(None)
                setattr(obj, column.attribute, value)
            elif column.server_default:
                values.pop(column.attribute, None)
                continue
        values.setdefault(column.attribute, value)  # loaded, not read back: None if never set
        if value is not None or column.stores_none:
            row[column.column] = value  # a NULL is left out: fewer parameters, the same row
    return row


_Row = TypeVar("_Row", bound=DirectlyWritten)


@dataclasses.dataclass(frozen=True)
class _NewRowPlan:
    columns: frozenset[str]
    # Each many-to-one relationship's key: its (foreign key, related key) attributes.
    parents: dict[str, tuple[tuple[str, str], ...]]
    other_relationships: frozenset[str]
    # Relationships kept in step with their other side: given anything, set through the ORM.
    kept_in_step: frozenset[str]


_NEW_ROW_PLANS: dict[type, _NewRowPlan] = {}


def _new_row_plan(cls: type) -> _NewRowPlan:
    plan = _NEW_ROW_PLANS.get(cls)
    if plan is None:
        if not issubclass(cls, DirectlyWritten):
            raise TypeError(f"{cls.__name__} is not written directly")
        mapper = sa.inspect(cls)
        parents = dict(_plan_for(mapper).parents)
        plan = _NEW_ROW_PLANS[cls] = _NewRowPlan(
            columns=frozenset(prop.key for prop in mapper.column_attrs),
            parents=parents,
            other_relationships=frozenset(
                r.key for r in mapper.relationships if r.key not in parents
            ),
            kept_in_step=frozenset(
                r.key for r in mapper.relationships if r.back_populates or r.backref
            ),
        )
    return plan


def new_row(cls: type[_Row], /, **values: Any) -> _Row:
    """A new ``cls`` holding ``values``, as ``cls(**values)`` makes it, without the ORM's
    events for each attribute: for the rows a hot path writes with ``write_new``.

    Setting an attribute through the ORM records its history and fires its events, which cost
    a placement more than a tenth of a millisecond for the call-off's thirty-odd columns; a new
    row has no history to keep. A many-to-one given as an object (which must have its key)
    sets its foreign key too, and is not told about the new row: it must have no collection of
    these rows that is kept in step (a ``back_populates``): append such a row to its parent's
    collection instead. Collections given empty count as loaded, as when the constructor is
    given them. The object can be flushed as any new object can.
    """
    plan = _new_row_plan(cls)
    obj = sa.inspect(cls).class_manager.new_instance()
    row = obj.__dict__
    for key, value in values.items():
        if key in plan.kept_in_step and value:  # nothing (None, []) leaves nothing to keep
            raise TypeError(f"{cls.__name__}.{key} is kept in step with its other side: set it")
        if key in plan.columns:
            if row.setdefault(key, value) != value:
                raise ValueError(f"{cls.__name__}.{key}: its related object says otherwise")
        elif key in plan.parents:
            if value is not None:
                for local, remote in plan.parents[key]:
                    related_key = getattr(value, remote)
                    if related_key is None:
                        raise ValueError(f"{cls.__name__}.{key}: the related object has no key")
                    if row.setdefault(local, related_key) != related_key:
                        raise ValueError(f"{cls.__name__}.{key}: {local} says otherwise")
            sa.orm.attributes.set_committed_value(obj, key, value)
        elif key in plan.other_relationships:
            sa.orm.attributes.set_committed_value(obj, key, value)
        else:
            raise TypeError(f"{key!r} is not an attribute of {cls.__name__}")
    return obj


@dataclasses.dataclass(frozen=True)
class Then:
    """A statement for ``write_new`` to run once the new rows are written: an UPDATE or DELETE
    returning one column of at most one row, whose parameters are ``values`` (their names must
    not look like ``r<n>_<column>``, which the rows' own use)."""

    statement: sa.UpdateBase
    values: dict[str, Any]


def write_new(then: Then | None = None) -> Any:
    """Write the session's new objects now, as a flush would, but each with one plain INSERT
    when every one of them is a ``DirectlyWritten`` row; otherwise the ordinary flush. Then run
    ``then``, if given, and return what it returned (None if it changed no row).

    The unit of work's bookkeeping (dependency sort, history, post-fetch, events) costs more than
    the statements on a hot path: placing a call-off writes four rows, and its flush took a
    third of the request. Rows are written parents first (by the tables' foreign keys), each
    table's rows in the order they were added; a key the object lacks comes from its INSERT.
    On PostgreSQL several rows go in one statement (an INSERT each in a WITH), up to
    ``_MOST_PARAMETERS`` parameters a statement; a child whose parent still waits for its key
    from the database goes only after that parent's statement. ``then`` goes in the last of
    those statements, as one more part of its WITH: a round trip fewer, which is the point
    (PostgreSQL runs a WITH's parts in no set order, so ``then`` must not depend on the rows
    written beside it). Elsewhere it runs on its own after them.
    Afterwards the objects are persistent in the session, as if loaded; changed objects are
    left for the next flush.
    """
    session = db.session
    new = list(session.new)
    if not new or not all(isinstance(obj, DirectlyWritten) for obj in new):
        if new:
            session.flush()
        return None if then is None else session.connection().scalar(then.statement, then.values)
    if not _TABLE_ORDER:
        _TABLE_ORDER.update((table, n) for n, table in enumerate(db.metadata.sorted_tables))
    states = sorted(
        (sa.inspect(obj) for obj in new),
        key=lambda state: (_TABLE_ORDER[state.mapper.local_table], state.insert_order),
    )
    connection = session.connection()
    together = connection.dialect.name == "postgresql"
    waiting: list[tuple[sa.orm.InstanceState, dict[str, Any]]] = []
    for state in states:
        if waiting and (not together or _needs_key_of(state, [w for w, _ in waiting])):
            _insert(connection, waiting)
            waiting = []
        row = _row_values(state)
        if waiting and sum(len(r) for _, r in waiting) + len(row) > _MOST_PARAMETERS:
            _insert(connection, waiting)
            waiting = []
        waiting.append((state, row))
    if together and then is not None:
        result = _insert(connection, waiting, then)
    else:
        _insert(connection, waiting)
        result = None if then is None else connection.scalar(then.statement, then.values)
    # Persistent and loaded, as a flush leaves them (the relationships they were given count as
    # loaded; the others load when read). This is the flush's own last step: private, but the
    # one call that does just this (SQLAlchemy is pinned, and tests/test_db.py checks the
    # outcome). The public way round (expunge each object, give it its identity, add it back)
    # cascades through every relationship twice and cost five times as much.
    session()._register_persistent(set(states))
    return result


# psycopg converts a statement's SQL for the server once and keeps it (an LRU of 128), but by
# default only for statements of up to 50 parameters and 4 KB: above that it parses the SQL
# again on every call (300 µs for a placement's rows), which cost more than the round trip saved
# by writing them in one statement. Its limits are there for INSERTs of any number of rows
# (psycopg discussion 628); ours come in few shapes (one call-off, its funders, its audit event
# and its emails), so psycopg keeps statements up to these limits, which tests/test_db.py
# checks it does.
_MOST_PARAMETERS = 200
_MOST_STATEMENT_BYTES = 16384
with contextlib.suppress(ImportError):  # psycopg is only needed for PostgreSQL
    import psycopg._queries

    psycopg._queries.MAX_CACHED_STATEMENT_PARAMS = _MOST_PARAMETERS
    psycopg._queries.MAX_CACHED_STATEMENT_LENGTH = _MOST_STATEMENT_BYTES


def _needs_key_of(state: sa.orm.InstanceState, waiting: list[sa.orm.InstanceState]) -> bool:
    """Whether ``state`` refers (many-to-one) to one of ``waiting`` that has no key yet."""
    for key, _ in _plan_for(state.mapper).parents:
        related = state.dict.get(key)
        if related is None:
            continue
        related_state = sa.inspect(related)
        if related_state in waiting and any(
            related_state.dict.get(attribute) is None
            for attribute in _plan_for(related_state.mapper).key_attributes
        ):
            return True
    return False


def _insert(
    connection: sa.Connection,
    rows: list[tuple[sa.orm.InstanceState, dict[str, Any]]],
    then: Then | None = None,
) -> Any:
    """INSERT the rows, one statement each, or all in one if there are several or there is a
    ``then`` to run with them (PostgreSQL), and give each object the key its INSERT made;
    ``then``'s result."""
    result = None
    if len(rows) == 1 and then is None:
        [(state, row)] = rows
        table = state.mapper.local_table
        inserted = connection.execute(_insert_for(table, frozenset(row)), row)
        keys = [tuple(inserted.inserted_primary_key)]
    else:
        shape = tuple((state.mapper.local_table, frozenset(row)) for state, row in rows)
        values = {
            f"r{n}_{key}": value for n, (_, row) in enumerate(rows) for key, value in row.items()
        }
        if then is not None:
            values.update(then.values)
        every_key = connection.execute(
            _inserts_for(shape, None if then is None else then.statement), values
        ).one()
        keys, start = [], 0
        for table, _ in shape:
            width = len(table.primary_key.columns)
            keys.append(tuple(every_key[start : start + width]))
            start += width
        if then is not None:
            result = every_key[start]
    for (state, row), key in zip(rows, keys, strict=True):
        table = state.mapper.local_table
        attributes = _plan_for(state.mapper).key_attributes
        for column, attribute, value in zip(
            table.primary_key.columns, attributes, key, strict=True
        ):
            if row.get(column.key) is None:
                setattr(state.obj(), attribute, value)
    return result


_MULTI_INSERTS: dict[tuple, sa.Select] = {}


def _inserts_for(
    shape: tuple[tuple[sa.Table, frozenset[str]], ...], then: sa.UpdateBase | None = None
) -> sa.Select:
    """One statement inserting a row into each table of ``shape`` (parameters ``r<n>_<column>``)
    and selecting their keys, in order, then what ``then`` returned: PostgreSQL's INSERTs and
    ``then`` in a WITH."""
    statement = _MULTI_INSERTS.get((shape, then))
    if statement is None:
        keys = []
        for n, (table, columns) in enumerate(shape):
            inserted = (
                table.insert()
                .values(
                    {key: sa.bindparam(f"r{n}_{key}", type_=table.c[key].type) for key in columns}
                )
                .returning(*table.primary_key.columns)
                .cte(f"row_{n}")
            )
            keys += [
                sa.select(inserted.c[column.key]).scalar_subquery().label(f"r{n}_{column.key}")
                for column in table.primary_key.columns
            ]
        if then is not None:
            changed = then.cte("also")
            [column] = changed.c
            keys.append(sa.select(column).scalar_subquery().label("also"))
        statement = _MULTI_INSERTS[(shape, then)] = sa.select(*keys)
    return statement
