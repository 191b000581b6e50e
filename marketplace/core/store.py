"""The store: the database work that features hand to the core because it must be fast or
needs the database's own machinery, behind a few named functions.

- ``next_id(model)``: the key a new row will have, taken before the row is written, so that
  what is made from the key (a call-off's reference) is written with the row, not patched in
  after it.
- ``insert_rows(model, rows, keys=...)``: thousands of rows of one table written at once, in
  the session's transaction (a rate-card import, the monthly invoice run), returning their keys
  when asked, so that child rows can refer to them. It is ``insert_many`` (COPY on PostgreSQL)
  with keys reserved from the table's sequence, or INSERT … RETURNING on SQLite. The search
  index, which is written on a connection of its own, calls ``insert_many`` directly.
  Both skip the unit of work and its events, so a table written this way must be
  one that no flush listener watches; ``tests/test_cache_triggers.py`` checks the page cache
  hears of them through ``raw_statement_listeners``.
- ``PrecompiledRead``: a read run on nearly every page view, compiled once.

Everything else is written through the ORM (``db.session.add``, ``flush``): its events (audit
immutability, the page cache's generations, the search index) see every change.
``benchmarks/place_call_offs.py``, ``benchmarks/import_rate_card.py``,
``benchmarks/invoice_run.py`` and ``benchmarks/hello.py`` measure what these are for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from marketplace.core.db import db, lock_name


def next_id(model: type) -> int:
    """The key the next row of ``model`` (an integer ``id`` from the database) will have.

    PostgreSQL: the next value of the key's sequence, which is never handed out twice (a key
    taken and not used is skipped, as a rolled-back INSERT's is). SQLite has no sequence: its
    write lock is taken (one writer at a time, held to the commit, so no other transaction can
    write a row between), and the key is one more than the highest in the table or already
    given to this session, as its own INSERT would choose.
    """
    table = model.__table__
    [key] = table.primary_key.columns
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        sequence = sa.func.pg_get_serial_sequence(table.name, key.name)
        return int(session.scalar(sa.select(sa.func.nextval(sequence))))
    lock_name(f"next-id:{table.name}")
    highest = session.scalar(sa.select(sa.func.max(key))) or 0
    given = session.info.setdefault("store.next_ids", {})
    taken = given[table.name] = max(highest, given.get(table.name, 0)) + 1
    return taken


def insert_rows(
    model: type | sa.Table, rows: list[dict[str, Any]], *, keys: bool = False
) -> list[int] | None:
    """Write ``rows`` (dicts with the same keys) of ``model``'s table in the session's
    transaction, in bulk; with ``keys``, return the new rows' keys in the order of ``rows``."""
    table = model if isinstance(model, sa.Table) else model.__table__
    connection = db.session.connection()
    if not keys:
        insert_many(connection, table, rows)
        return None
    if not rows:
        return []
    ids = reserve_ids(connection, table, len(rows))
    if ids is None:  # SQLite: no sequence to reserve from
        returning = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
        return list(db.session.scalars(returning, rows).all())
    insert_many(connection, table, [{"id": i, **row} for i, row in zip(ids, rows, strict=True)])
    return ids


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
