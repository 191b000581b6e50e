"""Budgets and standing authorisations, set by the organisations whose money they are.

A commissioning organisation's approvers set its budget for a financial year (this one and up to
``YEARS_AHEAD`` ahead), for all services or one category, and raise or lower it with a reason;
never below what open call-offs commit and delivery has spent. A co-funder's approvers give a
lead buyer a standing authorisation for a year (a limit per call-off and a total), change it
(never below what it has used) and revoke it (what it already funded stays funded).

Invariants under concurrency: a budget's allocation is changed with its row locked
(``lock_rows``), so the floor (committed + spent) is read as it is at the commit and a placement
that commits against the budget at the same moment either comes first (and raises the floor) or
after (and sees the new allocation); two changes of one budget are serialised, and a change made
against an allocation that someone else has changed meanwhile is refused (409) rather than
silently undoing theirs. A second budget for the same organisation, year and category is refused
under a lock named after them (and by the unique indexes besides). An authorisation is changed
and revoked with its row locked, as placing a call-off locks it to use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.queries import people_with_roles
from marketplace.core import audit
from marketplace.core.clock import financial_year, financial_year_label, london_date, utcnow
from marketplace.core.db import db, lock_name, lock_rows
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied, TransitionConflict
from marketplace.core.notifications.services import queue_email
from marketplace.core.urls import absolute_url
from marketplace.funding.models import MAX_AMOUNT_PENCE, REASON_MAX, YEARS_AHEAD, BudgetChange
from marketplace.funding.permissions import can_manage_money, is_approver_of
from marketplace.orders.models import Budget, FundingAuthorisation
from marketplace.reference.models import ServiceCategory

BUDGET_FIELDS = [
    "organisation_id",
    "financial_year",
    "category_id",
    "allocated_pence",
    "committed_pence",
    "spent_pence",
]
AUTHORISATION_FIELDS = [
    "funder_id",
    "lead_buyer_id",
    "financial_year",
    "per_call_off_limit_pence",
    "annual_limit_pence",
    "used_pence",
    "revoked_at",
]


def pounds(pence: int) -> str:
    sign = "-" if pence < 0 else ""
    whole, part = divmod(abs(pence), 100)
    return f"{sign}£{whole:,}.{part:02d}"


def open_years(today: date | None = None) -> list[int]:
    """The financial years a budget or an authorisation may be set for now."""
    first = financial_year(today or london_date())
    return list(range(first, first + YEARS_AHEAD + 1))


# ---------------------------------------------------------------------------------------------
# Checks shared by budgets and authorisations


def _require_approver(actor: User, organisation: Organisation, what: str) -> None:
    if not can_manage_money(actor, organisation):
        raise PermissionDenied(f"Only an approver of {organisation.name} can {what}.")


def _year_error(year: object, today: date | None) -> str | None:
    years = open_years(today)
    if not isinstance(year, int) or isinstance(year, bool):
        return "Choose a financial year"
    if year < years[0]:
        return (
            f"{financial_year_label(year)} has ended: choose {financial_year_label(years[0])} "
            "or a later year"
        )
    if year > years[-1]:
        return (
            f"Budgets can be set up to {YEARS_AHEAD} years ahead: choose a year from "
            f"{financial_year_label(years[0])} to {financial_year_label(years[-1])}"
        )
    return None


def amount_error(pence: object, label: str) -> str | None:
    """Why ``pence`` cannot be an amount of money here, or None: a whole number of pence from
    nothing to ``MAX_AMOUNT_PENCE``."""
    if not isinstance(pence, int) or isinstance(pence, bool):
        return f"Enter {label} in pounds and pence, like 25000.00"
    if pence < 0:
        return f"{label[0].upper()}{label[1:]} cannot be negative"
    if pence > MAX_AMOUNT_PENCE:
        return f"{label[0].upper()}{label[1:]} must be {pounds(MAX_AMOUNT_PENCE)} or less"
    return None


def _reason(reason: object) -> str:
    text = reason.strip() if isinstance(reason, str) else ""
    if not text:
        raise BusinessRuleViolation({"reason": ["Enter the reason for the change"]})
    if len(text) > REASON_MAX:
        raise BusinessRuleViolation({"reason": [f"Use {REASON_MAX} characters or fewer"]})
    return text


def _raise_if(errors: dict[str, list[str]]) -> None:
    if errors:
        raise BusinessRuleViolation(errors)


# ---------------------------------------------------------------------------------------------
# Budgets


def budget_name(budget: Budget) -> str:
    what = budget.category.name if budget.category is not None else "all services"
    return f"{financial_year_label(budget.financial_year)} budget for {what}"


def _email_other_approvers(actor: User, budget: Budget, change: BudgetChange) -> None:
    link = absolute_url("funding.budget", budget_id=budget.id)
    old, new = change.old_allocated_pence, change.new_allocated_pence
    verb = "set" if old is None else ("raised" if new > old else "lowered")
    for person in people_with_roles(budget.organisation_id, [Role.APPROVER]):
        if person.id != actor.id:
            queue_email(
                person.email,
                "funding_budget_changed",
                user=person,
                actor=actor,
                budget=budget,
                name=budget_name(budget),
                change=change,
                verb=verb,
                link=link,
            )


@dataclass(frozen=True)
class NewBudget:
    financial_year: int
    allocated_pence: int
    category_id: int | None = None
    reason: str = ""


def create_budget(
    actor: User, organisation: Organisation, details: NewBudget, *, today: date | None = None
) -> Budget:
    """Set the organisation's budget for a financial year (for all services or one category)."""
    _require_approver(actor, organisation, "set its budgets")
    errors: dict[str, list[str]] = {}
    year_error = _year_error(details.financial_year, today)
    if year_error:
        errors["financial_year"] = [year_error]
    amount = amount_error(details.allocated_pence, "the budget")
    if amount:
        errors["allocated_pence"] = [amount]
    category = None
    if details.category_id is not None:
        category = db.session.get(ServiceCategory, details.category_id)
        if category is None:
            errors["category_id"] = ["Choose a service category from the list"]
    if isinstance(details.reason, str) and len(details.reason.strip()) > REASON_MAX:
        errors["reason"] = [f"Use {REASON_MAX} characters or fewer"]
    _raise_if(errors)

    # One budget per organisation, year and category: two approvers setting the same one at
    # once are taken one after the other, and the second is told it exists.
    lock_name(f"budget:{organisation.id}:{details.financial_year}")
    existing = db.session.scalar(
        sa.select(Budget.id).where(
            Budget.organisation_id == organisation.id,
            Budget.financial_year == details.financial_year,
            Budget.category_id.is_(None) if category is None else Budget.category_id == category.id,
        )
    )
    if existing is not None:
        what = f"{category.name}" if category else "all services"
        raise BusinessRuleViolation(
            {
                "category_id" if category else "financial_year": [
                    f"{organisation.name} already has a "
                    f"{financial_year_label(details.financial_year)} budget for {what}: "
                    "change that one instead"
                ]
            }
        )
    now = utcnow()
    budget = Budget(
        organisation=organisation,
        financial_year=details.financial_year,
        category=category,
        allocated_pence=details.allocated_pence,
        committed_pence=0,
        spent_pence=0,
    )
    db.session.add(budget)
    db.session.flush()
    change = BudgetChange(
        budget=budget,
        changed_at=now,
        changed_by_id=actor.id,
        old_allocated_pence=None,
        new_allocated_pence=details.allocated_pence,
        reason=(details.reason or "").strip(),
    )
    db.session.add(change)
    audit.record(actor, "budget.created", budget, after=audit.snapshot(budget, BUDGET_FIELDS))
    _email_other_approvers(actor, budget, change)
    db.session.flush()
    return budget


