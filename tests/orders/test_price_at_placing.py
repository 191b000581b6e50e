"""The price a call-off locks in is the one in force when it is placed, read in the placing
transaction (never from what a worker keeps), and the one the buyer was shown: a price that
changed between check your answers and "Place call-off" places nothing and asks again."""

from __future__ import annotations

import csv
import io
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.catalogue.imports.columns import COLUMN_NAMES, COLUMNS
from marketplace.catalogue.models import ListingPrice
from marketplace.catalogue.queries import buyable_listing
from marketplace.catalogue.search.schema import SEARCH_TOPIC
from marketplace.catalogue.services.prices import set_price
from marketplace.core.audit import AuditEvent
from marketplace.core.cache import Topic, kept_copy
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.core.money import VatTreatment
from marketplace.orders.models import CallOff
from marketplace.orders.services import placing as order_placing
from tests.factories import make_member
from tests.orders.factories import build_orders_world, details
from tests.pages import error_messages, hidden_value, main


@pytest.fixture
def world(app):
    built = build_orders_world(price_pence=10_000)
    commit()
    return built


def answers(world, **changes) -> dict:
    data = {
        "quantity": "12",
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "X123456",
        "pdu": "Durham",
        "po_number": "PO-9",
        "choice_reason": "continuity",
        "choice_reason_detail": "Already working with them",
    }
    data.update(changes)
    return data


def price_shown(page) -> str:
    """What the page's "Place call-off" form sends back: the price it showed."""
    return hidden_value(page, "price_seen")


def to_check_your_answers(web, world, **changes) -> tuple[str, object]:
    """The question page answered; the check your answers page it leads to (URL, response)."""
    response = web.post(f"/call-offs/new/{world.listing.id}", data=answers(world, **changes))
    assert response.status_code == 302, error_messages(response)
    check_url = response.headers["Location"]
    return check_url, web.get(check_url)


def call_offs() -> list[CallOff]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(CallOff).order_by(CallOff.id)))


def price_in_force(world) -> ListingPrice:
    return db.session.scalar(
        sa.select(ListingPrice).where(
            ListingPrice.listing_id == world.listing.id,
            ListingPrice.effective_from <= london_date(),
            sa.or_(
                ListingPrice.effective_to.is_(None),
                ListingPrice.effective_to > london_date(),
            ),
        )
    )


def import_price(web, world, pounds: str) -> None:
    """The provider imports a rate card with a new price for the listing from today, through
    the upload, check and confirm pages."""
    listing = world.listing
    row = {column.name: column.example for column in COLUMNS}
    row.update(
        reference=listing.reference,
        title=listing.title,
        lot="ACC",
        regions="A",
        unit=listing.unit.value,
        vat_treatment=listing.vat_treatment.value,
        max_units=str(listing.max_units),
        monthly_capacity=str(listing.monthly_capacity),
        lead_time_days=str(listing.lead_time_days),
        unit_price=pounds,
        price_effective_from=london_date().isoformat(),
    )
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMN_NAMES)
    writer.writerow([row[name] for name in COLUMN_NAMES])
    web.as_user(world.provider_admin, world.provider)
    preview = web.post(
        "/catalogue/rate-card/import",
        data={"file": (io.BytesIO(buffer.getvalue().encode()), "rates.csv")},
        content_type="multipart/form-data",
    )
    assert preview.status_code == 302, error_messages(preview)
    check = web.get(preview.headers["Location"])
    assert check.status_code == 200 and "£" + pounds in main(check)
    token = re.search(r'name="token" type="hidden" value="([^"]+)"', main(check))[1]
    confirmed = web.post("/catalogue/rate-card/import/confirm", data={"token": token})
    assert confirmed.status_code == 302


