"""`flask orders expire` (run daily, or more often): call-offs the provider did not answer within
the response period become expired, their budgets are released and the buyer is told."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.core.db import commit
from marketplace.orders.services.responses import expire_overdue

orders_cli = AppGroup("orders", help="Call-offs.")


@orders_cli.command("expire")
def expire_command() -> None:
    """Expire call-offs whose response period has ended (safe to run again)."""
    expired = expire_overdue()
    commit()
    click.echo(f"Expired {len(expired)} call-off(s).")