def change_budget(
    actor: User,
    budget: Budget,
    allocated_pence: int,
    reason: str,
    *,
    expected_allocated_pence: int | None = None,
) -> Budget:
    """Raise or lower a budget's allocation, with a reason; never below committed + spent.

    ``expected_allocated_pence``: the allocation the person saw when they chose the new one.
    If someone else has changed it since, the change is refused (409) so that theirs is not
    undone unseen."""
    if not is_approver_of(actor, budget.organisation):
        raise PermissionDenied(f"Only an approver of {budget.organisation.name} can change it.")
    errors: dict[str, list[str]] = {}
    amount = amount_error(allocated_pence, "the budget")
    if amount:
        errors["allocated_pence"] = [amount]
    try:
        text = _reason(reason)
    except BusinessRuleViolation as error:
        errors.update(error.errors)
        text = ""
    _raise_if(errors)

    # Locked and read again: the floor and the old amount are what they are at the commit.
    [locked] = lock_rows(Budget, [budget.id])
    old = locked.allocated_pence
    if expected_allocated_pence is not None and expected_allocated_pence != old:
        raise TransitionConflict(
            {
                "allocated_pence": [
                    f"Someone else changed this budget to {pounds(old)} after you opened it. "
                    "Check the new figure and try again"
                ]
            }
        )
    floor = locked.committed_pence + locked.spent_pence
    if allocated_pence < floor:
        raise BusinessRuleViolation(
            {
                "allocated_pence": [
                    f"The budget cannot be less than {pounds(floor)}: open call-offs commit "
                    f"{pounds(locked.committed_pence)} of it and {pounds(locked.spent_pence)} "
                    "has been spent"
                ]
            }
        )
    if allocated_pence == old:
        raise BusinessRuleViolation(
            {"allocated_pence": [f"The budget is already {pounds(old)}: enter a new amount"]}
        )
    before = audit.snapshot(locked, BUDGET_FIELDS)
    locked.allocated_pence = allocated_pence
    change = BudgetChange(
        budget=locked,
        changed_at=utcnow(),
        changed_by_id=actor.id,
        old_allocated_pence=old,
        new_allocated_pence=allocated_pence,
        reason=text,
    )
    db.session.add(change)
    audit.record(
        actor,
        "budget.raised" if allocated_pence > old else "budget.lowered",
        locked,
        before=before,
        after={**audit.snapshot(locked, BUDGET_FIELDS), "reason": text},
    )
    _email_other_approvers(actor, locked, change)
    db.session.flush()
    return locked


