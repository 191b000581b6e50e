"""The import use case: check every row, preview, and write everything in bulk, all or nothing.

``import_rows`` takes its rules from the listing services (who may act: ``require_editor``; what a
listing may say, where it may be offered, when a price starts and how versions follow each other:
``check``; what each audit event says: ``services.listings`` and ``services.prices``) and does
only the I/O in bulk: a few statements whatever the number of rows (``make bench``:
``benchmarks/import_rate_card.py``, a 10,000-row rate card). The rows are written with SQLAlchemy
Core, which the ORM's flush hooks do not see, so the write itself brings the search index up to
date (``reindex_listings``) and the page cache moves on by its database triggers
(``tests/cache_guard.py`` fails a write that would not). It flushes and never commits.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.services.applications import provider_admins
from marketplace.catalogue.imports.check import RowPlan, check_rows
from marketplace.catalogue.imports.columns import FIRST_DATA_ROW, ImportResult
from marketplace.catalogue.imports.context import RateCardContext, load_context
from marketplace.catalogue.imports.preview import ListingUpdate, preview
from marketplace.catalogue.models import Listing, ListingArea, ListingPrice, ListingStatus
from marketplace.catalogue.search.index import reindex_listings
from marketplace.catalogue.services.listings import (
    FIRST_PRICE_REASON,
    created_event,
    listing_snapshot,
    publish_action,
    published_state,
    require_editor,
    values_snapshot,
)
from marketplace.catalogue.services.prices import price_set_event
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.notifications.services import queue_email
from marketplace.core.store import insert_rows

IMPORT_REASON = "Rate card import"  # the reason each price version an import sets gives
EMAIL_LINES = 50  # the email lists this many changes and new listings; the page lists them all
CHUNK = 5000  # ids or references in one IN (…): under every database's parameter limit


def import_rows(
    actor: User,
    organisation: Organisation,
    rows: Sequence[dict[str, str]],
    *,
    at: datetime | None = None,
    dry_run: bool = False,
    first_row: int = FIRST_DATA_ROW,
) -> ImportResult:
    """Validate every row, then create or update the listings and set their prices, all or none.

    An empty cell (or a column the file leaves out) keeps what the listing has; ``(clear)``
    empties an optional field. Raises ``ImportRefused`` naming every bad row and column; writes
    nothing then. With ``dry_run`` it only says what would happen (the preview): every change as
    listing, column, old and new, and every new listing. The same rows give the same result
    (``ImportResult.fingerprint``) until the rate card changes.
    """
    require_editor(actor, organisation)
    now = at or utcnow()
    references = (
        (r.get("reference") or "").strip().upper()
        for r in rows
        if (r.get("reference") or "").strip()
    )
    ctx = load_context(organisation, references)
    plans = check_rows(rows, ctx, london_date(now), first_row)
    result, updates = preview(plans, ctx)
    if dry_run:
        return result
    events = _AuditRows(actor, organisation, now)
    new_plans = [p for p in plans if p.listing is None]
    new_ids = _insert_listings(new_plans, organisation, actor, now)
    _write_updates(updates, ctx, actor, now, events)
    _write_new_children(new_plans, new_ids, ctx, actor, now, events)
    result.listing_ids.extend(new_ids)
    events.add(
        "rate_card.imported",
        "organisation",
        organisation.id,
        None,
        {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "prices_changed": result.prices_changed,
            "published": result.published,
        },
    )
    events.write()
    # The rows were written without the ORM: what the session holds is out of date, and the
    # search index's flush hook did not see them.
    db.session.expire_all()
    reindex_listings(db.session.connection(), list(result.listing_ids))
    _email_result(actor, organisation, result)
    return result


class _AuditRows:
    """Audit events for one bulk insert: the rows ``audit.record`` would add, one by one."""

    def __init__(self, actor: User, organisation: Organisation, now: datetime):
        self.actor, self.organisation, self.now = actor, organisation, now
        self.rows: list[dict[str, Any]] = []

    def add(self, action: str, object_type: str, object_id: Any, before=None, after=None) -> None:
        values = audit.event_values(
            self.actor,
            action,
            object_type=object_type,
            object_id=object_id,
            organisation=self.organisation,
            before=before,
            after=after,
        )
        self.rows.append({"occurred_at": self.now, **values})

    def write(self) -> None:
        if self.rows:
            insert_rows(AuditEvent.__table__, self.rows)


class _Writes:
    """The statements of the updates, gathered to run as a few executemany each."""

    def __init__(self) -> None:
        self.listings: list[dict[str, Any]] = []
        self.area_deletes: list[int] = []
        self.area_inserts: list[dict[str, Any]] = []
        self.price_inserts: list[dict[str, Any]] = []
        self.price_updates: list[dict[str, Any]] = []


def _write_updates(
    updates: list[ListingUpdate],
    ctx: RateCardContext,
    actor: User,
    now: datetime,
    events: _AuditRows,
) -> None:
    """Each existing listing's changes, price versions and audit events, in bulk."""
    writes = _Writes()
    for update in updates:
        _plan_update(update, ctx, actor, now, writes, events)
    _update_by_id(Listing.__table__, writes.listings)
    area_table = ListingArea.__table__
    for i in range(0, len(writes.area_deletes), CHUNK):
        chunk = writes.area_deletes[i : i + CHUNK]
        db.session.execute(area_table.delete().where(area_table.c.id.in_(chunk)))
    _update_by_id(ListingPrice.__table__, writes.price_updates)
    if writes.area_inserts:
        insert_rows(area_table, writes.area_inserts)
    if writes.price_inserts:
        insert_rows(ListingPrice.__table__, writes.price_inserts)


