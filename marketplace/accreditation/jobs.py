"""Scheduled: evidence reminders and suspensions for expired evidence or overdue declarations
(as `flask accreditation check-expiry`)."""

from __future__ import annotations

from datetime import datetime

from marketplace.accreditation.services.expiry import check_expiry
from marketplace.core.scheduler.registry import job


@job(
    "accreditation.check-expiry",
    schedule="20 0 * * *",
    description="Remind members of evidence about to expire (30 and 7 days before), suspend "
    "members whose evidence expired or whose declaration is overdue "
    "(flask accreditation check-expiry).",
)
def check_evidence_expiry(due_at: datetime) -> dict[str, int]:
    # Reminders are sent once per window (recorded in the audit log) and only active memberships
    # are suspended, so a second run sends and suspends nothing more.
    run = check_expiry()
    return {
        "reminders sent": run.reminders,
        "memberships suspended for expired evidence": run.suspended_for_evidence,
        "memberships suspended for overdue declarations": run.suspended_for_redeclaration,
    }
