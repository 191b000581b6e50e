"""How a competition's areas match a membership's (or an application's) area.

A PCC area lies in one probation region (``PccArea.region_id``). A competition for a region
reaches providers admitted in that region and those admitted in any PCC area within it (they
serve part of it); a competition for a PCC area reaches providers admitted in that PCC area and
those admitted in the whole region it lies in (a region-wide member serves every part of it),
but not those admitted only in another PCC area of that region."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accreditation.models import LotMembership
from marketplace.competitions.models import Competition
from marketplace.core.db import db
from marketplace.reference.models import PccArea


def reached_areas(competition: Competition) -> tuple[set[int], set[int]]:
    """(region ids, PCC area ids) whose members the competition reaches (see the module)."""
    region_ids = {a.region_id for a in competition.areas if a.region_id}
    pcc_ids = {a.pcc_area_id for a in competition.areas if a.pcc_area_id}
    regions = set(region_ids)
    pccs = set(pcc_ids)
    if pcc_ids:
        regions |= set(
            db.session.scalars(sa.select(PccArea.region_id).where(PccArea.id.in_(pcc_ids)))
        )
    if region_ids:
        pccs |= set(
            db.session.scalars(sa.select(PccArea.id).where(PccArea.region_id.in_(region_ids)))
        )
    return regions, pccs


def in_areas(region_column, pcc_area_column, competition: Competition):
    """A SQL condition: the row's region or PCC area is one the competition reaches."""
    regions, pccs = reached_areas(competition)
    return sa.or_(
        region_column.in_(sorted(regions) or [0]), pcc_area_column.in_(sorted(pccs) or [0])
    )


def membership_in_areas(competition: Competition):
    return in_areas(LotMembership.region_id, LotMembership.pcc_area_id, competition)


def area_matches(competition: Competition, region_id: int | None, pcc_area_id: int | None) -> bool:
    regions, pccs = reached_areas(competition)
    return (region_id is not None and region_id in regions) or (
        pcc_area_id is not None and pcc_area_id in pccs
    )