def test_import_new_prices_then_place_a_call_off_in_the_same_worker(web, client, world):
    api = bearer(world.buyer, world.region)
    web.as_user(world.buyer, world.region)
    # The worker's caches warm: the search page, the listing page, the question page, and the
    # service as placing a call-off keeps it (one placed earlier on the pages and one through
    # the API, both at £100).
    assert "£100.00" in main(web.get("/services?q=housing"))
    assert "£100.00" in main(web.get(f"/services/{world.listing.id}"))
    assert web.get(f"/call-offs/new/{world.listing.id}").status_code == 200
    check_url, check = to_check_your_answers(web, world, po_number="PO-EARLIER")
    assert "£100.00" in main(check)
    assert web.post(check_url, data={"price_seen": price_shown(check)}).status_code == 302
    earlier = client.post("/api/v1/orders", json=order(world, po_number="PO-API"), headers=api)
    assert earlier.json["unit_price_pence"] == 10_000

    import_price(web, world, "150.00")
    new_price = price_in_force(world)
    assert new_price.unit_price_pence == 15_000

    # The next call-off placed in this worker, through the API and through the pages.
    placed = client.post("/api/v1/orders", json=order(world, po_number="PO-API-2"), headers=api)
    assert placed.status_code == 201, placed.json
    assert (placed.json["unit_price_pence"], placed.json["net_pence"]) == (15_000, 150_000)
    web.as_user(world.buyer, world.region)
    check_url, check = to_check_your_answers(web, world)
    assert "£150.00" in main(check) and "£1,800.00" in main(check)
    placed = web.post(check_url, data={"price_seen": price_shown(check)})
    assert placed.status_code == 302 and "/placed" in placed.headers["Location"]
    *earlier_ones, through_api, call_off = call_offs()
    assert (call_off.unit_price_pence, call_off.net_pence) == (15_000, 180_000)
    assert call_off.price_version_id == through_api.price_version_id == new_price.id
    assert all(c.price_version_id != new_price.id for c in earlier_ones)
    placed_event = db.session.scalar(
        sa.select(AuditEvent).where(
            AuditEvent.action == "call_off.placed", AuditEvent.object_id == str(call_off.id)
        )
    )
    assert placed_event.after["price_version_id"] == new_price.id
    assert "£150.00" in main(web.get("/services?q=housing"))


def test_the_search_page_is_fresh_after_an_import(web, client, world):
    # Signed out the whole page is kept; signed in, its results.
    assert "£100.00" in main(client.get("/services?q=housing"))
    web.as_user(world.buyer, world.region)
    assert "£100.00" in main(web.get("/services?q=housing"))
    import_price(web, world, "150.00")
    signed_in = main(web.as_user(world.buyer, world.region).get("/services?q=housing"))
    assert "£150.00" in signed_in and "£100.00" not in signed_in
    with client.session_transaction() as session:
        session.clear()
    signed_out = main(client.get("/services?q=housing"))
    assert "£150.00" in signed_out and "£100.00" not in signed_out


def test_a_price_changed_after_check_your_answers_asks_again_and_places_nothing(web, world):
    web.as_user(world.buyer, world.region)
    check_url, check = to_check_your_answers(web, world)
    shown = price_shown(check)
    # The provider sets a new price from today while the buyer reads the page.
    set_price(world.provider_admin, world.listing, 15_000, london_date())
    commit()

    again = web.post(check_url, data={"price_seen": shown})
    assert again.status_code == 409
    assert call_offs() == []
    [message] = error_messages(again)
    assert "it is now £150.00 per session excluding VAT (it was £100.00)" in message
    assert "£1,800.00 including VAT" in message
    # The page shows the new price, and its button now carries it: pressing it places.
    assert "£150.00" in main(again) and price_shown(again) != shown
    placed = web.post(check_url, data={"price_seen": price_shown(again)})
    assert placed.status_code == 302
    [call_off] = call_offs()
    assert call_off.unit_price_pence == 15_000
    assert call_off.price_version_id == price_in_force(world).id


def test_a_price_replaced_the_same_day_keeps_its_version_but_still_asks_again(web, world):
    # A second change for the same date replaces the first in its row: the version is the
    # same, the price is not. What the page showed names both.
    set_price(world.provider_admin, world.listing, 12_000, london_date())
    commit()
    web.as_user(world.buyer, world.region)
    check_url, check = to_check_your_answers(web, world)
    version = price_in_force(world).id
    set_price(world.provider_admin, world.listing, 13_000, london_date())
    commit()
    assert price_in_force(world).id == version
    again = web.post(check_url, data={"price_seen": price_shown(check)})
    assert again.status_code == 409 and call_offs() == []
    assert "(it was £120.00)" in error_messages(again)[0]


def test_a_vat_change_after_check_your_answers_asks_again(web, world):
    web.as_user(world.buyer, world.region)
    check_url, check = to_check_your_answers(web, world)
    world.listing.vat_treatment = VatTreatment.STANDARD
    commit()
    again = web.post(check_url, data={"price_seen": price_shown(check)})
    assert again.status_code == 409 and call_offs() == []
    assert "The VAT on this service changed" in error_messages(again)[0]
    assert "£1,440.00 including VAT" in error_messages(again)[0]


