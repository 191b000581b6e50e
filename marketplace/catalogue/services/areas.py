"""Where a listing is offered: regions and PCC areas, only where its provider holds an active
membership of the listing's lot (a region membership covers every PCC area in the region).

``check_areas`` is the one rule for a listing's areas; the single edit loads an ``AreaCoverage``
for one lot and the codes it names, the rate card import loads one for the whole rate card.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass

import sqlalchemy as sa

from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
from marketplace.catalogue.models import Listing, ListingArea
from marketplace.core.db import db
from marketplace.reference.models import PccArea, ProbationRegion

# An area as a pair of keys: (region id, None) or (None, PCC area id).
AreaKey = tuple[int | None, int | None]
# A checked area: (region, None) or (None, PCC area).
Area = tuple[ProbationRegion | None, PccArea | None]


@dataclass
class AreaCoverage:
    """What areas are checked against: the areas by code, and the provider's active memberships."""

    regions: dict[str, ProbationRegion]  # by code (upper case)
    pcc_areas: dict[str, PccArea]  # by code (lower case)
    covered_regions: dict[int, set[int]]  # lot id → region ids
    covered_pcc: dict[int, set[int]]  # lot id → PCC area ids, with those of covered regions


def _memberships(
    organisation_id: int, lot_ids: Collection[int] | None
) -> tuple[dict[int, set[int]], dict[int, set[int]]]:
    """(lot id → region ids, lot id → PCC area ids) of the organisation's active memberships
    (of ``lot_ids`` only, when given); a region covers its PCC areas."""
    regions: dict[int, set[int]] = defaultdict(set)
    pcc_areas: dict[int, set[int]] = defaultdict(set)
    if lot_ids is not None and not lot_ids:
        return regions, pcc_areas
    query = sa.select(
        LotMembership.lot_id, LotMembership.region_id, LotMembership.pcc_area_id
    ).where(
        LotMembership.organisation_id == organisation_id,
        LotMembership.status == MembershipStatus.ACTIVE,
    )
    if lot_ids is not None:
        query = query.where(LotMembership.lot_id.in_(sorted(lot_ids)))
    for row in db.session.execute(query):
        if row.region_id is not None:
            regions[row.lot_id].add(row.region_id)
        if row.pcc_area_id is not None:
            pcc_areas[row.lot_id].add(row.pcc_area_id)
    region_ids = set().union(*regions.values())
    if region_ids:
        by_region: dict[int, set[int]] = defaultdict(set)
        for pcc_id, region_id in db.session.execute(
            sa.select(PccArea.id, PccArea.region_id).where(PccArea.region_id.in_(region_ids))
        ):
            by_region[region_id].add(pcc_id)
        for lot, ids in regions.items():
            for region_id in ids:
                pcc_areas[lot] |= by_region[region_id]
    return regions, pcc_areas


def covered_area_ids(organisation_id: int, lot_id: int) -> tuple[set[int], set[int]]:
    """(region ids, PCC area ids) where the organisation holds an active membership of the lot."""
    regions, pcc_areas = _memberships(organisation_id, [lot_id])
    return regions.get(lot_id, set()), pcc_areas.get(lot_id, set())


def load_coverage(
    organisation_id: int,
    *,
    lot_ids: Collection[int] | None = None,
    region_codes: Collection[str] | None = None,
    pcc_codes: Collection[str] | None = None,
) -> AreaCoverage:
    """The coverage of the organisation's memberships (of ``lot_ids``; None: of every lot), with
    the areas the codes name (None: every area): a few statements however many listings are
    checked against it."""

    def areas(model, codes: Collection[str] | None) -> list:
        if codes is not None and not codes:
            return []
        query = sa.select(model)
        if codes is not None:
            query = query.where(model.code.in_(sorted(codes)))
        return list(db.session.scalars(query))

    regions = areas(ProbationRegion, region_codes)
    pcc_areas = areas(PccArea, pcc_codes)
    covered_regions, covered_pcc = _memberships(organisation_id, lot_ids)
    return AreaCoverage(
        regions={r.code: r for r in regions},
        pcc_areas={p.code: p for p in pcc_areas},
        covered_regions=covered_regions,
        covered_pcc=covered_pcc,
    )


def area_codes(codes: Iterable[str | None], *, upper: bool) -> list[str]:
    """Codes as the reference data keeps them (regions upper case, PCC areas lower), each once."""
    cleaned = {(c or "").strip() for c in codes}
    return sorted({c.upper() if upper else c.lower() for c in cleaned} - {""})


