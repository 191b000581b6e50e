"""Who may do what with a call-off's outcome terms and claims. Pure predicates, no side
effects: the services refuse with them (with their reasons), and a call-off's page offers an
organisation's person the actions they allow."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.orders.models import CallOff
from marketplace.orders.permissions import BUYER_ROLES
from marketplace.outcomes.models import CLAIMABLE, TERMS_CHANGEABLE

# Who claims outcomes for the provider.
PROVIDER_CLAIMERS = frozenset({Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR})


def is_lead_buyer(user: User, call_off: CallOff) -> bool:
    """Proposes terms and decides claims: a buyer or approver of the call-off's lead buyer."""
    return bool(user.roles_for(call_off.lead_buyer_id) & BUYER_ROLES)


def claims_outcomes(user: User, call_off: CallOff) -> bool:
    """Claims outcomes: an administrator or editor of the call-off's provider."""
    return bool(user.roles_for(call_off.provider_id) & PROVIDER_CLAIMERS)


def decides_terms(user: User, call_off: CallOff) -> bool:
    """Agrees or rejects proposed terms: an administrator of the call-off's provider."""
    return Role.PROVIDER_ADMIN in user.roles_for(call_off.provider_id)


def can_claim(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return (
        organisation.id == call_off.provider_id
        and claims_outcomes(user, call_off)
        and call_off.status in CLAIMABLE
    )


def can_decide_claims(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return organisation.id == call_off.lead_buyer_id and is_lead_buyer(user, call_off)


def can_propose_terms(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return can_decide_claims(user, organisation, call_off) and call_off.status in TERMS_CHANGEABLE


def can_decide_terms(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return (
        organisation.id == call_off.provider_id
        and decides_terms(user, call_off)
        and call_off.status in TERMS_CHANGEABLE
    )


def can_download_evidence(user: User, organisation: Organisation | None, call_off: CallOff) -> bool:
    """A claim's evidence is for the provider and the lead buyer who decides on it (and the
    authority); co-funders see the claim but not the file."""
    if organisation is None or not user.roles_in(organisation):
        return False
    if Role.AUTHORITY_ADMIN in user.roles_in(organisation):
        return True
    if organisation.id == call_off.provider_id:
        return claims_outcomes(user, call_off)
    return can_decide_claims(user, organisation, call_off)
