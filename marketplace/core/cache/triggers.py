"""What each cache topic watches, and the database triggers that move its generation on.

A worker keeps pages and objects under the generation of the topics whose data they show
(``marketplace.core.cache``). The generations are moved on by triggers in the database, so every
way of writing moves them: the ORM's flush, Core's bulk INSERT, UPDATE and DELETE,
``exec_driver_sql``, psycopg's COPY, a person at ``psql``. No writer has to remember to.

What moves which topic is declared once, next to the models (``declarations.watch``). An
Alembic revision creates the triggers for the declarations as they stand (``create_statements``
from the plan ``trigger_plan`` makes, written into the revision as it was then);
``tests/test_cache_triggers.py`` checks that the database's triggers (``installed_plan``) are what
the declarations ask for, so a changed declaration needs a new revision.

- SQLite has one writer at a time: a row-level trigger upserts each topic's row at once.
- PostgreSQL: the generation row must be locked only at commit, and topics moved on in one
  order, or two transactions that move the same topics could deadlock (and each writer would
  queue on the row for the rest of its transaction). A statement-level trigger notes its topics
  in a transaction-local setting; a deferred constraint trigger on the same table runs at commit
  and moves each pending topic on, in sorted order, clearing the setting (later firings find it
  empty and return at once). A rolled-back savepoint takes its notes with it.

Python also reads the declarations: ``writes.topics_moved_by`` says which topics a statement's
writes move on, for ``kept`` (a transaction that has itself written under a topic reads afresh)
and for the test-time guard (tests/cache_guard.py), which fails a test whose write did not move a
topic the declarations say it should.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from marketplace.core.cache.declarations import (
    DELETE,
    INSERT,
    TOPIC_NAME,
    UPDATE,
    Watch,
    watches,
)

GENERATIONS_TABLE = "cache_generations"
PREFIX = "cache_gen_"
# PostgreSQL: the transaction-local setting that holds the topics to move on at commit.
PENDING_SETTING = "marketplace.cache_topics"
# A new topic row starts at a random point below 2**40 (never at the 0 a process may have cached
# under for a missing row, nor at a number an emptied and refilled table has used before).
_START_BELOW = 2**40
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


# ---------------------------------------------------------------------------------------------
# The plan: one trigger per table, event and set of columns, naming its topics


@dataclass(frozen=True, order=True)
class Trigger:
    """Writes of ``event`` to ``table`` (an UPDATE: of one of ``columns``; None: any) move
    ``topics`` on."""

    table: str
    event: str
    columns: tuple[str, ...] | None
    topics: tuple[str, ...]

    @property
    def name(self) -> str:
        if self.columns is None:
            return f"{PREFIX}{self.table}_{self.event}"
        # Several UPDATE triggers on a table differ in their columns: named by them, briefly.
        return f"{PREFIX}{self.table}_{self.event}_{_short_hash(','.join(self.columns))}"


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def trigger_plan(declared: Iterable[Watch] | None = None) -> tuple[Trigger, ...]:
    """The triggers the declarations need, in a fixed order: what a revision writes down."""
    inserts: dict[str, set[str]] = {}
    deletes: dict[str, set[str]] = {}
    updates: dict[str, dict[str, frozenset[str] | None]] = {}
    for w in watches() if declared is None else declared:
        if w.include_new:
            inserts.setdefault(w.table, set()).update(w.topics)
        deletes.setdefault(w.table, set()).update(w.topics)
        by_topic = updates.setdefault(w.table, {})
        for topic in w.topics:
            if topic in by_topic and by_topic[topic] is None:
                continue
            if w.columns is None:
                by_topic[topic] = None
            else:
                by_topic[topic] = (by_topic.get(topic) or frozenset()) | w.columns
    plan = []
    for table, topics in inserts.items():
        plan.append(Trigger(table, INSERT, None, tuple(sorted(topics))))
    for table, topics in deletes.items():
        plan.append(Trigger(table, DELETE, None, tuple(sorted(topics))))
    for table, by_topic in updates.items():
        groups: dict[tuple[str, ...] | None, list[str]] = {}
        for topic, columns in by_topic.items():
            key = None if columns is None else tuple(sorted(columns))
            groups.setdefault(key, []).append(topic)
        for columns, topics in groups.items():
            plan.append(Trigger(table, UPDATE, columns, tuple(sorted(topics))))
    return tuple(sorted(plan, key=_plan_order))


def _plan_order(trigger: Trigger) -> tuple:
    return (trigger.table, trigger.event, trigger.columns is not None, trigger.columns or ())


def plan_from(rows: Iterable[Iterable[Any]]) -> tuple[Trigger, ...]:
    """A plan written down as plain tuples (in a revision) as ``Trigger`` objects."""
    plan = []
    for table, event, columns, topics in rows:
        plan.append(
            Trigger(table, event, None if columns is None else tuple(columns), tuple(topics))
        )
    return tuple(sorted(plan, key=_plan_order))


def as_rows(plan: Iterable[Trigger]) -> list[tuple]:
    """The plan as plain tuples, to write into a revision."""
    return [(t.table, t.event, t.columns, t.topics) for t in plan]


# ---------------------------------------------------------------------------------------------
# DDL


def _check(plan: Iterable[Trigger]) -> None:
    for trigger in plan:
        names = [trigger.table, *(trigger.columns or ())]
        if not all(_NAME.match(name) for name in names) or trigger.event not in (
            INSERT,
            UPDATE,
            DELETE,
        ):
            raise ValueError(f"not a trigger this module writes: {trigger}")
        for topic in trigger.topics:
            if not TOPIC_NAME.match(topic):
                raise ValueError(f"not a topic name: {topic!r}")


def _event_sql(trigger: Trigger) -> str:
    if trigger.event == UPDATE and trigger.columns is not None:
        return f"UPDATE OF {', '.join(trigger.columns)}"
    return trigger.event.upper()


_POSTGRESQL_FUNCTIONS = (
    # Notes the trigger's topics (its arguments) for the commit, once each.
    f"""CREATE FUNCTION {PREFIX}note() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  pending text := coalesce(current_setting('{PENDING_SETTING}', true), '');
  noted text := pending;
  argument text;
