"""Who may see a call-off, and which of its actions an organisation's person is offered.

Pages and the API ask these before anything else; the services enforce the same rules again
(with their reasons) when the action is taken."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.orders.models import CallOff, CallOffStatus, Side, VariationStatus

BUYER_ROLES = frozenset({Role.BUYER, Role.APPROVER})
# Everyone who may act on a call-off their organisation is party to.
PARTY_ROLES = BUYER_ROLES | {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}
DELIVERING = (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY)
# While a co-funder may still confirm or decline its share.
FUNDING_OPEN = (CallOffStatus.AWAITING_FUNDING, CallOffStatus.FUNDING_DECLINED)


def parties(call_off: CallOff) -> set[int]:
    """The organisations party to a call-off: its provider and every funder (the lead included)."""
    return {call_off.provider_id, *(funder.organisation_id for funder in call_off.funders)}


def is_buyer(user: User, call_off: CallOff) -> bool:
    """The user buys for the call-off's lead buyer (a buyer or an approver there)."""
    return bool(user.roles_for(call_off.lead_buyer_id) & BUYER_ROLES)


def is_provider(
    user: User, call_off: CallOff, roles: frozenset[Role] = frozenset({Role.PROVIDER_ADMIN})
) -> bool:
    """The user holds one of ``roles`` in the call-off's provider (by default its admin)."""
    return bool(user.roles_for(call_off.provider_id) & roles)


def is_party(user: User, call_off: CallOff) -> bool:
    """The user holds any role in an organisation party to the call-off."""
    return any(user.roles_for(org) for org in parties(call_off))


def can_see(user: User, organisation: Organisation | None, call_off: CallOff) -> bool:
    """Acting for ``organisation``: it is party to the call-off, or it is the authority."""
    if organisation is None:
        return False
    return organisation.id in parties(call_off) or Role.AUTHORITY_ADMIN in user.roles_in(
        organisation
    )


def side_of(user: User, call_off: CallOff) -> Side | None:
    """Which side of the call-off the user acts for: its lead buyer or its provider."""
    if is_buyer(user, call_off):
        return Side.BUYER
    if is_provider(user, call_off):
        return Side.PROVIDER
    return None


def actions(user: User, organisation: Organisation, call_off: CallOff) -> dict[str, bool]:
    """The actions to offer ``user`` acting for ``organisation`` on the call-off's page."""
    roles = user.roles_in(organisation)
    is_provider = organisation.id == call_off.provider_id
    is_lead = organisation.id == call_off.lead_buyer_id
    funder = next((f for f in call_off.funders if f.organisation_id == organisation.id), None)
    side = side_of(user, call_off) if organisation.id in parties(call_off) else None
    open_variations = [v for v in call_off.variations if v.status == VariationStatus.PROPOSED]
    funding_open = call_off.status in FUNDING_OPEN
    return {
        "confirm_funding": funding_open
        and funder is not None
        and funder.confirmed_at is None
        and funder.declined_at is None
        and Role.APPROVER in roles,
        # A share its standing authorisation confirmed may still be declined by a person.
        "decline_funding": funding_open
        and funder is not None
        and not funder.is_lead
        and funder.declined_at is None
        and (funder.confirmed_at is None or funder.preauthorised)
        and Role.APPROVER in roles,
        "resplit": call_off.status == CallOffStatus.FUNDING_DECLINED
        and is_lead
        and bool(roles & BUYER_ROLES),
        "approve": call_off.status == CallOffStatus.AWAITING_APPROVAL
        and is_lead
        and Role.APPROVER in roles
        and user.id != call_off.placed_by_id,
        "respond": call_off.status == CallOffStatus.SENT
        and is_provider
        and Role.PROVIDER_ADMIN in roles,
        "deliver": call_off.status in DELIVERING
        and is_provider
        and bool(roles & {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}),
        "complete": call_off.status == CallOffStatus.IN_DELIVERY
        and is_provider
        and Role.PROVIDER_ADMIN in roles,
        "cancel": call_off.is_open and is_lead and bool(roles & BUYER_ROLES),
        "propose": side is not None and call_off.status in DELIVERING and not open_variations,
        "decide": side is not None
        and any(v.proposed_by_side != side and not v.awaiting_approval for v in open_variations),
        # A change above the spend limit of the person who agreed it, for another approver.
        "approve_variation": is_lead
        and Role.APPROVER in roles
        and any(
            v.awaiting_approval and v.approval_requested_by_id != user.id for v in open_variations
        ),
        "withdraw": side is not None and any(v.proposed_by_side == side for v in open_variations),
    }
