"""`flask scheduler …`: run the scheduler (long-running), run what is due once, list the jobs."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime

import click
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger
from flask import current_app
from flask.cli import AppGroup

from marketplace.core.clock import LONDON, utcnow
from marketplace.core.filters import london_datetime
from marketplace.core.scheduler import queries, registry
from marketplace.core.scheduler.services import describe_counts, next_due, run_due

scheduler_cli = AppGroup("scheduler", help="Run the periodic jobs.")
log = logging.getLogger("marketplace.scheduler")


def _report(runs) -> None:
    for run in runs:
        what = describe_counts(run.counts) if run.outcome == "ok" else run.error
        click.echo(f"{run.job_name} (due {london_datetime(run.due_at)}): {run.outcome}: {what}")


@scheduler_cli.command("run-due")
def run_due_command() -> None:
    """Run every job that is due now and has not run for that due time, then exit (for cron, or
    once by hand)."""
    runs = run_due()
    if not runs:
        click.echo("Nothing is due.")
    _report(runs)


@scheduler_cli.command("run")
@click.option(
    "--tick",
    type=click.IntRange(1, 3600),
    default=None,
    help="Seconds between looks for due jobs (default SCHEDULER_TICK_SECONDS, 30).",
)
def run_command(tick: int | None) -> None:
    """Run the scheduler until stopped (Ctrl+C or SIGTERM): every tick, run what is due. Start as
    many as you like (one per machine); each job still runs once per due time."""
    app = current_app._get_current_object()
    seconds = tick or app.config["SCHEDULER_TICK_SECONDS"]
    # APScheduler keeps time and runs the ticks (never two at once, a late one not repeated);
    # what is due is decided by run_due on the service's clock, the same as `run-due`.
    scheduler = BlockingScheduler(timezone=LONDON)

    def tick_once() -> None:
        with app.app_context():
            _report(run_due())

    scheduler.add_job(
        tick_once,
        IntervalTrigger(seconds=seconds, timezone=LONDON),
        id="tick",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=None,
    )

    stopping = threading.Event()

    def stop(signum, frame) -> None:
        # The tick under way finishes its job (its transaction commits or rolls back); no new
        # one starts. A process killed outright leaves a lease that expires instead. Shut down
        # from another thread: waiting for the tick inside a signal handler would block it.
        if stopping.is_set():
            return
        stopping.set()
        click.echo(f"Stopping the scheduler ({signal.Signals(signum).name}).")
        threading.Thread(target=scheduler.shutdown, kwargs={"wait": True}).start()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    click.echo(f"Scheduler running: looking for due jobs every {seconds} s (Ctrl+C to stop).")
    scheduler.start()
    click.echo("Scheduler stopped.")


@scheduler_cli.command("jobs")
def jobs_command() -> None:
    """List the jobs: schedule (London time), next due time and last run."""
    now = utcnow()
    last = queries.last_runs()
    schedules = current_app.config["SCHEDULES"]
    for job in registry.registered():
        schedule = registry.schedule_of(job, schedules)
        run = last.get(job.name)
        click.echo(job.name)
        click.echo(f"  {job.description}")
        click.echo(
            f"  schedule: {schedule or 'off'} (MARKETPLACE_SCHEDULE_{registry.config_key(job.name)})"
        )
        if schedule:
            click.echo(f"  next due: {london_datetime(next_due(schedule, now))}")
        if run is None:
            click.echo("  last run: none")
        else:
            what = describe_counts(run.counts) if run.outcome == "ok" else run.error or ""
            click.echo(
                f"  last run: due {london_datetime(run.due_at)}: {run.outcome} {what}".rstrip()
            )
