"""The long-running scheduler: APScheduler ticks, and each tick runs what is due.

APScheduler keeps the time between ticks (never two ticks at once; a late one is not repeated)
and its cron triggers say when each job is due (``registry.trigger``); which runs are due is
decided by ``run_due`` on the service's clock, so `flask scheduler run`, `flask scheduler
run-due` and a test that moves the clock and calls ``tick`` all take the same path.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask

from marketplace.core.clock import LONDON
from marketplace.core.scheduler.services import describe_counts, run_due

log = logging.getLogger("marketplace.scheduler")


class Runner:
    def __init__(self, app: Flask, tick_seconds: int | None = None) -> None:
        self.app = app
        self.tick_seconds = tick_seconds or app.config["SCHEDULER_TICK_SECONDS"]
        self.scheduler = BlockingScheduler(timezone=LONDON)
        self._stopping = threading.Event()

    def tick(self) -> list[str]:
        """Run what is due now, in an app context of its own (a unit of work per job); return a
        line per run."""
        with self.app.app_context():
            lines = [
                f"{run.job_name} (due {run.due_at.isoformat()}): {run.outcome}: "
                + (describe_counts(run.counts) if run.outcome == "ok" else run.error or "")
                for run in run_due()
            ]
        for line in lines:
            log.info("scheduled run %s", line)
        return lines

    def run_forever(self) -> None:
        """Tick until SIGINT or SIGTERM."""
        self.scheduler.add_job(
            self.tick,
            IntervalTrigger(seconds=self.tick_seconds, timezone=LONDON),
            id="tick",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=None,
        )
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        self.scheduler.start()

    def stop(self, signum: int | None = None, frame: object = None) -> None:
        """Stop after the tick under way: its job's transaction commits or rolls back, and no new
        tick starts (a process killed outright leaves a lease that expires instead). Shut down
        from another thread: waiting for the tick inside a signal handler would block it."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        log.warning("stopping the scheduler")
        threading.Thread(target=self.scheduler.shutdown, kwargs={"wait": True}).start()
