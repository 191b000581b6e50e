"""A call-off's units by month, and the provider's monthly capacity they take (committed when the
provider accepts, freed when the call-off ends).

Capacity is a listing's: a call-off awarded by further competition without a listing commits
none (the provider bid for the whole contract, knowing what it can deliver), so for it these
check, commit and free nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import sqlalchemy as sa

from marketplace.catalogue.models import CapacityCommitment, Listing
from marketplace.catalogue.queries import committed_units, first_of_month
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import allocate
from marketplace.core.validation import add_years, horizon_years
from marketplace.orders.models import CallOff


def months_of(start: date, end: date) -> list[date]:
    """The first days of the months from ``start``'s to ``end``'s (empty if end is earlier).

    Dates are checked against the horizon when entered, but a call-off placed before they were
    may end in 9999: its months are refused here, with a message, rather than counted until the
    date overflows (a 500 on every accept)."""
    if end > add_years(start, horizon_years()):
        raise BusinessRuleViolation(
            {
                "end_date": [
                    f"This call-off runs from {start.day} {start:%B %Y} to {end.day} "
                    f"{end:%B %Y}, more than {horizon_years()} years: its dates must be a "
                    "mistake. Cancel it and place it again with the right dates"
                ]
            }
        )
    months: list[date] = []
    month, last = first_of_month(start), first_of_month(end)
    while month <= last:
        months.append(month)
        month = first_of_month(month + timedelta(days=32))
    return months


def capacity_plan(call_off: CallOff, units: int | None = None) -> dict[date, int]:
    """The units spread evenly over the months from start to end (largest remainder: earlier
    months take the odd units)."""
    months = months_of(call_off.start_date, call_off.end_date)
    parts = allocate(call_off.quantity if units is None else units, [1] * len(months))
    return {m: n for m, n in zip(months, parts, strict=True) if n}


def check_capacity(
    call_off: CallOff, plan: dict[date, int], own: dict[date, int] | None = None
) -> None:
    """Refuse if ``plan`` would take a month past the listing's capacity (``own``: units this
    call-off already holds in those months, which the plan replaces). Locks the listing."""
    if call_off.listing_id is None:
        return
    listing: Listing = call_off.listing
    lock_rows(Listing, [listing.id])
    taken = committed_units([listing.id], list(plan))
    own = own or {}
    full = [
        month
        for month, units in plan.items()
        if taken.get((listing.id, month), 0) - own.get(month, 0) + units > listing.monthly_capacity
    ]
    if full:
        names = ", ".join(f"{m:%B %Y}" for m in full)
        raise BusinessRuleViolation(
            {
                "capacity": [
                    f"This would take more than the service's monthly capacity of "
                    f"{listing.unit.count(listing.monthly_capacity)} in {names}. Decline it, or "
                    "raise the capacity on the listing first"
                ]
            }
        )


def commit_capacity(call_off: CallOff, plan: dict[date, int], now: datetime) -> None:
    if call_off.listing_id is None:
        return
    for month, units in plan.items():
        db.session.add(
            CapacityCommitment(
                listing_id=call_off.listing_id,
                month=month,
                units=units,
                source=call_off.reference,
                created_at=now,
            )
        )


def free_capacity(call_off: CallOff, from_month: date | None = None) -> None:
    if call_off.listing_id is None:
        return
    statement = sa.delete(CapacityCommitment).where(
        CapacityCommitment.listing_id == call_off.listing_id,
        CapacityCommitment.source == call_off.reference,
    )
    if from_month is not None:
        statement = statement.where(CapacityCommitment.month >= from_month)
    db.session.execute(statement)
