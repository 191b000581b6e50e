"""Read-only loaders for listings: a provider's listings, price history, availability, changes;
the listings buyers may see, and what buying one reads (``buyable_listing``, for orders)."""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.models import (
    CapacityCommitment,
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
)
from marketplace.catalogue.search.schema import SEARCH_TOPIC, search_areas
from marketplace.core.audit import AuditEvent, unsealed
from marketplace.core.cache import Topic, kept
from marketplace.core.db import db, parse_id
from marketplace.core.money import VatTreatment
from marketplace.core.store import PrecompiledRead


def first_of_month(day: date) -> date:
    return day.replace(day=1)


def next_months(start: date, count: int) -> list[date]:
    """The first days of ``count`` calendar months from the month of ``start``."""
    months, month = [], first_of_month(start)
    for _ in range(count):
        months.append(month)
        month = date(month.year + (month.month == 12), month.month % 12 + 1, 1)
    return months


def _listing_options() -> list:
    return [
        selectinload(Listing.lot).selectinload(ArrangementLot.category),
        selectinload(Listing.areas).selectinload(ListingArea.region),
        selectinload(Listing.areas).selectinload(ListingArea.pcc_area),
        selectinload(Listing.prices),
    ]


def get_listing(listing_id: Any) -> Listing | None:
    """A listing with its lot, areas and price history (four statements)."""
    pk = parse_id(listing_id)
    if pk is None:
        return None
    return db.session.scalar(
        sa.select(Listing).where(Listing.id == pk).options(*_listing_options())
    )


def organisation_listings_query(
    organisation: Organisation, status: ListingStatus | None = None
) -> sa.Select:
    """An organisation's listings by title, optionally in one state."""
    query = (
        sa.select(Listing)
        .where(Listing.organisation_id == organisation.id)
        .options(*_listing_options())
        .order_by(Listing.title, Listing.id)
    )
    if status is not None:
        query = query.where(Listing.status == status)
    return query


def price_on(listing_id: int, day: date) -> ListingPrice | None:
    """The price version in force on ``day`` (one indexed range lookup)."""
    return db.session.scalar(
        sa.select(ListingPrice).where(
            ListingPrice.listing_id == listing_id,
            ListingPrice.effective_from <= day,
            sa.or_(ListingPrice.effective_to.is_(None), ListingPrice.effective_to > day),
        )
    )


@dataclass(frozen=True)
class PriceInForce:
    """What a listing charges on a day, as the database has it in the reader's transaction: the
    price version (its ``listing_prices`` row), the unit price ex VAT and the VAT treatment."""

    version_id: int
    unit_price_pence: int
    vat_treatment: VatTreatment


_prices, _listings = ListingPrice.__table__, Listing.__table__
_PRICE_IN_FORCE = PrecompiledRead(
    sa.select(_prices.c.id, _prices.c.unit_price_pence, _listings.c.vat_treatment)
    .join(_listings, _listings.c.id == _prices.c.listing_id)
    .where(
        _prices.c.listing_id == sa.bindparam("listing_id", type_=sa.Integer),
        _prices.c.effective_from <= sa.bindparam("day", type_=sa.Date),
        sa.or_(
            _prices.c.effective_to.is_(None),
            _prices.c.effective_to > sa.bindparam("day", type_=sa.Date),
        ),
    )
)


def price_in_force(listing_id: int, day: date) -> PriceInForce | None:
    """The listing's price in force on ``day``, read in the session's transaction (one indexed
    lookup): what a call-off charges is read here, never from a copy a worker keeps."""
    sql, parameters = _PRICE_IN_FORCE.prepared(
        db.session.get_bind().dialect, {"listing_id": listing_id, "day": day}
    )
    row = db.session.connection().exec_driver_sql(sql, parameters).first()
    if row is None:
        return None
    version_id, unit_price_pence, vat_treatment = row
    return PriceInForce(version_id, int(unit_price_pence), VatTreatment(vat_treatment))


def unit_price_of_version(listing_id: int, version_id: int) -> int | None:
    """The unit price a price version of the listing holds now; None if it has no such one."""
    return db.session.scalar(
        sa.select(ListingPrice.unit_price_pence).where(
            ListingPrice.id == version_id, ListingPrice.listing_id == listing_id
        )
    )


def committed_units(
    listing_ids: Iterable[int], months: Iterable[date]
) -> dict[tuple[int, date], int]:
    """Units committed by accepted call-offs, per (listing, first day of month)."""
    ids, months = sorted(set(listing_ids)), sorted(set(months))
    if not ids or not months:
        return {}
    rows = db.session.execute(
        sa.select(
            CapacityCommitment.listing_id,
            CapacityCommitment.month,
            sa.func.sum(CapacityCommitment.units),
        )
        .where(CapacityCommitment.listing_id.in_(ids), CapacityCommitment.month.in_(months))
        .group_by(CapacityCommitment.listing_id, CapacityCommitment.month)
    ).all()
    return {(listing_id, month): int(total) for listing_id, month, total in rows}


