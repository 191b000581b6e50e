"""Funding by financial year: each funder's share split over the years its months fall in, each
year's part committed against that year's budget, co-funders' standing authorisations, and
budgets given back when a call-off ends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation
from marketplace.core.clock import financial_year, financial_year_label
from marketplace.core.db import db, lock_rows
from marketplace.core.money import allocate, split_by_basis_points
from marketplace.orders.models import (
    Budget,
    CallOff,
    CallOffBudgetPart,
    CallOffFunder,
    FundingAuthorisation,
)
from marketplace.orders.services.call_offs import call_off_value, in_pounds
from marketplace.orders.services.capacity import capacity_plan
from marketplace.orders.services.details import FundingShare, funder_key
from marketplace.orders.services.route import counted_value, counted_value_query, lookback_start


def _authorisation(funder_id: int, lead_buyer_id: int, year: int) -> FundingAuthorisation | None:
    return db.session.scalar(
        sa.select(FundingAuthorisation).where(
            FundingAuthorisation.funder_id == funder_id,
            FundingAuthorisation.lead_buyer_id == lead_buyer_id,
            FundingAuthorisation.financial_year == year,
            FundingAuthorisation.revoked_at.is_(None),
        )
    )


@dataclass(frozen=True)
class FundingBudget:
    """The budget a funder's part of a new call-off comes from, as read when placing it."""

    id: int
    available_pence: int


def year_weights(call_off: CallOff) -> dict[int, int]:
    """The call-off's planned units by financial year: its planned spread of units over its
    months (``capacity_plan``), added up by the year each month falls in."""
    weights: dict[int, int] = {}
    for month, units in capacity_plan(call_off).items():
        year = financial_year(month)
        weights[year] = weights.get(year, 0) + units
    return weights


def split_by_year(amount: int, weights: dict[int, int]) -> dict[int, int]:
    """``amount`` in exact pence by year, in proportion to ``weights`` (the parts sum to it);
    years whose part is nothing are left out, unless every part is (then the first year's)."""
    years = sorted(weights)
    parts = dict(zip(years, allocate(amount, [weights[y] for y in years]), strict=True))
    return {y: p for y, p in parts.items() if p} or {years[0]: 0}


def funding_budgets_and_counted_value(
    call_off: CallOff, shares: Sequence[FundingShare], now: datetime
) -> tuple[dict[tuple[int, int], FundingBudget], int]:
    """Each funder's budget for the call-off's category in each financial year its planned
    months fall in (else the funder's general budget for that year), by (funder, year) (one
    missing is left out: see ``funding_errors``), and the buyer's counted value
    (``counted_value``), read together in one statement. Placing reads them under the lock on
    the buyer's total, so that the value is current."""
    counted = counted_value_query(call_off, lookback_start(now))
    rows = db.session.execute(
        _budgets_query(call_off, shares, counted.scalar_subquery().label("counted_value"))
    ).all()
    if rows:
        return _by_funder_and_year(call_off, rows), int(rows[0].counted_value)
    return {}, counted_value(call_off, lookback_start(now))  # no funder has a budget


def funding_budgets(
    call_off: CallOff, shares: Sequence[FundingShare]
) -> dict[tuple[int, int], FundingBudget]:
    """Each funder's budget by (funder, year), as ``funding_budgets_and_counted_value`` reads
    them, without the buyer's counted value (a call-off not held to the direct-award limit)."""
    rows = db.session.execute(_budgets_query(call_off, shares)).all()
    return _by_funder_and_year(call_off, rows)


def _budgets_query(call_off: CallOff, shares: Sequence[FundingShare], *more) -> sa.Select:
    return sa.select(
        Budget.id,
        Budget.organisation_id,
        Budget.category_id,
        Budget.financial_year,
        Budget.available_pence,
        *more,
    ).where(
        Budget.organisation_id.in_([share.organisation_id for share in shares]),
        Budget.financial_year.in_(sorted(year_weights(call_off))),
        sa.or_(Budget.category_id == call_off.category_id, Budget.category_id.is_(None)),
    )