# ---------------------------------------------------------------------------------------------
# Standing authorisations


@dataclass(frozen=True)
class NewAuthorisation:
    lead_buyer_id: int
    financial_year: int
    per_call_off_limit_pence: int
    annual_limit_pence: int


def _limit_errors(per_call_off: object, annual: object) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    message = amount_error(per_call_off, "the limit per call-off")
    if message:
        errors["per_call_off_limit_pence"] = [message]
    message = amount_error(annual, "the total for the year")
    if message:
        errors["annual_limit_pence"] = [message]
    if not errors and per_call_off > annual:  # type: ignore[operator]
        errors["per_call_off_limit_pence"] = [
            "The limit per call-off cannot be more than the total for the year"
        ]
    return errors


def _email_lead_buyer(
    actor: User, authorisation: FundingAuthorisation, template: str, **context
) -> None:
    link = absolute_url("funding.authorisation", authorisation_id=authorisation.id)
    for person in people_with_roles(authorisation.lead_buyer_id, [Role.APPROVER]):
        queue_email(
            person.email,
            template,
            user=person,
            actor=actor,
            authorisation=authorisation,
            year=financial_year_label(authorisation.financial_year),
            link=link,
            **context,
        )


def create_authorisation(
    actor: User, funder: Organisation, details: NewAuthorisation, *, today: date | None = None
) -> FundingAuthorisation:
    """Give a lead buyer a standing authorisation to commit the funder's share for a year."""
    _require_approver(actor, funder, "give standing authorisations")
    errors: dict[str, list[str]] = {}
    lead = (
        db.session.get(Organisation, details.lead_buyer_id)
        if isinstance(details.lead_buyer_id, int) and not isinstance(details.lead_buyer_id, bool)
        else None
    )
    if lead is None or not lead.active:
        errors["lead_buyer_id"] = ["Choose the organisation that will lead the call-offs"]
    elif lead.id == funder.id:
        errors["lead_buyer_id"] = [
            f"{funder.name} cannot authorise itself: choose another organisation"
        ]
    elif not lead.type.is_commissioner:
        errors["lead_buyer_id"] = [
            f"{lead.name} is not a commissioning organisation, so it cannot lead call-offs"
        ]
    year_error = _year_error(details.financial_year, today)
    if year_error:
        errors["financial_year"] = [year_error.replace("Budgets", "Authorisations")]
    errors.update(_limit_errors(details.per_call_off_limit_pence, details.annual_limit_pence))
    _raise_if(errors)

    lock_name(f"authorisation:{funder.id}:{lead.id}:{details.financial_year}")
    existing = db.session.scalar(
        sa.select(FundingAuthorisation).where(
            FundingAuthorisation.funder_id == funder.id,
            FundingAuthorisation.lead_buyer_id == lead.id,
            FundingAuthorisation.financial_year == details.financial_year,
        )
    )
    if existing is not None and existing.revoked_at is None:
        raise BusinessRuleViolation(
            {
                "lead_buyer_id": [
                    f"{lead.name} already holds a standing authorisation for "
                    f"{financial_year_label(details.financial_year)}: change that one instead"
                ]
            }
        )
    if existing is not None:
        # Revoked earlier this year: given again on the same row (one per funder, lead buyer
        # and year), and what it used before still counts towards the new total.
        [authorisation] = lock_rows(FundingAuthorisation, [existing.id])
        if details.annual_limit_pence < authorisation.used_pence:
            raise BusinessRuleViolation(
                {
                    "annual_limit_pence": [
                        f"The total for the year cannot be less than the "
                        f"{pounds(authorisation.used_pence)} already used this year"
                    ]
                }
            )
        before = audit.snapshot(authorisation, AUTHORISATION_FIELDS)
        authorisation.per_call_off_limit_pence = details.per_call_off_limit_pence
        authorisation.annual_limit_pence = details.annual_limit_pence
        authorisation.revoked_at = None
        authorisation.created_by_id = actor.id
    else:
        before = None
        authorisation = FundingAuthorisation(
            funder=funder,
            lead_buyer=lead,
            financial_year=details.financial_year,
            per_call_off_limit_pence=details.per_call_off_limit_pence,
            annual_limit_pence=details.annual_limit_pence,
            used_pence=0,
            created_by_id=actor.id,
        )
        db.session.add(authorisation)
        db.session.flush()
    audit.record(
        actor,
        "funding_authorisation.created",
        authorisation,
        before=before,
        after=audit.snapshot(authorisation, AUTHORISATION_FIELDS),
    )
    _email_lead_buyer(actor, authorisation, "funding_authorisation_given")
    db.session.flush()
    return authorisation


