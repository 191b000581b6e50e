"""Who may see and do what in a further competition, and the one rule that seals bids.

Pages and the API ask these first; services enforce them again with their reasons. A competition
a person may not see is not found (404), so that a draft's existence does not leak; published
competitions are public (their need, lot, areas, value band and deadlines), but their invited
list, clarifications and bids are not.
"""

from __future__ import annotations

from datetime import datetime

from marketplace.accounts.models import Organisation, Role, User
from marketplace.competitions.models import (
    Bid,
    Competition,
    CompetitionEvaluator,
    CompetitionStatus,
)
from marketplace.core.clock import utcnow

BUYER_ROLES = frozenset({Role.BUYER, Role.APPROVER})
PROVIDER_ROLES = frozenset({Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR})
# Bids are submitted, withdrawn and their consortium named by the provider's administrators.
BIDDER_ROLES = frozenset({Role.PROVIDER_ADMIN})
SEALED_STATUSES = frozenset({CompetitionStatus.DRAFT, CompetitionStatus.PUBLISHED})


def bids_are_sealed(competition: Competition, now: datetime | None = None) -> bool:
    """THE seal: before the bid deadline (and until the competition is closed), nobody but the
    bidder may read a bid, its answers, price or even how many there are: not the buyer, the
    panel or the authority. Every page, API path and export that reads another organisation's
    bid asks this first, through ``require_unsealed``."""
    if competition.status in SEALED_STATUSES or competition.bid_deadline is None:
        return True
    return (now or utcnow()) < competition.bid_deadline


def is_authority(user: User, organisation: Organisation | None) -> bool:
    return organisation is not None and Role.AUTHORITY_ADMIN in user.roles_in(organisation)


def is_buyer(user: User, competition: Competition) -> bool:
    """Runs the competition: a buyer or an approver of its lead buyer."""
    return bool(user.roles_for(competition.buyer_id) & BUYER_ROLES)


def is_funder(user: User, competition: Competition) -> bool:
    """A buyer or approver of any organisation funding it (the lead buyer included)."""
    funder_ids = {competition.buyer_id, *(f.organisation_id for f in competition.funders)}
    return any(user.roles_for(org) & BUYER_ROLES for org in funder_ids)


def evaluator_of(user: User, competition: Competition) -> CompetitionEvaluator | None:
    return next((e for e in competition.evaluators if e.user_id == user.id), None)


def can_see(user: User, organisation: Organisation | None, competition: Competition) -> bool:
    """Anyone may see a published competition's public page; a draft only its buyers, funders,
    panel and the authority."""
    if competition.status is not CompetitionStatus.DRAFT:
        return True
    if organisation is None:
        return False
    return (
        is_funder(user, competition)
        or evaluator_of(user, competition) is not None
        or is_authority(user, organisation)
    )


def can_manage(user: User, organisation: Organisation | None, competition: Competition) -> bool:
    """Edit, publish, answer clarifications, award, cancel: the lead buyer's buyers and
    approvers, acting for it."""
    return (
        organisation is not None
        and organisation.id == competition.buyer_id
        and bool(user.roles_in(organisation) & BUYER_ROLES)
    )


def can_oversee(user: User, organisation: Organisation | None, competition: Competition) -> bool:
    """See the invited list, the clarifications with their askers, and (once unsealed) the
    bids and scores: the buyer, the funders, the panel and the authority."""
    if organisation is None:
        return False
    return (
        can_manage(user, organisation, competition)
        or (organisation.id in _funder_ids(competition) and is_funder(user, competition))
        or evaluator_of(user, competition) is not None
        or is_authority(user, organisation)
    )


def _funder_ids(competition: Competition) -> set[int]:
    return {competition.buyer_id, *(f.organisation_id for f in competition.funders)}


def is_bidder(user: User, organisation: Organisation | None, bid: Bid) -> bool:
    """The bid's own provider, acting for it: may always read its own bid."""
    return (
        organisation is not None
        and organisation.id == bid.organisation_id
        and bool(user.roles_in(organisation) & PROVIDER_ROLES)
    )


def can_read_bid(
    user: User, organisation: Organisation | None, bid: Bid, now: datetime | None = None
) -> bool:
    """The bidder always; the buyer, funders, panel and authority only once bids are unsealed."""
    if is_bidder(user, organisation, bid):
        return True
    if bids_are_sealed(bid.competition, now):
        return False
    return can_oversee(user, organisation, bid.competition)
