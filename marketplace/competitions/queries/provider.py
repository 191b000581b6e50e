"""What a provider's home page and "Your competitions" list show: the competitions it is invited
to, with its own bid's state (never anyone else's)."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.competitions.models import (
    AssessmentSummary,
    Bid,
    BidStatus,
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


def home_invitations(
    organisation_id: int, limit: int = 5
) -> list[tuple[Competition, BidStatus | None, int | None]]:
    """For the provider's home, in one query: the competitions it is invited to that are still
    open for bids (soonest deadline first), then those whose assessment summary it has been
    sent (newest first); each with its own bid's state and its summary's id (or None)."""
    has_summary = AssessmentSummary.id.is_not(None)
    rows = db.session.execute(
        sa.select(Competition, Bid.status, AssessmentSummary.id)
        .join(InvitedProvider, InvitedProvider.competition_id == Competition.id)
        .outerjoin(
            Bid,
            sa.and_(Bid.competition_id == Competition.id, Bid.organisation_id == organisation_id),
        )
        .outerjoin(AssessmentSummary, AssessmentSummary.bid_id == Bid.id)
        .where(
            InvitedProvider.organisation_id == organisation_id,
            sa.or_(
                sa.and_(
                    Competition.status == CompetitionStatus.PUBLISHED,
                    Competition.bid_deadline > utcnow(),
                ),
                has_summary,
            ),
        )
        .order_by(
            has_summary,
            Competition.bid_deadline,
            AssessmentSummary.created_at.desc(),
            Competition.id,
        )
        .limit(limit)
    )
    return [tuple(row) for row in rows]
