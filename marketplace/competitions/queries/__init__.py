"""Read-only queries for the set-up and public pages and the API: the public list of open
competitions, an organisation's competitions, the invited list, value bands."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import Organisation, User
from marketplace.catalogue.models import Listing, ListingArea
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    Competition,
    CompetitionArea,
    CompetitionFunder,
    CompetitionStatus,
    InvitedProvider,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import db

# The published value bands (whole pounds, upper bound exclusive): bidders see the band, not
# the buyer's exact estimate.
VALUE_BANDS = (
    (0, 30_000),
    (30_000, 100_000),
    (100_000, 500_000),
    (500_000, 1_000_000),
    (1_000_000, 5_000_000),
)


def value_band(pence: int) -> str:
    """The band the estimated value falls in, like "£100,000 to £500,000"."""
    pounds = pence // 100
    for low, high in VALUE_BANDS:
        if low <= pounds < high:
            return f"Up to £{high:,}" if low == 0 else f"£{low:,} to £{high:,}"
    return f"£{VALUE_BANDS[-1][1]:,} or more"


def open_competitions_query(now: datetime | None = None) -> sa.Select:
    """Published competitions whose bids are still open, soonest bid deadline first."""
    now = now or utcnow()
    return (
        sa.select(Competition)
        .where(Competition.status == CompetitionStatus.PUBLISHED, Competition.bid_deadline > now)
        .options(
            selectinload(Competition.areas).selectinload(CompetitionArea.region),
            selectinload(Competition.areas).selectinload(CompetitionArea.pcc_area),
            selectinload(Competition.lot),
            selectinload(Competition.category),
        )
        .order_by(Competition.bid_deadline, Competition.id)
    )


def organisation_competitions_query(organisation_id: int) -> sa.Select:
    """The competitions an organisation runs or co-funds, newest first."""
    return (
        sa.select(Competition)
        .where(
            sa.or_(
                Competition.buyer_id == organisation_id,
                Competition.id.in_(
                    sa.select(CompetitionFunder.competition_id).where(
                        CompetitionFunder.organisation_id == organisation_id
                    )
                ),
            )
        )
        .options(selectinload(Competition.category))
        .order_by(Competition.created_at.desc(), Competition.id.desc())
    )


def all_competitions_query() -> sa.Select:
    """Every competition, drafts included, newest first: the authority oversees them all."""
    return (
        sa.select(Competition)
        .options(selectinload(Competition.category))
        .order_by(Competition.created_at.desc(), Competition.id.desc())
    )


def invited_list(competition_id: int) -> list[InvitedProvider]:
    return list(
        db.session.scalars(
            sa.select(InvitedProvider)
            .where(InvitedProvider.competition_id == competition_id)
            .options(selectinload(InvitedProvider.organisation))
            .join(Organisation, Organisation.id == InvitedProvider.organisation_id)
            .order_by(Organisation.name, InvitedProvider.id)
        )
    )


def invitation(competition_id: int, organisation_id: int | None) -> InvitedProvider | None:
    if organisation_id is None:
        return None
    return db.session.scalar(
        sa.select(InvitedProvider).where(
            InvitedProvider.competition_id == competition_id,
            InvitedProvider.organisation_id == organisation_id,
        )
    )


def can_read_documents(
    user: User, organisation: Organisation | None, competition: Competition
) -> bool:
    """The buyer, funders, panel and authority; invited providers once it is published."""
    if organisation is None:
        return False
    if permissions.can_oversee(user, organisation, competition):
        return True
    return (
        competition.status is not CompetitionStatus.DRAFT
        and bool(user.roles_in(organisation) & permissions.PROVIDER_ROLES)
        and invitation(competition.id, organisation.id) is not None
    )


def listing_areas(listing: Listing) -> list[ListingArea]:
    return list(
        db.session.scalars(
            sa.select(ListingArea)
            .where(ListingArea.listing_id == listing.id)
            .order_by(ListingArea.id)
        )
    )