def check_areas(
    errors: dict,
    lot: ArrangementLot | None,
    region_codes: Iterable[str | None],
    pcc_codes: Iterable[str | None],
    coverage: AreaCoverage,
    *,
    keep: Collection[AreaKey] = frozenset(),
    region_field: str = "areas",
    pcc_field: str = "areas",
) -> list[Area]:
    """The areas the codes name, each where the provider holds an active membership of ``lot``;
    or none, with a message under ``region_field`` / ``pcc_field`` (one message when they are
    the same field).

    Areas in ``keep`` (those the listing has already) are allowed where the membership has
    lapsed: the rate card import keeps them when a file only repeats them."""
    regions_wanted = area_codes(region_codes, upper=True)
    pcc_wanted = area_codes(pcc_codes, upper=False)
    unknown_regions = [c for c in regions_wanted if c not in coverage.regions]
    unknown_pcc = [c for c in pcc_wanted if c not in coverage.pcc_areas]
    if unknown_regions or unknown_pcc:
        if region_field == pcc_field:
            unknown = sorted(unknown_regions + unknown_pcc)
            errors[region_field] = [f"Unknown region or PCC area: {', '.join(unknown)}"]
        else:
            if unknown_regions:
                errors[region_field] = [f"Unknown probation region: {', '.join(unknown_regions)}"]
            if unknown_pcc:
                errors[pcc_field] = [f"Unknown PCC area: {', '.join(unknown_pcc)}"]
        return []
    if not regions_wanted and not pcc_wanted:
        errors[region_field] = [
            "Choose at least one region or PCC area where you deliver this service"
        ]
        return []
    if lot is None:
        return []
    regions = [coverage.regions[c] for c in regions_wanted]
    pcc_areas = [coverage.pcc_areas[c] for c in pcc_wanted]
    covered_regions = coverage.covered_regions.get(lot.id, set())
    covered_pcc = coverage.covered_pcc.get(lot.id, set())
    outside_regions = [
        r.name for r in regions if r.id not in covered_regions and (r.id, None) not in keep
    ]
    outside_pcc = [
        p.name for p in pcc_areas if p.id not in covered_pcc and (None, p.id) not in keep
    ]
    if outside_regions or outside_pcc:
        if region_field == pcc_field:
            errors[region_field] = [_outside_message(lot, outside_regions + outside_pcc)]
        else:
            if outside_regions:
                errors[region_field] = [_outside_message(lot, outside_regions)]
            if outside_pcc:
                errors[pcc_field] = [_outside_message(lot, outside_pcc)]
        return []
    return [(r, None) for r in regions] + [(None, p) for p in pcc_areas]


def _outside_message(lot: ArrangementLot, names: list[str]) -> str:
    return (
        f"You are not an active member of {lot.category.name} in {', '.join(names)}. "
        "You can only offer a service where you hold an active membership of its lot."
    )


def area_keys(areas: Iterable[Area]) -> list[AreaKey]:
    """(region id, PCC area id) pairs of checked areas."""
    return [
        (region.id if region else None, pcc_area.id if pcc_area else None)
        for region, pcc_area in areas
    ]


def uncovered_area_keys(
    keys: Iterable[AreaKey], lot_id: int, coverage: AreaCoverage
) -> list[AreaKey]:
    """The areas where the provider no longer holds an active membership of the lot."""
    regions = coverage.covered_regions.get(lot_id, set())
    pcc_areas = coverage.covered_pcc.get(lot_id, set())
    return [
        (r, p)
        for r, p in keys
        if (r is not None and r not in regions) or (p is not None and p not in pcc_areas)
    ]


def uncovered_areas(listing: Listing) -> list[ListingArea]:
    """The listing's areas where the provider no longer holds an active membership of the lot."""
    regions, pcc_areas = covered_area_ids(listing.organisation_id, listing.lot_id)
    return [
        a
        for a in listing.areas
        if (a.region_id is not None and a.region_id not in regions)
        or (a.pcc_area_id is not None and a.pcc_area_id not in pcc_areas)
    ]


def set_areas(listing: Listing, areas: list[Area]) -> None:
    """Give the listing exactly these areas, keeping the rows of those it has already."""
    wanted = dict(zip(area_keys(areas), areas, strict=True))
    for existing in list(listing.areas):
        key = (existing.region_id, existing.pcc_area_id)
        if key in wanted:
            wanted.pop(key)
        else:
            listing.areas.remove(existing)
    listing.areas.extend(
        ListingArea(region=region, pcc_area=pcc_area) for region, pcc_area in wanted.values()
    )
