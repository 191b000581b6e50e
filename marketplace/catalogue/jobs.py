"""Scheduled: stale-listing reminders and the search index's prices (as `flask catalogue
notify-stale` and `flask catalogue refresh-prices`)."""

from __future__ import annotations

from datetime import datetime

from marketplace.catalogue.search.index import refresh_prices
from marketplace.catalogue.services.stale import notify_stale_listings
from marketplace.core.scheduler.registry import job


@job(
    "catalogue.refresh-prices",
    schedule="30 0 * * *",
    description="Bring the prices the search index carries up to date after new prices take "
    "effect at midnight (flask catalogue refresh-prices).",
)
def refresh_search_prices(due_at: datetime) -> dict[str, int]:
    return {"listings re-indexed": refresh_prices()}


@job(
    "catalogue.notify-stale",
    schedule="0 9 * * *",
    description="Email providers once about listings not confirmed accurate for 180 days "
    "(flask catalogue notify-stale).",
)
def notify_stale(due_at: datetime) -> dict[str, int]:
    # A listing is marked when its provider is told, and told again only once re-confirmed.
    return {"stale listings notified": notify_stale_listings()}
