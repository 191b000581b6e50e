"""Issue 21: what pages, emails, CSV and the API show of a call-off awarded by further
competition (no listing, for a service rather than one person, no direct-award reason), and the
refusal above the direct-award limit linking to starting a further competition instead."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.core.notifications.models import Notification
from marketplace.orders import signals
from marketplace.orders.models import CallOffStatus
from marketplace.orders.services import funding, placing
from marketplace.orders.services.awarded import place_awarded_call_off
from tests.orders.awarded_factories import award, next_year_budgets
from tests.orders.factories import build_orders_world, details, shares
from tests.orders.test_call_off_api import bearer, order
from tests.orders.test_question_page import answers, count
from tests.pages import main


def awarded_world(**fields):
    world = build_orders_world(**fields)
    next_year_budgets(world)
    call_off = place_awarded_call_off(
        world.buyer, world.region, award(world, shares=shares((world.region, 10_000)))
    )
    if call_off.status == CallOffStatus.AWAITING_APPROVAL:  # above the buyer's spend limit
        funding.approve(world.approver, call_off)
    assert call_off.status == CallOffStatus.SENT
    return world, call_off


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def test_the_call_off_page_says_it_was_awarded_by_competition_and_is_not_for_one_person(web, app):
    world, call_off = awarded_world()
    commit()
    page = web.as_user(world.buyer, world.region).get(f"/call-offs/{call_off.id}")
    assert page.status_code == 200
    shown = text_of(main(page))
    assert "Women's accommodation service for County Durham" in shown
    assert "Awarded by further competition among the members of the lot" in shown
    assert "Not for one person: a contract for a service" in shown
    assert "Direct award" not in shown and "CRN" not in shown and "PDU" not in shown
    # No competitions feature answers here: no link, only the words.
    assert "View the competition" not in shown


def test_the_competitions_feature_gives_the_page_its_link_through_the_signal(web, app):
    world, call_off = awarded_world()
    commit()

    def link(sender, **_):
        return {"competition_url": f"/competitions/{sender.competition_id}"}

    with signals.call_off_page.connected_to(link):
        page = web.as_user(world.provider_admin, world.provider).get(f"/call-offs/{call_off.id}")
    assert page.status_code == 200
    assert re.search(
        r'<a class="govuk-link" href="/competitions/7">View the competition', main(page)
    )


def test_a_rate_card_call_off_still_shows_its_person_and_direct_award_reason(web, app):
    world = build_orders_world()
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    commit()
    shown = text_of(main(web.as_user(world.buyer, world.region).get(f"/call-offs/{call_off.id}")))
    assert "X123456" in shown and "Not for one person" not in shown
    assert "Direct award from the rate card: Lowest unit price with capacity" in shown
    assert "further competition" not in shown


def test_lists_csv_and_the_providers_email_say_not_for_one_person(web, app):
    world, call_off = awarded_world()
    commit()
    web.as_user(world.buyer, world.region)
    listed = text_of(main(web.get("/call-offs/")))
    assert "Women's accommodation service for County Durham" in listed
    assert "Not for one person" in listed
    rows = list(csv.reader(io.StringIO(web.get("/call-offs/export.csv").data.decode())))
    header, row = rows[0], rows[1]
    assert row[header.index("CRN")] == "Not for one person"
    assert "Women's accommodation service for County Durham" in row
    email = db.session.scalars(
        sa.select(Notification).where(
            Notification.template == "orders_sent_to_provider",
            Notification.to_email == world.provider_admin.email,
        )
    ).one()
    body = email.body
    assert "not for one person: a contract for a service, awarded by further competition" in body
    assert "CRN" not in body
    assert '"Women\'s accommodation service for County Durham"' in body


def test_the_api_gives_the_awarded_call_off_without_listing_or_reason(client, app):
    world, call_off = awarded_world()
    headers = bearer(world.buyer, world.region)
    response = client.get(f"/api/v1/orders/{call_off.id}", headers=headers)
    assert response.status_code == 200
    got = response.json
    assert got["award_route"] == "further_competition"
    assert (got["listing_id"], got["choice_reason"]) == (None, None)
    assert got["service_title"] == "Women's accommodation service for County Durham"
    assert (got["competition_id"], got["for_one_person"], got["crn"]) == (7, False, "")
    listed = client.get("/api/v1/orders", headers=headers).json
    assert [item["service_title"] for item in listed["items"]] == [got["service_title"]]


def competition_link(url: str, listing_id: int) -> dict:
    parts = urlsplit(url)
    assert parts.path == "/competitions/new"
    query = parse_qs(parts.query)
    assert query["listing_id"] == [str(listing_id)]
    return {key: int(value) for key, [value] in query.items()}


def test_the_question_page_above_the_limit_links_to_starting_a_further_competition(web, app):
    # £100 a session, limit £30,000: 310 sessions are £31,000.
    world = build_orders_world(price_pence=10_000, allocated_pence=10**8)
    commit()
    response = web.as_user(world.buyer, world.region).post(
        f"/call-offs/new/{world.listing.id}", data=answers(world, quantity="310")
    )
    assert response.status_code == 422
    inset = main(response).split('id="direct-award-limit"', 1)[1].split("</div>", 1)[0]
    [href] = re.findall(r'<a class="govuk-link" id="start-competition" href="([^"]+)"', inset)
    assert competition_link(unescape(href), world.listing.id) == {
        "listing_id": world.listing.id,
        "value_pence": 3_100_000,
    }
    words = text_of(inset)
    assert "Start a further competition for this need" in words
    assert "every provider that is a member of the lot in the area is invited to bid" in words
    assert count() == 0


def test_over_the_running_total_the_link_carries_what_the_buyer_asked_for(web, app):
    world = build_orders_world(price_pence=10_000, allocated_pence=10**8)
    placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=250)
    )
    commit()
    response = web.as_user(world.buyer, world.region).post(
        f"/call-offs/new/{world.listing.id}", data=answers(world, quantity="100")
    )
    assert response.status_code == 422
    [href] = re.findall(r'id="start-competition" href="([^"]+)"', main(response))
    assert competition_link(unescape(href), world.listing.id)["value_pence"] == 1_000_000


def test_the_api_refusal_above_the_limit_carries_the_link(client, app):
    world = build_orders_world(price_pence=10_000, allocated_pence=10**8)
    headers = bearer(world.buyer, world.region)
    response = client.post("/api/v1/orders", json=order(world, quantity=310), headers=headers)
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    problem = response.json
    assert "further competition" in problem["errors"]["quantity"][0]
    assert competition_link(problem["start_competition_url"], world.listing.id) == {
        "listing_id": world.listing.id,
        "value_pence": 3_100_000,
    }
    # Other refusals carry no such member.
    bad = client.post("/api/v1/orders", json=order(world, quantity=0), headers=headers)
    assert bad.status_code == 422 and "start_competition_url" not in bad.json
