"""A buyer's home page leads to what they buy and what they bought (JOURNEYS.md B2): the "Find a
service" card opens the search, and the call-offs their organisation leads are counted where
they will look for them, with a link to the list."""

from __future__ import annotations

import re

import pytest

from marketplace.accounts.models import Role
from marketplace.core.db import commit
from marketplace.orders.services import placing, responses
from tests.factories import make_member
from tests.orders.factories import build_orders_world, details, shares
from tests.orders.test_waiting import card


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=10_000)


def place(world, **fields):
    return placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, **fields)
    )


def card_link(html: str, title: str, text: str) -> str:
    found = re.search(
        rf'<a class="govuk-link" href="([^"]+)">{re.escape(text)}</a>', card(html, title)
    )
    assert found, f"no link {text!r} in the card {title!r}"
    return found.group(1)


def test_the_find_a_service_card_opens_the_search_with_the_services_listed(web, world):
    world.listing.title = "Supported housing in Durham"
    commit()
    web.as_user(world.buyer, world.region)
    home = web.get("/").get_data(as_text=True)
    href = card_link(home, "Find a service", "Find services")
    assert href == "/services"
    found = web.get("/services?q=Durham").get_data(as_text=True)
    assert "Supported housing in Durham" in found
    # The old address tells no one that nothing is listed.
    old = web.get("/catalogue/").get_data(as_text=True)
    assert "No services are listed yet" not in old and 'href="/services"' in old


def test_the_buyer_sees_the_call_offs_their_organisation_leads_on_the_home_page(web, world):
    web.as_user(world.buyer, world.region)
    nothing = card(web.get("/").get_data(as_text=True), "Your call-offs")
    assert "call-offs is open. Find a service" in nothing

    sent = place(world)
    accepted = place(world)
    responses.accept(world.provider_admin, accepted)
    declined = place(world)
    responses.decline(world.provider_admin, declined, "No places left")
    # Co-funded by the PCC, led by the region: the region's, not the PCC's.
    place(world, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    commit()

    html = web.get("/").get_data(as_text=True)
    placed = card(html, "Your call-offs")
    assert "1 call-off sent, waiting for the provider to accept or decline" in placed
    assert "1 call-off accepted or being delivered" in placed
    assert ">2</strong>" in placed
    assert card_link(html, "Your call-offs", "See your call-offs") == "/call-offs/"
    listed = web.get("/call-offs/").get_data(as_text=True)
    assert sent.reference in listed and accepted.reference in listed

    # The PCC co-funds one but leads none; the provider follows its own from other cards.
    web.as_user(make_member(Role.BUYER, world.pcc), world.pcc)
    commit()
    assert "call-offs is open. Find a service" in card(
        web.get("/").get_data(as_text=True), "Your call-offs"
    )
    web.as_user(world.provider_admin, world.provider)
    assert card(web.get("/").get_data(as_text=True), "Your call-offs") == ""
