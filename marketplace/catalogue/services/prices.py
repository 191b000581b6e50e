"""Prices: a listing's unit price from a date, kept as a history of versions, and uplifts.

The versioning rule is written once (``plan_price_version`` and ``put_price_version``) and so is
what a price change's audit event says (``price_set_event``): the single edit applies them to the
listing's loaded versions, the rate card import to its plan of each listing's history before it
writes every row in bulk.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableSequence, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.catalogue.models import REASON_MAX, Listing, ListingPrice, ListingStatus
from marketplace.catalogue.services.details import check_price_pence, check_text
from marketplace.catalogue.services.listings import require_editor, require_not_withdrawn
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import round_half_up
from marketplace.core.validation import date_horizon_error

MAX_UPLIFT_BASIS_POINTS = 10_000  # +100%
MIN_UPLIFT_BASIS_POINTS = -5_000  # −50%: a cut, for example after a typing error


class PriceVersion(Protocol):
    """A version of a price: a ``ListingPrice``, or the import's plan of one."""

    unit_price_pence: int
    effective_from: date
    effective_to: date | None

    def in_force_on(self, day: date) -> bool: ...


V = TypeVar("V", bound=PriceVersion)


def price_start_error(
    day: date,
    today: date,
    *,
    label: str = "The date the new price takes effect",
    noun: str = "new price",
) -> str | None:
    """When a new price may take effect: today or later (never back in time), within the
    horizon every date in the service keeps to."""
    if message := date_horizon_error(day, label, today=today):
        return message
    if day < today:
        return f"The {noun} must take effect today or later, not in the past"
    return None


@dataclass(frozen=True)
class PriceVersionPlan:
    """Where a new price from a date goes in a listing's history (the one versioning rule).

    ``replaces``: the version that starts on the same date, whose price is replaced (it never
    took effect on any other day); otherwise a new version runs from the date up to ``effective_to``
    (the next version's start, or open-ended), and ``closes`` (the version before it) now ends on
    the date. Earlier versions are never rewritten.
    """

    replaces: Any
    effective_to: date | None
    closes: Any


def plan_price_version(versions: Iterable[PriceVersion], effective_from: date) -> PriceVersionPlan:
    """Where a price from ``effective_from`` goes among ``versions`` (see ``PriceVersionPlan``)."""
    ordered = sorted(versions, key=lambda p: p.effective_from)
    same_day = next((p for p in ordered if p.effective_from == effective_from), None)
    if same_day is not None:
        return PriceVersionPlan(replaces=same_day, effective_to=None, closes=None)
    earlier = [p for p in ordered if p.effective_from < effective_from]
    later = [p for p in ordered if p.effective_from > effective_from]
    return PriceVersionPlan(
        replaces=None,
        effective_to=later[0].effective_from if later else None,
        closes=earlier[-1] if earlier else None,
    )


@dataclass(frozen=True, slots=True)
class PriceChange:
    """A price set from a date, and the price in force that day before it (None: none then)."""

    old: int | None
    old_from: date | None
    new: int
    effective_from: date
    version: Any  # the version that now holds the price
    replaced: bool  # the version started that day already: its price was replaced


def put_price_version(
    versions: MutableSequence[V],
    price: int,
    effective_from: date,
    new_version: Callable[[int, date, date | None], V],
) -> PriceChange:
    """Apply the versioning rule (``plan_price_version``) to ``versions``, kept in date order:
    a same-day version takes the price, else ``new_version(price, from, to)`` is added and the
    version before it closes on the date."""
    before = next((v for v in versions if v.in_force_on(effective_from)), None)
    old = (before.unit_price_pence, before.effective_from) if before is not None else (None, None)
    plan = plan_price_version(versions, effective_from)
    if plan.replaces is not None:
        version = plan.replaces
        version.unit_price_pence = price
    else:
        version = new_version(price, effective_from, plan.effective_to)
        if plan.closes is not None:
            plan.closes.effective_to = effective_from
        versions.append(version)
        versions.sort(key=lambda v: v.effective_from)
    return PriceChange(
        old=old[0],
        old_from=old[1],
        new=price,
        effective_from=effective_from,
        version=version,
        replaced=plan.replaces is not None,
    )


def price_set_event(change: PriceChange, reason: str) -> tuple[dict | None, dict]:
    """What the ``listing.price_set`` audit event says: (before, after)."""
    before = (
        {"unit_price_pence": change.old, "effective_from": change.old_from}
        if change.old is not None
        else None
    )
    after = {
        "unit_price_pence": change.new,
        "effective_from": change.effective_from,
        "reason": reason,
    }
    return before, after


def set_price(
    actor: User,
    listing: Listing,
    unit_price_pence: int,
    effective_from: date | None,
    reason: str = "",
    *,
    at: datetime | None = None,
) -> ListingPrice:
    """A new unit price from a date (today or later); the history is kept.

    A second change for the same date replaces the first (it never took effect on any other day).
    """
    require_editor(actor, listing.organisation)
    require_not_withdrawn(listing)
    now = at or utcnow()
    today = london_date(now)
    errors: dict[str, list[str]] = {}
    price = check_price_pence(unit_price_pence, errors)
    reason = check_text(errors, "reason", reason, "a reason", REASON_MAX, required=False)
    if not isinstance(effective_from, date):
        errors["effective_from"] = ["Enter the date the new price takes effect"]
    elif message := price_start_error(effective_from, today):
        errors["effective_from"] = [message]
    if errors:
        raise BusinessRuleViolation(errors)
    return _put_price(actor, listing, price, effective_from, reason, now)


