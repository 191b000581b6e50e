"""What each cache topic watches: the declarations, made next to the models with ``watch``.

Every cache in ``marketplace.core.cache`` is kept under the generations of its topics, and the
database's triggers move those on (``triggers``); the triggers are made from these declarations
by a migration, and ``tests/test_cache_triggers.py`` checks that the database has what they ask
for, so a changed declaration needs a new revision.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

TOPIC_NAME = re.compile(r"^[a-z][a-z0-9-]{0,59}$")
INSERT, UPDATE, DELETE = "insert", "update", "delete"


@dataclass(frozen=True)
class Watch:
    """One declaration: writes to ``table`` move ``topics`` on."""

    table: str
    topics: tuple[str, ...]
    # An UPDATE counts if it sets one of these columns; None: any UPDATE.
    columns: frozenset[str] | None
    include_new: bool
    model: type | None = None
    # The ORM attributes declared (columns, or many-to-one relationships), for changes not yet
    # flushed; None: any change.
    attributes: frozenset[str] | None = None


_declared: list[tuple[Any, tuple[str, ...], frozenset[str] | None, bool]] = []
_resolved: list[Watch] | None = None
_lock = threading.Lock()
# Worked out from the declarations when first needed (by ``watches_by_model``, and in ``writes``),
# forgotten when one is added.
derived: dict[str, Any] = {}


def watch(
    target: type | str,
    *topics: str,
    attributes: Iterable[str] | None = None,
    include_new: bool = True,
) -> None:
    """Move ``topics`` on when a row of ``target`` (a mapped class, or the name of a table the
    models do not map) is inserted, deleted, or updated in (one of) ``attributes``; without
    ``attributes``, any UPDATE counts. A class's attributes may be columns or many-to-one
    relationships (their foreign keys count). ``include_new=False`` is for data that no cached
    part can show until something else (itself watched) links it in.

    The triggers are made by a migration: a new or changed declaration needs a new revision
    (``tests/test_cache_triggers.py`` says which)."""
    global _resolved
    for topic in topics:
        if not TOPIC_NAME.match(str(topic)):
            raise ValueError(f"not a topic name: {topic!r}")
    with _lock:
        _declared.append(
            (
                target,
                tuple(str(topic) for topic in topics),
                frozenset(attributes) if attributes is not None else None,
                include_new,
            )
        )
        _resolved = None
        derived.clear()


def _columns_of(model: type, attributes: frozenset[str]) -> frozenset[str]:
    mapper = sa.inspect(model)
    columns = set()
    for name in attributes:
        if name in mapper.relationships:
            columns.update(local.name for local, _ in mapper.relationships[name].local_remote_pairs)
        else:
            columns.update(column.name for column in mapper.column_attrs[name].columns)
    return frozenset(columns)


def watches() -> list[Watch]:
    """Every declaration, with the tables and columns its classes map to."""
    global _resolved
    resolved = _resolved
    if resolved is None:
        sa.orm.configure_mappers()  # a relationship's foreign keys are known once configured
        resolved = []
        for target, topics, attributes, include_new in list(_declared):
            if isinstance(target, str):
                resolved.append(Watch(target, topics, attributes, include_new))
                continue
            columns = None if attributes is None else _columns_of(target, attributes)
            table = sa.inspect(target).local_table.name
            resolved.append(Watch(table, topics, columns, include_new, target, attributes))
        _resolved = resolved
    return resolved


def watched_tables() -> frozenset[str]:
    return frozenset(w.table for w in watches())


def watches_by_model() -> dict[type, list[Watch]]:
    """The declarations of each mapped class."""
    found = derived.get("models")
    if found is None:
        found = {}
        for spec in watches():
            if spec.model is not None:
                found.setdefault(spec.model, []).append(spec)
        derived["models"] = found
    return found