def _locked_authorisation(actor: User, authorisation: FundingAuthorisation, what: str):
    if not is_approver_of(actor, authorisation.funder):
        raise PermissionDenied(f"Only an approver of {authorisation.funder.name} can {what} it.")
    [locked] = lock_rows(FundingAuthorisation, [authorisation.id])
    if locked.revoked_at is not None:
        raise TransitionConflict(
            "This standing authorisation has been revoked, so it cannot be changed: set up a "
            "new one instead"
        )
    return locked


def change_authorisation(
    actor: User,
    authorisation: FundingAuthorisation,
    per_call_off_limit_pence: int,
    annual_limit_pence: int,
    reason: str,
) -> FundingAuthorisation:
    """Change an authorisation's limits, with a reason; never below what it has used."""
    errors = _limit_errors(per_call_off_limit_pence, annual_limit_pence)
    try:
        text = _reason(reason)
    except BusinessRuleViolation as error:
        errors.update(error.errors)
        text = ""
    if not is_approver_of(actor, authorisation.funder):
        raise PermissionDenied(f"Only an approver of {authorisation.funder.name} can change it.")
    _raise_if(errors)
    locked = _locked_authorisation(actor, authorisation, "change")
    if annual_limit_pence < locked.used_pence:
        raise BusinessRuleViolation(
            {
                "annual_limit_pence": [
                    f"The total for the year cannot be less than the {pounds(locked.used_pence)} "
                    "already used this year"
                ]
            }
        )
    if (
        per_call_off_limit_pence == locked.per_call_off_limit_pence
        and annual_limit_pence == locked.annual_limit_pence
    ):
        raise BusinessRuleViolation(
            {"annual_limit_pence": ["These are the limits it has already: enter new ones"]}
        )
    before = audit.snapshot(locked, AUTHORISATION_FIELDS)
    locked.per_call_off_limit_pence = per_call_off_limit_pence
    locked.annual_limit_pence = annual_limit_pence
    audit.record(
        actor,
        "funding_authorisation.changed",
        locked,
        before=before,
        after={**audit.snapshot(locked, AUTHORISATION_FIELDS), "reason": text},
    )
    _email_lead_buyer(actor, locked, "funding_authorisation_changed", before=before, reason=text)
    db.session.flush()
    return locked


def revoke_authorisation(
    actor: User, authorisation: FundingAuthorisation, reason: str, *, now: datetime | None = None
) -> FundingAuthorisation:
    """Revoke an authorisation: later call-offs ask the funder to confirm its share; what it
    has already funded stays funded."""
    if not is_approver_of(actor, authorisation.funder):
        raise PermissionDenied(f"Only an approver of {authorisation.funder.name} can revoke it.")
    text = _reason(reason)
    locked = _locked_authorisation(actor, authorisation, "revoke")
    before = audit.snapshot(locked, AUTHORISATION_FIELDS)
    locked.revoked_at = now or utcnow()
    audit.record(
        actor,
        "funding_authorisation.revoked",
        locked,
        before=before,
        after={**audit.snapshot(locked, AUTHORISATION_FIELDS), "reason": text},
    )
    _email_lead_buyer(actor, locked, "funding_authorisation_revoked", reason=text)
    db.session.flush()
    return locked
