"""What a provider's home page and "Your competitions" list show: the competitions it is invited
to, with its own bid's state (never anyone else's)."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.competitions.models import (
    Bid,
    BidStatus,
    Clarification,
    Competition,
    CompetitionStatus,
    InvitedProvider,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import db


def invitations_query(organisation_id: int) -> sa.Select:
    """(competition, own bid status or None), open ones first, by bid deadline."""
    return (
        sa.select(Competition, Bid.status)
        .join(InvitedProvider, InvitedProvider.competition_id == Competition.id)
        .outerjoin(
            Bid,
            sa.and_(Bid.competition_id == Competition.id, Bid.organisation_id == organisation_id),
        )
        .where(InvitedProvider.organisation_id == organisation_id)
        .order_by(
            (Competition.status != CompetitionStatus.PUBLISHED),
            Competition.bid_deadline,
            Competition.id,
        )
    )


def open_invitations(
    organisation_id: int, limit: int = 5
) -> list[tuple[Competition, BidStatus | None]]:
    """The competitions still open for bids that the provider is invited to (for its home)."""
    return [
        tuple(row)
        for row in db.session.execute(
            invitations_query(organisation_id)
            .where(
                Competition.status == CompetitionStatus.PUBLISHED,
                Competition.bid_deadline > utcnow(),
            )
            .limit(limit)
        )
    ]


def unanswered_count(buyer_id: int) -> int:
    """Questions waiting for the buyer's answer in its published competitions."""
    return (
        db.session.scalar(
            sa.select(sa.func.count(Clarification.id))
            .join(Competition, Competition.id == Clarification.competition_id)
            .where(
                Competition.buyer_id == buyer_id,
                Competition.status == CompetitionStatus.PUBLISHED,
                Clarification.answered_at.is_(None),
            )
        )
        or 0
    )
