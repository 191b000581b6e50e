"""`flask catalogue notify-stale`: email providers about listings not confirmed for 180 days.

Kept apart from the catalogue's other commands so that either module can grow on its own:
``register`` adds the command to the ``catalogue`` group if one is registered already, or
makes that group.
"""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from marketplace.catalogue.services.stale import notify_stale_listings
from marketplace.core.db import commit


@click.command("notify-stale")
def notify_stale_command() -> None:
    """Email each provider once about its listings not confirmed accurate for 180 days."""
    count = notify_stale_listings()
    commit()
    click.echo(f"Emailed providers about {count} stale listing{'' if count == 1 else 's'}.")


stale_cli = AppGroup("catalogue", help="Run the catalogue of services.")
stale_cli.add_command(notify_stale_command)


def register(app: Flask) -> None:
    """Add ``notify-stale`` to the app's ``catalogue`` command group, making it if needed."""
    group = app.cli.commands.get("catalogue")
    if isinstance(group, click.Group):
        group.add_command(notify_stale_command)
    else:
        app.cli.add_command(stale_cli)
