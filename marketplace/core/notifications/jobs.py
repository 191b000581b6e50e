"""Scheduled: sending the outbox. Emails normally go straight after the commit that queued them;
this sends what that missed (the after-commit send is off, or the mail server was down), with
the outbox's own backoff between attempts."""

from __future__ import annotations

from datetime import datetime

from marketplace.core.notifications.services import send_pending
from marketplace.core.scheduler.registry import job


@job(
    "notifications.send",
    schedule="*/5 * * * *",
    description="Send queued email, retrying failed sends with backoff (flask notifications send).",
)
def send_queued_email(due_at: datetime) -> dict[str, int]:
    # Each email is committed on its own (send_pending), so one bad address holds up no other.
    sent, failed = send_pending()
    return {"emails sent": sent, "emails failed (will be retried)": failed}
