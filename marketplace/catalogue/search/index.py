"""Writing the search index: the rows of the listings buyers may see, with their text, covered
areas and the price in force.

A session hook (``hooks``) rewrites the rows of the listings each flush changes, in the flush's
own transaction. Writers that bypass the ORM (bulk loads with SQLAlchemy Core) call
``reindex_listings`` or ``reindex_all`` themselves, in their own transaction. Invariant: after
either, a listing has rows exactly when it is published and an active membership of its lot
covers one of its areas, and the rows hold what the listing holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from typing import Any

import sqlalchemy as sa

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
from marketplace.catalogue.models import Listing, ListingArea, ListingPrice, ListingStatus
from marketplace.catalogue.search.schema import (
    AREAS_TABLE,
    FLAG_COLUMNS,
    ROWS_TABLE,
    search_areas,
    search_rows,
)
from marketplace.catalogue.search.terms import sort_key, terms
from marketplace.core.clock import london_date
from marketplace.core.db import db
from marketplace.core.store import insert_many
from marketplace.reference.models import PccArea, ProbationRegion

_REINDEX_CHUNK = 500
_listings = Listing.__table__
_organisations = Organisation.__table__
_lots = ArrangementLot.__table__
_prices = ListingPrice.__table__


def _document(row, places: str = "") -> dict[str, Any]:
    return {
        "id": row.id,
        "title": " ".join(terms(row.title)),
        "summary": " ".join(terms(row.summary)),
        "body": " ".join(terms(f"{row.description or ''}\n{row.outcomes or ''}")),
        "provider": " ".join(terms(row.provider)),
        "places": places,
    }


def _cover(cover: set[tuple[int, int | None]]) -> set[tuple[int, int | None]]:
    """A listing's covered areas without the PCC areas of a region it is covered in as a whole
    (the region covers them): so each covered place is one row, which the counts per PCC area
    rely on."""
    return {(r, p) for r, p in cover if p is None or (r, None) not in cover}


def _area_arrays(cover: set[tuple[int, int | None]]) -> dict[str, list[int]]:
    """PostgreSQL: the covered areas in the row itself, for the region filter and the counts
    per region and PCC area to read without a lookup."""
    return {
        "region_ids": sorted({r for r, _ in cover}),
        "wide_region_ids": sorted(r for r, p in cover if p is None),
        "pcc_area_ids": sorted(p for _, p in cover if p is not None),
    }


def _place_names(connection: sa.Connection) -> tuple[dict[int, str], dict[int, str], dict]:
    """Region names, PCC area names and each region's PCC area ids, in one statement."""
    region, pcc = ProbationRegion.__table__, PccArea.__table__
    regions: dict[int, str] = {}
    pcc_names: dict[int, str] = {}
    in_region: dict[int, list[int]] = {}
    for pcc_id, pcc_name, region_id, region_name in connection.execute(
        sa.select(pcc.c.id, pcc.c.name, region.c.id, region.c.name).select_from(
            region.outerjoin(pcc, pcc.c.region_id == region.c.id)
        )
    ):
        regions[region_id] = region_name
        if pcc_id is not None:
            pcc_names[pcc_id] = pcc_name
            in_region.setdefault(region_id, []).append(pcc_id)
    return regions, pcc_names, in_region


# "London (Metropolitan Police)": the police force is not a place a buyer searches for.
_ASIDE = re.compile(r"\([^)]*\)")


def _places(cover: set[tuple[int, int | None]], names: tuple[dict, dict, dict]) -> str:
    """The terms of the names of the places a listing is covered in, each once: the regions,
    and the PCC areas in them (a whole region covers each of its PCC areas), as the region and
    PCC area filters find it ("housing Manchester" finds housing in Greater Manchester)."""
    regions, pcc_names, in_region = names
    places: list[str] = []
    for region_id, pcc_area_id in cover:
        places.append(regions.get(region_id, ""))
        pcc_ids = in_region.get(region_id, []) if pcc_area_id is None else [pcc_area_id]
        places.extend(pcc_names.get(pk, "") for pk in pcc_ids)
    found = terms(_ASIDE.sub(" ", " ".join(places)))
    return " ".join(sorted(set(found)))


