"""Cancelling a competition with a reason, at any point before award; everyone invited and every
bidder is told."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.services.applications import provider_admins
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    COMPETITION_TRANSITIONS,
    REASON_MAX,
    Bid,
    Competition,
    CompetitionStatus,
    InvitedProvider,
)
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, transition


def cancel(
    actor: User, competition: Competition, reason: str, *, now: datetime | None = None
) -> Competition:
    """Cancel the competition with a reason (before award); email the administrators of every
    invited provider and every bidder."""
    now = now or utcnow()
    if not permissions.is_buyer(actor, competition):
        raise NotFound("Competition not found")
    before = check_transition(
        competition,
        CompetitionStatus.CANCELLED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="cancelled",
    )
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({"reason": ["Give the reason for cancelling"]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation({"reason": [f"Use {REASON_MAX:,} characters or fewer"]})
    transition(
        competition,
        CompetitionStatus.CANCELLED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="cancelled",
    )
    competition.cancelled_at = now
    competition.cancelled_by_id = actor.id
    competition.cancellation_reason = reason
    db.session.flush()
    audit.record(
        actor,
        "competition.cancelled",
        competition,
        before={"status": before.value},
        after={"status": competition.status.value, "reason": reason, "cancelled_at": now},
    )
    told = sa.union(
        sa.select(InvitedProvider.organisation_id).where(
            InvitedProvider.competition_id == competition.id
        ),
        sa.select(Bid.organisation_id).where(Bid.competition_id == competition.id),
    ).subquery()
    for organisation in db.session.scalars(
        sa.select(Organisation)
        .where(Organisation.id.in_(sa.select(told.c[0])))
        .order_by(Organisation.id)
    ):
        for user in provider_admins(organisation):
            queue_email(
                user.email,
                "competition_cancelled",
                user=user,
                organisation=organisation,
                competition=competition,
            )
    return competition
