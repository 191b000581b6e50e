"""`flask notifications send`: deliver the outbox."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.core.notifications.services import send_pending

notifications_cli = AppGroup("notifications", help="Deliver queued email.")


@notifications_cli.command("send")
@click.option("--limit", default=500, show_default=True, help="Most emails to try in this run.")
def send_command(limit: int) -> None:
    """Deliver pending emails, retrying failures with exponential backoff."""
    sent, failed = send_pending(limit)
    click.echo(f"Sent {sent} email(s); {failed} failed and will be retried later.")
