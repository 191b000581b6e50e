"""Read-only loaders for reference data."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory


def regions_query() -> sa.Select:
    return sa.select(ProbationRegion).order_by(ProbationRegion.code)


def pcc_areas_query(region_code: str | None = None) -> sa.Select:
    query = sa.select(PccArea).join(PccArea.region).order_by(PccArea.name)
    if region_code:
        query = query.where(ProbationRegion.code == region_code)
    return query


def categories_query() -> sa.Select:
    return sa.select(ServiceCategory).order_by(ServiceCategory.name)


def all_regions() -> list[ProbationRegion]:
    return list(db.session.scalars(regions_query()))


def all_pcc_areas() -> list[PccArea]:
    return list(db.session.scalars(pcc_areas_query()))


def all_categories() -> list[ServiceCategory]:
    return list(db.session.scalars(categories_query()))
