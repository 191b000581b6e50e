"""Listing use cases: create, edit, copy, publish, pause, withdraw, confirm accurate.

Each takes the acting user, enforces the rules, audits, flushes and never commits. A listing may be
offered only where its provider holds an active membership of its lot; publishing checks that again.
Who may act is ``permissions.can_manage_listings``. The rules a rate card import shares with these
(``check_values``, ``check_listing``, ``publish_refusal``, ``published_state``, the audit
snapshots) are functions here that ``marketplace.catalogue.imports`` calls too.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.models import (
    LISTING_TRANSITIONS,
    REASON_MAX,
    TITLE_MAX,
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
)
from marketplace.catalogue.permissions import can_manage_listings
from marketplace.catalogue.services.areas import (
    Area,
    AreaCoverage,
    area_codes,
    check_areas,
    load_coverage,
    set_areas,
    uncovered_areas,
)
from marketplace.catalogue.services.details import (
    LISTING_FIELDS,
    ListingDetails,
    check_fields,
    check_price_pence,
    check_text,
)
from marketplace.catalogue.services.vat import check_vat_registration
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.state import check_transition, lock, transition

FIRST_PRICE_REASON = "First price"

# ---------------------------------------------------------------------------------------------
# Rules shared with the rate card import


def require_editor(actor: User | None, organisation: Organisation) -> None:
    """Only the provider's administrators and editors act on its listings (others: 404)."""
    if not can_manage_listings(actor, organisation):
        raise NotFound("Listing not found")


def require_not_withdrawn(listing: Listing) -> None:
    if listing.status == ListingStatus.WITHDRAWN:
        raise BusinessRuleViolation(
            {
                "status": [
                    "This listing has been withdrawn, so it can no longer be changed. Copy it to start a new one."
                ]
            }
        )


def check_values(
    organisation: Organisation,
    details: ListingDetails,
    lot: ArrangementLot | None,
    errors: dict,
    *,
    lot_error: str | None = None,
) -> dict:
    """The listing's column values (``lot_id`` included when ``lot`` is given): its own fields,
    then VAT registration, then the lot (``lot_error`` when it could not be found)."""
    values = check_fields(details, errors)
    check_vat_registration(organisation, values, errors)
    if lot_error:
        errors["lot_id"] = [lot_error]
    if lot is not None:
        values["lot_id"] = lot.id
    return values


def check_listing(
    organisation: Organisation,
    details: ListingDetails,
    lot: ArrangementLot | None,
    coverage: AreaCoverage,
    errors: dict,
    *,
    lot_error: str | None = None,
) -> tuple[dict, list[Area]]:
    """Every rule of what a listing says: (column values, areas); adds to ``errors``."""
    values = check_values(organisation, details, lot, errors, lot_error=lot_error)
    areas = check_areas(errors, lot, details.region_codes, details.pcc_area_codes, coverage)
    return values, areas


def publish_refusal(
    lot: ArrangementLot,
    uncovered_names: Iterable[str],
    *,
    price_today: bool,
    vat_errors: Iterable[str] = (),
) -> str | None:
    """Why a draft or paused listing cannot be published (None: it can): every area needs an
    active membership of the lot, the provider must be VAT registered for a treatment that
    charges VAT (``vat_errors``, from ``check_vat_registration``), and a price must be in force
    today."""
    names = ", ".join(uncovered_names)
    if names:
        return (
            f"This listing cannot be published: your membership of {lot.category.name} is not "
            f"active in {names}. Remove those areas, or publish once the membership is active "
            "again."
        )
    if vat_message := next(iter(vat_errors), None):
        return vat_message
    if not price_today:
        return "Set a price in force today before publishing"
    return None


def published_state(was: ListingStatus, published_at: datetime | None, now: datetime) -> dict:
    """The columns publishing (from draft) or resuming (from paused) sets beside the status:
    publishing confirms the listing accurate."""
    return {
        "published_at": now if was == ListingStatus.DRAFT else published_at,
        "paused_at": None,
        "confirmed_at": now,
        "stale_notified_at": None,
    }


def publish_action(was: ListingStatus) -> str:
    """The audit action of publishing a listing that was ``was``."""
    return "listing.published" if was == ListingStatus.DRAFT else "listing.resumed"


