"""GET /api/v1/services and /api/v1/services/{id}: public, the same search as the pages."""

from __future__ import annotations

import pytest

from marketplace.core.errors import PROBLEM_JSON
from tests.catalogue.search_world import build_search_world


@pytest.fixture
def world(app):
    return build_search_world()


def titles(response) -> list[str]:
    return [item["title"] for item in response.get_json()["items"]]


def test_search_needs_no_token_and_hides_what_buyers_may_not_see(client, world):
    response = client.get("/api/v1/services")
    assert response.status_code == 200
    body = response.get_json()
    assert body["pagination"] == {"page": 1, "page_size": 20, "total": 5, "pages": 1}
    assert titles(response) == [
        "Employment coaching",
        "Drug and alcohol recovery group",
        "Supported housing for women leaving custody",
        "Housing first tenancy support",
        "Emergency accommodation placement",
    ]
    first = body["items"][0]
    assert first["provider"] == {
        "id": world.beacon.id,
        "name": "Beacon Employment Ltd",
        "type": "private",
    }
    assert first["lot"] == {"code": "ETE", "name": "Education, Training and Employment"}
    assert first["unit_price_pence"] == 3_000
    assert "contact_email" not in first
    assert body["facets"]["lot"] == {"ACC": 3, "ETE": 1, "DNR": 1}


def test_search_filters_and_sorts_as_the_pages_do(client, world):
    response = client.get(
        "/api/v1/services?q=housing&region=A&setting=custody&setting=remote&sort=price-desc"
    )
    assert titles(response) == ["Supported housing for women leaving custody"]
    response = client.get("/api/v1/services?provider_type=vcse&sort=provider&max_price_pence=7500")
    assert titles(response) == [
        "Supported housing for women leaving custody",
        "Housing first tenancy support",
    ]
    month = f"{world.full_month:%Y-%m}"
    response = client.get(f"/api/v1/services?lot=acc&month={month}&min_available=1")
    assert "Emergency accommodation placement" not in titles(response)


def test_pages_and_a_page_past_the_end(client, world):
    response = client.get("/api/v1/services?page_size=2&page=2")
    assert len(titles(response)) == 2
    response = client.get("/api/v1/services?page_size=2&page=99")
    assert response.get_json()["pagination"]["page"] == 3
    assert len(titles(response)) == 1


@pytest.mark.parametrize(
    "query",
    ["q=%22", "q=NEAR(a*", "q=title:x", "q=-(", "q=" + "x" * 10_000],
)
def test_hostile_text_answers_normally(client, world, query):
    response = client.get(f"/api/v1/services?{query}")
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["q=%00housing", "q=housing%ED%A0%80", "q=a%1Bb"])
def test_text_that_cannot_be_saved_is_refused_naming_the_parameter(client, world, query):
    # Refused on every path, query strings as much as forms and JSON (marketplace.core.validation).
    response = client.get(f"/api/v1/services?{query}")
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert list(response.json["errors"]) == ["q"]


@pytest.mark.parametrize(
    "query, field",
    [
        ("page=0", "page"),
        ("page_size=101", "page_size"),
        ("max_price_pence=-1", "max_price_pence"),
        ("max_price_pence=2.5", "max_price_pence"),
        ("age=old", "age"),
        ("setting=underwater", "setting"),
        ("sort=random", "sort"),
        ("month=2026-13", "month"),
        ("month=0000-01", "month"),
        ("provider_type=charity", "provider_type"),
        ("colour=blue", "colour"),
        ("q=" + "x" * 10_001, "q"),
    ],
)
def test_bad_arguments_are_422_problems(client, world, query, field):
    response = client.get(f"/api/v1/services?{query}")
    assert response.status_code == 422
    assert response.mimetype == PROBLEM_JSON
    errors = response.get_json()["errors"]
    assert field in str(errors)


@pytest.mark.parametrize("query", ["lot=NOPE", "region=ZZ", "pcc_area=nowhere"])
def test_unknown_codes_match_nothing(client, world, query):
    response = client.get(f"/api/v1/services?{query}")
    assert response.status_code == 200
    assert response.get_json()["items"] == []


def test_a_service(client, world):
    listing = world.listings["tenancy"]
    response = client.get(f"/api/v1/services/{listing.id}")
    assert response.status_code == 200
    body = response.get_json()
    assert body["unit_price_pence"] == 7_500
    assert body["unit_price_including_vat_pence"] == 7_500  # exempt
    assert [p["unit_price_pence"] for p in body["future_prices"]] == [9_000]
    assert body["areas"] == [{"region_code": None, "pcc_area_code": "durham", "name": "Durham"}]
    assert len(body["availability"]) == 3
    assert body["stale"] is False
    assert "contact_email" not in body


def test_availability_counts_committed_units(client, world):
    listing = world.listings["emergency"]
    body = client.get(f"/api/v1/services/{listing.id}").get_json()
    by_month = {a["month"]: a["available"] for a in body["availability"]}
    assert by_month[f"{world.full_month:%Y-%m}"] == 0
    assert body["unit_price_including_vat_pence"] == 14_400


@pytest.mark.parametrize("key", ["workshops", "paused", "withdrawn", "suspended", "advice"])
def test_services_buyers_may_not_see_are_404(client, world, key):
    response = client.get(f"/api/v1/services/{world.listings[key].id}")
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON


def test_unknown_service_is_404(client, world):
    assert client.get("/api/v1/services/999999").status_code == 404
    assert client.get("/api/v1/services/99999999999").status_code == 404
