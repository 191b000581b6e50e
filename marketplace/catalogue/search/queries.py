"""The search the page and the API run: one page of visible listings that match, with counts per
filter value."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from marketplace.accounts.queries import Page
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.models import Listing
from marketplace.catalogue.search.params import Reference, SearchParams, load_reference
from marketplace.catalogue.search.statements import matches
from marketplace.core.clock import london_date
from marketplace.core.db import db

MAX_COMPARE = 4
MAX_PAGE = 100_000


@dataclass
class Hit:
    """A listing in the results, with the price in force today."""

    listing: Listing
    unit_price_pence: int | None


@dataclass
class SearchResult:
    params: SearchParams
    page: Page[Hit]
    facets: dict[str, dict[str, int]]
    reference: Reference

    @property
    def total(self) -> int:
        return self.page.total


def search(
    params: SearchParams,
    *,
    today: date | None = None,
    url_for_page: Callable[[int], str] | None = None,
    reference: Reference | None = None,
) -> SearchResult:
    """One page of visible listings that match, with counts per filter value.

    Three statements whatever the number of results: reference data (unless given), the counts
    with the page's ids (``statements.matches``), and the page's listings. A page past the end
    shows the last page.
    """
    today = today or london_date()
    reference = reference or load_reference()
    per_page = params.per_page
    requested = max(1, min(params.page, MAX_PAGE))
    dialect = db.session.get_bind().dialect.name
    total, facets, rows = matches(params, reference, today, dialect, requested)
    pages = max(1, -(-total // per_page))
    return SearchResult(
        params,
        Page(
            items=_load(rows),
            page=min(requested, pages),
            per_page=per_page,
            total=total,
            url_for_page=url_for_page,
        ),
        facets,
        reference,
    )


def _load(rows: list[tuple[int, int | None]]) -> list:
    """The page's listings with their organisations and lots, in the given order."""
    if not rows:
        return []
    statement = (
        sa.select(Listing)
        .where(Listing.id.in_([pk for pk, _ in rows]))
        .options(
            joinedload(Listing.organisation),
            joinedload(Listing.lot).joinedload(ArrangementLot.category),
        )
    )
    listings = {listing.id: listing for listing in db.session.scalars(statement)}
    return [Hit(listings[pk], price) for pk, price in rows if pk in listings]
