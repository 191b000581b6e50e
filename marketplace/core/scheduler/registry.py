"""The jobs the scheduler knows: each feature declares its own in its ``jobs.py``.

    @job("orders.expire-call-offs", schedule="10 0 * * *", description="…")
    def expire_call_offs(due_at: datetime) -> dict[str, int]:
        ...

A job is given the time it was due and returns what it did as counts ({"call-offs expired": 3});
it flushes and the scheduler commits, as a view would. Every job must be safe to run again for
the same due time: a run whose process died is run again once its lease expires.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.cron import CronTrigger

from marketplace.core.clock import LONDON
from marketplace.core.scheduler.models import JOB_NAME_MAX

JobFunction = Callable[[datetime], Mapping[str, int] | None]
OFF = "off"


@dataclass(frozen=True)
class Job:
    name: str
    function: JobFunction
    # When it is due, as a crontab line read in London time ("10 0 * * *": 00:10 every day).
    schedule: str
    description: str
    # How long a run may take before another process may assume it died and run it again.
    lease: timedelta


_JOBS: dict[str, Job] = {}


def job(
    name: str,
    *,
    schedule: str,
    description: str,
    lease: timedelta = timedelta(minutes=30),
) -> Callable[[JobFunction], JobFunction]:
    """Declare a scheduled job (its default schedule; configuration may change or turn it off)."""
    if not re.fullmatch(r"[a-z][a-z0-9.-]*", name) or len(name) > JOB_NAME_MAX:
        raise ValueError(f"a job's name is lower case letters, digits, dots and dashes: {name!r}")
    trigger(schedule)  # a mistake in a default schedule fails at import, not at 3 a.m.

    def register(function: JobFunction) -> JobFunction:
        existing = _JOBS.get(name)
        if existing is not None and existing.function is not function:
            raise ValueError(f"two jobs are called {name!r}")
        _JOBS[name] = Job(name, function, schedule, description, lease)
        return function

    return register


def registered() -> list[Job]:
    """Every declared job, by name."""
    return [_JOBS[name] for name in sorted(_JOBS)]


def get(name: str) -> Job | None:
    return _JOBS.get(name)


def trigger(schedule: str) -> CronTrigger:
    """The APScheduler trigger for a crontab line in London time (it keeps to local time across
    the clock changes)."""
    return CronTrigger.from_crontab(schedule, timezone=LONDON)


def config_key(name: str) -> str:
    """How a job is named in configuration: ``orders.expire-call-offs`` is
    ``MARKETPLACE_SCHEDULE_ORDERS_EXPIRE_CALL_OFFS``."""
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def schedule_of(job: Job, schedules: Mapping[str, str]) -> str | None:
    """The job's schedule under ``schedules`` (configuration, by ``config_key``), or None if it is
    turned off there."""
    schedule = schedules.get(config_key(job.name), job.schedule).strip()
    return None if schedule.lower() == OFF else schedule


def check_schedules(schedules: Mapping[str, str]) -> None:
    """Refuse, when the app starts, configuration that names no job or is not a crontab line
    (rather than a scheduler that fails at every tick)."""
    known = {config_key(job.name) for job in registered()}
    for key, value in schedules.items():
        if key not in known:
            raise ValueError(
                f"MARKETPLACE_SCHEDULE_{key} names no scheduled job; the jobs are "
                + ", ".join(f"MARKETPLACE_SCHEDULE_{name}" for name in sorted(known))
            )
        if value.strip().lower() != OFF:
            try:
                trigger(value)
            except ValueError as error:
                raise ValueError(
                    f"MARKETPLACE_SCHEDULE_{key}={value!r} is neither a crontab line "
                    f"(minute hour day month weekday, London time) nor 'off': {error}"
                ) from None