def _by_funder_and_year(call_off: CallOff, rows) -> dict[tuple[int, int], FundingBudget]:
    budgets: dict[tuple[int, int], FundingBudget] = {}
    for row in rows:
        key = (row.organisation_id, row.financial_year)
        # The category's own budget wins over the general one.
        if key not in budgets or row.category_id == call_off.category_id:
            budgets[key] = FundingBudget(row.id, int(row.available_pence))
    return budgets


def funding_errors(
    call_off: CallOff,
    shares: Sequence[FundingShare],
    funders: dict[int, Organisation],
    budgets: dict[tuple[int, int], FundingBudget],
    given: Sequence[FundingShare],
) -> dict[str, list[str]]:
    """Each funder must have a budget for each financial year the call-off's planned months
    fall in, with room for that year's part of its share; each refusal is keyed by the answer
    to change (``funder_key``; a later year the lead lacks a budget for: the end date)."""
    errors: dict[str, list[str]] = {}
    start_year = financial_year(call_off.start_date)
    weights = year_weights(call_off)
    parts = split_by_basis_points(call_off.gross_pence, [s.basis_points for s in shares])
    for share, part in zip(shares, parts, strict=True):
        pk = share.organisation_id
        for year, year_part in split_by_year(part, weights).items():
            budget = budgets.get((pk, year))
            if budget is None:
                key = funder_key(call_off.lead_buyer_id, given, pk, "organisation_id")
                if key == "start_date" and year != start_year:
                    key = "end_date"
                message = (
                    f"{funders[pk].name} has no budget for {financial_year_label(year)}, so it "
                    "cannot fund this call-off"
                )
            elif budget.available_pence < year_part:
                key = funder_key(call_off.lead_buyer_id, given, pk, "basis_points")
                message = short_of(funders[pk], year, budget.available_pence, year_part)
            else:
                continue
            errors.setdefault(key, []).append(message)
    return errors


def short_of(funder: Organisation, year: int, available: int, part: int) -> str:
    return (
        f"{funder.name} has {in_pounds(available)} left in its "
        f"{financial_year_label(year)} budget, less than its share of {in_pounds(part)}"
    )


def give_back(call_off: CallOff, funder: CallOffFunder) -> int:
    """Release what ``funder`` still commits, year by year: from each year's budget and, for a
    share its standing authorisations confirmed, from each year's authorisation. The budgets
    are locked by the caller. Returns the pence released."""
    released = 0
    for part in funder.parts:
        if part.committed_pence:
            part.budget.committed_pence -= part.committed_pence
            release_authorisation(call_off, funder, part.financial_year, part.committed_pence)
            released += part.committed_pence
            part.committed_pence = 0
    funder.committed_pence = 0
    return released


def release_authorisation(call_off: CallOff, funder: CallOffFunder, year: int, amount: int) -> None:
    """Give back ``amount`` of the year's standing authorisation that confirmed ``funder``'s
    share (an authorisation's used total counts only what its call-offs still commit)."""
    if not funder.preauthorised or amount <= 0:
        return
    authorisation = _authorisation(funder.organisation_id, call_off.lead_buyer_id, year)
    if authorisation is not None:
        lock_rows(FundingAuthorisation, [authorisation.id])
        authorisation.used_pence -= min(amount, authorisation.used_pence)


def use_authorisations(
    call_off: CallOff, organisation_id: int, share_pence: int, by_year: dict[int, int]
) -> bool:
    """Use the co-funder's standing authorisations of the lead buyer for each year's part of
    its share, all or none: each year needs one whose per-call-off value covers the share and
    whose yearly total has room for the part. True if they were used."""
    found = {
        year: _authorisation(organisation_id, call_off.lead_buyer_id, year) for year in by_year
    }
    if not all(found.values()):
        return False
    lock_rows(FundingAuthorisation, [a.id for a in found.values()])
    if not all(
        share_pence <= found[year].per_call_off_limit_pence
        and found[year].used_pence + part <= found[year].annual_limit_pence
        for year, part in by_year.items()
    ):
        return False
    for year, part in by_year.items():
        found[year].used_pence += part
    return True