BEGIN
  FOREACH argument IN ARRAY TG_ARGV LOOP
    IF position(',' || argument || ',' IN noted) = 0 THEN
      noted := CASE WHEN noted = '' THEN ',' ELSE noted END || argument || ',';
    END IF;
  END LOOP;
  IF noted <> pending THEN
    PERFORM set_config('{PENDING_SETTING}', noted, true);
  END IF;
  RETURN NULL;
END
$$""",
    # At commit (deferred): moves each noted topic on, in sorted order, once.
    f"""CREATE FUNCTION {PREFIX}move() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  pending text := current_setting('{PENDING_SETTING}', true);
  pending_topic text;
BEGIN
  IF pending IS NULL OR pending = '' THEN
    RETURN NULL;
  END IF;
  PERFORM set_config('{PENDING_SETTING}', '', true);
  FOR pending_topic IN
    SELECT DISTINCT t FROM unnest(string_to_array(pending, ',')) AS t WHERE t <> '' ORDER BY t
  LOOP
    INSERT INTO {GENERATIONS_TABLE} (topic, generation)
    VALUES (pending_topic, floor(random() * {_START_BELOW})::bigint + 1)
    ON CONFLICT (topic) DO UPDATE SET generation = {GENERATIONS_TABLE}.generation + 1;
  END LOOP;
  RETURN NULL;
