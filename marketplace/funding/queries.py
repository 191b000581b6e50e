"""Reading budgets, their history and standing authorisations (read-only)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import joinedload

from marketplace.accounts.models import COMMISSIONER_TYPES, Organisation
from marketplace.core.db import db
from marketplace.funding.models import BudgetChange
from marketplace.orders.models import Budget, FundingAuthorisation


@dataclass(frozen=True)
class BudgetFilters:
    organisation_id: int | None = None
    financial_year: int | None = None


def budgets_query(filters: BudgetFilters, organisation_id: int | None = None) -> sa.Select:
    """Budgets, newest year first, each year's general budget before its category budgets.
    ``organisation_id``: only that organisation's (None: every organisation's, for the
    authority)."""
    query = sa.select(Budget).options(joinedload(Budget.organisation), joinedload(Budget.category))
    if organisation_id is not None:
        query = query.where(Budget.organisation_id == organisation_id)
    if filters.organisation_id is not None:
        query = query.where(Budget.organisation_id == filters.organisation_id)
    if filters.financial_year is not None:
        query = query.where(Budget.financial_year == filters.financial_year)
    return query.join(Budget.organisation).order_by(
        Budget.financial_year.desc(),
        Organisation.name,
        Budget.category_id.is_not(None),
        Budget.id,
    )


def budget_history(budget_id: int) -> list[BudgetChange]:
    """Every change of the budget's allocation, most recent first."""
    return list(
        db.session.scalars(
            sa.select(BudgetChange)
            .options(joinedload(BudgetChange.changed_by))
            .where(BudgetChange.budget_id == budget_id)
            .order_by(BudgetChange.changed_at.desc(), BudgetChange.id.desc())
        )
    )


def budget_years() -> list[int]:
    """The financial years any budget exists for, newest first (the authority's filter)."""
    return list(
        db.session.scalars(
            sa.select(Budget.financial_year).distinct().order_by(Budget.financial_year.desc())
        )
    )


def commissioners(excluding: int | None = None) -> list[Organisation]:
    """Active commissioning organisations by name (a lead buyer to authorise; a filter)."""
    query = sa.select(Organisation).where(
        Organisation.type.in_(list(COMMISSIONER_TYPES)), Organisation.active.is_(True)
    )
    if excluding is not None:
        query = query.where(Organisation.id != excluding)
    return list(db.session.scalars(query.order_by(Organisation.name, Organisation.id)))


def authorisations_query(
    *,
    given_by: int | None = None,
    held_by: int | None = None,
    party: int | None = None,
    financial_year: int | None = None,
) -> sa.Select:
    """Standing authorisations, those in force first; ``party``: given or held by it."""
    query = sa.select(FundingAuthorisation).options(
        joinedload(FundingAuthorisation.funder), joinedload(FundingAuthorisation.lead_buyer)
    )
    if given_by is not None:
        query = query.where(FundingAuthorisation.funder_id == given_by)
    if held_by is not None:
        query = query.where(FundingAuthorisation.lead_buyer_id == held_by)
    if party is not None:
        query = query.where(
            sa.or_(
                FundingAuthorisation.funder_id == party,
                FundingAuthorisation.lead_buyer_id == party,
            )
        )
    if financial_year is not None:
        query = query.where(FundingAuthorisation.financial_year == financial_year)
    return query.order_by(
        FundingAuthorisation.revoked_at.is_not(None),
        FundingAuthorisation.financial_year.desc(),
        FundingAuthorisation.id,
    )


def authorisations_given(organisation_id: int) -> list[FundingAuthorisation]:
    return list(db.session.scalars(authorisations_query(given_by=organisation_id)))


def authorisations_held(organisation_id: int) -> list[FundingAuthorisation]:
    return list(db.session.scalars(authorisations_query(held_by=organisation_id)))
