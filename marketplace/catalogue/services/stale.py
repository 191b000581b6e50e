"""Stale listings: a published listing not confirmed accurate for ``STALE_AFTER_DAYS`` is stale;
its provider is emailed once about it."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from marketplace.accreditation.services.applications import email_provider
from marketplace.catalogue.models import STALE_AFTER_DAYS, Listing, ListingStatus
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db


def is_stale(listing: Listing, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return listing.confirmed_at is None or listing.confirmed_at < now - timedelta(
        days=STALE_AFTER_DAYS
    )


def notify_stale_listings(now: datetime | None = None) -> int:
    """Email providers once about each published listing not confirmed for 180 days (idempotent)."""
    now = now or utcnow()
    cutoff = now - timedelta(days=STALE_AFTER_DAYS)
    stale = list(
        db.session.scalars(
            sa.select(Listing)
            .where(
                Listing.status.in_((ListingStatus.PUBLISHED, ListingStatus.PAUSED)),
                Listing.confirmed_at < cutoff,
                Listing.stale_notified_at.is_(None),
            )
            .order_by(Listing.organisation_id, Listing.id)
        )
    )
    by_organisation: dict[int, list[Listing]] = {}
    for listing in stale:
        by_organisation.setdefault(listing.organisation_id, []).append(listing)
    for listings in by_organisation.values():
        organisation = listings[0].organisation
        email_provider(
            organisation, "catalogue_listings_stale", listings=listings, days=STALE_AFTER_DAYS
        )
        for listing in listings:
            listing.stale_notified_at = now
            audit.record(
                None,
                "listing.stale_notified",
                listing,
                after={"confirmed_at": listing.confirmed_at},
            )
    db.session.flush()
    return len(stale)
