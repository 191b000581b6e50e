"""Queue emails in the outbox and deliver them with retries and exponential backoff."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import jinja2
import sqlalchemy as sa
from flask import current_app, g
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.core.clock import utcnow
from marketplace.core.db import after_commit, commit, db, lock_rows
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.core.notifications.senders import DeliveryError, get_sender
from marketplace.core.urls import absolute_url

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)


def queue_email(to: str, template: str, **context) -> Notification:
    """Write an email to the outbox; it is sent after the transaction commits."""
    # Rendered with what the caller gives and the app's Jinja globals (``config``, ``url_for``),
    # not through ``render_template``: that runs the pages' context processors, which work out
    # the navigation of whoever is signed in, and an email shows none of it.
    email = email_environment().get_template(f"email/{template}.txt")
    rendered = email.render(context).strip()
    subject_line, _, body = rendered.partition("\n")
    if not subject_line.startswith("Subject: "):
        raise ValueError(f"email template {template} must start with a 'Subject: ' line")
    notification = Notification(
        to_email=to,
        subject=subject_line.removeprefix("Subject: ").strip(),
        body=body.strip() + "\n",
        template=template,
    )
    # Written with the caller's next flush or commit: a call that queues several emails does not
    # make a round trip for each.
    db.session.add(notification)
    if current_app.config["SEND_EMAIL_AFTER_COMMIT"]:
        _delivery_after_commit().emails.append(
            (notification, notification.to_email, notification.subject, notification.body)
        )
    return notification


def email_environment() -> jinja2.Environment:
    """The pages' Jinja environment (loaders, filters, globals) as plain text needs it.

    The pages trim the newline after each block tag (``trim_blocks``), which suits HTML; in a
    plain-text email that newline is the text: trimmed, a line after ``{% endif %}`` or
    ``{% endfor %}`` runs into the one before it and paragraphs lose their blank lines."""
    pages = current_app.jinja_env
    environment = current_app.extensions.get("email_jinja_env")
    if environment is None or environment.loader is not pages.loader:
        # A cache of its own: the pages' cache holds templates compiled with their settings.
        environment = pages.overlay(trim_blocks=False, lstrip_blocks=False, cache_size=400)
        # Links in emails are built on the configured base URL, never on a request's Host.
        environment.globals = {**environment.globals, "absolute_url": absolute_url}
        current_app.extensions["email_jinja_env"] = environment
    return environment


@dataclass
class _Delivery:
    """The after-commit hook that sends the emails this unit of work queued, all in one go.

    It lives among the unit of work's hooks, so a rollback forgets it with them."""

    # Each with its address, subject and body as queued: the commit may expire the objects.
    emails: list[tuple[Notification, str, str, str]] = field(default_factory=list)

    def __call__(self) -> None:
        deliver_after_commit(self.emails)


def _delivery_after_commit() -> _Delivery:
    for hook in g.get("_after_commit_hooks", []):
        if isinstance(hook, _Delivery):
            return hook
    delivery = _Delivery()
    after_commit(delivery)
    return delivery


_NOTIFICATIONS = Notification.__table__


