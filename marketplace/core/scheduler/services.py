"""Running what is due: once per job and due time, however many scheduler processes there are.

The lease is the run's row: ``scheduled_job_runs`` is unique on (job, due time), so the process
whose INSERT commits first runs the job and every other one finds the row and leaves it. A row
still ``running`` after its lease expired belongs to a process that died; the next process to
look takes it over with a conditional UPDATE (only one can), and runs the job again, which is
safe because every job is. "Now" is the service's clock (``marketplace.core.clock``), so a test
moves the scheduler's time as it moves everything else's.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db, rollback
from marketplace.core.scheduler import registry
from marketplace.core.scheduler.models import ERROR_MAX, RunOutcome, ScheduledJobRun
from marketplace.core.scheduler.registry import Job

log = logging.getLogger("marketplace.scheduler")

# How far back to look for a job's last due time: a schedule that fires less often than this
# (once in two years) is never due.
_LOOK_BACK_LIMIT = timedelta(days=800)


def latest_due(schedule: str, now: datetime) -> datetime | None:
    """The last time at or before ``now`` that the schedule fired (UTC), or None."""
    trigger = registry.trigger(schedule)
    window = timedelta(minutes=1)
    while window <= _LOOK_BACK_LIMIT:
        fire = trigger.get_next_fire_time(None, now - window)
        if fire is not None and fire <= now:
            # The window is at most twice the gap between firings: a step or two forward.
            while True:
                following = trigger.get_next_fire_time(fire, fire + timedelta(microseconds=1))
                if following is None or following > now:
                    return fire.astimezone(now.tzinfo)
                fire = following
        window *= 2
    return None


def next_due(schedule: str, now: datetime) -> datetime | None:
    """The first time after ``now`` that the schedule fires."""
    fire = registry.trigger(schedule).get_next_fire_time(None, now + timedelta(microseconds=1))
    return fire.astimezone(now.tzinfo) if fire is not None else None


@dataclass(frozen=True)
class DueJob:
    job: Job
    due_at: datetime


def due_jobs(now: datetime, schedules: Mapping[str, str] | None = None) -> list[DueJob]:
    """Each job turned on, with its latest due time (a run may exist for it already)."""
    schedules = current_app.config["SCHEDULES"] if schedules is None else schedules
    due = []
    for job in registry.registered():
        schedule = registry.schedule_of(job, schedules)
        if schedule is None:
            continue
        due_at = latest_due(schedule, now)
        if due_at is not None:
            due.append(DueJob(job, due_at))
    return due


def run_due(now: datetime | None = None) -> list[ScheduledJobRun]:
    """Run every job whose latest due time has no run yet (or only a dead one); return the runs
    this process made. One job failing is recorded and the others still run."""
    now = now or utcnow()
    runs = []
    for item in due_jobs(now):
        run = run_job(item.job, item.due_at)
        if run is not None:
            runs.append(run)
    return runs


def run_job(job: Job, due_at: datetime) -> ScheduledJobRun | None:
    """Run ``job`` for ``due_at`` unless another process has (or is running it); return the run
    recorded, or None if it was not this process's to run."""
    run = _claim(job, due_at)
    if run is None:
        return None
    run_id, attempt = run.id, run.attempts
    try:
        counts = dict(job.function(due_at) or {})
        _finish(run_id, attempt, RunOutcome.OK, counts=counts)
        commit()  # the job's work and its record together
    except Exception as error:  # a job's failure is recorded, and stops no other job
        rollback()
        log.exception("scheduled job %s (due %s) failed", job.name, due_at.isoformat())
        _finish(run_id, attempt, RunOutcome.FAILED, error=_summary(error))
        commit()
    return db.session.get(ScheduledJobRun, run_id)


def _claim(job: Job, due_at: datetime) -> ScheduledJobRun | None:
    """Take the lease on (job, due_at): a new row, or a dead run's expired one; commit it, so
    that other processes see it at once."""
    now = utcnow()
    existing = db.session.scalar(
        sa.select(ScheduledJobRun).where(
            ScheduledJobRun.job_name == job.name, ScheduledJobRun.due_at == due_at
        )
    )
    if existing is None:
        run = ScheduledJobRun(
            job_name=job.name,
            due_at=due_at,
            outcome=RunOutcome.RUNNING,
            started_at=now,
            lease_expires_at=now + job.lease,
            attempts=1,
            runner=_runner(),
        )
        db.session.add(run)
        try:
            commit()
        except IntegrityError:  # another process inserted it first: it is theirs
            rollback()
            return None
        return run
    if existing.outcome != RunOutcome.RUNNING or existing.lease_expires_at > now:
        rollback()
        return None
    # Taken over only if nobody else took it over since it was read (the attempt is the guard).
    taken = db.session.execute(
        sa.update(ScheduledJobRun)
        .where(
            ScheduledJobRun.id == existing.id,
            ScheduledJobRun.outcome == RunOutcome.RUNNING,
            ScheduledJobRun.attempts == existing.attempts,
        )
        .values(
            attempts=existing.attempts + 1,
            started_at=now,
            lease_expires_at=now + job.lease,
            runner=_runner(),
        )
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        rollback()
        return None
    commit()
    log.warning("scheduled job %s (due %s): took over a run that did not finish", job.name, due_at)
    return db.session.get(ScheduledJobRun, existing.id, populate_existing=True)


def _finish(
    run_id: int,
    attempt: int,
    outcome: RunOutcome,
    *,
    counts: dict[str, int] | None = None,
    error: str | None = None,
) -> None:
    """Record how the run ended, unless another process has taken it over meanwhile (its lease
    expired while this one still ran): then that process's attempt is the one recorded."""
    done = db.session.execute(
        sa.update(ScheduledJobRun)
        .where(ScheduledJobRun.id == run_id, ScheduledJobRun.attempts == attempt)
        .values(outcome=outcome, finished_at=utcnow(), counts=counts, error=error)
        .execution_options(synchronize_session=False)
    )
    if done.rowcount != 1:
        log.warning("scheduled run %s was taken over by another process before it finished", run_id)


def _summary(error: BaseException) -> str:
    detail = getattr(error, "detail", None) or str(error) or "no message"
    return f"{type(error).__name__}: {detail}"[:ERROR_MAX]


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:120]


def delete_runs_before(cutoff: datetime) -> int:
    """Delete the records of runs that started before ``cutoff`` and have finished."""
    result = db.session.execute(
        sa.delete(ScheduledJobRun)
        .where(ScheduledJobRun.started_at < cutoff, ScheduledJobRun.outcome != RunOutcome.RUNNING)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount


def describe_counts(counts: Mapping[str, int] | None) -> str:
    """``{"call-offs expired": 3, "emails sent": 1}`` as "Call-offs expired: 3; emails sent: 1"
    (a label reads right with any number)."""
    if not counts:
        return "Nothing to do"
    text = "; ".join(f"{label}: {number:,}" for label, number in counts.items())
    return text[:1].upper() + text[1:]
