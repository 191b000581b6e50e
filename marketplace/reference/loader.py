"""Load the reference CSVs kept in the project; used by the data migration and `flask reference load`."""

from __future__ import annotations

import csv
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

DATA_DIR = Path(__file__).resolve().parent / "data"


def read_csv(name: str) -> list[dict[str, str]]:
    with (DATA_DIR / name).open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def load_reference_data(connection: Connection) -> dict[str, int]:
    """Insert or update regions, PCC areas and categories by code; safe to run repeatedly.

    Written with Core tables, not the ORM models, so a data migration keeps working when the
    models change later.
    """
    metadata = sa.MetaData()
    regions = sa.Table("probation_regions", metadata, autoload_with=connection)
    areas = sa.Table("pcc_areas", metadata, autoload_with=connection)
    categories = sa.Table("service_categories", metadata, autoload_with=connection)
    counts = {"regions": 0, "pcc_areas": 0, "categories": 0}

    def upsert(table: sa.Table, code: str, values: dict) -> int:
        existing = connection.execute(sa.select(table.c.id).where(table.c.code == code)).scalar()
        if existing is None:
            return connection.execute(
                sa.insert(table).values(code=code, **values)
            ).inserted_primary_key[0]
        connection.execute(sa.update(table).where(table.c.id == existing).values(**values))
        return existing

    region_ids = {}
    for row in read_csv("probation_regions.csv"):
        region_ids[row["code"]] = upsert(regions, row["code"], {"name": row["name"]})
        counts["regions"] += 1
    for row in read_csv("pcc_areas.csv"):
        upsert(
            areas, row["code"], {"name": row["name"], "region_id": region_ids[row["region_code"]]}
        )
        counts["pcc_areas"] += 1
    for row in read_csv("service_categories.csv"):
        upsert(categories, row["code"], {"name": row["name"], "is_cohort": row["cohort"] == "yes"})
        counts["categories"] += 1
    return counts
