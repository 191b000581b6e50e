"""Which outcome actions an organisation's person is offered on a call-off's page.

The services enforce the same rules again (with their reasons) when the action is taken."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.orders.models import CallOff
from marketplace.orders.permissions import BUYER_ROLES
from marketplace.outcomes.services import CLAIMABLE, PROVIDER_CLAIMERS, TERMS_CHANGEABLE


def can_claim(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return (
        organisation.id == call_off.provider_id
        and bool(user.roles_in(organisation) & PROVIDER_CLAIMERS)
        and call_off.status in CLAIMABLE
    )


def can_decide_claims(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return organisation.id == call_off.lead_buyer_id and bool(
        user.roles_in(organisation) & BUYER_ROLES
    )


def can_propose_terms(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return can_decide_claims(user, organisation, call_off) and call_off.status in TERMS_CHANGEABLE


def can_decide_terms(user: User, organisation: Organisation, call_off: CallOff) -> bool:
    return (
        organisation.id == call_off.provider_id
        and Role.PROVIDER_ADMIN in user.roles_in(organisation)
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
        return bool(user.roles_in(organisation) & PROVIDER_CLAIMERS)
    return can_decide_claims(user, organisation, call_off)
