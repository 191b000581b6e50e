"""The catalogue's `flask catalogue …` commands.

- `reindex`: rebuild the search index from the listings;
- `refresh-prices` (daily): bring the prices the search index carries up to date;
- `notify-stale` (daily): email providers about listings not confirmed for 180 days.
"""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.catalogue.search.index import refresh_prices, reindex_all
from marketplace.catalogue.services.stale import notify_stale_listings
from marketplace.core.db import commit

catalogue_cli = AppGroup("catalogue", help="Service listings, rate cards and search.")


@catalogue_cli.command("reindex")
def reindex_command() -> None:
    """Rebuild the search index (after a bulk load that bypassed the ORM, or to repair it)."""
    visible = reindex_all()
    commit()
    click.echo(f"Indexed {visible} visible listing(s).")


@catalogue_cli.command("refresh-prices")
def refresh_prices_command() -> None:
    """Rewrite the search rows of listings whose price has changed since they were indexed (run
    daily, after midnight: searches are right without it, but slower for those listings)."""
    refreshed = refresh_prices()
    commit()
    click.echo(f"Refreshed the price of {refreshed} listing(s) in the search index.")


@catalogue_cli.command("notify-stale")
def notify_stale_command() -> None:
    """Email each provider once about its listings not confirmed accurate for 180 days."""
    count = notify_stale_listings()
    commit()
    click.echo(f"Emailed providers about {count} stale listing{'' if count == 1 else 's'}.")
