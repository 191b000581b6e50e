"""Awarded call-offs for tests: the values a further competition's award gives orders."""

from __future__ import annotations

from datetime import date

from marketplace.core.clock import financial_year
from marketplace.core.db import db
from marketplace.orders.models import Budget
from marketplace.orders.services.awarded import AwardedCallOff
from marketplace.orders.services.budgets import budget_for
from tests.orders.factories import OrdersWorld, shares

# £1,000 a session, exempt from VAT: 60 sessions are £60,000, twice the world's direct-award
# limit, and every share and year's part is a whole number of pounds.
AWARD_PRICE_PENCE = 100_000


def contract_end(world: OrdersWorld) -> date:
    """31 May of the financial year after the start's: the contract's months span two years."""
    return date(financial_year(world.start) + 1, 5, 31)


def months_by_year(world: OrdersWorld) -> dict[int, int]:
    """The contract's months counted by the financial year they fall in."""
    counts: dict[int, int] = {}
    year, month = world.start.year, world.start.month
    end = contract_end(world)
    while (year, month) <= (end.year, end.month):
        fy = financial_year(date(year, month, 1))
        counts[fy] = counts.get(fy, 0) + 1
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return counts


def next_year_budgets(world: OrdersWorld, region_pence=10_000_000, pcc_pence=10_000_000):
    """Budgets for the financial year after the start's, for the region and the PCC."""
    year = financial_year(world.start) + 1
    made = (
        Budget(organisation=world.region, financial_year=year, allocated_pence=region_pence),
        Budget(organisation=world.pcc, financial_year=year, allocated_pence=pcc_pence),
    )
    db.session.add_all(made)
    db.session.flush()
    return made


def award(world: OrdersWorld, **fields) -> AwardedCallOff:
    """The award of a competition for 10 sessions a month over the contract's months."""
    months = sum(months_by_year(world).values())
    values = {
        "provider_id": world.provider.id,
        "arrangement_id": world.listing.lot.arrangement_id,
        "category_id": world.listing.lot.category_id,
        "service_title": "Women's accommodation service for County Durham",
        "quantity": 10 * months,
        "unit": "session",
        "unit_price_pence": AWARD_PRICE_PENCE,
        "vat_treatment": "exempt",
        "start_date": world.start,
        "end_date": contract_end(world),
        "shares": shares((world.region, 6_000), (world.pcc, 4_000)),
        "competition_id": 7,
        "po_number": "PO-FC-1",
    }
    values.update(fields)
    return AwardedCallOff(**values)


def budget_of(organisation, year: int, world: OrdersWorld) -> Budget:
    return budget_for(organisation.id, year, world.listing.lot.category_id)
