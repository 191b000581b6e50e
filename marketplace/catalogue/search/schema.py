"""The search index's tables, written by hand (a migration makes them, not the models), and the
cache topic of what a search shows.

``listing_search_areas`` holds, for each listing that buyers may see, the areas it is offered in
that an active membership of its lot covers (a region membership covers the region and every PCC
area in it; a PCC-area membership covers that area). ``listing_search_rows`` holds one narrow row
per such listing with what filters, counts and sorting read: its lot, flags, eligibility, sort
keys, the price in force with its dates and, on PostgreSQL, its covered regions' ids (GIN) and its
text. So "visible" is the existence of those rows. On SQLite the text is in the FTS5 table
``listing_search`` (``rowid`` = listing id).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    FORMAT_COLUMNS,
    RISK_COLUMNS,
    SETTING_COLUMNS,
)

SEARCH_TABLE = "listing_search"
AREAS_TABLE = "listing_search_areas"
ROWS_TABLE = "listing_search_rows"
# The page cache topic of search results (marketplace.core.cache): moved on by any change to what
# a search shows, so that a cached results page is never served after such a change.
SEARCH_TOPIC = "catalogue-search"


def is_search_object(name: str | None) -> bool:
    """Whether a table belongs to the search index (written by hand, not in the models)."""
    return bool(name) and (name == SEARCH_TABLE or name.startswith(SEARCH_TABLE + "_"))


search_areas = sa.table(
    AREAS_TABLE, sa.column("listing_id"), sa.column("region_id"), sa.column("pcc_area_id")
)
search_text = sa.table(SEARCH_TABLE, sa.column("rowid"))  # SQLite
FLAG_COLUMNS = [
    *SETTING_COLUMNS.values(),
    *FORMAT_COLUMNS.values(),
    *RISK_COLUMNS.values(),
    *COMPLEXITY_COLUMNS.values(),
]
# One narrow row per visible listing with what the filters, counts and sorting read, so that a
# search never reads the (wide) listings table but for the page it shows.
search_rows = sa.table(
    ROWS_TABLE,
    sa.column("listing_id"),
    sa.column("category_id"),
    sa.column("organisation_id"),
    sa.column("provider_type"),
    sa.column("provider_key"),
    sa.column("title_key"),
    *(sa.column(name, sa.Boolean) for name in FLAG_COLUMNS),
    sa.column("eligibility_sex"),
    sa.column("min_age"),
    sa.column("max_age"),
    sa.column("monthly_capacity"),
    # The price in force from price_from until the day before price_to (None: open-ended), as
    # it stood when the row was written; on a day outside those dates a search reads the prices.
    sa.column("price_pence"),
    sa.column("price_from", sa.Date()),
    sa.column("price_to", sa.Date()),
    sa.column("region_ids", postgresql.ARRAY(sa.Integer())),  # PostgreSQL only
    sa.column("wide_region_ids", postgresql.ARRAY(sa.Integer())),  # PostgreSQL only
    sa.column("pcc_area_ids", postgresql.ARRAY(sa.Integer())),  # PostgreSQL only
    sa.column("document", postgresql.TSVECTOR()),  # PostgreSQL only
)
