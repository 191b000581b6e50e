"""What the provider's side of a competition shares: who is invited, whether the competition is
still open for questions and bids, and deadlines as London time in messages."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.competitions import permissions
from marketplace.competitions.models import Competition, CompetitionStatus, InvitedProvider
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.core.filters import london_datetime

# Procurement Act 2023 s.34: a tender from a supplier that is not a member of the market (or of
# the part the competition is for) when the competition was published is disregarded.
# A provider admitted to the lot in the areas before bids close is invited then (see
# ``publishing.invite_admitted``): the message must not tell it that joining is too late.
NOT_INVITED = (
    "Your bid would be disregarded: only members of the lot in the areas when it was published "
    "may bid, and providers admitted to the lot there before bids close. Join the arrangement: "
    "if you are admitted before bids close, you will be invited and emailed."
)


def is_invited(competition: Competition, organisation: Organisation | None) -> bool:
    """On the competition's invited list (frozen at publication, or added when admitted)."""
    if organisation is None:
        return False
    return (
        db.session.scalar(
            sa.select(InvitedProvider.id).where(
                InvitedProvider.competition_id == competition.id,
                InvitedProvider.organisation_id == organisation.id,
            )
        )
        is not None
    )


def require_provider(actor: User, organisation: Organisation | None) -> Organisation:
    """Acting for a provider, as its administrator or editor."""
    if organisation is None or not actor.roles_in(organisation) & permissions.PROVIDER_ROLES:
        raise PermissionDenied("Only a provider's administrators and editors can do this")
    return organisation


def require_invited(actor: User, organisation: Organisation | None, competition: Competition):
    """An invited provider's administrator or editor; anyone else is refused with the reason."""
    require_provider(actor, organisation)
    if competition.status is CompetitionStatus.DRAFT or not is_invited(competition, organisation):
        raise BusinessRuleViolation({"": [NOT_INVITED]})


def deadline_text(moment: datetime) -> str:
    return f"{london_datetime(moment)} (London time)"


def require_open_until(
    competition: Competition, deadline: datetime | None, now: datetime, what: str
) -> None:
    """Refuse ``what`` (a sentence: "Questions can no longer be asked") once the competition is
    no longer published or ``deadline`` has passed, saying when it closed."""
    if competition.status is not CompetitionStatus.PUBLISHED or deadline is None:
        raise BusinessRuleViolation(
            {"": [f"This competition is {competition.status.label.lower()}: {what}"]}
        )
    if now >= deadline:
        raise BusinessRuleViolation({"": [f"The deadline was {deadline_text(deadline)}: {what}"]})