def _plan_update(
    update: ListingUpdate,
    ctx: RateCardContext,
    actor: User,
    now: datetime,
    writes: _Writes,
    events: _AuditRows,
) -> None:
    """One listing's rows and events: as ``update_listing``, ``publish_listing`` and
    ``set_price`` would leave and audit it (every import confirms the listing accurate)."""
    listing, plan = update.listing, update.plan
    row: dict[str, Any] = {"id": listing.id, "confirmed_at": now, "stale_notified_at": None,
                           "updated_at": now, **update.changed}  # fmt: skip
    snapshot = None
    if update.changed or update.areas_changed or update.publish:
        before = listing_snapshot(listing, _codes(update.current_areas, ctx))
        snapshot = {**before, **update.changed, "areas": _codes(plan.areas, ctx)}
        if update.changed or update.areas_changed:
            events.add("listing.updated", "listing", listing.id, before, snapshot)
    if update.publish:
        row["status"] = ListingStatus.PUBLISHED
        row.update(published_state(listing.status, listing.published_at, now))
        events.add(
            publish_action(listing.status),
            "listing",
            listing.id,
            snapshot,
            {**snapshot, "status": ListingStatus.PUBLISHED},
        )
    writes.listings.append(row)
    wanted = set(plan.areas)
    writes.area_deletes.extend(
        area_id for key, area_id in update.current_areas.items() if key not in wanted
    )
    writes.area_inserts.extend(
        {"listing_id": listing.id, "region_id": r, "pcc_area_id": p}
        for r, p in sorted(wanted - set(update.current_areas), key=str)
    )
    _plan_versions(plan, listing.id, actor, now, writes)
    for change in plan.price_changes:
        events.add(
            "listing.price_set", "listing", listing.id, *price_set_event(change, IMPORT_REASON)
        )


def _plan_versions(
    plan: RowPlan, listing_id: int, actor: User, now: datetime, writes: _Writes
) -> None:
    """The price history as ``check`` planned it with the services' versioning rule: new
    versions inserted, the one before each closed, a same-day version's price replaced."""
    assert plan.listing is not None
    originals = {p.id: p for p in plan.listing.prices}
    for version in plan.versions:
        if version.id is None:
            writes.price_inserts.append(
                {
                    "listing_id": listing_id,
                    "unit_price_pence": version.unit_price_pence,
                    "effective_from": version.effective_from,
                    "effective_to": version.effective_to,
                    "reason": IMPORT_REASON,
                    "created_at": now,
                    "created_by_id": actor.id,
                }
            )
            continue
        update: dict[str, Any] = {}
        if version.replaced:
            update.update(unit_price_pence=version.unit_price_pence, created_at=now,
                          created_by_id=actor.id, reason=IMPORT_REASON)  # fmt: skip
        if version.effective_to != originals[version.id].effective_to:
            update["effective_to"] = version.effective_to
        if update:
            writes.price_updates.append({"id": version.id, **update})


