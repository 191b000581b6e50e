"""Queue emails in the outbox and deliver them with retries and exponential backoff."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app, render_template

from marketplace.accounts.models import Role
from marketplace.accounts.queries import people_with_roles
from marketplace.db import after_commit, db, utcnow
from marketplace.notifications.models import Notification, NotificationStatus
from marketplace.notifications.senders import DeliveryError, get_sender

log = logging.getLogger(__name__)

MAX_BACKOFF = timedelta(hours=6)


def queue_email(to: str, template: str, **context) -> Notification:
    """Write an email to the outbox; it is sent after the transaction commits."""
    rendered = render_template(f"email/{template}.txt", **context).strip()
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
        # By then committed, so its key is known without loading it again.
        after_commit(lambda: deliver_after_commit(sa.inspect(notification).identity[0]))
    return notification


def email_people(organisation_id: int, roles: Iterable[Role], template: str, **context) -> None:
    """Queue ``template`` to each active person holding any of ``roles`` in the organisation."""
    for user in people_with_roles(organisation_id, roles):
        queue_email(user.email, template, user=user, **context)


def deliver_after_commit(notification_id: int) -> None:
    """Try to deliver one email straight away; failures wait for `flask notifications send`."""
    try:
        notification = db.session.get(Notification, notification_id)
        if notification is not None and notification.status == NotificationStatus.PENDING:
            _attempt(notification)
            db.session.commit()
    except Exception:  # the change is committed; the outbox keeps the email for the retry
        log.exception("immediate delivery of notification %s failed", notification_id)
        db.session.rollback()


def backoff_for(attempts: int) -> timedelta:
    """Minutes double with each attempt: 1, 2, 4 … up to six hours."""
    exponent = min(max(attempts - 1, 0), 16)  # 2**16 minutes is already past the cap
    return min(timedelta(minutes=2**exponent), MAX_BACKOFF)


def _attempt(notification: Notification) -> bool:
    notification.attempts += 1
    try:
        get_sender().send(notification.to_email, notification.subject, notification.body)
    except DeliveryError as error:
        notification.last_error = str(error)[:500]
        if notification.attempts >= current_app.config["NOTIFICATION_MAX_ATTEMPTS"]:
            notification.status = NotificationStatus.FAILED
        else:
            notification.next_attempt_at = utcnow() + backoff_for(notification.attempts)
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
        locked = sa.select(Notification).where(Notification.id == notification_id)
        if db.engine.dialect.name == "postgresql":
            locked = locked.with_for_update(skip_locked=True)
        notification = db.session.scalars(locked).first()
        if notification is None or notification.status != NotificationStatus.PENDING:
            db.session.rollback()
            continue
        if _attempt(notification):
            sent += 1
        else:
            failed += 1
        db.session.commit()
    return sent, failed
