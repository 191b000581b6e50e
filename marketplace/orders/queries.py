"""Reading call-offs and budgets: only what the reader's organisation is party to."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from marketplace.db import db
from marketplace.orders.models import Budget, CallOff, CallOffFunder, CallOffStatus


@dataclass(frozen=True)
class CallOffFilters:
    status: CallOffStatus | None = None
    provider_id: int | None = None
    listing_id: int | None = None
    crn: str | None = None
    placed_from: date | None = None
    placed_to: date | None = None


def party_condition(organisation_id: int):
    """The call-offs an organisation is party to: as provider, lead buyer or co-funder."""
    funded = sa.select(CallOffFunder.call_off_id).where(
        CallOffFunder.organisation_id == organisation_id
    )
    return sa.or_(CallOff.provider_id == organisation_id, CallOff.id.in_(funded))


def call_offs_query(organisation_id: int | None, filters: CallOffFilters) -> sa.Select:
    """Newest first; ``organisation_id`` None: every call-off (the authority)."""
    statement = sa.select(CallOff).options(
        joinedload(CallOff.listing),
        joinedload(CallOff.provider),
        joinedload(CallOff.lead_buyer),
        selectinload(CallOff.funders),
    )
    if organisation_id is not None:
        statement = statement.where(party_condition(organisation_id))
    if filters.status is not None:
        statement = statement.where(CallOff.status == filters.status)
    if filters.provider_id is not None:
        statement = statement.where(CallOff.provider_id == filters.provider_id)
    if filters.listing_id is not None:
        statement = statement.where(CallOff.listing_id == filters.listing_id)
    if filters.crn:
        statement = statement.where(CallOff.crn == filters.crn.strip().upper())
    if filters.placed_from is not None:
        statement = statement.where(sa.func.date(CallOff.placed_at) >= filters.placed_from)
    if filters.placed_to is not None:
        statement = statement.where(sa.func.date(CallOff.placed_at) <= filters.placed_to)
    return statement.order_by(CallOff.placed_at.desc(), CallOff.id.desc())


def budgets_of(organisation_id: int) -> list[Budget]:
    return list(
        db.session.scalars(
            sa.select(Budget)
            .where(Budget.organisation_id == organisation_id)
            .order_by(Budget.financial_year.desc(), Budget.category_id.is_not(None), Budget.id)
        )
    )