def _insert_listings(
    new_plans: list[RowPlan], organisation: Organisation, actor: User, now: datetime
) -> list[int]:
    """Insert the new listings; their ids, in the plans' order."""
    if not new_plans:
        return []
    references = _next_references(len(new_plans))
    rows = []
    for plan, reference in zip(new_plans, references, strict=True):
        status = ListingStatus.PUBLISHED if plan.publish else ListingStatus.DRAFT
        published = published_state(ListingStatus.DRAFT, None, now) if plan.publish else {}
        rows.append(
            {
                **plan.values,
                "reference": reference,
                "organisation_id": organisation.id,
                "status": status,
                "created_by_id": actor.id,
                "copied_from_id": None,
                "published_at": None,
                "paused_at": None,
                "withdrawn_at": None,
                "confirmed_at": now,
                "stale_notified_at": None,
                "created_at": now,
                "updated_at": now,
                **published,
            }
        )
    # Plain executemany (RETURNING would go row by row on SQLite), then the new ids by their
    # references, which are unique: a few statements whatever the number of rows.
    table = Listing.__table__
    insert_rows(table, rows)
    id_by_reference: dict[str, int] = {}
    for i in range(0, len(references), CHUNK):
        chunk = references[i : i + CHUNK]
        id_by_reference.update(
            db.session.execute(
                sa.select(table.c.reference, table.c.id).where(table.c.reference.in_(chunk))
            ).all()
        )
    return [id_by_reference[reference] for reference in references]


def _write_new_children(
    new_plans: list[RowPlan],
    new_ids: list[int],
    ctx: RateCardContext,
    actor: User,
    now: datetime,
    events: _AuditRows,
) -> None:
    """The new listings' areas and price versions, and their ``listing.created`` events."""
    areas, prices = [], []
    for plan, listing_id in zip(new_plans, new_ids, strict=True):
        areas.extend(
            {"listing_id": listing_id, "region_id": r, "pcc_area_id": p} for r, p in plan.areas
        )
        prices.extend(
            {
                "listing_id": listing_id,
                "unit_price_pence": version.unit_price_pence,
                "effective_from": version.effective_from,
                "effective_to": version.effective_to,
                "reason": FIRST_PRICE_REASON if n == 0 else IMPORT_REASON,
                "created_at": now,
                "created_by_id": actor.id,
            }
            for n, version in enumerate(plan.versions)
        )
        status = ListingStatus.PUBLISHED if plan.publish else ListingStatus.DRAFT
        snapshot = values_snapshot({**plan.values, "status": status}, _codes(plan.areas, ctx))
        first = plan.first_version
        events.add(
            "listing.created",
            "listing",
            listing_id,
            None,
            created_event(snapshot, first.unit_price_pence, first.effective_from),
        )
    if areas:
        insert_rows(ListingArea.__table__, areas)
    if prices:
        insert_rows(ListingPrice.__table__, prices)


def _codes(keys, ctx: RateCardContext) -> list[str]:
    regions, pcc = ctx.area_code_lists(keys)
    return sorted(regions + pcc)


def _next_references(count: int) -> list[str]:
    """``count`` unused references SL-nnnnnn after the highest listing id (a few queries)."""
    latest = db.session.scalar(sa.select(sa.func.max(Listing.id))) or 0
    start, result = latest + 1, []
    while len(result) < count:
        candidates = [f"SL-{n:06d}" for n in range(start, start + (count - len(result)) + 100)]
        taken: set[str] = set()
        for i in range(0, len(candidates), CHUNK):
            chunk = candidates[i : i + CHUNK]
            taken |= set(db.session.scalars(sa.select(Listing.reference).where(
                Listing.reference.in_(chunk))))  # fmt: skip
        result.extend(c for c in candidates if c not in taken)
        start += len(candidates)
    return result[:count]


def _update_by_id(table: sa.Table, rows: list[dict[str, Any]]) -> None:
    """UPDATE each row by its ``id``: rows with the same keys go in one executemany. The key is
    passed as ``_id``: an ``id`` among the values would also be SET, and setting a primary key,
    even to itself, makes SQLite check every table that refers to it."""
    by_keys: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        by_keys[tuple(sorted(row))].append(row)
    for keys, group in by_keys.items():
        statement = (
            table.update()
            .where(table.c.id == sa.bindparam("_id"))
            .values({k: sa.bindparam(k) for k in keys if k != "id"})
        )
        parameters = [
            {**{k: v for k, v in row.items() if k != "id"}, "_id": row["id"]} for row in group
        ]
        db.session.execute(statement, parameters)


def _email_result(actor: User, organisation: Organisation, result: ImportResult) -> None:
    """Tell the person who imported, and the provider's administrators, what the import did."""
    recipients = {user.id: user for user in provider_admins(organisation)}
    recipients.setdefault(actor.id, actor)
    base_url = current_app.config["BASE_URL"].rstrip("/")
    for user in recipients.values():
        queue_email(
            user.email,
            "catalogue_rate_card_imported",
            user=user,
            actor=actor,
            organisation=organisation,
            result=result,
            changes=result.changes[:EMAIL_LINES],
            new_listings=result.new_listings[:EMAIL_LINES],
            link=f"{base_url}/catalogue/providers/{organisation.id}/rate-card",
        )
