"""Reads of forward plans: every published entry (the public list, its filters and the API) and
an organisation's own (its planners' list). The page and the API use the same statements."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    LotMembership,
    MembershipStatus,
)
from marketplace.core.db import db
from marketplace.insight.models import PlannedProcurement, PlanStatus
from marketplace.reference.models import PccArea


def _options() -> list:
    return [
        joinedload(PlannedProcurement.organisation),
        joinedload(PlannedProcurement.category),
        joinedload(PlannedProcurement.region),
        joinedload(PlannedProcurement.pcc_area),
    ]


def _in_region(region_id: int):
    """An entry for the region, or for one of its PCC areas."""
    return sa.or_(
        PlannedProcurement.region_id == region_id,
        PlannedProcurement.pcc_area_id.in_(
            sa.select(PccArea.id).where(PccArea.region_id == region_id)
        ),
    )


def member_of_lot_in_area(organisation_id: int):
    """An entry for a lot and area where the organisation holds an active membership: the same
    reach as the emails (``services.forward_plan.providers_to_tell``)."""
    memberships = (
        sa.select(ArrangementLot.category_id, LotMembership.region_id, LotMembership.pcc_area_id)
        .join(ArrangementLot, ArrangementLot.id == LotMembership.lot_id)
        .join(Arrangement, Arrangement.id == LotMembership.arrangement_id)
        .where(
            LotMembership.organisation_id == organisation_id,
            LotMembership.status == MembershipStatus.ACTIVE,
            Arrangement.status == ArrangementStatus.LIVE,
        )
        .subquery()
    )
    pcc_region = (
        sa.select(PccArea.region_id)
        .where(PccArea.id == PlannedProcurement.pcc_area_id)
        .scalar_subquery()
    )
    membership_pcc_region = (
        sa.select(PccArea.region_id)
        .where(PccArea.id == memberships.c.pcc_area_id)
        .scalar_subquery()
    )
    return sa.exists().where(
        memberships.c.category_id == PlannedProcurement.category_id,
        sa.or_(
            # A region-wide membership: the region, or a PCC area in it.
            memberships.c.region_id == PlannedProcurement.region_id,
            memberships.c.region_id == pcc_region,
            # A PCC-area membership: that PCC area, or the whole region it lies in.
            memberships.c.pcc_area_id == PlannedProcurement.pcc_area_id,
            membership_pcc_region == PlannedProcurement.region_id,
        ),
    )


def published_query(
    *,
    category_id: int | None = None,
    region_id: int | None = None,
    year: int | None = None,
    member_id: int | None = None,
) -> sa.Select:
    """Published entries, soonest quarter first, filtered by lot, region (with its PCC areas),
    financial year and (for a provider) the lots and areas it is a member of."""
    query = (
        sa.select(PlannedProcurement)
        .where(PlannedProcurement.status == PlanStatus.PUBLISHED)
        .options(*_options())
        .order_by(
            PlannedProcurement.financial_year,
            PlannedProcurement.quarter,
            PlannedProcurement.published_at,
            PlannedProcurement.id,
        )
    )
    if category_id is not None:
        query = query.where(PlannedProcurement.category_id == category_id)
    if region_id is not None:
        query = query.where(_in_region(region_id))
    if year is not None:
        query = query.where(PlannedProcurement.financial_year == year)
    if member_id is not None:
        query = query.where(member_of_lot_in_area(member_id))
    return query


def published_years() -> list[int]:
    return list(
        db.session.scalars(
            sa.select(PlannedProcurement.financial_year)
            .where(PlannedProcurement.status == PlanStatus.PUBLISHED)
            .distinct()
            .order_by(PlannedProcurement.financial_year)
        )
    )


def own_query(organisation_id: int) -> sa.Select:
    """The organisation's own entries: drafts and published first, soonest quarter first."""
    return (
        sa.select(PlannedProcurement)
        .where(PlannedProcurement.organisation_id == organisation_id)
        .options(*_options())
        .order_by(
            (PlannedProcurement.status == PlanStatus.WITHDRAWN),
            PlannedProcurement.financial_year,
            PlannedProcurement.quarter,
            PlannedProcurement.id,
        )
    )
