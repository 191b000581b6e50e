"""The demo catalogue: `flask demo load` publishes realistic listings; the scale option adds more."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.security import hash_password
from marketplace.catalogue import rate_cards
from marketplace.catalogue.models import Listing, ListingPrice, ListingStatus
from marketplace.catalogue.services.stale import is_stale
from marketplace.core.clock import london_date
from marketplace.core.db import db
from marketplace.demo import organisations as demo_organisations
from tests.pages import count

_hash: list[str] = []


def _cached_hash(password: str) -> str:
    if not _hash:
        _hash.append(hash_password(password))
    return _hash[0]


def test_demo_load_publishes_listings_with_future_and_stale_ones(app, monkeypatch):
    monkeypatch.setattr(demo_organisations, "hash_password", _cached_hash)
    result = app.test_cli_runner().invoke(args=["demo", "load"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    listings = list(db.session.scalars(sa.select(Listing)))
    assert 100 <= len(listings) <= 1_000
    assert all(listing.status == ListingStatus.PUBLISHED for listing in listings)
    assert any(is_stale(listing) for listing in listings)
    assert not all(is_stale(listing) for listing in listings)
    today = london_date()
    future = db.session.scalars(
        sa.select(ListingPrice).where(ListingPrice.effective_from > today)
    ).all()
    assert future
    # Every listing is offered only where its provider is a member of its lot.
    from marketplace.catalogue.services.areas import uncovered_areas

    suspended = {"Keystone", "Caledonian"}
    for listing in listings:
        if not any(word in listing.organisation.name for word in suspended):
            assert uncovered_areas(listing) == [], listing.title
    # The rate cards are alive: a provider's card shows current and next prices.
    organisation = listings[0].organisation
    card = rate_cards.rate_card(organisation)
    assert card.lines
    assert all(line.price.effective_from <= today for line in card.lines)


def test_scale_option_adds_providers_memberships_and_listings(app, monkeypatch):
    monkeypatch.setattr(demo_organisations, "hash_password", _cached_hash)
    runner = app.test_cli_runner()
    runner.invoke(args=["demo", "load"], catch_exceptions=False)
    before = count(Listing)
    result = runner.invoke(
        args=["demo", "load", "--services", "300", "--providers", "12"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "300 listings from 12 providers" in result.output
    assert count(Listing) == before + 300
    scale = list(
        db.session.scalars(
            sa.select(Listing)
            .join(Listing.organisation)
            .where(sa.text("organisations.name LIKE 'Scale Provider %'"))
        )
    )
    assert len(scale) == 300
    from marketplace.catalogue.services.areas import uncovered_areas

    assert all(uncovered_areas(listing) == [] for listing in scale[:50])
    assert len({listing.reference for listing in scale}) == 300
