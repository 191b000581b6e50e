"""Scheduled: bring the spend ledger up to date (readers do too, before they read; this keeps
the work each of them finds small)."""

from __future__ import annotations

from datetime import datetime

from marketplace.core.scheduler.registry import job
from marketplace.insight.services.ledger import catch_up


@job(
    "insight.catch-up-ledger",
    schedule="*/5 * * * *",
    description="Bring the spend ledger up to date with the call-offs, invoices and "
    "classifications changed since (flask insight check-ledger checks it).",
)
def catch_up_ledger(due_at: datetime) -> dict[str, int]:
    # catch_up commits in its own session, exactly once however many run at once.
    return {"call-offs brought up to date": catch_up()}
