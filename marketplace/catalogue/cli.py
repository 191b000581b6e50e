"""`flask catalogue reindex`: rebuild the search index from the listings."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.catalogue.search import reindex_all
from marketplace.db import commit

catalogue_cli = AppGroup("catalogue", help="Service listings, rate cards and search.")


@catalogue_cli.command("reindex")
def reindex_command() -> None:
    """Rebuild the search index (after a bulk load that bypassed the ORM, or to repair it)."""
    visible = reindex_all()
    commit()
    click.echo(f"Indexed {visible} visible listing(s).")
