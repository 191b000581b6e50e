"""Which topics a statement's writes move on, read from its SQL as the triggers will see it: for
``kept`` (a transaction that has itself written under a topic reads afresh, ``written``) and for
the test-time guard (tests/cache_guard.py), which fails a test whose write did not move a topic
the declarations say it should."""

from __future__ import annotations

import re
from dataclasses import dataclass

from marketplace.core.cache.declarations import DELETE, INSERT, UPDATE, derived
from marketplace.core.cache.triggers import trigger_plan
from marketplace.core.db import db


@dataclass(frozen=True)
class Write:
    event: str
    table: str
    columns: frozenset[str] | None  # an UPDATE's SET columns (None: not known)


_WRITE = re.compile(
    r"\b(?:(INSERT)(?:\s+OR\s+\w+)?\s+INTO|(UPDATE)(?:\s+OR\s+\w+)?|(DELETE)\s+FROM|(COPY))"
    # Not a table: "DO UPDATE SET" (an upsert), "FOR UPDATE [OF …]" (a lock).
    r"\s+(?:ONLY\s+)?(?!(?:SET|OF|NOWAIT|SKIP)\b)"
    r"(\"[^\"]+\"|[A-Za-z_][\w$]*)(?:\s*\.\s*(\"[^\"]+\"|[A-Za-z_][\w$]*))?",
    re.IGNORECASE,
)
_ALIAS_THEN_SET = re.compile(r"\s+(?:AS\s+)?(?:(?!SET\b)[A-Za-z_]\w*\s+)?SET\s", re.IGNORECASE)
_SET_ENDS = re.compile(r"(WHERE|FROM|RETURNING)\b", re.IGNORECASE)
_IDENTIFIER = re.compile(r"\"([^\"]+)\"|([A-Za-z_][\w$]*)")


def _set_columns(sql: str, start: int) -> frozenset[str] | None:
    """The columns an UPDATE's SET list (from ``start``) assigns; None if it cannot tell."""
    found = _ALIAS_THEN_SET.match(sql, start)
    if found is None:
        return None
    position, depth, quote = found.end(), 0, None
    assignments, current = [], []
    while position < len(sql):
        char = sql[position]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:  # the end of a WITH's part
                break
        elif depth == 0 and char == ",":
            assignments.append("".join(current))
            current = []
            position += 1
            continue
        elif depth == 0 and sql[position - 1] in " \n\t)" and _SET_ENDS.match(sql, position):
            break
        current.append(char)
        position += 1
    assignments.append("".join(current))
    columns = set()
    for assignment in assignments:
        target = assignment.split("=", 1)[0].strip()
        if not target:
            return None
        for quoted, plain in _IDENTIFIER.findall(target.strip("()")):
            name = quoted or plain
            columns.add(name.rsplit(".", 1)[-1].lower())
    return frozenset(columns) or None


def statement_writes(sql: str) -> tuple[Write, ...]:
    """The writes a statement's SQL makes to tables (INSERT, UPDATE with its SET columns,
    DELETE, COPY as an INSERT), as far as its text tells."""
    writes = []
    for found in _WRITE.finditer(sql):
        insert, update, delete, copy, first, second = found.groups()
        name = (second or first).strip('"')
        if update:
            event, columns = UPDATE, _set_columns(sql, found.end())
        else:
            event, columns = (DELETE if delete else INSERT), None
        writes.append(Write(event, name, columns))
    return tuple(writes)


@dataclass(frozen=True)
class _TableTopics:
    on_insert: frozenset[str]
    on_delete: frozenset[str]
    on_any_update: frozenset[str]
    on_update_of: tuple[tuple[frozenset[str], frozenset[str]], ...]  # (columns, topics)


def _table_topics() -> dict[str, _TableTopics]:
    found = derived.get("tables")
    if found is None:
        tables: dict[str, dict] = {}
        for trigger in trigger_plan():
            entry = tables.setdefault(
                trigger.table, {"insert": set(), "delete": set(), "any": set(), "of": []}
            )
            if trigger.event == INSERT:
                entry["insert"].update(trigger.topics)
            elif trigger.event == DELETE:
                entry["delete"].update(trigger.topics)
            elif trigger.columns is None:
                entry["any"].update(trigger.topics)
            else:
                entry["of"].append((frozenset(trigger.columns), frozenset(trigger.topics)))
        found = {
            table: _TableTopics(
                frozenset(e["insert"]), frozenset(e["delete"]), frozenset(e["any"]), tuple(e["of"])
            )
            for table, e in tables.items()
        }
        derived["tables"] = found
    return found


def topics_of_write(write: Write) -> frozenset[str]:
    """The topics the triggers move on for one write that changes at least one row (an UPDATE
    whose columns are not known counts as one of every column)."""
    entry = _table_topics().get(write.table)
    if entry is None:
        return frozenset()
    if write.event == INSERT:
        return entry.on_insert
    if write.event == DELETE:
        return entry.on_delete
    topics = set(entry.on_any_update)
    for columns, of_columns in entry.on_update_of:
        if write.columns is None or not columns.isdisjoint(write.columns):
            topics.update(of_columns)
    return frozenset(topics)


_MOST_REMEMBERED = 4096


def topics_moved_by(sql: str) -> frozenset[str]:
    """The topics a statement moves on if it changes rows: by its own writes, and (a DELETE)
    by what the foreign keys' ON DELETE actions then change. Remembered per statement text."""
    by_statement = derived.setdefault("statements", {})
    found = by_statement.get(sql)
    if found is None:
        topics: set[str] = set()
        for write in statement_writes(sql):
            topics.update(topics_of_write(write))
            if write.event == DELETE:
                for child in _cascades_from(write.table):
                    topics.update(topics_of_write(Write(DELETE, child, None)))
                    topics.update(topics_of_write(Write(UPDATE, child, None)))
        found = frozenset(topics)
        if len(by_statement) >= _MOST_REMEMBERED:
            by_statement.clear()  # statements with lists in them (IN …) vary without end
        by_statement[sql] = found
    return found


def _cascades_from(table: str) -> frozenset[str]:
    """The tables that an ON DELETE action of a foreign key changes, directly or in turn, when
    rows of ``table`` are deleted."""
    graph = derived.get("cascades")
    if graph is None:
        graph = {}
        for child in db.metadata.tables.values():
            for key in child.foreign_keys:
                if (key.ondelete or "").upper() in ("CASCADE", "SET NULL", "SET DEFAULT"):
                    graph.setdefault(key.column.table.name, set()).add(child.name)
        derived["cascades"] = graph
    reached: set[str] = set()
    todo = [table]
    while todo:
        for child in graph.get(todo.pop(), ()):
            if child not in reached:
                reached.add(child)
                todo.append(child)
    return frozenset(reached)
