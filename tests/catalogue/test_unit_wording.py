"""Units are worded one way everywhere: "£67.50 an hour", "1 referral", "3 bed-nights".

``Unit.per`` / ``Unit.count`` (and the ``per_unit`` / ``units`` filters) are the one helper that
every page, email and message uses; before them a page said "£67.50 a hour" and an email "1
referrals"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.catalogue.models import Unit
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from marketplace.orders.services import placing
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.orders.factories import build_orders_world, details, shares
from tests.pages import main


def words(response) -> str:
    """The page's main content as text, tags dropped and spaces collapsed."""
    assert response.status_code == 200
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", main(response)))


def test_units_are_worded_with_their_article_and_number():
    assert Unit.HOUR.per == "an hour"
    assert [unit.per for unit in (Unit.SESSION, Unit.BED_NIGHT, Unit.REFERRAL)] == [
        "a session",
        "a bed-night",
        "a referral",
    ]
    assert Unit.REFERRAL.count(1) == "1 referral"
    assert Unit.BED_NIGHT.count(3) == "3 bed-nights"
    assert Unit.SESSION.count(1500) == "1,500 sessions"
    assert Unit.HOUR.count(0) == "0 hours"


@pytest.fixture
def hourly(app):
    world = make_world()
    organisation, admin = make_provider("Debt Advice Together")
    make_lot_membership(world.lot_a, organisation, region_code="A")
    listing = make_listing(
        world.lot_a,
        organisation,
        title="Debt advice casework",
        unit=Unit.HOUR,
        price_pence=6_750,
        price_from=london_date() - timedelta(days=5),
        monthly_capacity=1,
    )
    commit()
    return organisation, admin, listing


def test_the_rate_card_says_an_hour(client, hourly):
    organisation, _, _ = hourly
    page = words(client.get(f"/catalogue/providers/{organisation.id}/rate-card"))
    assert "£67.50 an hour" in page
    assert "a hour" not in page


def test_the_providers_listing_pages_say_an_hour(web, hourly):
    organisation, admin, listing = hourly
    web.as_user(admin, organisation)
    page = words(web.get(f"/catalogue/listings/{listing.id}"))
    assert "£67.50 an hour, excluding VAT" in page
    assert "1 hour" in page and "1 hours" not in page  # monthly capacity of one
    listed = words(web.get("/catalogue/"))
    assert "£67.50 an hour" in listed and "a hour" not in listed


def test_an_email_for_one_unit_says_one_unit(app):
    world = build_orders_world()
    placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, quantity=1, shares=shares((world.region, 6000), (world.pcc, 4000))),
    )
    commit()
    [email] = db.session.scalars(
        sa.select(Notification).where(Notification.template == "orders_funding_requested")
    ).all()
    assert "Whole call-off: 1 session at £100.00 each" in email.body
    assert "1 sessions" not in email.body
