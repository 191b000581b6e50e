"""The market map: for each probation region and lot (service category), the active members,
the published listings, the capacity free in the next three months and the paid spend of the
last twelve months, with the gaps. The page, its CSV and the API are all built from
``market_map`` (and a cell's details from ``cell_details``), so their numbers are the same.

How each figure is counted:

- members: distinct providers with an ACTIVE membership of a lot of that category, in a LIVE
  arrangement, held for the whole region or for one of its PCC areas (as the public register
  counts them by region);
- listings: distinct listings of that category that buyers may see in the region (the search
  index's covered areas: published, with an area an active membership of its lot covers);
- capacity free: for each such listing and each of the three calendar months from this one, its
  monthly capacity less the units accepted call-offs have committed (never below nought),
  summed. Each listing counts in its own unit (sessions, hours, places...), and a listing offered
  in several regions counts in each of them: capacity is not split between regions;
- spend: paid spend (invoices paid less refunds, VAT included) of the ledger's monthly roll-up
  (``SpendMonth``) by the funder's region, over the twelve calendar months to this one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    ArrangementStatus,
    LotMembership,
    MembershipStatus,
)
from marketplace.catalogue.models import Listing, ListingStatus, Unit
from marketplace.catalogue.queries import committed_units, first_of_month, next_months
from marketplace.catalogue.search.schema import search_areas
from marketplace.core.db import db
from marketplace.insight.models import Measure, SpendMonth
from marketplace.insight.services import ledger
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory

CAPACITY_MONTHS = 3
SPEND_MONTHS = 12

GAP_NO_MEMBER = "No member"
GAP_NO_LISTING = "No listing"
GAP_NO_CAPACITY = "No capacity"


@dataclass
class Cell:
    region: ProbationRegion
    category: ServiceCategory
    members: int = 0
    listings: int = 0
    capacity_free: int = 0
    paid_pence: int = 0

    @property
    def gaps(self) -> list[str]:
        """What is missing, in words (each that applies): no member, no listing, no capacity."""
        gaps = []
        if not self.members:
            gaps.append(GAP_NO_MEMBER)
        if not self.listings:
            gaps.append(GAP_NO_LISTING)
        if not self.capacity_free:
            gaps.append(GAP_NO_CAPACITY)
        return gaps

    def record(self) -> dict:
        """The cell as the CSV and the API give it."""
        return {
            "region_code": self.region.code,
            "region": self.region.name,
            "lot_code": self.category.code,
            "lot": self.category.name,
            "active_members": self.members,
            "published_listings": self.listings,
            "capacity_free": self.capacity_free,
            "paid_pence": self.paid_pence,
            "gaps": self.gaps,
        }


@dataclass
class MarketMap:
    today: date
    regions: list[ProbationRegion]
    categories: list[ServiceCategory]
    cells: dict[tuple[int, int], Cell]
    capacity_months: list[date] = field(default_factory=list)
    spend_from: date | None = None

    @property
    def months_text(self) -> str:
        """ "December 2026, January 2027 and February 2027"."""
        names = [m.strftime("%B %Y") for m in self.capacity_months]
        return ", ".join(names[:-1]) + (" and " if len(names) > 1 else "") + names[-1]

    def cell(self, region: ProbationRegion, category: ServiceCategory) -> Cell:
        return self.cells[(region.id, category.id)]

    def rows(self) -> list[Cell]:
        return [self.cell(r, c) for r in self.regions for c in self.categories]

    def by_region(self) -> list[tuple[ProbationRegion, list[Cell]]]:
        return [(r, [self.cell(r, c) for c in self.categories]) for r in self.regions]


def spend_window(today: date) -> tuple[date, date]:
    """The first days of the first and last of the twelve calendar months to ``today``'s."""
    last = first_of_month(today)
    months = last.year * 12 + last.month - 1 - (SPEND_MONTHS - 1)
    return date(months // 12, months % 12 + 1, 1), last


def all_regions() -> list[ProbationRegion]:
    return list(db.session.scalars(sa.select(ProbationRegion).order_by(ProbationRegion.code)))


def all_categories() -> list[ServiceCategory]:
    return list(db.session.scalars(sa.select(ServiceCategory).order_by(ServiceCategory.name)))


def region_by_code(code: str | None) -> ProbationRegion | None:
    code = (code or "").strip().upper()
    if not code or len(code) > 20:
        return None
    return db.session.scalar(sa.select(ProbationRegion).where(ProbationRegion.code == code))


def category_by_code(code: str | None) -> ServiceCategory | None:
    """A lot by its category code (any case) or its key."""
    text = (code or "").strip().upper()
    if not text or len(text) > 20:
        return None
    if text.isdigit():
        return db.session.get(ServiceCategory, int(text))
    return db.session.scalar(sa.select(ServiceCategory).where(ServiceCategory.code == text))


def _membership_region():
    """A membership's region: its own, or its PCC area's."""
    return sa.func.coalesce(LotMembership.region_id, PccArea.region_id)


def _members_statement(region_id: int | None, category_id: int | None) -> sa.Select:
    region = _membership_region().label("region_id")
    statement = (
        sa.select(region, ArrangementLot.category_id, LotMembership.organisation_id)
        .join(ArrangementLot, ArrangementLot.id == LotMembership.lot_id)
        .join(Arrangement, Arrangement.id == LotMembership.arrangement_id)
        .outerjoin(PccArea, PccArea.id == LotMembership.pcc_area_id)
        .where(
            LotMembership.status == MembershipStatus.ACTIVE,
            Arrangement.status == ArrangementStatus.LIVE,
        )
    )
    if region_id is not None:
        statement = statement.where(_membership_region() == region_id)
    if category_id is not None:
        statement = statement.where(ArrangementLot.category_id == category_id)
    return statement.distinct()


def _listings_statement(region_id: int | None, category_id: int | None) -> sa.Select:
    statement = (
        sa.select(
            search_areas.c.region_id,
            ArrangementLot.category_id,
            Listing.id,
            Listing.monthly_capacity,
        )
        .select_from(search_areas)
        .join(Listing, Listing.id == search_areas.c.listing_id)
        .join(ArrangementLot, ArrangementLot.id == Listing.lot_id)
        .where(Listing.status == ListingStatus.PUBLISHED)
    )
    if region_id is not None:
        statement = statement.where(search_areas.c.region_id == region_id)
    if category_id is not None:
        statement = statement.where(ArrangementLot.category_id == category_id)
    return statement.distinct()


def paid_spend(
    start: date,
    end: date,
    *,
    region_id: int | None = None,
    category_id: int | None = None,
    funder_id: int | None = None,
) -> dict[tuple[int, int], int]:
    """Paid pence by (region, category) over the months from ``start`` to ``end`` (first days),
    of one funder or all. Brings the ledger up to date first."""
    ledger.catch_up()
    statement = (
        sa.select(
            SpendMonth.region_id, SpendMonth.category_id, sa.func.sum(SpendMonth.amount_pence)
        )
        .where(
            SpendMonth.measure == Measure.PAID,
            SpendMonth.month >= start,
            SpendMonth.month <= end,
            SpendMonth.region_id.is_not(None),
        )
        .group_by(SpendMonth.region_id, SpendMonth.category_id)
    )
    if region_id is not None:
        statement = statement.where(SpendMonth.region_id == region_id)
    if category_id is not None:
        statement = statement.where(SpendMonth.category_id == category_id)
    if funder_id is not None:
        statement = statement.where(SpendMonth.funder_id == funder_id)
    return {(r, c): int(total or 0) for r, c, total in db.session.execute(statement)}


def free_units(listings: dict[int, int], months: list[date]) -> dict[int, int]:
    """Per listing (id: monthly capacity), the units free over ``months``."""
    committed = committed_units(listings, months)
    return {
        pk: sum(max(0, capacity - committed.get((pk, month), 0)) for month in months)
        for pk, capacity in listings.items()
    }


def market_map(
    today: date,
    *,
    region: ProbationRegion | None = None,
    category: ServiceCategory | None = None,
) -> MarketMap:
    """The grid (every region and lot, or the one region and/or lot asked for), in four
    statements besides the regions and lots: members, listings, committed units, spend."""
    regions = [region] if region is not None else all_regions()
    categories = [category] if category is not None else all_categories()
    region_id = region.id if region is not None else None
    category_id = category.id if category is not None else None
    cells = {(r.id, c.id): Cell(r, c) for r in regions for c in categories}

    members: dict[tuple[int, int], set[int]] = defaultdict(set)
    for r, c, organisation_id in db.session.execute(_members_statement(region_id, category_id)):
        members[(r, c)].add(organisation_id)
    for key, ids in members.items():
        if key in cells:
            cells[key].members = len(ids)

    months = next_months(today, CAPACITY_MONTHS)
    rows = db.session.execute(_listings_statement(region_id, category_id)).all()
    free = free_units({pk: capacity for _r, _c, pk, capacity in rows}, months)
    for r, c, pk, _capacity in rows:
        cell = cells.get((r, c))
        if cell is not None:
            cell.listings += 1
            cell.capacity_free += free[pk]

    start, end = spend_window(today)
    for key, pence in paid_spend(start, end, region_id=region_id, category_id=category_id).items():
        if key in cells:
            cells[key].paid_pence = pence
    return MarketMap(today, regions, categories, cells, months, start)


# ---------------------------------------------------------------------------------------------
# A cell's details, for signed-in commissioners and the authority


@dataclass
class MemberRow:
    organisation: Organisation
    areas: list[str]


@dataclass
class ListingRow:
    listing: Listing
    free_by_month: list[tuple[date, int]]

    @property
    def unit(self) -> Unit:
        return self.listing.unit

    @property
    def free(self) -> int:
        return sum(units for _month, units in self.free_by_month)


@dataclass
class CellDetails:
    cell: Cell
    members: list[MemberRow]
    listings: list[ListingRow]
    months: list[date]
    spend_from: date
    # Paid spend of the funder asked for (None: every funder's, as the cell shows).
    funder_paid_pence: int | None
    funder: Organisation | None


def cell_details(
    today: date,
    region: ProbationRegion,
    category: ServiceCategory,
    *,
    funder: Organisation | None,
) -> CellDetails:
    """Who the members are, which listings and what each has free, and the paid spend of
    ``funder`` (None: every funder's) in the cell; the counts are ``market_map``'s."""
    grid = market_map(today, region=region, category=category)
    cell = grid.cell(region, category)
    member_ids = {
        organisation_id
        for _r, _c, organisation_id in db.session.execute(
            _members_statement(region.id, category.id)
        )
    }
    areas: dict[int, list[str]] = defaultdict(list)
    memberships = db.session.scalars(
        sa.select(LotMembership)
        .join(ArrangementLot, ArrangementLot.id == LotMembership.lot_id)
        .outerjoin(PccArea, PccArea.id == LotMembership.pcc_area_id)
        .where(
            LotMembership.organisation_id.in_(member_ids or [0]),
            LotMembership.status == MembershipStatus.ACTIVE,
            ArrangementLot.category_id == category.id,
            _membership_region() == region.id,
        )
        .order_by(LotMembership.id)
    )
    for membership in memberships:
        name = membership.area_name
        if name not in areas[membership.organisation_id]:
            areas[membership.organisation_id].append(name)
    organisations = db.session.scalars(
        sa.select(Organisation)
        .where(Organisation.id.in_(member_ids or [0]))
        .order_by(Organisation.name, Organisation.id)
    )
    members = [MemberRow(o, areas[o.id]) for o in organisations]

    rows = db.session.execute(_listings_statement(region.id, category.id)).all()
    capacities = {pk: capacity for _r, _c, pk, capacity in rows}
    committed = committed_units(capacities, grid.capacity_months)
    listings = [
        ListingRow(
            listing,
            [
                (m, max(0, listing.monthly_capacity - committed.get((listing.id, m), 0)))
                for m in grid.capacity_months
            ],
        )
        for listing in db.session.scalars(
            sa.select(Listing)
            .where(Listing.id.in_(list(capacities) or [0]))
            .options(sa.orm.joinedload(Listing.organisation))
            .order_by(Listing.title, Listing.id)
        )
    ]
    start, end = spend_window(today)
    funder_paid = None
    if funder is not None:
        funder_paid = paid_spend(
            start, end, region_id=region.id, category_id=category.id, funder_id=funder.id
        ).get((region.id, category.id), 0)
    return CellDetails(cell, members, listings, grid.capacity_months, start, funder_paid, funder)