@dataclass(frozen=True)
class MonthAvailability:
    month: date
    capacity: int
    committed: int

    @property
    def available(self) -> int:
        return max(0, self.capacity - self.committed)


def availability(
    listings: Iterable[Listing], months: list[date]
) -> dict[int, list[MonthAvailability]]:
    """Live availability of each listing in each month: monthly capacity minus committed units."""
    listings = list(listings)
    committed = committed_units((listing.id for listing in listings), months)
    result: dict[int, list[MonthAvailability]] = defaultdict(list)
    for listing in listings:
        for month in months:
            result[listing.id].append(
                MonthAvailability(
                    month, listing.monthly_capacity, committed.get((listing.id, month), 0)
                )
            )
    return dict(result)


def listing_changes_query(listing: Listing) -> sa.Select:
    """The listing's audit trail, newest first: its change history."""
    return (
        sa.select(AuditEvent)
        .where(AuditEvent.object_type == "listing", AuditEvent.object_id == str(listing.id))
        .where(unsealed())
        .order_by(AuditEvent.id.desc())
    )


# ---------------------------------------------------------------------------------------------
# The listings buyers may see, and what buying one reads


def _visible() -> sa.Select:
    """Listings buyers may see: published, with an area an active membership covers."""
    return sa.select(Listing).where(
        Listing.status == ListingStatus.PUBLISHED,
        sa.exists().where(search_areas.c.listing_id == Listing.id),
    )


def _visible_query() -> sa.Select:
    return _visible().options(
        joinedload(Listing.organisation),
        joinedload(Listing.lot).joinedload(ArrangementLot.category),
        joinedload(Listing.lot).joinedload(ArrangementLot.arrangement),
        selectinload(Listing.prices),
        selectinload(Listing.areas).joinedload(ListingArea.region),
        selectinload(Listing.areas).joinedload(ListingArea.pcc_area),
    )


def visible_listing(listing_id: Any) -> Listing | None:
    """A listing that buyers and the public may see, with what its page shows; else None."""
    pk = parse_id(listing_id)
    if pk is None:
        return None
    return db.session.scalar(_visible_query().where(Listing.id == pk))


@functools.cache
def _buyable_statement() -> sa.Select:
    # Built once (``make bench``: call-offs placed per second): building a statement costs more
    # than running SQLAlchemy's cached compile of it.
    # One statement: a listing has a handful of prices, and a second query to fetch them would
    # cost more than the few repeated columns of a join.
    return (
        _visible()
        .where(Listing.id == sa.bindparam("listing_id"))
        .options(
            joinedload(Listing.organisation),
            joinedload(Listing.lot).joinedload(ArrangementLot.arrangement),
            joinedload(Listing.prices),
        )
    )


def buyable_listing(listing_id: Any) -> Listing | None:
    """A visible listing with what buying it reads (its provider, lot, arrangement and prices),
    without the areas and names its page shows; else None.

    Each worker keeps what it loaded (``core.cache.kept``) under the generations of every topic
    that watches that data: the catalogue (the listing, its prices, its areas, its provider's
    lot memberships), the register (the lot and the arrangement) and the principals (the
    provider organisation). A committed change to any of it is seen by the next request.
    """
    pk = parse_id(listing_id)
    if pk is None:
        return None
    return kept(
        ("buyable-listing", pk),
        [SEARCH_TOPIC, Topic.REGISTER, Topic.PRINCIPALS],
        lambda session: session.scalars(_buyable_statement(), {"listing_id": pk}).unique().first(),
    )


def visible_listings(listing_ids: Iterable[int]) -> dict[int, Listing]:
    """The visible ones among ``listing_ids``, by id."""
    ids = [pk for pk in listing_ids if pk is not None]
    if not ids:
        return {}
    return {
        listing.id: listing
        for listing in db.session.scalars(_visible_query().where(Listing.id.in_(ids))).unique()
    }


def covered_areas(listing_ids: Iterable[int]) -> dict[int, set[tuple[int, int | None]]]:
    """Per listing, the (region id, PCC area id or None) of its areas an active membership covers."""
    ids = list(listing_ids)
    covered: dict[int, set[tuple[int, int | None]]] = {pk: set() for pk in ids}
    if ids:
        statement = sa.select(
            search_areas.c.listing_id, search_areas.c.region_id, search_areas.c.pcc_area_id
        ).where(search_areas.c.listing_id.in_(ids))
        for listing_id, region_id, pcc_area_id in db.session.execute(statement):
            covered[listing_id].add((region_id, pcc_area_id))
    return covered
