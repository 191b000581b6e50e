"""Real concurrent clients for the exactly-once tests: each in a thread of its own, with its own
app context, session and database connection, all released together.

Each client first reads what it acts on, as a request does, and only then waits for the others:
every client acts on what it read before any of them committed, so a transition that trusted
its object instead of locking its row would happen once per client (on SQLite too).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager

from flask import Flask

from marketplace import create_app
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation

OK = "ok"


@contextmanager
def racing_app(app: Flask, clients: int):
    """An app whose pool has a connection for every client (and two to spare)."""
    racing = create_app(
        {
            **app.config,
            "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": clients + 2, "max_overflow": 0},
        }
    )
    try:
        yield racing
    finally:
        with racing.app_context():
            db.engine.dispose()


def race(app: Flask, clients: Sequence[Callable[[], Callable[[], object]]]) -> list[str]:
    """Run the clients at once and return, for each, "ok" (it committed) or "<status>: <message>"
    (a refusal, rolled back). Each client is called to read what it needs, and returns the
    action; the actions start together once every client has read. Anything else raised fails
    the test."""
    outcomes: list[str] = []
    lock = threading.Lock()
    with racing_app(app, len(clients)) as racing:
        barrier = threading.Barrier(len(clients))

        def run(client: Callable[[], Callable[[], object]]) -> None:
            with racing.app_context():
                try:
                    try:
                        action = client()
                    finally:
                        barrier.wait(timeout=60)
                    action()
                    commit()
                    result = OK
                except BusinessRuleViolation as refusal:
                    rollback()
                    result = f"{refusal.status}: {refusal.detail}"
                except Exception as error:  # recorded, then asserted below
                    rollback()
                    result = f"error: {error!r}"
                finally:
                    db.session.remove()
                with lock:
                    outcomes.append(result)

        threads = [threading.Thread(target=run, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=180)
    assert len(outcomes) == len(clients), "a client did not finish"
    assert not [o for o in outcomes if o.startswith("error")], outcomes
    return outcomes


def one_wins(outcomes: list[str], refusal: str) -> None:
    """Exactly one client succeeded and every other was refused with ``refusal``."""
    assert outcomes.count(OK) == 1, outcomes
    assert sorted(set(outcomes) - {OK}) == [refusal], outcomes


def elsewhere(app: Flask, work: Callable[[], object]) -> None:
    """Do ``work`` as another request would, in a session of its own, and commit it. Objects
    the test's own session holds are then out of date, as a client's are when someone else
    acted after it read."""
    with app.app_context():
        try:
            work()
            commit()
        finally:
            db.session.remove()
