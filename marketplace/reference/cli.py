"""`flask reference load`: (re)load the reference CSVs."""

from __future__ import annotations

import click
from flask.cli import AppGroup

from marketplace.core.db import db
from marketplace.reference.loader import load_reference_data

reference_cli = AppGroup("reference", help="Reference data: regions, PCC areas, categories.")


@reference_cli.command("load")
def load_command() -> None:
    """Insert or update the reference data from the project's CSV files."""
    with db.engine.begin() as connection:
        counts = load_reference_data(connection)
    click.echo(
        f"Loaded {counts['regions']} regions, {counts['pcc_areas']} PCC areas "
        f"and {counts['categories']} service categories."
    )