def listing_snapshot(listing: Listing, area_codes: Iterable[str] | None = None) -> dict:
    """A listing as its audit events record it: ``LISTING_FIELDS`` and its areas' codes."""
    data = audit.snapshot(listing, LISTING_FIELDS)
    if area_codes is None:
        area_codes = (
            a.region.code if a.region is not None else a.pcc_area.code for a in listing.areas
        )
    data["areas"] = sorted(area_codes)
    return data


def values_snapshot(values: Mapping[str, Any], area_codes: Iterable[str]) -> dict:
    """A listing not yet an object (a bulk write's row) as ``listing_snapshot`` records one."""
    data = {name: values.get(name) for name in LISTING_FIELDS}
    data["areas"] = sorted(area_codes)
    return data


def created_event(snapshot: dict, unit_price_pence: int, effective_from: date) -> dict:
    """What ``listing.created`` says: the listing, and its first price with its date."""
    return {**snapshot, "unit_price_pence": unit_price_pence, "effective_from": effective_from}


def listing_reference(listing_id: int) -> str:
    """The readable reference of a listing, made from its key so that it can never clash."""
    return f"SL-{listing_id:06d}"


# ---------------------------------------------------------------------------------------------
# Create and edit


def _check_details(
    organisation: Organisation, details: ListingDetails
) -> tuple[dict, ArrangementLot | None, list[Area]]:
    """Validate ``details``; return (column values, lot, areas) or raise with every error."""
    errors: dict[str, list[str]] = {}
    lot, lot_error = None, None
    if details.lot_id is None:
        lot_error = "Choose the lot this service belongs to"
    else:
        lot = (
            db.session.get(ArrangementLot, details.lot_id)
            if isinstance(details.lot_id, int)
            else None
        )
        if lot is None:
            lot_error = "Choose a lot from the list"
    coverage = load_coverage(
        organisation.id,
        lot_ids=[lot.id] if lot is not None else [],
        region_codes=area_codes(details.region_codes, upper=True),
        pcc_codes=area_codes(details.pcc_area_codes, upper=False),
    )
    values, areas = check_listing(organisation, details, lot, coverage, errors, lot_error=lot_error)
    if errors:
        raise BusinessRuleViolation(errors)
    return values, lot, areas


def _provisional_reference() -> str:
    # Unique until the flush gives the listing its key and ``listing_reference`` replaces it.
    return f"NEW-{secrets.token_hex(8)}"


def create_listing(
    actor: User,
    organisation: Organisation,
    details: ListingDetails,
    *,
    unit_price_pence: int,
    at: datetime | None = None,
) -> Listing:
    """Start a draft listing with its first price, in force from today."""
    require_editor(actor, organisation)
    errors: dict[str, list[str]] = {}
    price = check_price_pence(unit_price_pence, errors)
    try:
        values, lot, areas = _check_details(organisation, details)
    except BusinessRuleViolation as error:
        raise BusinessRuleViolation({**error.errors, **errors}) from None
    if errors:
        raise BusinessRuleViolation(errors)
    now = at or utcnow()
    listing = Listing(
        reference=_provisional_reference(),
        organisation=organisation,
        status=ListingStatus.DRAFT,
        created_by_id=actor.id,
        confirmed_at=now,
        **values,
    )
    listing.areas = [ListingArea(region=region, pcc_area=pcc) for region, pcc in areas]
    listing.prices = [
        ListingPrice(
            unit_price_pence=price,
            effective_from=london_date(now),
            created_at=now,
            created_by_id=actor.id,
            reason=FIRST_PRICE_REASON,
        )
    ]
    db.session.add(listing)
    db.session.flush()
    listing.reference = listing_reference(listing.id)
    db.session.flush()
    audit.record(
        actor,
        "listing.created",
        listing,
        after=created_event(listing_snapshot(listing), price, london_date(now)),
    )
    return listing


def update_listing(actor: User, listing: Listing, details: ListingDetails, *, at=None) -> Listing:
    """Change a listing's details (not its price: see ``prices.set_price``); confirms it
    accurate."""
    require_editor(actor, listing.organisation)
    require_not_withdrawn(listing)
    values, lot, areas = _check_details(listing.organisation, details)
    before = listing_snapshot(listing)
    for name, value in values.items():
        setattr(listing, name, value)
    set_areas(listing, areas)
    listing.confirmed_at = at or utcnow()
    listing.stale_notified_at = None
    db.session.flush()
    after = listing_snapshot(listing)
    if after != before:
        audit.record(actor, "listing.updated", listing, before=before, after=after)
    return listing


