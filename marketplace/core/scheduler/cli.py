"""`flask scheduler …`: run the scheduler (long-running), run what is due once, list the jobs."""

from __future__ import annotations

from datetime import UTC, datetime

import click
from flask import current_app
from flask.cli import AppGroup

from marketplace.core.clock import frozen_at, utcnow
from marketplace.core.filters import london_datetime
from marketplace.core.scheduler import queries, registry
from marketplace.core.scheduler.runner import Runner
from marketplace.core.scheduler.services import describe_counts, next_due, run_due

scheduler_cli = AppGroup("scheduler", help="Run the periodic jobs.")


def _report(runs) -> None:
    if not runs:
        click.echo("Nothing is due.")
    for run in runs:
        what = describe_counts(run.counts) if run.outcome == "ok" else run.error
        click.echo(f"{run.job_name} (due {london_datetime(run.due_at)}): {run.outcome}: {what}")


@scheduler_cli.command("run-due")
@click.option(
    "--at",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Run as if it were this UTC time (YYYY-MM-DDTHH:MM); for testing.",
)
def run_due_command(at: datetime | None) -> None:
    """Run every job that is due now and has not run for that due time, then exit (for cron, or
    once by hand)."""
    if at is None:
        _report(run_due())
        return
    with frozen_at(at.replace(tzinfo=UTC)):
        _report(run_due())


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
    runner = Runner(current_app._get_current_object(), tick)
    click.echo(
        f"Scheduler running: looking for due jobs every {runner.tick_seconds} s (Ctrl+C to stop)."
    )
    runner.run_forever()
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
            f"  schedule: {schedule or 'off'} "
            f"(MARKETPLACE_SCHEDULE_{registry.config_key(job.name)})"
        )
        if schedule:
            click.echo(f"  next due: {london_datetime(next_due(schedule, now))}")
        if run is None:
            click.echo("  last run: none")
        else:
            what = describe_counts(run.counts) if run.outcome == "ok" else run.error or ""
            click.echo(f"  last run: due {london_datetime(run.due_at)}: {run.outcome} {what}")
