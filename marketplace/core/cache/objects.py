"""Objects kept by the worker: what a load found, attached to later requests' sessions without
a query, until the data under its topics changes.

Invariant: a kept object is used only while the committed generations of every topic whose data
it carries are those it was loaded under, and never by a transaction that has itself written under
those topics (``written.written_here``). Money and state are read in the transaction that uses
them, never from a kept copy (``orders`` reads the price it charges afresh).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Iterable
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from marketplace.core.cache.generations import Topic, generation_key
from marketplace.core.cache.pages import PageCache
from marketplace.core.cache.written import written_here
from marketplace.core.db import db


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
    full_key = generation_key(key, topics)
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


def kept_copy(key: tuple, topics: Iterable[Topic | str]) -> Any:
    """The worker's own copy kept under ``key`` and ``topics`` (to keep it in step with a
    change this request writes), or None."""
    found, entry = current_app.extensions["object_cache"].get(generation_key(key, topics))
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
    session holds none of them (``kept`` checks), for less CPU (``make bench``: the signed-in
    dashboard).

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