def deliver_after_commit(emails: list[tuple[Notification, str, str, str]]) -> None:
    """Try to deliver just-committed emails straight away; what fails waits for
    `flask notifications send`.

    One UPDATE claims them all, marked sent: it takes only those still pending, and holds their
    rows until the commit, so the periodic command (which skips locked rows) cannot send them
    too. An email the sender refuses is put back to wait for its retry before the commit; any
    other failure rolls the claim back, leaving them all pending. The request's objects are not
    expired by this commit: a view that answers with what it wrote reads nothing again.
    """
    if not emails:
        return
    by_id = {sa.inspect(email[0]).identity[0]: email for email in emails}
    now = utcnow()
    try:
        claimed = db.session.execute(
            sa.update(_NOTIFICATIONS)
            .where(_NOTIFICATIONS.c.id.in_(by_id))
            .where(_NOTIFICATIONS.c.status == NotificationStatus.PENDING)
            .values(
                status=NotificationStatus.SENT,
                sent_at=now,
                attempts=_NOTIFICATIONS.c.attempts + 1,
                last_error=None,
            )
            .returning(_NOTIFICATIONS.c.id, _NOTIFICATIONS.c.attempts)
        ).all()
        sender = get_sender()
        outcomes = {}
        for notification_id, attempts in sorted(claimed):
            _, to, subject, body = by_id[notification_id]
            try:
                sender.send(to, subject, body)
            except DeliveryError as error:
                outcomes[notification_id] = _put_back(notification_id, attempts, str(error), now)
            else:
                outcomes[notification_id] = dict(
                    status=NotificationStatus.SENT, sent_at=now, attempts=attempts, last_error=None
                )
        commit(keep_loaded=True)
    except Exception:  # the change is committed; the outbox keeps the email for the retry
        log.exception("immediate delivery of notifications %s failed", sorted(by_id))
        db.session.rollback()
        return
    for notification_id, values in outcomes.items():
        for key, value in values.items():
            set_committed_value(by_id[notification_id][0], key, value)


def _put_back(notification_id: int, attempts: int, error: str, now: datetime) -> dict:
    """Undo the claim of an email the sender refused: pending until its backoff has passed,
    or failed after the last attempt. Returns the values written."""
    values = dict(sent_at=None, attempts=attempts, status=NotificationStatus.PENDING)
    values.update(_after_refusal(attempts, error, now))
    db.session.execute(
        sa.update(_NOTIFICATIONS).where(_NOTIFICATIONS.c.id == notification_id).values(**values)
    )
    return values


def backoff_for(attempts: int) -> timedelta:
    """Minutes double with each attempt: 1, 2, 4 … up to six hours."""
    exponent = min(max(attempts - 1, 0), 16)  # 2**16 minutes is already past the cap
    return min(timedelta(minutes=2**exponent), MAX_BACKOFF)


def _after_refusal(attempts: int, error: str, now: datetime) -> dict:
    """What an email becomes when the sender refuses its ``attempts``-th try: failed after the
    last attempt, else due again once its backoff has passed."""
    if attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
        return dict(last_error=error[:500], status=NotificationStatus.FAILED)
    return dict(last_error=error[:500], next_attempt_at=now + backoff_for(attempts))


def _attempt(notification: Notification) -> bool:
    notification.attempts += 1
    try:
        get_sender().send(notification.to_email, notification.subject, notification.body)
    except DeliveryError as error:
        for key, value in _after_refusal(notification.attempts, str(error), utcnow()).items():
            setattr(notification, key, value)
        return False
    notification.status = NotificationStatus.SENT
    notification.sent_at = utcnow()
    notification.last_error = None
    return True


def send_pending(limit: int = 500) -> tuple[int, int]:
    """Deliver due emails, each in its own transaction; return (sent, failed) counts."""
    sent = failed = 0
    query = (
        sa.select(Notification.id)
        .where(Notification.status == NotificationStatus.PENDING)
        .where(Notification.next_attempt_at <= utcnow())
        .order_by(Notification.id)
        .limit(limit)
    )
    for notification_id in db.session.scalars(query).all():
        if db.engine.dialect.name == "postgresql":
            locked = sa.select(Notification).where(Notification.id == notification_id)
            notification = db.session.scalars(locked.with_for_update(skip_locked=True)).first()
        else:
            # One writer at a time: the write lock first, so the status read is the one
            # committed last (another sender may have sent it since the list was read).
            [notification] = lock_rows(Notification, [notification_id]) or [None]
        if notification is None or notification.status != NotificationStatus.PENDING:
            db.session.rollback()
            continue
        if _attempt(notification):
            sent += 1
        else:
            failed += 1
        db.session.commit()
    return sent, failed