# Plain text values, so the driver takes them as they are (no per-row parameter building).
_INSERT_FTS = (
    "INSERT INTO listing_search (rowid, title, summary, body, provider, places) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# PostgreSQL: the row's text as a tsvector, from the same folded parts, weighted A, B, C, B, D.
_DOCUMENT = sa.text(
    "setweight(to_tsvector('simple'::regconfig, CAST(:title AS text)), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:summary AS text)), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:body AS text)), 'C') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:provider AS text)), 'B') || "
    "setweight(to_tsvector('simple'::regconfig, CAST(:places AS text)), 'D')"
)


def _delete_rows(connection: sa.Connection, ids: list[int] | None) -> None:
    sqlite = connection.dialect.name == "sqlite"  # the text is in the FTS5 table, not the rows
    if ids is None:
        if sqlite:
            connection.execute(sa.text("DELETE FROM listing_search"))
        connection.execute(sa.text("DELETE FROM listing_search_areas"))
        connection.execute(sa.text("DELETE FROM listing_search_rows"))
        return
    expanding = sa.bindparam("ids", expanding=True)
    if sqlite:
        statement = sa.text("DELETE FROM listing_search WHERE rowid IN :ids")
        connection.execute(statement.bindparams(expanding), {"ids": ids})
    connection.execute(
        sa.text("DELETE FROM listing_search_areas WHERE listing_id IN :ids").bindparams(expanding),
        {"ids": ids},
    )
    connection.execute(
        sa.text("DELETE FROM listing_search_rows WHERE listing_id IN :ids").bindparams(expanding),
        {"ids": ids},
    )


# A listing's areas: (region id, PCC area id, the PCC area's region id), any of them None.
_Area = tuple[int | None, int | None, int | None]
# Per (organisation id, lot id), the region ids and the PCC area ids its active memberships hold.
_Held = tuple[dict[tuple[int, int], set[int]], dict[tuple[int, int], set[int]]]


def _write_rows(connection: sa.Connection, ids: list[int], today: date | None = None) -> int:
    """Index the visible listings among ``ids`` (whose old rows are gone), with the prices in
    force ``today`` (London's by default); how many."""
    rows = _published(connection, ids)
    if not rows:
        return 0
    listing_ids = [row.id for row in rows]
    areas = _listing_areas(connection, listing_ids)
    held = _held(connection, rows)
    prices = _prices_in_force(connection, listing_ids, today or london_date())
    on_postgresql = connection.dialect.name == "postgresql"
    names = _place_names(connection)
    documents, covered, written = [], [], []
    for row in rows:
        cover = _covered(row, areas.get(row.id, []), held)
        if not cover:
            continue
        documents.append(_document(row, _places(cover, names)))
        written.append(_search_row(row, cover, prices.get(row.id), on_postgresql))
        covered.extend(
            {"listing_id": row.id, "region_id": r, "pcc_area_id": p}
            for r, p in sorted(cover, key=lambda c: (c[0], c[1] or 0))
        )
    if documents:
        _insert(connection, documents, written, covered)
    return len(documents)


def _published(connection: sa.Connection, ids: list[int]) -> list:
    """The published listings among ``ids``, with their lot's category and their provider."""
    return connection.execute(
        sa.select(
            _listings.c.id,
            _listings.c.organisation_id,
            _listings.c.lot_id,
            _listings.c.title,
            _listings.c.summary,
            _listings.c.description,
            _listings.c.outcomes,
            _listings.c.eligibility_sex,
            _listings.c.min_age,
            _listings.c.max_age,
            _listings.c.monthly_capacity,
            *(_listings.c[name] for name in FLAG_COLUMNS),
            _lots.c.category_id,
            _organisations.c.name.label("provider"),
            _organisations.c.type.label("provider_type"),
        )
        .join(_organisations, _organisations.c.id == _listings.c.organisation_id)
        .join(_lots, _lots.c.id == _listings.c.lot_id)
        .where(_listings.c.id.in_(ids), _listings.c.status == ListingStatus.PUBLISHED.value)
    ).all()


def _listing_areas(connection: sa.Connection, listing_ids: list[int]) -> dict[int, list[_Area]]:
    """Per listing, the areas it is offered in."""
    listing_areas = ListingArea.__table__
    pcc = PccArea.__table__
    areas: dict[int, list[_Area]] = {}
    for listing_id, region_id, pcc_area_id, pcc_region_id in connection.execute(
        sa.select(
            listing_areas.c.listing_id,
            listing_areas.c.region_id,
            listing_areas.c.pcc_area_id,
            pcc.c.region_id,
        )
        .outerjoin(pcc, pcc.c.id == listing_areas.c.pcc_area_id)
        .where(listing_areas.c.listing_id.in_(listing_ids))
    ):
        areas.setdefault(listing_id, []).append((region_id, pcc_area_id, pcc_region_id))
    return areas


def _held(connection: sa.Connection, rows: list) -> _Held:
    """The regions and PCC areas that the providers' active memberships of these lots hold."""
    memberships = LotMembership.__table__
    regions_held: dict[tuple[int, int], set[int]] = {}
    pcc_areas_held: dict[tuple[int, int], set[int]] = {}
    for organisation_id, lot_id, region_id, pcc_area_id in connection.execute(
        sa.select(
            memberships.c.organisation_id,
            memberships.c.lot_id,
            memberships.c.region_id,
            memberships.c.pcc_area_id,
        ).where(
            memberships.c.status == MembershipStatus.ACTIVE.value,
            memberships.c.organisation_id.in_({row.organisation_id for row in rows}),
            memberships.c.lot_id.in_({row.lot_id for row in rows}),
        )
    ):
        key = (organisation_id, lot_id)
        if region_id is not None:
            regions_held.setdefault(key, set()).add(region_id)
        if pcc_area_id is not None:
            pcc_areas_held.setdefault(key, set()).add(pcc_area_id)
    return regions_held, pcc_areas_held


def _prices_in_force(
    connection: sa.Connection, listing_ids: list[int], today: date
) -> dict[int, tuple[int, date, date | None]]:
    """Per listing, its price in force ``today`` with the dates it is in force between."""
    return {
        listing_id: (price, effective_from, effective_to)
        for listing_id, price, effective_from, effective_to in connection.execute(
            sa.select(
                _prices.c.listing_id,
                _prices.c.unit_price_pence,
                _prices.c.effective_from,
                _prices.c.effective_to,
            ).where(
                _prices.c.listing_id.in_(listing_ids),
                _prices.c.effective_from <= today,
                sa.or_(_prices.c.effective_to.is_(None), _prices.c.effective_to > today),
            )
        )
    }


def _covered(row: Any, areas: list[_Area], held: _Held) -> set[tuple[int, int | None]]:
    """The listing's areas that an active membership of its lot covers (see ``_cover``)."""
    key = (row.organisation_id, row.lot_id)
    held_regions = held[0].get(key, set())
    held_pcc_areas = held[1].get(key, set())
    cover: set[tuple[int, int | None]] = set()
    for region_id, pcc_area_id, pcc_region_id in areas:
        if region_id is not None and region_id in held_regions:
            cover.add((region_id, None))
        elif pcc_area_id is not None and (
            pcc_area_id in held_pcc_areas or pcc_region_id in held_regions
        ):
            cover.add((pcc_region_id, pcc_area_id))
    return _cover(cover)


def _search_row(
    row: Any,
    cover: set[tuple[int, int | None]],
    price: tuple[int, date, date | None] | None,
    on_postgresql: bool,
) -> dict[str, Any]:
    """The narrow row that the filters, counts and sorting read."""
    return {
        "listing_id": row.id,
        "category_id": row.category_id,
        "organisation_id": row.organisation_id,
        "provider_type": row.provider_type,
        "provider_key": sort_key(row.provider),
        "title_key": sort_key(row.title),
        **{name: bool(getattr(row, name)) for name in FLAG_COLUMNS},
        "eligibility_sex": row.eligibility_sex,
        "min_age": row.min_age,
        "max_age": row.max_age,
        "monthly_capacity": row.monthly_capacity,
        **dict(zip(("price_pence", "price_from", "price_to"), price or (None,) * 3, strict=True)),
        **(_area_arrays(cover) if on_postgresql else {}),
    }


def _insert(
    connection: sa.Connection, documents: list[dict], written: list[dict], covered: list[dict]
) -> None:
    """Insert the covered areas, the narrow rows and their text (PostgreSQL: in the rows; SQLite:
    in the FTS5 table)."""
    insert_many(connection, search_areas, covered)
    if connection.dialect.name == "postgresql":
        for search_row, document in zip(written, documents, strict=True):
            search_row.update(title=document["title"], summary=document["summary"])
            search_row.update(body=document["body"], provider=document["provider"])
            search_row.update(places=document["places"])
        connection.execute(search_rows.insert().values(document=_DOCUMENT), written)
    else:
        connection.exec_driver_sql(
            _INSERT_FTS,
            [
                (d["id"], d["title"], d["summary"], d["body"], d["provider"], d["places"])
                for d in documents
            ],
        )
        insert_many(connection, search_rows, written)


def reindex_listings(
    connection: sa.Connection,
    listing_ids: Iterable[int] = (),
    *,
    organisation_ids: Iterable[int] = (),
    organisation_lots: Iterable[tuple[int, int]] = (),
    today: date | None = None,
) -> int:
    """Rewrite the index rows of these listings, of these organisations' listings and of the
    listings of these (organisation, lot) pairs, with the prices in force ``today`` (London's
    by default); return how many are visible."""
    ids = {pk for pk in listing_ids if pk is not None}
    organisation_ids = [pk for pk in organisation_ids if pk is not None]
    if organisation_ids:
        ids.update(
            connection.scalars(
                sa.select(_listings.c.id).where(_listings.c.organisation_id.in_(organisation_ids))
            )
        )
    pairs = sorted({pair for pair in organisation_lots if None not in pair})
    for start in range(0, len(pairs), 100):
        chunk = pairs[start : start + 100]
        ids.update(
            connection.scalars(
                sa.select(_listings.c.id).where(
                    sa.or_(
                        *(
                            sa.and_(_listings.c.organisation_id == org, _listings.c.lot_id == lot)
                            for org, lot in chunk
                        )
                    )
                )
            )
        )
    ordered = sorted(ids)
    visible = 0
    for start in range(0, len(ordered), _REINDEX_CHUNK):
        chunk = ordered[start : start + _REINDEX_CHUNK]
        _delete_rows(connection, chunk)
        visible += _write_rows(connection, chunk, today)
    return visible


def reindex_all(connection: sa.Connection | None = None) -> int:
    """Rebuild the whole index from the listings; return how many listings are visible."""
    connection = connection or db.session.connection()
    _delete_rows(connection, None)
    ids = list(
        connection.scalars(
            sa.select(_listings.c.id)
            .where(_listings.c.status == ListingStatus.PUBLISHED.value)
            .order_by(_listings.c.id)
        )
    )
    visible = 0
    for start in range(0, len(ids), _REINDEX_CHUNK):
        visible += _write_rows(connection, ids[start : start + _REINDEX_CHUNK])
    analyze(connection)
    return visible


def refresh_prices(connection: sa.Connection | None = None, today: date | None = None) -> int:
    """Rewrite the rows whose stored price is not the one in force ``today`` (a new price has
    taken effect since they were written); return how many. Searches are right without this,
    only slower for those listings, so it runs daily (`flask catalogue refresh-prices`)."""
    connection = connection or db.session.connection()
    today = today or london_date()
    lapsed = list(
        connection.scalars(
            sa.select(search_rows.c.listing_id)
            .where(
                sa.or_(
                    search_rows.c.price_from.is_(None),
                    search_rows.c.price_from > today,
                    search_rows.c.price_to <= today,
                )
            )
            .order_by(search_rows.c.listing_id)
        )
    )
    if lapsed:
        reindex_listings(connection, lapsed, today=today)
    return len(lapsed)


# What a bulk load fills: the planners need fresh statistics on these to choose the indexes.
_ANALYZED_TABLES = (ROWS_TABLE, AREAS_TABLE, "listing_prices", "listings")


def analyze(connection: sa.Connection) -> None:
    """Refresh the planner's statistics of the search tables and what a search joins them to.

    Right after a bulk load nothing has analysed them yet (autovacuum comes later, SQLite never),
    and the planner then guesses a few rows where there are thousands. Bulk loaders get this from
    ``reindex_all``; it runs in the caller's transaction on both databases.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"ANALYZE {', '.join(_ANALYZED_TABLES)}"))
    else:
        for table in _ANALYZED_TABLES:  # the FTS5 table keeps its own statistics
            connection.execute(sa.text(f"ANALYZE {table}"))
