"""Pages that many people read and few change, kept rendered until the data under them changes.

A *topic* names a body of data that some pages show (the register of members, the assessment
queue). Each topic has a generation number in the database. Every transaction that changes data a
topic watches moves the topic's generation on when it commits, atomically with the change: the
database's own triggers do it (``marketplace.core.cache.triggers``), whatever wrote the data (the ORM,
a Core bulk write, raw SQL, COPY). A rendered page part is cached in the process under its
topic's current generation, so:

- reading a cached part costs one small query (the generation), whatever the size of the data;
- a change is seen by the next request in every worker process, because each of them reads the
  generation before it uses its cache;
- a part is never served after the data under it changed.

Which changes matter is declared next to the models (``watch(Model, topic, attributes=…)``); a
migration makes the triggers for the declarations, and a test checks the database has them.
Money is never read from what a worker keeps: a service that charges reads the price in its own
transaction (``orders.services.place_call_off``).
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import os
import pickle
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from flask import session as flask_session
from sqlalchemy import event
from sqlalchemy.orm import Mapped, Session, mapped_column

from marketplace.core.cache.triggers import topics_moved_by, watches_by_model
from marketplace.core.cache.triggers import watch as watch  # declarations go through here
from marketplace.core.db import db
from marketplace.core.store import PrecompiledRead, raw_statement_listeners


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


# ---------------------------------------------------------------------------------------------
# What this transaction has written (for ``kept``)

# In a Connection's ``info``: the topics its transaction's statements move on (when they change
# rows); in a Session's ``info``: the connection its transaction runs on.
_WRITTEN = "page_cache_topics_written"
_CONNECTION = "page_cache_connection"


@event.listens_for(sa.Engine, "before_cursor_execute")
def _note_topics_written(conn, cursor, statement, parameters, context, executemany) -> None:
    # Read from the statement's text, as the triggers will see it: no ORM bookkeeping, so a
    # Core or raw write counts as a flush does. Remembered per statement text: a lookup.
    topics = topics_moved_by(statement)
    if topics:
        _note_written(conn, topics)


def _note_written(conn: sa.Connection, topics: frozenset[str]) -> None:
    written = conn.info.get(_WRITTEN)
    if written is None:
        conn.info[_WRITTEN] = set(topics)
    else:
        written.update(topics)


def _note_copy(conn: sa.Connection, statement: str, rows: int) -> None:
    # COPY goes through the driver's own cursor, which SQLAlchemy's events do not see.
    topics = topics_moved_by(statement)
    if topics:
        _note_written(conn, topics)


raw_statement_listeners.append(_note_copy)


@event.listens_for(sa.Engine, "begin")
@event.listens_for(sa.Engine, "commit")
@event.listens_for(sa.Engine, "rollback")
def _forget_topics_written(conn: sa.Connection) -> None:
    # A transaction starts with nothing written (``info`` outlives it: it is the pooled
    # DBAPI connection's). An invalidated connection has nothing left to forget.
    with contextlib.suppress(sa.exc.SQLAlchemyError):
        conn.info.pop(_WRITTEN, None)


@event.listens_for(Session, "after_begin")
def _note_session_connection(session: Session, transaction: Any, connection: Any) -> None:
    session.info[_CONNECTION] = connection


@event.listens_for(Session, "after_transaction_end")
def _forget_session_connection(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_CONNECTION, None)


def _changed(obj: Any, attributes: frozenset[str]) -> bool:
    state = sa.inspect(obj)
    return any(state.attrs[name].history.has_changes() for name in attributes)


def topics_changed_by(session: Session) -> set[str]:
    """The topics that the session's changes not yet flushed would move on."""
    by_model = watches_by_model()
    topics: set[str] = set()
    for obj in session.new:
        for spec in by_model.get(type(obj), ()):
            if spec.include_new:
                topics.update(spec.topics)
    for obj in session.deleted:
        for spec in by_model.get(type(obj), ()):
            topics.update(spec.topics)
    for obj in session.dirty:
        for spec in by_model.get(type(obj), ()):
            if spec.attributes is None:
                if session.is_modified(obj):
                    topics.update(spec.topics)
            elif _changed(obj, spec.attributes):
                topics.update(spec.topics)
    return topics


