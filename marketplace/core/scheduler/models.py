"""One row per run of a scheduled job: its lease while it runs, and its record afterwards."""

from __future__ import annotations

import enum
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from marketplace.core.db import UTCDateTime, db, enum_type

JOB_NAME_MAX = 60
ERROR_MAX = 500


class RunOutcome(enum.StrEnum):
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"


class ScheduledJobRun(db.Model):
    """A job's run for one due time. The row is the lease: (job, due time) is unique, so of several
    scheduler processes only the one whose INSERT succeeds runs it. ``lease_expires_at`` lets
    another process take over a run whose process died (its row stays ``running``)."""

    __tablename__ = "scheduled_job_runs"
    __table_args__ = (
        sa.UniqueConstraint("job_name", "due_at", name="uq_scheduled_job_runs_job_name_due_at"),
        sa.CheckConstraint(
            "(outcome = 'running') = (finished_at IS NULL)", name="finished_unless_running"
        ),
        sa.CheckConstraint("(outcome = 'failed') = (error IS NOT NULL)", name="error_iff_failed"),
        sa.CheckConstraint("attempts >= 1", name="attempts_positive"),
        sa.Index("ix_scheduled_job_runs_started_at", "started_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_name: Mapped[str] = mapped_column(sa.String(JOB_NAME_MAX))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[RunOutcome] = mapped_column(
        enum_type(RunOutcome, "scheduled_run_outcome"), default=RunOutcome.RUNNING
    )
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(default=1)
    # What the job did, as the job counted it: {"call-offs expired": 3}.
    counts: Mapped[dict | None] = mapped_column(sa.JSON)
    error: Mapped[str | None] = mapped_column(sa.String(ERROR_MAX))
    # Which process ran it (host and pid), for finding its log.
    runner: Mapped[str] = mapped_column(sa.String(120), default="")
