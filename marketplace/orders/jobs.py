"""Scheduled: call-offs the provider did not answer in time expire (as `flask orders expire`)."""

from __future__ import annotations

from datetime import datetime

from marketplace.core.scheduler.registry import job
from marketplace.orders.models import CallOffStatus
from marketplace.orders.services.responses import expire_overdue


@job(
    "orders.expire-call-offs",
    schedule="10 0 * * *",
    description="Expire call-offs not answered by their respond-by date; release their budgets "
    "and email the buyer (flask orders expire).",
)
def expire_call_offs(due_at: datetime) -> dict[str, int]:
    # Only ``sent`` call-offs past their date are touched, so a second run finds none.
    overdue = expire_overdue()
    # One answered between the query and its lock is left as answered: count the expired.
    return {"call-offs expired": sum(c.status == CallOffStatus.EXPIRED for c in overdue)}