def written_here(session: Session, topics: Iterable[Topic | str]) -> bool:
    """Whether this transaction has itself changed data under ``topics`` (written, or waiting
    to be flushed): its own changes are not in the committed generations until it commits.

    Decided from the statements its connection ran (``_note_topics_written``: an INSERT,
    UPDATE of a watched column, DELETE or COPY of a watched table counts, whether or not it
    changed a row), and from the objects the session has yet to flush."""
    topics = frozenset(str(topic) for topic in topics)
    connection = session.info.get(_CONNECTION)
    if connection is not None:
        with contextlib.suppress(sa.exc.SQLAlchemyError):
            written = connection.info.get(_WRITTEN)
            if written and not topics.isdisjoint(written):
                return True
    if session.new or session.deleted or session.dirty:
        return not topics.isdisjoint(topics_changed_by(session))
    return False


_GENERATIONS = sa.select(CacheGeneration.__table__.c.topic, CacheGeneration.__table__.c.generation)
_REQUEST_KEY = "_page_cache_generations"


class _GenerationReader:
    """A few database connections of this process's own, outside any transaction, for reading
    the generations.

    A page whose parts are all cached needs nothing else from the database. Through the
    request's session, this one read cost a connection checkout and return and SQLAlchemy's
    execution of a statement: a fifth of a cached page's time, more than the read itself.
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


# ---------------------------------------------------------------------------------------------
# The cache of rendered parts


class PageCache:
    """A bounded, thread-safe LRU of page parts, each kept under its topic's generation.

    Every value the part depends on besides the topic's data (page number, filters, today's
    date) must be in the key. Keys may come from the query string, so the size is bounded.
    """

    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, topic: Topic, key: tuple, build: Callable[[], Any]) -> Any:
        """The cached part for ``key``, or ``build()`` (which runs the queries) stored for later."""
        full_key = (str(topic), generation(topic), *key)
        found, value = self.get(full_key)
        if not found:
            value = build()
            self.put(full_key, value)
        return value

    def get(self, full_key: tuple) -> tuple[bool, Any]:
        """(True, value) if ``full_key`` is cached, else (False, None)."""
        with self._lock:
            if full_key in self._entries:
                self._entries.move_to_end(full_key)
                return True, self._entries[full_key]
        return False, None

    def put(self, full_key: tuple, value: Any) -> None:
        with self._lock:
            self._entries[full_key] = value
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def page_cache() -> PageCache:
    return current_app.extensions["page_cache"]


# ---------------------------------------------------------------------------------------------
# Objects kept by the worker


def kept(key: tuple, topics: Iterable[Topic | str], load: Callable[[Session], Any]) -> Any:
    """What ``load(session)`` finds (an object with the relationships it loaded, or a list of
    them) kept by this worker under ``key`` and the generations of ``topics``, and attached to
    later requests' sessions without a query (``_attach``, as ``merge(load=False)`` does).

    Loading through the ORM costs more than the query's own work on the hot paths (the
    signed-in person, the API token, the service being bought, the people to email).
    ``topics`` must cover all the data the objects carry: a committed change to it is then seen
    by the next request in every worker. Nothing is kept for a load that finds nothing (None).
    It loads instead of using the copy where this transaction has itself changed data under
    ``topics`` (not yet committed, so not yet in the generations), or where the session already
    holds one of the objects (merging would overwrite that object's state).
    """
    session = db.session()
    topics = frozenset(topics)
    if written_here(session, topics):
        return load(session)
    full_key = _kept_key(key, topics)
    cache: PageCache = current_app.extensions["object_cache"]
    found, entry = cache.get(full_key)
    if found:
        copy, identities = entry
        if not any(identity in session.identity_map for identity in identities):
            attached: dict[tuple, Any] = {}
            if isinstance(copy, list):
                return [_attach(session, obj, attached) for obj in copy]
            return _attach(session, copy, attached)
    loaded = load(session)
    if loaded is not None:
        # Pickling copies the loaded graph as detached objects, leaving the request's own alone.
        copy = pickle.loads(pickle.dumps(loaded))  # noqa: S301 (our own objects)
        cache.put(full_key, (copy, _identities(copy if isinstance(copy, list) else [copy])))
    return loaded


# Stands for the CSRF token in a kept page; each request's own token replaces it (below).
_CSRF_HOLE = f"csrf-hole-{secrets.token_hex(16)}"


def kept_page(key: tuple, topics: Iterable[Topic | str], render: Callable[[], str]) -> str:
    """A whole page as ``render()`` made it for this key, path and generations of ``topics``,
    kept by this worker: for a signed-in page many people reload.

    ``key`` must name everything the page shows besides the data under ``topics`` and the
    path: the person, the organisation they act for, the page number, today's date. The header
    shows the person, their organisations and their navigation, so ``Topic.PRINCIPALS`` belongs
    in ``topics`` of every signed-in page. Two things differ from one request to the next:
    the CSRF token of the header's forms is rendered as a placeholder and each request's own
    token is put in its place; and a page with a message to flash is rendered afresh (the
    message shows once, and is then gone).
    """
    if flask_session.get("_flashes"):
        return render()
    cache: PageCache = current_app.extensions["page_cache"]
    full_key = ("page", request.path, *_kept_key(key, topics))
    found, page = cache.get(full_key)
    if not found:
        field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        own_token = g.pop(field, None)
        setattr(g, field, _CSRF_HOLE)
        try:
            page = render()
        finally:
            g.pop(field, None)
            if own_token is not None:
                setattr(g, field, own_token)
        cache.put(full_key, page)
    if _CSRF_HOLE not in page:
        return page
    from flask_wtf.csrf import generate_csrf  # only pages with forms need it

    return page.replace(_CSRF_HOLE, generate_csrf())


def _kept_key(key: tuple, topics: Iterable[Topic | str]) -> tuple:
    return (*key, *(generation(topic) for topic in sorted(frozenset(topics))))


def kept_copy(key: tuple, topics: Iterable[Topic | str]) -> Any:
    """The worker's own copy kept under ``key`` and ``topics`` (to keep it in step with a
    change this request writes), or None."""
    found, entry = current_app.extensions["object_cache"].get(_kept_key(key, topics))
    return entry[0] if found else None


# How ``_attach`` copies each attribute of a class: a column's value as it is, a many-to-one's
# object or a collection's objects attached in turn; relationships that do not cascade merges
# are left to load, as ``merge`` leaves them.
_COLUMN, _ONE, _MANY = range(3)
_ATTACH_PLANS: dict[sa.orm.Mapper, dict[str, int]] = {}


def _attach_plan(mapper: sa.orm.Mapper) -> dict[str, int]:
    plan = _ATTACH_PLANS.get(mapper)
    if plan is None:
        plan = {prop.key: _COLUMN for prop in mapper.column_attrs}
        for relationship in mapper.relationships:
            if "merge" in relationship.cascade:
                plan[relationship.key] = _MANY if relationship.uselist else _ONE
        _ATTACH_PLANS[mapper] = plan
    return plan


def _attach(session: Session, copy: Any, attached: dict[tuple, Any]) -> Any:
    """A persistent object in ``session`` with what the detached ``copy`` loaded, and the
    objects loaded under it likewise: what ``session.merge(copy, load=False)`` makes when the
    session holds none of them (``kept`` checks), for a third of its CPU.

    ``merge`` goes through every property of every class in the graph, loaded or not, with
    checks for cases a kept copy never is (pending, changed, versioned, already held); this
    copies just the loaded attributes. It follows ``merge``'s own steps for the rest: the
    object joins the session's identity map as persistent with nothing changed, keeping the
    copy's loader options for what it left unloaded. ``tests/test_page_cache.py`` checks the
    two give the same objects.
    """
    state = sa.orm.attributes.instance_state(copy)
    obj = attached.get(state.key)
    if obj is not None:
        return obj
    mapper = state.mapper
    obj = mapper.class_manager.new_instance()
    attached[state.key] = obj
    new_state = sa.orm.attributes.instance_state(obj)
    new_state.key = state.key
    # Private steps of merge (SQLAlchemy is pinned): joining the identity map as persistent,
    # and the loader options with the callables they made.
    session._update_impl(new_state)
    new_state.load_path = state.load_path
    new_state.load_options = state.load_options
    new_state._copy_callables(state)
    plan = _attach_plan(mapper)
    values = new_state.dict
    for key, value in state.dict.items():
        kind = plan.get(key)
        if kind == _COLUMN:
            values[key] = value
        elif kind == _ONE:
            values[key] = None if value is None else _attach(session, value, attached)
        elif kind == _MANY:
            sa.orm.attributes.set_committed_value(
                obj, key, [_attach(session, item, attached) for item in value]
            )
    new_state._commit_all(values, session.identity_map)
    new_state.manager.dispatch.load(new_state, None)
    return obj


def _identities(objects: list[Any]) -> frozenset[tuple]:
    """The identity of each object and of every object loaded under it."""
    identities = set()
    for obj in objects:
        state = sa.inspect(obj)
        identities.add(state.key)
        for _, _, related, _ in state.mapper.cascade_iterator("merge", state):
            identities.add(related.key)
    return frozenset(identities)


def init_app(app) -> None:
    app.extensions["page_cache"] = PageCache(app.config.get("PAGE_CACHE_ENTRIES", 256))
    # Detached copies of objects (``kept``): signed-in people, API tokens, services.
    app.extensions["object_cache"] = PageCache(app.config.get("OBJECT_CACHE_ENTRIES", 2048))