def preauthorise(call_off: CallOff, funder: CallOffFunder, now: datetime) -> None:
    """Confirm a co-funder's share by its standing authorisations of the lead buyer, as placing
    does (``_add_funders``), if they cover each year's part."""
    by_year = {part.financial_year: part.share_pence for part in funder.parts}
    if use_authorisations(call_off, funder.organisation_id, funder.share_pence, by_year):
        funder.confirmed_at, funder.confirmed_by_id, funder.preauthorised = now, None, True


def retake_authorisation(call_off: CallOff, funder: CallOffFunder, by_year: dict[int, int]) -> None:
    """A share its standing authorisations confirmed, now no larger: each year's authorisation
    counts the new part (it covered the larger one, so the share stays confirmed)."""
    for year, part in by_year.items():
        authorisation = _authorisation(funder.organisation_id, call_off.lead_buyer_id, year)
        if authorisation is not None:
            authorisation.used_pence += part


def set_parts(funder: CallOffFunder, by_year: dict[int, int], budgets: dict[int, Budget]) -> None:
    """Commit ``funder``'s new share, each year's part against that year's (locked) budget. A
    year's row is changed in place, not replaced: one row per funder and year."""
    rows = {part.financial_year: part for part in funder.parts}
    for year, amount in by_year.items():
        row = rows.pop(year, None)
        if row is None:
            row = CallOffBudgetPart(financial_year=year)
            funder.parts.append(row)
        row.budget_id, row.budget = budgets[year].id, budgets[year]
        row.share_pence = row.committed_pence = amount
        budgets[year].committed_pence += amount
    for row in rows.values():  # a year the new share has no part in
        funder.parts.remove(row)
    funder.committed_pence = sum(by_year.values())


def release_budgets(call_off: CallOff) -> None:
    """Give back to each funder's budget for each year what the call-off still commits there
    (and to the standing authorisations that confirmed a share, that year's use)."""
    parts = [part for funder in call_off.funders for part in funder.parts]
    lock_rows(Budget, (part.budget_id for part in parts))
    for funder in call_off.funders:
        give_back(call_off, funder)
    for funder in call_off.funders:
        funder.committed_pence = 0


def spend_delivered(call_off: CallOff, new_delivered_units: int, day: date) -> None:
    """Move the value of newly delivered units from committed to spent, per funder, so that the
    parts spent always sum exactly to the value of the units delivered so far. It is spent from
    the budget of the year ``day`` falls in (the funder's part for that year; a delivery outside
    the planned years, from the nearest year's), and its commitment is released from that
    year's part first, then from the other years', latest first (delivered sooner than
    planned)."""
    parts = [part for funder in call_off.funders for part in funder.parts]
    lock_rows(Budget, (part.budget_id for part in parts))
    shares = [f.basis_points for f in call_off.funders]
    year = financial_year(day)

    def spent_parts(units: int) -> list[int]:
        *_, value = call_off_value(call_off.unit_price_pence, units, call_off.vat_treatment)
        return split_by_basis_points(min(value, call_off.gross_pence), shares)

    before = spent_parts(call_off.delivered_units)
    after = spent_parts(new_delivered_units)
    for funder, old, new in zip(call_off.funders, before, after, strict=True):
        delta = min(new - old, funder.committed_pence)
        if delta <= 0 or not funder.parts:
            continue
        target = min(funder.parts, key=lambda p: (abs(p.financial_year - year), p.financial_year))
        target.budget.spent_pence += delta
        others = sorted(
            (p for p in funder.parts if p is not target), key=lambda p: -p.financial_year
        )
        left = delta
        for part in (target, *others):
            taken = min(left, part.committed_pence)
            part.committed_pence -= taken
            part.budget.committed_pence -= taken
            left -= taken
        funder.committed_pence -= delta
    call_off.delivered_units = new_delivered_units


def budget_for(organisation_id: int, year: int, category_id: int) -> Budget | None:
    """The organisation's budget for the category in the year, else its general one."""
    return db.session.scalar(
        sa.select(Budget)
        .where(
            Budget.organisation_id == organisation_id,
            Budget.financial_year == year,
            sa.or_(Budget.category_id == category_id, Budget.category_id.is_(None)),
        )
        .order_by(Budget.category_id.is_(None))
    )
