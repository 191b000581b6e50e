"""The co-funders' budgets for a competition's estimated value, checked as for a call-off.

It builds the call-off the competition would become (never added) and asks the same public rules
of orders that ``orders.services.placing.check_call_off`` asks; placing the award
(``orders.services.awarded.place_awarded_call_off``) checks them again under the budgets' locks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import Arrangement
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services.budgets import funding_budgets_and_counted_value, funding_errors
from marketplace.orders.services.details import FundingShare


def funding_errors_for(
    *,
    lead_buyer: Organisation,
    arrangement: Arrangement,
    category_id: int,
    gross_pence: int,
    quantity: int,
    start: date,
    end: date,
    shares: Sequence[FundingShare],
    funders: dict[int, Organisation],
    now: datetime,
) -> dict[str, list[str]]:
    """Each funder (``shares``, lead first, basis points summing to 10,000) must have a budget
    for the category (or a general one) in each financial year the contract's planned months
    fall in, with room for that year's part of its share of ``gross_pence``. Errors by the key
    ``funding_errors`` gives (``shares-<n>-…`` for a co-funder; ``start_date``, ``end_date`` or
    ``quantity`` for the lead). Read without locks: the award checks again."""
    call_off = CallOff(
        status=CallOffStatus.DRAFT,
        lead_buyer_id=lead_buyer.id,
        lead_buyer=lead_buyer,
        arrangement_id=arrangement.id,
        arrangement=arrangement,
        category_id=category_id,
        quantity=quantity,
        start_date=start,
        end_date=end,
        gross_pence=gross_pence,
        outcome_max_pence=0,
    )
    budgets, _counted = funding_budgets_and_counted_value(call_off, shares, now)
    return funding_errors(call_off, shares, funders, budgets, shares)