def copy_listing(actor: User, listing: Listing, *, at: datetime | None = None) -> Listing:
    """Start a new draft from an existing listing (its details and today's price)."""
    require_editor(actor, listing.organisation)
    now = at or utcnow()
    current = listing.price_on(london_date(now)) or (listing.prices[-1] if listing.prices else None)
    details = ListingDetails.of(listing)
    details.title = f"Copy of {listing.title}"[:TITLE_MAX]
    copy = create_listing(
        actor,
        listing.organisation,
        details,
        unit_price_pence=current.unit_price_pence if current else 0,
        at=now,
    )
    copy.copied_from_id = listing.id
    db.session.flush()
    audit.record(actor, "listing.copied", copy, after={"copied_from": listing.reference})
    return copy


# ---------------------------------------------------------------------------------------------
# States


def publish_listing(
    actor: User, listing: Listing, *, at: datetime | None = None, resume: bool = False
) -> Listing:
    """Publish a draft, or resume a paused listing, while every area's membership is active
    (``resume``: only a paused one)."""
    require_editor(actor, listing.organisation)
    publishing = {"noun": "listing", "done": "published"}
    if resume:
        publishing = {
            "noun": "listing",
            "done": "resumed",
            "only_from": {ListingStatus.PAUSED},
            "already": "This listing is already published",
        }
    check_transition(listing, ListingStatus.PUBLISHED, LISTING_TRANSITIONS, **publishing)
    now = at or utcnow()
    vat_errors: dict[str, list[str]] = {}
    check_vat_registration(
        listing.organisation, {"vat_treatment": listing.vat_treatment}, vat_errors
    )
    refusal = publish_refusal(
        listing.lot,
        [a.name for a in uncovered_areas(listing)],
        price_today=listing.price_on(london_date(now)) is not None,
        vat_errors=vat_errors.get("vat_treatment", ()),
    )
    if refusal:
        raise BusinessRuleViolation({"status": [refusal]})
    before = listing_snapshot(listing)
    was = listing.status
    transition(listing, ListingStatus.PUBLISHED, LISTING_TRANSITIONS, **publishing)
    for name, value in published_state(was, listing.published_at, now).items():
        setattr(listing, name, value)
    db.session.flush()
    audit.record(
        actor, publish_action(was), listing, before=before, after=listing_snapshot(listing)
    )
    return listing


def pause_listing(actor: User, listing: Listing, *, at: datetime | None = None) -> Listing:
    """Stop taking new call-offs for a while; the listing leaves search until resumed."""
    require_editor(actor, listing.organisation)
    lock(listing)
    before = listing_snapshot(listing)
    transition(listing, ListingStatus.PAUSED, LISTING_TRANSITIONS, noun="listing")
    listing.paused_at = at or utcnow()
    db.session.flush()
    audit.record(actor, "listing.paused", listing, before=before, after=listing_snapshot(listing))
    return listing


def withdraw_listing(
    actor: User, listing: Listing, reason: str = "", *, at: datetime | None = None
) -> Listing:
    """Take a listing off the rate card for good (call-offs already placed are not affected)."""
    require_editor(actor, listing.organisation)
    errors: dict = {}
    reason = check_text(errors, "reason", reason, "a reason", REASON_MAX, required=False)
    if errors:
        raise BusinessRuleViolation(errors)
    lock(listing)
    before = listing_snapshot(listing)
    transition(listing, ListingStatus.WITHDRAWN, LISTING_TRANSITIONS, noun="listing")
    listing.withdrawn_at = at or utcnow()
    db.session.flush()
    audit.record(
        actor,
        "listing.withdrawn",
        listing,
        before=before,
        after={**listing_snapshot(listing), "reason": reason},
    )
    return listing


def confirm_accurate(actor: User, listing: Listing, *, at: datetime | None = None) -> Listing:
    """One click: the provider confirms the listing is still accurate."""
    require_editor(actor, listing.organisation)
    require_not_withdrawn(listing)
    listing.confirmed_at = at or utcnow()
    listing.stale_notified_at = None
    db.session.flush()
    audit.record(actor, "listing.confirmed", listing, after={"confirmed_at": listing.confirmed_at})
    return listing
