"""`flask accreditation check-expiry`: reminders and suspensions for expiring evidence."""

from __future__ import annotations

from datetime import date

import click
from flask.cli import AppGroup

from marketplace.accreditation.services.memberships import check_expiry
from marketplace.db import commit

accreditation_cli = AppGroup("accreditation", help="Run the dynamic purchasing system.")


@accreditation_cli.command("check-expiry")
@click.option(
    "--today",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Run as if it were this date (YYYY-MM-DD); for testing.",
)
def check_expiry_command(today) -> None:
    """Send evidence reminders and suspend members with expired evidence or overdue declarations."""
    run_date: date | None = today.date() if today else None
    run = check_expiry(run_date)
    commit()
    click.echo(
        f"Sent {run.reminders} reminder(s); suspended {run.suspended_for_evidence} "
        f"membership(s) for expired evidence and {run.suspended_for_redeclaration} "
        "for overdue declarations."
    )
