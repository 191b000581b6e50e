"""Reading the runs: the administrators' list, and each job's last run."""

from __future__ import annotations

import math
from dataclasses import dataclass

import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.core.scheduler.models import ScheduledJobRun

RUNS_PAGE_SIZE = 25


@dataclass
class RunsPage:
    """One page of runs, with what the ``pagination`` macro needs."""

    items: list[ScheduledJobRun]
    page: int
    per_page: int
    total: int
    prev_url: str | None = None
    next_url: str | None = None

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages


def runs(job_name: str | None, page: int, per_page: int = RUNS_PAGE_SIZE) -> RunsPage:
    """Runs newest first (by when they started), of one job or all; a page past the end shows
    the last page."""
    query = sa.select(ScheduledJobRun)
    if job_name:
        query = query.where(ScheduledJobRun.job_name == job_name)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery())) or 0
    page = min(max(1, page), max(1, math.ceil(total / per_page)))
    items = db.session.scalars(
        query.order_by(ScheduledJobRun.started_at.desc(), ScheduledJobRun.id.desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    return RunsPage(list(items), page, per_page, total)


def last_runs() -> dict[str, ScheduledJobRun]:
    """Each job's latest run (by due time)."""
    latest = (
        sa.select(ScheduledJobRun.job_name, sa.func.max(ScheduledJobRun.due_at).label("due_at"))
        .group_by(ScheduledJobRun.job_name)
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(ScheduledJobRun).join(
            latest,
            sa.and_(
                ScheduledJobRun.job_name == latest.c.job_name,
                ScheduledJobRun.due_at == latest.c.due_at,
            ),
        )
    )
    return {run.job_name: run for run in rows}