def _put_price(
    actor: User, listing: Listing, price: int, effective_from: date, reason: str, now: datetime
) -> ListingPrice:
    created_by_id = actor.id if actor else None

    def new_version(pence: int, start: date, end: date | None) -> ListingPrice:
        return ListingPrice(
            unit_price_pence=pence,
            effective_from=start,
            effective_to=end,
            created_at=now,
            created_by_id=created_by_id,
            reason=reason,
        )

    change = put_price_version(listing.prices, price, effective_from, new_version)
    if change.replaced:
        version = change.version
        version.reason = reason or version.reason
        version.created_at = now
        version.created_by_id = created_by_id
    db.session.flush()
    before, after = price_set_event(change, reason)
    audit.record(actor, "listing.price_set", listing, before=before, after=after)
    return change.version


# ---------------------------------------------------------------------------------------------
# Uplift: every chosen listing's price up (or down) by a percentage from a date


@dataclass(frozen=True)
class UpliftLine:
    listing: Listing
    current_pence: int
    new_pence: int


def uplift_lines(
    listings: Iterable[Listing], basis_points: int, effective_from: date
) -> list[UpliftLine]:
    """What a percentage uplift (in basis points, 250 = 2.5%) would make each price, rounded half up."""
    lines = []
    for listing in listings:
        base = listing.price_on(effective_from) or (listing.prices[-1] if listing.prices else None)
        if base is None:
            continue
        new = round_half_up(Fraction(base.unit_price_pence * (10_000 + basis_points), 10_000))
        lines.append(UpliftLine(listing, base.unit_price_pence, new))
    return lines


def _check_uplift(
    actor: User,
    organisation: Organisation,
    listing_ids: Sequence[int],
    basis_points,
    effective_from,
    today: date,
) -> list[Listing]:
    require_editor(actor, organisation)
    errors: dict[str, list[str]] = {}
    if isinstance(basis_points, bool) or not isinstance(basis_points, int):
        errors["percentage"] = ["Enter the uplift as a percentage, like 2.5"]
    elif (
        not MIN_UPLIFT_BASIS_POINTS <= basis_points <= MAX_UPLIFT_BASIS_POINTS or basis_points == 0
    ):
        errors["percentage"] = ["Enter an uplift between -50% and 100%, other than 0"]
    if not isinstance(effective_from, date):
        errors["effective_from"] = ["Enter the date the new prices take effect"]
    elif message := price_start_error(
        effective_from, today, label="The date the new prices take effect", noun="new prices"
    ):
        errors["effective_from"] = [message]
    ids = sorted({i for i in listing_ids if isinstance(i, int)})
    listings = (
        list(
            db.session.scalars(
                sa.select(Listing)
                .where(
                    Listing.id.in_(ids),
                    Listing.organisation_id == organisation.id,
                    Listing.status != ListingStatus.WITHDRAWN,
                )
                .order_by(Listing.title, Listing.id)
            )
        )
        if ids
        else []
    )
    if not ids:
        errors["listings"] = ["Choose at least one listing to uplift"]
    elif len(listings) != len(ids):
        errors["listings"] = ["Choose listings from your own rate card that are not withdrawn"]
    if errors:
        raise BusinessRuleViolation(errors)
    return listings


def preview_uplift(
    actor: User,
    organisation: Organisation,
    listing_ids: Sequence[int],
    basis_points: int,
    effective_from: date,
    *,
    at: datetime | None = None,
) -> list[UpliftLine]:
    """Each chosen listing's current and new price, without changing anything."""
    today = london_date(at)
    listings = _check_uplift(actor, organisation, listing_ids, basis_points, effective_from, today)
    return uplift_lines(listings, basis_points, effective_from)


def apply_uplift(
    actor: User,
    organisation: Organisation,
    listing_ids: Sequence[int],
    basis_points: int,
    effective_from: date,
    *,
    at: datetime | None = None,
) -> list[UpliftLine]:
    """Set the uplifted prices from ``effective_from`` on every chosen listing, all or nothing."""
    now = at or utcnow()
    lines = preview_uplift(actor, organisation, listing_ids, basis_points, effective_from, at=now)
    reason = f"Uplift of {Fraction(basis_points, 100)}%"
    for line in lines:
        check_errors: dict = {}
        if check_price_pence(line.new_pence, check_errors) is None:
            raise BusinessRuleViolation(
                {
                    "percentage": [
                        f"The uplift would take {line.listing.title} above the maximum price"
                    ]
                }
            )
        _put_price(actor, line.listing, line.new_pence, effective_from, reason, now)
    audit.record(
        actor,
        "rate_card.uplifted",
        organisation=organisation,
        object_type="organisation",
        object_id=organisation.id,
        after={
            "basis_points": basis_points,
            "effective_from": effective_from,
            "listings": [line.listing.reference for line in lines],
        },
    )
    return lines
