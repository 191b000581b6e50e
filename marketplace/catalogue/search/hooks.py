"""What keeps the search index and cached search pages in step with every write.

- The index: a session hook notes, at each flush, the listings whose searchable text, status, lot,
  provider name or type, areas or prices changed, and the (provider, lot) pairs whose memberships
  changed, and rewrites their rows before the flush ends, in its transaction (``index``). Writers
  that bypass the ORM (bulk loads with SQLAlchemy Core) call ``index.reindex_listings`` or
  ``index.reindex_all`` themselves.
- Cached search pages and kept listings: the ``watch`` declarations below make the database's
  triggers move ``SEARCH_TOPIC`` on for every write to the data a search shows, and to the index
  itself, whatever wrote it (``marketplace.core.cache``). No writer has to remember to.

Registered with the models (``marketplace/models.py``), so that every app and command has them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import LotMembership
from marketplace.catalogue.models import CapacityCommitment, Listing, ListingArea, ListingPrice
from marketplace.catalogue.search.index import reindex_listings
from marketplace.catalogue.search.schema import AREAS_TABLE, FLAG_COLUMNS, ROWS_TABLE, SEARCH_TOPIC
from marketplace.core.cache import watch

# What a listing's index rows are made of: a change to any of these rewrites them.
_LISTING_FIELDS = frozenset(
    {
        *FLAG_COLUMNS,
        "eligibility_sex",
        "min_age",
        "max_age",
        "monthly_capacity",
        "title",
        "summary",
        "description",
        "outcomes",
        "status",
        "organisation_id",
        "lot_id",
        "organisation",
        "lot",
    }
)
# What decides which areas a membership covers: a change to any of these rewrites the rows of its
# provider's listings in its lot.
_MEMBERSHIP_FIELDS = frozenset(
    {
        "status",
        "region_id",
        "pcc_area_id",
        "organisation_id",
        "lot_id",
        "region",
        "pcc_area",
        "organisation",
        "lot",
    }
)

# ---------------------------------------------------------------------------------------------
# Cached search pages and kept listings: what moves SEARCH_TOPIC on

for _model in (Listing, ListingArea, ListingPrice, CapacityCommitment):
    watch(_model, SEARCH_TOPIC)  # type: ignore[arg-type]
watch(LotMembership, SEARCH_TOPIC, attributes=_MEMBERSHIP_FIELDS)  # type: ignore[arg-type]
watch(Organisation, SEARCH_TOPIC, attributes={"name", "type"})  # type: ignore[arg-type]
# What a search shows comes from the index, so writing it moves the topic on too: a reindex, a
# bulk load's, or refresh_prices' rewrite of a row whose new price has taken effect. (The FTS5
# table cannot have triggers; its rows are written with these.)
watch(ROWS_TABLE, SEARCH_TOPIC)
watch(AREAS_TABLE, SEARCH_TOPIC)

# ---------------------------------------------------------------------------------------------
# The index: the rows of what each flush changed, rewritten before the flush ends

_PENDING = "catalogue_search_pending"


def _changed(obj: Any, names: frozenset[str]) -> bool:
    attrs = sa.inspect(obj).attrs
    return any(name in attrs and attrs[name].history.has_changes() for name in names)


def _id_of(obj: Any, fk: str, relationship: str) -> int | None:
    value = getattr(obj, fk, None)
    if value is None:
        related = getattr(obj, relationship, None)
        value = getattr(related, "id", None)
    return value


@event.listens_for(Session, "after_flush")
def _note_changes(session: Session, flush_context: Any) -> None:
    # after_flush still sees what was new, dirty and deleted, with each attribute's history.
    listing_ids: set[int] = set()
    organisation_ids: set[int] = set()
    organisation_lots: set[tuple[int, int]] = set()
    dirty = session.dirty
    for obj in (*session.new, *session.deleted, *dirty):
        is_dirty = obj in dirty
        if isinstance(obj, Listing):
            if not is_dirty or _changed(obj, _LISTING_FIELDS):
                listing_ids.add(obj.id)
        elif isinstance(obj, ListingPrice):  # the row carries the price in force
            listing_ids.add(_id_of(obj, "listing_id", "listing"))
        elif isinstance(obj, ListingArea):
            listing_ids.add(_id_of(obj, "listing_id", "listing"))
            if is_dirty:
                old = sa.inspect(obj).attrs.listing_id.history.deleted
                listing_ids.update(pk for pk in old if pk is not None)
        elif isinstance(obj, Organisation):
            if is_dirty and _changed(obj, frozenset({"name", "type"})):
                organisation_ids.add(obj.id)
        elif isinstance(obj, LotMembership) and (not is_dirty or _changed(obj, _MEMBERSHIP_FIELDS)):
            organisation_lots.add(
                (_id_of(obj, "organisation_id", "organisation"), _id_of(obj, "lot_id", "lot"))
            )
    listing_ids.discard(None)
    if listing_ids or organisation_ids or organisation_lots:
        pending = session.info.setdefault(_PENDING, (set(), set(), set()))
        pending[0].update(listing_ids)
        pending[1].update(organisation_ids)
        pending[2].update(organisation_lots)


@event.listens_for(Session, "after_flush_postexec")
def _reindex_changes(session: Session, flush_context: Any) -> None:
    # In the flush's own transaction: the index never disagrees with committed data.
    pending = session.info.pop(_PENDING, None)
    if pending:
        listing_ids, organisation_ids, organisation_lots = pending
        reindex_listings(
            session.connection(),
            listing_ids,
            organisation_ids=organisation_ids,
            organisation_lots=organisation_lots,
        )


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back(session: Session) -> None:
    session.info.pop(_PENDING, None)
