"""The outbox sends each email once however many senders run at the same moment (the periodic
command on several machines, or beside the delivery straight after a commit): each claims an
email (its row locked, or a conditional UPDATE) before it sends it. Two senders on every
backend; twenty on PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.core.notifications.services import deliver_after_commit, queue_email, send_pending
from tests.racing import race

pytestmark = pytest.mark.usefixtures("smtp_app")

EMAILS = 5


def queued() -> list[tuple[Notification, str, str, str]]:
    emails = []
    for n in range(EMAILS):
        notification = queue_email(
            f"person{n}@example.org",
            "_test_message",
            name=f"Person {n}",
            reference=f"CO-2026-00000{n}",
            link="http://marketplace.test/call-offs/1",
        )
        emails.append(notification)
    commit()
    return [(n.id, n.to_email, n.subject, n.body) for n in emails]


def sent_once(smtp_sink) -> None:
    assert Counter(m.to for m in smtp_sink.messages) == {
        f"person{n}@example.org": 1 for n in range(EMAILS)
    }
    db.session.expire_all()
    rows = db.session.execute(sa.select(Notification.status, Notification.attempts)).all()
    assert rows and set(rows) == {(NotificationStatus.SENT, 1)}


@pytest.mark.parametrize("clients", [2, pytest.param(20, marks=pytest.mark.postgres_only)])
def test_senders_at_once_send_each_email_once(app, smtp_sink, clients):
    queued()

    outcomes = race(app, [lambda: send_pending for _ in range(clients)])

    assert outcomes == ["ok"] * clients
    sent_once(smtp_sink)


@pytest.mark.parametrize("clients", [2, pytest.param(20, marks=pytest.mark.postgres_only)])
def test_deliveries_after_commit_at_once_send_each_email_once(app, smtp_sink, clients):
    emails = queued()

    def delivering():
        rows = [
            (db.session.get(Notification, pk), to, subject, body)
            for pk, to, subject, body in emails
        ]
        return lambda: deliver_after_commit(rows)

    outcomes = race(app, [delivering for _ in range(clients)])

    assert outcomes == ["ok"] * clients
    sent_once(smtp_sink)
