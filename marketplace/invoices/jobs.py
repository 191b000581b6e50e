"""Scheduled: the monthly invoice run and overdue notices (as `flask invoices run` and
`flask invoices notify-overdue`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from marketplace.core.clock import london_date
from marketplace.core.scheduler.registry import job
from marketplace.invoices.services.monthly_run import run_period
from marketplace.invoices.services.overdue import notify_overdue


@job(
    "invoices.monthly-run",
    schedule="0 3 1 * *",
    description="Draft invoices for the month just ended from recorded delivery and verified "
    "outcomes (flask invoices run --period YYYY-MM).",
    lease=timedelta(hours=3),
)
def monthly_invoice_run(due_at: datetime) -> dict[str, int]:
    # The month before the one the run was due in, even if the run is late: a delivery already
    # on a line is never billed twice, so running it again drafts nothing more.
    month = (london_date(due_at).replace(day=1) - timedelta(days=1)).strftime("%Y-%m")
    result = run_period(month)
    return {
        f"invoices drafted for {month}": result.created,
        "drafts extended": result.extended,
        "outcome invoices drafted": result.outcome_invoices,
    }


@job(
    "invoices.notify-overdue",
    schedule="0 9 * * *",
    description="Tell buyers and providers of invoices unpaid past their due date, once per "
    "invoice (flask invoices notify-overdue).",
)
def notify_overdue_invoices(due_at: datetime) -> dict[str, int]:
    return {"overdue invoices notified": len(notify_overdue())}
