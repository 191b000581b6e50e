"""What this transaction has itself written under each topic (``written_here``).

Its own changes are not in the committed generations until it commits, so a cache must not hand
it a copy made before them: ``objects.kept`` loads afresh instead. Decided from the SQL its
connection ran (any write path: a flush, a Core bulk write, raw SQL, COPY) and from the objects
the session has yet to flush.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from marketplace.core.cache.declarations import watches_by_model
from marketplace.core.cache.writes import topics_moved_by
from marketplace.core.store import raw_statement_listeners

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


def written_here(session: Session, topics: Iterable[str]) -> bool:
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
