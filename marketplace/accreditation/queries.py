"""Read-only loaders for the dynamic purchasing system: arrangements, criteria, the register."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased, contains_eager, selectinload

from marketplace.accounts.models import Organisation
from marketplace.accounts.queries import Page, paginate
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    Criterion,
    LotMembership,
    MembershipStatus,
)
from marketplace.core.db import db, parse_id
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

# States in which an arrangement has a public page (a pending one is not yet published).
PUBLISHED_STATUSES = (ArrangementStatus.LIVE, ArrangementStatus.SUSPENDED, ArrangementStatus.CLOSED)


def _id(value: Any) -> int | None:
    return parse_id(value)


def arrangements_query(status: ArrangementStatus | None = None) -> sa.Select:
    """Arrangements by name, optionally in one state."""
    query = sa.select(Arrangement).order_by(Arrangement.name, Arrangement.id)
    if status is not None:
        query = query.where(Arrangement.status == status)
    return query


def live_arrangements_query() -> sa.Select:
    return arrangements_query(ArrangementStatus.LIVE).options(
        selectinload(Arrangement.lots).selectinload(ArrangementLot.category),
        selectinload(Arrangement.regions),
    )


def live_arrangements() -> list[Arrangement]:
    return list(db.session.scalars(live_arrangements_query()))


def get_arrangement(
    arrangement_id: Any, *, published_only: bool = False, with_criteria: bool = True
) -> Arrangement | None:
    """An arrangement with its regions, lots, categories and (unless not needed) all criteria."""
    pk = _id(arrangement_id)
    if pk is None:
        return None
    options = [
        selectinload(Arrangement.regions),
        selectinload(Arrangement.lots).selectinload(ArrangementLot.category),
    ]
    if with_criteria:
        options.append(selectinload(Arrangement.lots).selectinload(ArrangementLot.criteria))
    query = sa.select(Arrangement).where(Arrangement.id == pk).options(*options)
    if published_only:
        query = query.where(Arrangement.status.in_(PUBLISHED_STATUSES))
    return db.session.scalar(query)


def get_lot(arrangement: Arrangement, lot_id: Any) -> ArrangementLot | None:
    pk = _id(lot_id)
    return next((lot for lot in arrangement.lots if lot.id == pk), None)


def get_criterion(lot: ArrangementLot, criterion_id: Any) -> Criterion | None:
    pk = _id(criterion_id)
    return next((c for c in lot.criteria if c.id == pk), None)


def criteria_in_force(lot: ArrangementLot) -> list[Criterion]:
    """The lot's questions in the arrangement's current criteria version."""
    version = lot.arrangement.criteria_version
    return [c for c in lot.criteria if c.in_force(version)]


def lot_by_code(arrangement: Arrangement, code: str | None) -> ArrangementLot | None:
    code = (code or "").strip().upper()
    return next((lot for lot in arrangement.lots if lot.category.code.upper() == code), None)


def region_by_code(arrangement: Arrangement, code: str | None) -> ProbationRegion | None:
    code = (code or "").strip().upper()
    return next((r for r in arrangement.regions if r.code.upper() == code), None)


# ---------------------------------------------------------------------------------------------
# The register of members


def register_query(
    arrangement: Arrangement,
    *,
    lot: ArrangementLot | None = None,
    region: ProbationRegion | None = None,
) -> sa.Select:
    """Active members of the arrangement, by lot, area and admission, loaded in one statement."""
    pcc_region = aliased(ProbationRegion)
    query = (
        sa.select(LotMembership)
        .join(LotMembership.lot)
        .join(ArrangementLot.category)
        .join(LotMembership.organisation)
        .outerjoin(LotMembership.region)
        .outerjoin(LotMembership.pcc_area)
        .outerjoin(pcc_region, pcc_region.id == PccArea.region_id)
        .options(
            contains_eager(LotMembership.lot).contains_eager(ArrangementLot.category),
            contains_eager(LotMembership.organisation),
            contains_eager(LotMembership.region),
            contains_eager(LotMembership.pcc_area).contains_eager(PccArea.region, alias=pcc_region),
        )
        # Lots and regions in their own order, then members by admission: the order of the
        # register index, so a page is read straight from it however large the register grows.
        # NULLS FIRST spelled out: SQLite sorts NULLs first by itself, PostgreSQL last.
        .order_by(
            LotMembership.lot_id,
            LotMembership.region_id.asc().nulls_first(),
            LotMembership.pcc_area_id.asc().nulls_first(),
            LotMembership.admitted_on,
            LotMembership.organisation_id,
        )
    )
    return query.where(*_register_filters(arrangement, lot, region))


def _register_filters(
    arrangement: Arrangement, lot: ArrangementLot | None, region: ProbationRegion | None
) -> list:
    """Conditions on lot_memberships alone, shared by the register and its count."""
    conditions = [
        LotMembership.arrangement_id == arrangement.id,
        LotMembership.status == MembershipStatus.ACTIVE,
    ]
    if lot is not None:
        conditions.append(LotMembership.lot_id == lot.id)
    if region is not None:
        # A membership is in a region directly or through one of the region's PCC areas.
        conditions.append(
            sa.or_(
                LotMembership.region_id == region.id,
                LotMembership.pcc_area_id.in_(
                    sa.select(PccArea.id).where(PccArea.region_id == region.id)
                ),
            )
        )
    return conditions


def count_register(
    arrangement: Arrangement,
    *,
    lot: ArrangementLot | None = None,
    region: ProbationRegion | None = None,
) -> int:
    """How many active members match, counted from the register index without joins."""
    return (
        db.session.scalar(
            sa.select(sa.func.count(LotMembership.id)).where(
                *_register_filters(arrangement, lot, region)
            )
        )
        or 0
    )


def register_page(
    arrangement: Arrangement,
    *,
    lot: ArrangementLot | None = None,
    region: ProbationRegion | None = None,
    page: int = 1,
    per_page: int = 50,
    url_for_page: Callable[[int], str] | None = None,
) -> Page[LotMembership]:
    """One page of the register (two statements: the count and the page)."""
    return paginate(
        register_query(arrangement, lot=lot, region=region),
        page,
        per_page,
        url_for_page=url_for_page,
        total=count_register(arrangement, lot=lot, region=region),
    )


def register_rows(arrangement: Arrangement) -> list[LotMembership]:
    """Every active member of the arrangement (one statement), for CSV and JSON downloads."""
    return list(db.session.scalars(register_query(arrangement)))


def register_record(membership: LotMembership) -> dict[str, Any]:
    """A register entry as published: organisation facts only, no personal data."""
    organisation = membership.organisation
    return {
        "organisation": organisation.name,
        "organisation_type": organisation.type.value,
        "charity_number": organisation.charity_number,
        "companies_house_number": organisation.companies_house_number,
        "lot_code": membership.lot.category.code,
        "lot_name": membership.lot.category.name,
        "region_code": membership.region.code if membership.region else None,
        "pcc_area_code": membership.pcc_area.code if membership.pcc_area else None,
        "area_name": membership.area_name,
        "admitted_on": membership.admitted_on,
    }


REGISTER_COLUMNS = [
    "organisation",
    "organisation_type",
    "charity_number",
    "companies_house_number",
    "lot_code",
    "lot_name",
    "region_code",
    "pcc_area_code",
    "area_name",
    "admitted_on",
]


def organisation_memberships_query(organisation: Organisation) -> sa.Select:
    """An organisation's lot memberships in every state, newest arrangement first."""
    return (
        sa.select(LotMembership)
        .join(LotMembership.arrangement)
        .join(LotMembership.lot)
        .join(ArrangementLot.category)
        .where(LotMembership.organisation_id == organisation.id)
        .options(
            contains_eager(LotMembership.arrangement),
            contains_eager(LotMembership.lot).contains_eager(ArrangementLot.category),
            selectinload(LotMembership.region),
            selectinload(LotMembership.pcc_area),
        )
        .order_by(Arrangement.name, ServiceCategory.name, LotMembership.id)
    )


# --- applications and assessment ---