END
$$""",  # noqa: S608 (constants of this module)
)


def _commit_trigger_name(table: str) -> str:
    return f"{PREFIX}{table}_commit"


def _commit_events(triggers: list[Trigger]) -> str:
    events = []
    for event in (INSERT, UPDATE, DELETE):
        of_event = [t for t in triggers if t.event == event]
        if not of_event:
            continue
        if event == UPDATE and all(t.columns is not None for t in of_event):
            columns = sorted({c for t in of_event for c in t.columns or ()})
            events.append(f"UPDATE OF {', '.join(columns)}")
        else:
            events.append(event.upper())
    return " OR ".join(events)


def _by_table(plan: Iterable[Trigger]) -> dict[str, list[Trigger]]:
    tables: dict[str, list[Trigger]] = {}
    for trigger in plan:
        tables.setdefault(trigger.table, []).append(trigger)
    return tables


def create_statements(dialect: str, plan: Iterable[Trigger], *, functions: bool = True) -> list:
    """The DDL that creates the plan's triggers (and, on PostgreSQL, with ``functions``, the
    functions they call)."""
    plan = list(plan)
    _check(plan)
    statements: list[str] = []
    if dialect == "postgresql":
        if functions:
            statements.extend(_POSTGRESQL_FUNCTIONS)
        for table, triggers in _by_table(plan).items():
            for trigger in triggers:
                arguments = ", ".join(f"'{topic}'" for topic in trigger.topics)
                statements.append(
                    f"CREATE TRIGGER {trigger.name} AFTER {_event_sql(trigger)} ON {table} "
                    f"FOR EACH STATEMENT EXECUTE FUNCTION {PREFIX}note({arguments})"
                )
            statements.append(
                f"CREATE CONSTRAINT TRIGGER {_commit_trigger_name(table)} "
                f"AFTER {_commit_events(triggers)} ON {table} "
                f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {PREFIX}move()"
            )
        return statements
    for trigger in plan:
        upserts = "".join(
            f"INSERT INTO {GENERATIONS_TABLE} (topic, generation) "  # noqa: S608 (_check)
            f"VALUES ('{topic}', (random() & {_START_BELOW - 1}) + 1) "
            "ON CONFLICT (topic) DO UPDATE SET generation = generation + 1; "
            for topic in trigger.topics
        )
        statements.append(
            f"CREATE TRIGGER {trigger.name} AFTER {_event_sql(trigger)} ON {trigger.table} "
            f"FOR EACH ROW BEGIN {upserts}END"
        )
    return statements


def drop_statements(dialect: str, plan: Iterable[Trigger], *, functions: bool = True) -> list:
    """The DDL that drops what ``create_statements`` made for the same plan."""
    plan = list(plan)
    _check(plan)
    if dialect == "postgresql":
        statements = []
        for table, triggers in _by_table(plan).items():
            statements.append(f"DROP TRIGGER {_commit_trigger_name(table)} ON {table}")
            statements.extend(f"DROP TRIGGER {t.name} ON {table}" for t in triggers)
        if functions:
            statements += [f"DROP FUNCTION {PREFIX}move()", f"DROP FUNCTION {PREFIX}note()"]
        return statements
    return [f"DROP TRIGGER {trigger.name}" for trigger in plan]


# ---------------------------------------------------------------------------------------------
# What the database has


_SQLITE_TRIGGER = re.compile(
    r"^CREATE TRIGGER (\w+) AFTER (INSERT|DELETE|UPDATE(?: OF ([\w, ]+?))?) ON (\w+) "
    r"FOR EACH ROW BEGIN (.*)END$",
    re.DOTALL,
)
_SQLITE_UPSERT = re.compile(  # a pattern that matches SQL, not SQL to run
    rf"INSERT INTO {GENERATIONS_TABLE} \(topic, generation\) VALUES \('([a-z0-9-]+)', "  # noqa: S608
    rf"\(random\(\) & {_START_BELOW - 1}\) \+ 1\) ON CONFLICT \(topic\) DO UPDATE SET "
    r"generation = generation \+ 1; "
)

# pg_trigger.tgtype bits (PostgreSQL's include/catalog/pg_trigger.h).
_ROW, _BEFORE, _INSERT, _DELETE, _UPDATE, _TRUNCATE, _INSTEAD = 1, 2, 4, 8, 16, 32, 64


def installed_plan(connection: sa.Connection) -> tuple[Trigger, ...]:
    """The triggers that move generations on, as the database has them, in the plan's form.

    On SQLite, each trigger this module writes (any other, or one changed by hand, shows as a
    plan entry whose topics cannot match). On PostgreSQL, each statement-level trigger that
    notes topics, counted only where a deferred constraint trigger on its table moves them on
    at commit for its event (else it shows with its event marked ``(not moved at commit)``).
    """
    if connection.dialect.name == "postgresql":
        return _installed_postgresql(connection)
    plan = []
    rows = connection.execute(sa.text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'"))
    for name, sql in rows:
        if not name.startswith(PREFIX):
            continue
        found = _SQLITE_TRIGGER.match(" ".join(sql.split()) if "\n" in sql else sql)
        if found is None:
            plan.append(Trigger(name, "unknown", None, (sql,)))
            continue
        _, event, columns, table, body = found.groups()
        topics = tuple(_SQLITE_UPSERT.findall(body))
        if _SQLITE_UPSERT.sub("", body).strip():
            topics += ("(and more)",)
        event_name = event.split()[0].lower()
        plan.append(
            Trigger(
                table,
                event_name,
                None if columns is None else tuple(c.strip() for c in columns.split(",")),
                topics,
            )
        )
    return tuple(sorted(plan, key=_plan_order))


def _installed_postgresql(connection: sa.Connection) -> tuple[Trigger, ...]:
    rows = connection.execute(
        sa.text(
            "SELECT c.relname, t.tgname, t.tgtype, p.proname, t.tgargs, t.tgdeferrable, "
            "t.tginitdeferred, t.tgenabled, "
            "ARRAY(SELECT a.attname::text FROM unnest(t.tgattr::int2[]) AS k(n) "
            "JOIN pg_attribute AS a ON a.attrelid = t.tgrelid AND a.attnum = k.n "
            "ORDER BY a.attname) AS columns "
            "FROM pg_trigger AS t JOIN pg_class AS c ON c.oid = t.tgrelid "
            "JOIN pg_proc AS p ON p.oid = t.tgfoid "
            "WHERE NOT t.tgisinternal AND p.proname IN (:note, :move)"
        ),
        {"note": f"{PREFIX}note", "move": f"{PREFIX}move"},
    ).all()
    # Per table, what the deferred trigger moves on at commit: event → columns (None: any).
    moved: dict[str, dict[str, tuple[str, ...] | None]] = {}
    for table, _, tgtype, proname, _, deferrable, deferred, enabled, columns in rows:
        if proname != f"{PREFIX}move" or not (tgtype & _ROW) or not (deferrable and deferred):
            continue
        if enabled == "D":
            continue
        for bit, event in ((_INSERT, INSERT), (_UPDATE, UPDATE), (_DELETE, DELETE)):
            if tgtype & bit:
                moved.setdefault(table, {})[event] = (
                    tuple(columns) if event == UPDATE and columns else None
                )
    plan = []
    for table, name, tgtype, proname, arguments, _, _, enabled, columns in rows:
        if proname != f"{PREFIX}note":
            continue
        topics = tuple(a.decode() for a in bytes(arguments).split(b"\x00") if a)
        if tgtype & (_ROW | _BEFORE | _INSTEAD | _TRUNCATE) or enabled == "D":
            plan.append(Trigger(table, f"{name} (not an enabled statement trigger)", None, topics))
            continue
        for bit, event in ((_INSERT, INSERT), (_UPDATE, UPDATE), (_DELETE, DELETE)):
            if not tgtype & bit:
                continue
            own = tuple(columns) if event == UPDATE and columns else None
            at_commit = moved.get(table, {})
            covered = event in at_commit and (
                at_commit[event] is None or (own is not None and set(own) <= set(at_commit[event]))
            )
            label = event if covered else f"{event} (not moved at commit)"
            plan.append(Trigger(table, label, own, topics))
    return tuple(sorted(plan, key=_plan_order))
