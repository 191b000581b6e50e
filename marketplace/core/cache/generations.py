"""Cache topics and their generations: how many times the data under each has changed.

A *topic* names a body of data that some pages show (the register of members, the assessment
queue, the signed-in people). Each topic has a generation number in the database, moved on by the
database's own triggers (``triggers``) atomically with every committed change to the data it
watches (``declarations``), whatever wrote it. Every cache keeps its entries under the current
generations of their topics (``generation_key``), so an entry is never used after the data under
it changed, and a change is seen by the next request in every worker process.

The generations are read once per request, in one query, on a connection of this process's own
(``_GenerationReader``), outside the request's transaction: a page whose parts are all cached
needs nothing else from the database.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import threading
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from marketplace.core.db import db
from marketplace.core.store import PrecompiledRead


class Topic(enum.StrEnum):
    REGISTER = "register"
    ASSESSMENT_QUEUE = "assessment-queue"
    # People, their roles and organisations: the signed-in person loaded on every page.
    PRINCIPALS = "principals"


class CacheGeneration(db.Model):
    """How many times the data under a topic has changed (from a random start; see below)."""

    __tablename__ = "cache_generations"

    topic: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    generation: Mapped[int] = mapped_column(sa.BigInteger)


_GENERATIONS = sa.select(CacheGeneration.__table__.c.topic, CacheGeneration.__table__.c.generation)
_REQUEST_KEY = "_page_cache_generations"


class _GenerationReader:
    """A few database connections of this process's own, outside any transaction, for reading
    the generations.

    A page whose parts are all cached needs nothing else from the database. Through the
    request's session, this one read would also cost a connection checkout and return and
    SQLAlchemy's execution of a statement, more than the read itself (``make bench``: the
    signed-in dashboard).
    Each read takes an idle connection (or opens one), reads in autocommit (never left idle
    in a transaction holding a snapshot or a lock) and puts it back for the next request, in
    whichever thread. They are the current engine's, of this process (not inherited through a
    fork), and closed on exit.
    """

    def __init__(self, keep: int = 4):
        self.keep = keep
        self._idle: list[Any] = []
        self._engine: Any = None
        self._pid: int | None = None
        self._lock = threading.Lock()
        atexit.register(self.close_all)

    def read(self) -> dict[str, int] | None:
        """The committed generations, or None if they cannot be read this way now."""
        rows = self.fetch(_GENERATIONS_SQL, ())
        return None if rows is None else dict(rows)

    def fetch(self, sql: str, parameters: Any) -> list[tuple] | None:
        """The rows of a read of committed data (SQL and parameters in the driver's own form),
        or None if they cannot be read this way now."""
        engine = db.engine
        if isinstance(engine.pool, sa.pool.SingletonThreadPool | sa.pool.StaticPool):
            return None  # an in-memory SQLite database lives in that one connection
        connection = None
        try:
            connection = self._take(engine) or self._connect(engine)
            cursor = connection.cursor()
            try:
                cursor.execute(sql, parameters)
                rows = cursor.fetchall()
            finally:
                cursor.close()
        except Exception:  # a broken connection (a restarted server): the next read reconnects
            if connection is not None:
                _close_quietly(connection)
            return None
        self._give_back(engine, connection)
        return rows

    def _take(self, engine: Any) -> Any:
        stale = []
        with self._lock:
            if self._pid != os.getpid():
                self._idle = []  # the parent's, through a fork: left alone, as the pool does
            elif self._engine is not engine:
                stale, self._idle = self._idle, []
            self._engine, self._pid = engine, os.getpid()
            connection = self._idle.pop() if self._idle else None
        for old in stale:
            _close_quietly(old)
        return connection

    def _give_back(self, engine: Any, connection: Any) -> None:
        with self._lock:
            if self._engine is engine and self._pid == os.getpid() and len(self._idle) < self.keep:
                self._idle.append(connection)
                return
        _close_quietly(connection)

    @staticmethod
    def _connect(engine: Any) -> Any:
        connection = engine.raw_connection()
        if engine.dialect.name == "postgresql":
            connection.driver_connection.autocommit = True
        # Ours from now on: never handed back to the pool (and so to a session) in autocommit.
        connection.detach()
        return connection

    def close_all(self) -> None:
        with self._lock:
            idle = self._idle if self._pid == os.getpid() else []
            self._idle = []
        for connection in idle:
            _close_quietly(connection)


def _close_quietly(connection: Any) -> None:
    with contextlib.suppress(Exception):  # already closed, or the server has gone
        connection.close()


_GENERATIONS_SQL = "SELECT topic, generation FROM cache_generations"
_reader = _GenerationReader()


def generations() -> dict[str, int]:
    """Every topic's committed generation, in one query; read once per request (and again after
    a commit).

    A request uses one reading for all its topics: the signed-in person and the page's content
    cost one query between them. It reads what is committed, on a connection of its own
    (``_GenerationReader``): a transaction's own changes move their topics on when it commits.
    """
    if has_request_context():
        known = g.get(_REQUEST_KEY)
        if known is not None:
            return known
    values = _reader.read()
    if values is None:
        values = {topic: value for topic, value in db.session.execute(_GENERATIONS).all()}
    if has_request_context():
        setattr(g, _REQUEST_KEY, values)
    return values


def read_committed(statement: PrecompiledRead, **values: Any) -> Any:
    """The one row of a read of what is committed, on one of the connections that read the
    generations: for a page that reads a little besides its cached parts and writes nothing,
    this spares it a transaction on the session (a connection checkout, BEGIN and ROLLBACK),
    which costs more than the read. Where that cannot be done (an in-memory database, a
    broken connection), through the session."""
    sql, parameters = statement.prepared(db.engine.dialect, values)
    rows = _reader.fetch(sql, parameters)
    if rows is None:
        return statement.one(db.session.connection(), **values)
    [row] = rows
    return row


def generation(topic: Topic | str) -> int:
    """The topic's current generation (0 until its data first changes)."""
    return generations().get(str(topic), 0)


@event.listens_for(Session, "after_commit")
def _forget_generations(session: Session) -> None:
    # This request's own commit may have moved topics on: read them again when next needed.
    if has_request_context():
        g.pop(_REQUEST_KEY, None)


def generation_key(key: tuple, topics: Iterable[Topic | str]) -> tuple:
    """``key`` with the current generation of each of ``topics``: what a cache keeps an entry
    under, so that a committed change under a topic leaves the entry behind."""
    return (*key, *(generation(topic) for topic in sorted(frozenset(topics))))
