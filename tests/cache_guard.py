"""The test-time cache guard: a write that commits without moving its cache topics on fails the
test that made it.

It watches every statement the app sends (``after_cursor_execute`` on every engine, and COPY
through ``db.raw_statement_listeners``), notes the writes that changed rows of a table under a
topic (``marketplace.core.cache.writes.statement_writes``; an UPDATE counts for the topics whose columns it
sets), and when that transaction commits compares the committed generations before and after,
read on a connection of its own: never a statement on the app's connection, and never one that
``count_queries`` counts. A topic that did not move is a failure, named with the statement,
and fails the test (``tests/conftest.py`` turns it on for the whole suite).

What it cannot see it leaves alone: an in-memory database (no second connection can read it),
a connection in autocommit mode.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from marketplace.core import store as store_module
from marketplace.core.cache.triggers import GENERATIONS_TABLE
from marketplace.core.cache.writes import statement_writes, topics_of_write

_NOTED = "cache_guard_noted"  # in the connection's info: topic → the statement that wrote it
_SAVEPOINTS = "cache_guard_savepoints"  # name → what was noted when it began
_BEFORE = "cache_guard_before"  # the committed generations just before the commit


@dataclass(frozen=True)
class Failure:
    topic: str
    statement: str
    before: int | None
    after: int | None

    def __str__(self) -> str:
        return (
            f"a committed write did not move the cache topic {self.topic!r} on (generation "
            f"{self.before} before, {self.after} after): the statement\n    {self.statement}\n"
            "wrote data that topic's cached pages and objects show. Its trigger is missing or "
            "disabled, or the declaration (watch(...)) has no migration yet: see "
            "marketplace/core/cache/triggers.py"
        )


class CacheGuard:
    def __init__(self) -> None:
        self.failures: list[Failure] = []
        self._paused = 0
        self._lock = threading.Lock()
        self._readers: dict[str, Any] = {}
        self._patched: set[int] = set()

    # -- switching on and off ----------------------------------------------------------------

    def install(self) -> None:
        sa.event.listen(sa.Engine, "after_cursor_execute", self._after_execute)
        sa.event.listen(sa.Engine, "commit", self._before_commit)
        sa.event.listen(sa.Engine, "rollback", self._rolled_back)
        sa.event.listen(sa.Engine, "savepoint", self._savepoint)
        sa.event.listen(sa.Engine, "rollback_savepoint", self._savepoint_rolled_back)
        store_module.raw_statement_listeners.append(self._raw_statement)

    @contextlib.contextmanager
    def paused(self):
        """Writes made meanwhile are not checked (emptying the tables between tests)."""
        with self._lock:
            self._paused += 1
        try:
            yield
        finally:
            with self._lock:
                self._paused -= 1

    def take_failures(self) -> list[Failure]:
        with self._lock:
            failures, self.failures = self.failures, []
        return failures

    def close(self) -> None:
        for reader in self._readers.values():
            with contextlib.suppress(Exception):
                reader.close()
        self._readers.clear()

    # -- noting writes ------------------------------------------------------------------------

    def _after_execute(self, conn, cursor, statement, parameters, context, executemany) -> None:
        if self._paused or not _checkable(conn):
            return
        rows = getattr(cursor, "rowcount", -1)
        if rows == 0:  # nothing changed: no trigger fires on SQLite, nothing to move on
            return
        self._note(conn, statement)

    def _raw_statement(self, conn, statement: str, rows: int) -> None:
        if not self._paused and rows and _checkable(conn):
            self._note(conn, statement)

    def _note(self, conn, statement: str) -> None:
        for write in statement_writes(statement):
            topics = topics_of_write(write)
            if topics:
                noted = conn.info.setdefault(_NOTED, {})
                for topic in topics:
                    noted.setdefault(topic, " ".join(statement.split())[:300])
                self._patch_commit(conn.engine)

    def _savepoint(self, conn, name) -> None:
        if _NOTED in conn.info:
            conn.info.setdefault(_SAVEPOINTS, {})[name] = dict(conn.info[_NOTED])

    def _savepoint_rolled_back(self, conn, name, context) -> None:
        # What a rolled-back savepoint wrote is gone, and so are the topics its triggers noted.
        earlier = conn.info.get(_SAVEPOINTS, {}).pop(name, None)
        if earlier is not None:
            conn.info[_NOTED] = earlier
        else:
            conn.info.pop(_NOTED, None)

    def _rolled_back(self, conn) -> None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            for key in (_NOTED, _SAVEPOINTS, _BEFORE):
                conn.info.pop(key, None)

    # -- checking at commit -------------------------------------------------------------------

    def _before_commit(self, conn) -> None:
        conn.info.pop(_SAVEPOINTS, None)
        if conn.info.get(_NOTED) and not self._paused:
            conn.info[_BEFORE] = self._generations(conn.engine)
        else:
            conn.info.pop(_NOTED, None)

    def _patch_commit(self, engine: sa.Engine) -> None:
        # SQLAlchemy's commit event comes before the commit; the check needs after. The
        # dialect's do_commit is called with the pooled connection, whose info is the one noted.
        dialect = engine.dialect
        if id(dialect) in self._patched:
            return
        self._patched.add(id(dialect))
        original = dialect.do_commit

        def do_commit(dbapi_connection):
            original(dbapi_connection)
            info = getattr(dbapi_connection, "info", None)
            if info is None:
                return
            noted, before = info.pop(_NOTED, None), info.pop(_BEFORE, None)
            if noted and before is not None:
                self._check(engine, noted, before)

        dialect.do_commit = do_commit

    def _check(self, engine: sa.Engine, noted: dict[str, str], before: dict[str, int]) -> None:
        after = self._generations(engine)
        for topic, statement in sorted(noted.items()):
            if after.get(topic) is None or after.get(topic) == before.get(topic):
                with self._lock:
                    self.failures.append(
                        Failure(topic, statement, before.get(topic), after.get(topic))
                    )

    def _generations(self, engine: sa.Engine) -> dict[str, int]:
        """The committed generations, read on the guard's own connection to the database."""
        url = engine.url.render_as_string(hide_password=False)
        with self._lock:
            reader = self._readers.get(url)
            if reader is None:
                reader = self._readers[url] = _connect(engine)
            cursor = reader.cursor()
            try:
                cursor.execute(f"SELECT topic, generation FROM {GENERATIONS_TABLE}")
                return dict(cursor.fetchall())
            finally:
                cursor.close()


def _checkable(conn: sa.Connection) -> bool:
    if isinstance(conn.engine.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool):
        return False  # an in-memory database: no other connection can read it
    # Autocommit has no commit to check at (an attribute of the driver's: no statement sent).
    return not getattr(conn.connection.driver_connection, "autocommit", False)


def _connect(engine: sa.Engine) -> Any:
    """A DBAPI connection of the guard's own, reading what is committed (autocommit)."""
    url = engine.url
    if url.get_backend_name() == "sqlite":
        return sqlite3.connect(url.database, check_same_thread=False, isolation_level=None)
    import psycopg

    return psycopg.connect(
        url.set(drivername="postgresql").render_as_string(hide_password=False),
        autocommit=True,
    )
