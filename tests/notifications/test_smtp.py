"""The SMTP path of the outbox, against a real local aiosmtpd server.

`flask notifications send` delivers what is pending, retries failures with exponential backoff,
gives up after the configured number of attempts, and never sends an email twice; with
SEND_EMAIL_AFTER_COMMIT the email leaves straight after the commit that queued it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import g

from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db, rollback
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.core.notifications.senders import DeliveryError, get_sender
from marketplace.core.notifications.services import queue_email
from tests.smtp_sink import free_port

pytestmark = pytest.mark.usefixtures("smtp_app")


def queue(to="jo.bloggs@example.org", reference="CO-2026-000123", name="Jo Bloggs"):
    notification = queue_email(
        to,
        "_test_message",
        name=name,
        reference=reference,
        link=f"http://marketplace.test/call-offs/{reference}",
    )
    db.session.flush()  # written with the caller's next flush: the tests read its key at once
    return notification


def run_send(app, *args):
    result = app.test_cli_runner().invoke(args=["notifications", "send", *args])
    assert result.exception is None, result.output
    assert result.exit_code == 0, result.output
    return result.output


def reload(notification_id: int) -> Notification:
    db.session.expire_all()
    return db.session.get(Notification, notification_id)


def make_due(notification_id: int) -> None:
    """Pretend the backoff has passed."""
    notification = reload(notification_id)
    notification.next_attempt_at = utcnow() - timedelta(seconds=1)
    db.session.commit()


def server_down(app_config) -> None:
    """Point the app at a port on which nothing listens."""
    app_config(SMTP_PORT=free_port())


def server_up(app_config, smtp_sink) -> None:
    app_config(SMTP_PORT=smtp_sink.port)


def test_send_command_delivers_a_queued_email(app, smtp_sink):
    notification_id = queue().id
    commit()
    assert smtp_sink.messages == []  # nothing leaves before the command runs

    output = run_send(app)

    assert "Sent 1 email(s); 0 failed" in output
    [received] = smtp_sink.messages
    assert received.subject == "Your call-off CO-2026-000123 is ready"
    assert received.to == "jo.bloggs@example.org"
    assert received.rcpt_tos == ("jo.bloggs@example.org",)
    assert received.sender == app.config["MAIL_FROM"]
    assert received.message["Message-ID"]
    assert "Dear Jo Bloggs," in received.body
    assert "Call-off CO-2026-000123 is ready for you to review." in received.body
    assert received.links() == ["http://marketplace.test/call-offs/CO-2026-000123"]
    assert not received.body.startswith("Subject:")  # the subject line is not repeated in the body

    notification = reload(notification_id)
    assert notification.status == NotificationStatus.SENT
    assert notification.sent_at is not None
    assert notification.attempts == 1
    assert notification.last_error is None


def test_running_send_twice_does_not_send_twice(app, smtp_sink):
    queue()
    commit()

    assert "Sent 1 email(s)" in run_send(app)
    assert "Sent 0 email(s); 0 failed" in run_send(app)

    assert len(smtp_sink.messages) == 1


def test_send_delivers_every_pending_email_to_its_own_recipient(app, smtp_sink):
    for n in range(3):
        queue(to=f"person{n}@example.org", reference=f"CO-2026-00000{n}")
    commit()

    assert "Sent 2 email(s)" in run_send(app, "--limit", "2")
    assert "Sent 1 email(s)" in run_send(app, "--limit", "2")

    received = sorted((m.to, m.subject) for m in smtp_sink.messages)
    assert received == [
        (f"person{n}@example.org", f"Your call-off CO-2026-00000{n} is ready") for n in range(3)
    ]
    assert all(m.rcpt_tos == (m.to,) for m in smtp_sink.messages)


def test_server_down_keeps_the_email_pending_and_backs_off(app, app_config, smtp_sink):
    notification_id = queue().id
    commit()
    server_down(app_config)

    before = utcnow()
    output = run_send(app)
    after = utcnow()

    assert "Sent 0 email(s); 1 failed" in output
    notification = reload(notification_id)
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts == 1
    assert notification.sent_at is None
    assert notification.last_error.startswith("SMTP delivery failed")
    assert (
        before + timedelta(minutes=1)
        <= notification.next_attempt_at
        <= after + timedelta(minutes=1)
    )

    # Not due yet: another run leaves it alone.
    assert "Sent 0 email(s); 0 failed" in run_send(app)
    assert reload(notification_id).attempts == 1

    # The backoff doubles with each failed attempt.
    make_due(notification_id)
    before = utcnow()
    run_send(app)
    after = utcnow()
    notification = reload(notification_id)
    assert notification.attempts == 2
    assert notification.status == NotificationStatus.PENDING
    assert (
        before + timedelta(minutes=2)
        <= notification.next_attempt_at
        <= after + timedelta(minutes=2)
    )

    # The server is back: the next due run delivers it, once.
    server_up(app_config, smtp_sink)
    make_due(notification_id)
    assert "Sent 1 email(s); 0 failed" in run_send(app)
    notification = reload(notification_id)
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 3
    assert notification.last_error is None
    [received] = smtp_sink.messages
    assert received.subject == "Your call-off CO-2026-000123 is ready"


def test_email_fails_after_the_maximum_number_of_attempts(app, app_config, smtp_sink):
    app_config(NOTIFICATION_MAX_ATTEMPTS=3)
    notification_id = queue().id
    commit()
    server_down(app_config)

    for attempt in (1, 2):
        run_send(app)
        notification = reload(notification_id)
        assert notification.attempts == attempt
        assert notification.status == NotificationStatus.PENDING
        make_due(notification_id)

    run_send(app)
    notification = reload(notification_id)
    assert notification.attempts == 3
    assert notification.status == NotificationStatus.FAILED
    assert notification.sent_at is None
    assert notification.last_error.startswith("SMTP delivery failed")

    # A failed email is not tried again, even once the server is back.
    server_up(app_config, smtp_sink)
    make_due(notification_id)
    assert "Sent 0 email(s); 0 failed" in run_send(app)
    assert reload(notification_id).attempts == 3
    assert smtp_sink.messages == []


def test_email_is_delivered_straight_after_the_commit(app, app_config, smtp_sink):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    notification_id = queue().id
    assert smtp_sink.messages == []  # not before the commit

    commit()

    [received] = smtp_sink.messages
    assert received.to == "jo.bloggs@example.org"
    assert received.subject == "Your call-off CO-2026-000123 is ready"
    notification = reload(notification_id)
    assert notification.status == NotificationStatus.SENT
    assert notification.attempts == 1
    # The periodic command finds nothing left to do.
    assert "Sent 0 email(s); 0 failed" in run_send(app)
    assert len(smtp_sink.messages) == 1


def test_failed_immediate_delivery_is_retried_by_the_send_command(app, app_config, smtp_sink):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    server_down(app_config)
    notification_id = queue().id

    commit()  # the commit succeeds although the email could not be sent

    notification = reload(notification_id)
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts == 1
    assert notification.next_attempt_at > utcnow()

    server_up(app_config, smtp_sink)
    make_due(notification_id)
    assert "Sent 1 email(s); 0 failed" in run_send(app)
    assert reload(notification_id).status == NotificationStatus.SENT
    assert len(smtp_sink.messages) == 1


def test_emails_queued_together_are_claimed_in_one_statement_after_the_commit(
    app, app_config, smtp_sink, count_queries
):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    ids = [queue(to=f"person{n}@example.org", reference=f"CO-2026-00001{n}").id for n in range(3)]
    kept = db.session.get(Notification, ids[0])

    with count_queries() as counted:
        commit(keep_loaded=True)

    assert sorted(m.to for m in smtp_sink.messages) == [f"person{n}@example.org" for n in range(3)]
    # One UPDATE claims the three; nothing is read back, before or after.
    [claim] = [s for s in counted.statements if not s.startswith(("COMMIT", "BEGIN"))]
    assert claim.startswith("UPDATE notifications")
    # The session's object says what the row says, without being reloaded.
    with count_queries() as reading:
        assert (kept.status, kept.attempts) == (NotificationStatus.SENT, 1)
        assert kept.sent_at is not None
    assert reading.count == 0
    assert [reload(i).status for i in ids] == [NotificationStatus.SENT] * 3


def test_an_email_sent_meanwhile_is_not_sent_again_after_the_commit(app, app_config, smtp_sink):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    first = queue(to="first@example.org")
    second = queue(to="second@example.org")
    # The periodic command got to the first one between the commit and the delivery.
    deliver_now = g.pop("_after_commit_hooks")
    commit()
    assert "Sent 1 email(s)" in run_send(app, "--limit", "1")
    [hook] = deliver_now
    hook()

    assert sorted(m.to for m in smtp_sink.messages) == ["first@example.org", "second@example.org"]
    assert reload(first.id).attempts == 1 and reload(second.id).attempts == 1


def test_one_refused_email_waits_for_its_retry_and_the_others_are_sent(
    app, app_config, smtp_sink, monkeypatch
):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    sender = get_sender()
    real_send = type(sender).send

    def refuse_one(self, to, subject, body):
        if to == "refused@example.org":
            raise DeliveryError("mailbox unavailable")
        return real_send(self, to, subject, body)

    monkeypatch.setattr(type(sender), "send", refuse_one)
    refused = queue(to="refused@example.org")
    sent = queue(to="sent@example.org")

    commit()

    assert [m.to for m in smtp_sink.messages] == ["sent@example.org"]
    refused, sent = reload(refused.id), reload(sent.id)
    assert (sent.status, sent.attempts) == (NotificationStatus.SENT, 1)
    assert (refused.status, refused.attempts, refused.sent_at) == (
        NotificationStatus.PENDING,
        1,
        None,
    )
    assert refused.last_error == "mailbox unavailable"
    assert refused.next_attempt_at > utcnow()


def test_an_error_while_delivering_leaves_every_email_pending(
    app, app_config, smtp_sink, monkeypatch
):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    sender = get_sender()

    def broken(self, to, subject, body):
        raise RuntimeError("a bug, not a refusal")

    monkeypatch.setattr(type(sender), "send", broken)
    ids = [queue(to=f"p{n}@example.org").id for n in range(2)]

    commit()  # the change stays committed

    assert [(reload(i).status, reload(i).attempts) for i in ids] == [
        (NotificationStatus.PENDING, 0)
    ] * 2
    monkeypatch.undo()
    assert "Sent 2 email(s)" in run_send(app)


def test_rolled_back_email_is_never_sent(app, app_config, smtp_sink):
    app_config(SEND_EMAIL_AFTER_COMMIT=True)
    queue()

    rollback()
    commit()  # a later commit does not run the forgotten hook
    run_send(app)

    assert smtp_sink.messages == []
    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0
