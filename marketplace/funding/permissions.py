"""Who may see and change budgets and standing authorisations (the services check again).

An object of another organisation is not found (404) for anyone but the authority, so that its
existence does not leak: the views call ``can_see_*`` first."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.orders.models import Budget, FundingAuthorisation

READERS = frozenset({Role.BUYER, Role.APPROVER})


def is_authority(user: User, organisation: Organisation | None) -> bool:
    return Role.AUTHORITY_ADMIN in user.roles_in(organisation)


def is_approver_of(user: User, organisation: Organisation | None) -> bool:
    """Changes the organisation's budgets and the standing authorisations it gave."""
    return Role.APPROVER in user.roles_in(organisation)


def can_manage_money(user: User, organisation: Organisation | None) -> bool:
    """Set budgets and give standing authorisations: an approver of a commissioner."""
    return (
        organisation is not None
        and organisation.type.is_commissioner
        and is_approver_of(user, organisation)
    )


def can_see_budget(user: User, organisation: Organisation | None, budget: Budget) -> bool:
    if organisation is None:
        return False
    if is_authority(user, organisation):
        return True
    return budget.organisation_id == organisation.id and bool(user.roles_in(organisation) & READERS)


def can_change_budget(user: User, organisation: Organisation | None, budget: Budget) -> bool:
    return (
        organisation is not None
        and budget.organisation_id == organisation.id
        and can_manage_money(user, organisation)
    )


def can_see_authorisation(
    user: User, organisation: Organisation | None, authorisation: FundingAuthorisation
) -> bool:
    """The funder that gave it and the lead buyer that holds it (and the authority)."""
    if organisation is None:
        return False
    if is_authority(user, organisation):
        return True
    return organisation.id in (authorisation.funder_id, authorisation.lead_buyer_id) and bool(
        user.roles_in(organisation) & READERS
    )


def can_change_authorisation(
    user: User, organisation: Organisation | None, authorisation: FundingAuthorisation
) -> bool:
    return (
        organisation is not None
        and authorisation.funder_id == organisation.id
        and authorisation.revoked_at is None
        and can_manage_money(user, organisation)
    )