@pytest.mark.parametrize("sent", [{}, {"price_seen": ""}, {"price_seen": "1:x:exempt"}])
def test_a_place_that_does_not_say_which_price_it_saw_is_asked_again(web, world, sent):
    web.as_user(world.buyer, world.region)
    check_url, _ = to_check_your_answers(web, world)
    again = web.post(check_url, data=sent)
    assert again.status_code == 409 and call_offs() == []
    assert error_messages(again) == [
        "Check the price of this service: it is £100.00 per session excluding VAT, so this "
        "call-off would come to £1,200.00 including VAT. Then place the call-off again"
    ]


def test_the_price_is_read_in_the_placing_transaction_not_from_the_workers_copy(world):
    listing_id, version = world.listing.id, price_in_force(world).id
    order_placing.place_call_off(world.buyer, world.region, listing_id, details(world))
    commit()
    db.session.remove()  # as the next request finds it
    # The service as placing reads it is kept by this worker; make its copy's price wrong.
    copy = kept_copy(
        ("buyable-listing", listing_id), [SEARCH_TOPIC, Topic.REGISTER, Topic.PRINCIPALS]
    )
    for price in copy.prices:
        set_committed_value(price, "unit_price_pence", 1)
    set_committed_value(copy, "vat_treatment", VatTreatment.STANDARD)
    assert buyable_listing(listing_id).prices[0].unit_price_pence == 1  # the copy is used
    buyer, region = db.session.merge(world.buyer), db.session.merge(world.region)
    call_off = order_placing.place_call_off(buyer, region, listing_id, details(world))
    assert (call_off.unit_price_pence, call_off.vat_treatment) == (10_000, VatTreatment.EXEMPT)
    assert call_off.price_version_id == version
    db.session.rollback()


# ---------------------------------------------------------------------------------------------
# The API


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def order(world, **changes) -> dict:
    body = {
        "listing_id": world.listing.id,
        "quantity": 10,
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "X123456",
        "pdu": "Durham",
        "po_number": "PO-77",
        "choice_reason": "only_provider_in_area",
    }
    body.update(changes)
    return body


def test_the_api_shows_the_price_version_and_refuses_a_price_not_expected(client, world):
    buyer = bearer(world.buyer, world.region)
    version = price_in_force(world).id
    placed = client.post(
        "/api/v1/orders",
        json=order(world, expected_price_version_id=version, expected_unit_price_pence=10_000),
        headers=buyer,
    )
    assert placed.status_code == 201, placed.json
    assert placed.json["price_version_id"] == version
    assert client.get(placed.json["url"], headers=buyer).json["price_version_id"] == version

    set_price(world.provider_admin, world.listing, 15_000, london_date())
    commit()
    for expected in (
        {"expected_price_version_id": version},
        {"expected_unit_price_pence": 10_000},
    ):
        refused = client.post("/api/v1/orders", json=order(world, **expected), headers=buyer)
        assert refused.status_code == 409 and refused.mimetype == PROBLEM_JSON
        assert refused.json["title"] == "The price has changed"
        assert (
            "it is now £150.00 per session excluding VAT (it was £100.00)"
            in (refused.json["detail"])
        )
        assert "£1,500.00 including VAT" in refused.json["detail"]
    assert len(call_offs()) == 1
    # Without an expectation, or with the new one, it is placed at the price in force.
    new_version = price_in_force(world).id
    for expected in ({}, {"expected_price_version_id": new_version}):
        placed = client.post("/api/v1/orders", json=order(world, **expected), headers=buyer)
        assert placed.status_code == 201
        assert (placed.json["unit_price_pence"], placed.json["price_version_id"]) == (
            15_000,
            new_version,
        )


@pytest.mark.parametrize(
    "field, value",
    [
        ("expected_price_version_id", "7"),
        ("expected_price_version_id", 0),
        ("expected_price_version_id", 2**31),
        ("expected_unit_price_pence", -1),
        ("expected_unit_price_pence", 1.5),
    ],
)
def test_the_api_refuses_a_malformed_expectation(client, world, field, value):
    refused = client.post(
        "/api/v1/orders",
        json=order(world, **{field: value}),
        headers=bearer(world.buyer, world.region),
    )
    assert refused.status_code == 422 and field in refused.json["errors"]
    assert call_offs() == []


def test_another_organisations_buyer_cannot_learn_a_price_through_a_refusal(client, world):
    # A provider's staff cannot place at all: refused before any price is compared.
    provider_staff = make_member(Role.PROVIDER_EDITOR, world.provider)
    commit()
    refused = client.post(
        "/api/v1/orders",
        json=order(world, expected_unit_price_pence=1),
        headers=bearer(provider_staff, world.provider),
    )
    assert refused.status_code in (403, 404) and "£" not in refused.json["detail"]
