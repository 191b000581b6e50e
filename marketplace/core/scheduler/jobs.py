"""The scheduler's own job: forgetting old runs, so the list of runs does not grow without end."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from marketplace.core.scheduler.registry import job
from marketplace.core.scheduler.services import delete_runs_before


@job(
    "scheduler.forget-old-runs",
    schedule="40 4 * * *",
    description="Delete the records of runs older than SCHEDULER_KEEP_RUNS_DAYS (90 by default).",
)
def forget_old_runs(due_at: datetime) -> dict[str, int]:
    keep = timedelta(days=current_app.config["SCHEDULER_KEEP_RUNS_DAYS"])
    return {"old runs deleted": delete_runs_before(due_at - keep)}
