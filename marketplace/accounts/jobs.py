"""Scheduled: remind providers whose yearly VCSE and SME confirmation has fallen due."""

from __future__ import annotations

from datetime import datetime

from marketplace.accounts.services.classification import send_confirmation_reminders
from marketplace.core.clock import london_date
from marketplace.core.scheduler.registry import job


@job(
    "accounts.classification-reminders",
    schedule="40 6 * * *",
    description="Email the administrators of each provider whose yearly VCSE and SME "
    "classification confirmation has fallen due (once each time it falls due).",
)
def remind_classification_confirmations(due_at: datetime) -> dict[str, int]:
    # Each reminder is recorded in the audit log under the provider and its due date, so a
    # second run (or a missed day caught up) sends nothing twice.
    return {"reminders sent": send_confirmation_reminders(london_date(due_at))}
