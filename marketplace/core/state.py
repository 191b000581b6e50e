"""State machines: the one way an object moves from one state to another.

Every workflow (call-off, variation, invoice, card payment, outcome term and claim, application,
membership, arrangement, listing) keeps its states and its allowed-transition map in its
``models.py`` and moves through ``transition`` here. The invariant is that a transition happens
once however many requests ask for it at the same time: the object's row is locked and the
object reloaded from it before its state is read, so of two requests the second waits for the
first to commit and then sees what the first did. It is refused with ``TransitionConflict``
(409) before it has written anything: "This call-off has already been accepted" when the first
request did the same thing, "This call-off is declined, so it cannot be accepted" otherwise.

A use case therefore locks its object first, before any other check or write that depends on
the object's state (capacity, budgets, audit events and emails come after), in one of two ways:

- ``lock`` (to take the audit's "before" from the locked row), then ``transition`` at once,
  where nothing after the move can refuse;
- ``check_transition`` first, then its other checks, then ``transition`` where it writes, where
  something can still refuse (capacity on acceptance): a refused use case leaves its object as
  it was, and the session's autoflush never writes a state without the columns it needs.

Rows that belong to the object (a call-off's funders, an application's lot decisions) change
only while it is locked, and ``lock`` reloads the ones named. PostgreSQL locks the row (``FOR NO
KEY UPDATE``); SQLite has one writer at a time and takes its write lock (``db.lock_rows``).
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.core.db import db, lock_rows
from marketplace.core.errors import TransitionConflict

T = TypeVar("T")
S = TypeVar("S", bound=enum.Enum)

# The rows this session has locked in its current transaction ({identity key: relationships
# reloaded with it}), and the rows it has written there (which no other transaction can see until
# it commits, so they need no lock). Forgotten when the transaction ends.
_LOCKED = "state_locked_rows"
_WRITTEN = "state_written_rows"


@sa.event.listens_for(Session, "pending_to_persistent")
def _note_written(session: Session, instance: Any) -> None:
    session.info.setdefault(_WRITTEN, set()).add(sa.inspect(instance).key)


@sa.event.listens_for(Session, "after_transaction_end")
def _forget_locks(session: Session, transaction: Any) -> None:
    # Only the outer transaction's end releases row locks (a savepoint's does not).
    if transaction.parent is None:
        session.info.pop(_LOCKED, None)
        session.info.pop(_WRITTEN, None)


def lock(obj: T, *relationships: str) -> T:
    """Lock ``obj``'s row until the transaction ends and reload ``obj`` from it, with the named
    one-to-many ``relationships`` (rows that change only while their parent is locked, such as
    a call-off's funders). Returns ``obj``.

    Locked once per transaction: asked again (a use case that moves its object twice, one use
    case inside another) it costs nothing. An object written in this transaction is not locked
    (nor reloaded): no other transaction can see it yet.
    """
    identity = sa.inspect(obj)
    key = identity.key
    if key is None or key in db.session.info.get(_WRITTEN, ()):
        return obj
    locked: dict = db.session.info.setdefault(_LOCKED, {})
    reloaded = locked.get(key)
    if reloaded is None:
        lock_rows(type(obj), identity.identity)  # reloads obj: it is in the identity map
        reloaded = locked[key] = set()
    for name in relationships:
        if name not in reloaded:
            _reload(obj, name)
            reloaded.add(name)
    return obj


def _reload(obj: Any, name: str) -> None:
    """Read the collection ``name`` of ``obj`` again, its objects overwritten with their rows."""
    relationship = sa.inspect(type(obj)).relationships[name]
    statement = (
        sa.select(relationship.mapper)
        .where(sa.orm.with_parent(obj, getattr(type(obj), name)))
        .execution_options(populate_existing=True)
    )
    if relationship.order_by:
        statement = statement.order_by(*relationship.order_by)
    set_committed_value(obj, name, list(db.session.scalars(statement)))


def describe(state: enum.Enum) -> str:
    """A state as it reads in a sentence: "declined", "awaiting approval", "a draft"."""
    label = getattr(state, "label", None) or str(state.value).replace("_", " ")
    text = label.lower()
    return "a draft" if text == "draft" else text


def check_transition(
    obj: Any,
    target: S,
    transitions: Mapping[S, Collection[S]],
    *,
    noun: str,
    done: str | None = None,
    only_from: Collection[S] | None = None,
    already: str | None = None,
    refused: Mapping[S, str] | None = None,
    field: str = "status",
    error_field: str | None = None,
) -> S:
    """Refuse, with ``TransitionConflict``, unless ``obj`` may move to ``target`` now; return the
    state it is in. Locks ``obj`` first (``lock``): the state checked is the one committed last,
    and nobody else can move the object until this transaction ends, so a use case that checks
    here, then checks its other rules and writes, then calls ``transition``, moves it once.

    ``noun`` names the object in messages ("call-off"); ``done`` says what the move does, as in
    "has already been accepted" (by default the target state's name); ``only_from`` narrows the
    states this use case starts from where the map allows more (approving moves a call-off to
    sent only from awaiting approval); ``already`` is the message when the object is in the
    target state, if other moves lead there too (a listing resumed is published, but so is a
    listing never paused); ``refused`` gives the message for a move refused from a state, where
    it says more than the one built ("has already been accepted", whichever decision was asked
    for); ``error_field`` names the field the message is for, if not ``field``.
    """
    lock(obj)
    current = getattr(obj, field)
    done = done or describe(target)
    key = error_field or field
    allowed = target in transitions[current] and (only_from is None or current in only_from)
    if allowed and current != target:
        return current
    if refused and current in refused:
        raise TransitionConflict({key: [refused[current]]})
    if current == target:
        raise TransitionConflict({key: [already or f"This {noun} has already been {done}"]})
    raise TransitionConflict({key: [f"This {noun} is {describe(current)}, so it cannot be {done}"]})


def transition(
    obj: Any,
    target: S,
    transitions: Mapping[S, Collection[S]],
    *,
    noun: str,
    done: str | None = None,
    only_from: Collection[S] | None = None,
    already: str | None = None,
    refused: Mapping[S, str] | None = None,
    field: str = "status",
    error_field: str | None = None,
) -> S:
    """Move ``obj`` to ``target`` if its state machine allows it from the state it is in now
    (``check_transition``, which locks it first), and return that state.

    Called where the use case writes the new state, after every other check: a use case that
    may still refuse once its object is locked calls ``check_transition`` first, before those
    checks, and this at the end (the lock is then held, and the check repeated in memory).
    """
    current = check_transition(
        obj,
        target,
        transitions,
        noun=noun,
        done=done,
        only_from=only_from,
        already=already,
        refused=refused,
        field=field,
        error_field=error_field,
    )
    setattr(obj, field, target)
    return current
