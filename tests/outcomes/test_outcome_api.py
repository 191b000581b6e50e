"""The payment-by-results API: terms when placing, claims with an evidence file, verification,
and every bad input answered with problem+json."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.orders.models import CallOff
from marketplace.outcomes.models import OutcomeTerm
from tests.orders.factories import build_orders_world
from tests.orders.test_call_off_api import bearer, order
from tests.outcomes.factories import PDF


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


def _term(world, **changes) -> dict:
    body = {
        "outcome": "Settled accommodation",
        "tariff_pence": 50_001,
        "earliest_claim_on": (world.start + timedelta(weeks=13)).isoformat(),
        "evidence_required": "Tenancy agreement",
        "cap": 1,
    }
    body.update(changes)
    return body


def _placed(client, world, buyer, **term_changes) -> dict:
    response = client.post(
        "/api/v1/orders",
        json=order(world, outcome_terms=[_term(world, **term_changes)]),
        headers=buyer,
    )
    return response


def _problem(response, status):
    assert response.status_code == status, response.json
    assert response.headers["Content-Type"] == PROBLEM_JSON
    return response.json


def _claimable(call_off_id: int) -> None:
    """Move the call-off's dates into the past, so that its outcome can be claimed today."""
    call_off = db.session.get(CallOff, call_off_id)
    call_off.start_date = date.today() - timedelta(days=100)
    for term in db.session.query(OutcomeTerm).filter_by(call_off_id=call_off_id):
        term.earliest_claim_on = date.today() - timedelta(days=10)
    commit()


def _claim(client, call_off_id, term_id, headers, achieved_on=None, data=PDF, **fields):
    form = {
        "term_id": str(term_id),
        "achieved_on": (achieved_on or date.today() - timedelta(days=1)).isoformat(),
        "note": "Moved in",
        **fields,
    }
    if data is not None:
        form["evidence"] = (io.BytesIO(data), "tenancy.pdf")
    return client.post(
        f"/api/v1/orders/{call_off_id}/outcome-claims",
        data=form,
        headers=headers,
        content_type="multipart/form-data",
    )


def test_place_claim_verify_and_see_the_liability(client, world):
    buyer = bearer(world.buyer, world.region)
    provider = bearer(world.provider_admin, world.provider)
    placed = _placed(client, world, buyer)
    assert placed.status_code == 201, placed.json
    assert placed.json["outcome_max_pence"] == 60_001
    call_off_id = placed.json["id"]
    assert client.post(f"/api/v1/orders/{call_off_id}/accept", headers=provider).status_code == 200
    [term] = client.get(f"/api/v1/orders/{call_off_id}/outcome-terms", headers=provider).json
    assert (term["status"], term["tariff_pence"], term["cap"]) == ("agreed", 50_001, 1)
    liability = client.get("/api/v1/contingent-liability", headers=buyer).json
    assert liability["total_pence"] == 60_001 and liability["lines"][0]["claims_left"] == 1
    _problem(client.get("/api/v1/contingent-liability", headers=provider), 422)

    # Before its earliest date (today is weeks before the start).
    early = _claim(client, call_off_id, term["id"], provider)
    assert "achieved_on" in _problem(early, 422)["errors"]
    _claimable(call_off_id)
    made = _claim(client, call_off_id, term["id"], provider)
    assert made.status_code == 201, made.json
    assert made.headers["Location"].endswith(f"/api/v1/outcome-claims/{made.json['id']}")
    assert made.json["evidence"]["content_type"] == "application/pdf"
    # Beyond its cap of 1.
    assert "term_id" in _problem(_claim(client, call_off_id, term["id"], provider), 422)["errors"]

    claim_url = f"/api/v1/outcome-claims/{made.json['id']}"
    assert client.get(claim_url, headers=buyer).json["status"] == "claimed"
    listed = client.get(f"/api/v1/orders/{call_off_id}/outcome-claims", headers=buyer).json
    assert [c["id"] for c in listed] == [made.json["id"]]
    _problem(client.post(claim_url + "/verify", headers=provider), 403)  # the wrong side
    _problem(client.post(claim_url + "/reject", json={}, headers=buyer), 422)  # no reason
    _problem(client.post(claim_url + "/reject", json={"reason": "  "}, headers=buyer), 422)
    verified = client.post(claim_url + "/verify", headers=buyer)
    assert verified.status_code == 200 and verified.json["status"] == "verified"
    twice = _problem(client.post(claim_url + "/verify", headers=buyer), 409)
    assert twice["detail"] == "This claim has already been verified"
    assert client.get("/api/v1/contingent-liability", headers=buyer).json["total_pence"] == 0


def test_another_organisation_gets_404_and_a_buyer_cannot_claim(client, world):
    buyer = bearer(world.buyer, world.region)
    provider = bearer(world.provider_admin, world.provider)
    call_off_id = _placed(client, world, buyer).json["id"]
    client.post(f"/api/v1/orders/{call_off_id}/accept", headers=provider)
    _claimable(call_off_id)
    [term] = client.get(f"/api/v1/orders/{call_off_id}/outcome-terms", headers=buyer).json
    other = build_orders_world()
    stranger = bearer(other.provider_admin, other.provider)
    stranger_buyer = bearer(other.buyer, other.region)
    _problem(_claim(client, call_off_id, term["id"], stranger), 404)
    _problem(client.get(f"/api/v1/orders/{call_off_id}/outcome-terms", headers=stranger), 404)
    _problem(_claim(client, call_off_id, term["id"], buyer), 403)  # a buyer is the wrong role
    # The wrong term of the right call-off, a missing file, and a program instead of evidence.
    _problem(_claim(client, call_off_id, 999_999, provider), 404)
    missing = _problem(_claim(client, call_off_id, term["id"], provider, data=None), 422)
    assert "evidence" in missing["errors"]
    program = _problem(_claim(client, call_off_id, term["id"], provider, data=b"MZ\x90"), 422)
    assert "file" in program["errors"]
    made = _claim(client, call_off_id, term["id"], provider).json
    _problem(client.get(f"/api/v1/outcome-claims/{made['id']}", headers=stranger_buyer), 404)
    _problem(
        client.post(f"/api/v1/outcome-claims/{made['id']}/verify", headers=stranger_buyer), 404
    )
    _problem(client.get("/api/v1/outcome-claims/999999", headers=buyer), 404)


@pytest.mark.parametrize("tariff", [0, -5, 12.5, "100", None, True])
def test_a_tariff_that_is_not_positive_whole_pence_is_refused(client, world, tariff):
    buyer = bearer(world.buyer, world.region)
    problem = _problem(_placed(client, world, buyer, tariff_pence=tariff), 422)
    assert "outcome_terms" in str(problem)
    assert db.session.query(CallOff).count() == 0


def test_an_outcome_the_listing_does_not_offer_is_refused(client, world):
    buyer = bearer(world.buyer, world.region)
    problem = _problem(_placed(client, world, buyer, outcome="Found a job"), 422)
    assert "outcome_terms-0-outcome" in problem["errors"]
    assert db.session.query(CallOff).count() == 0


def test_terms_added_later_by_the_lead_buyer_and_agreed_by_the_provider(client, world):
    buyer = bearer(world.buyer, world.region)
    provider = bearer(world.provider_admin, world.provider)
    call_off_id = client.post("/api/v1/orders", json=order(world), headers=buyer).json["id"]
    client.post(f"/api/v1/orders/{call_off_id}/accept", headers=provider)
    url = f"/api/v1/orders/{call_off_id}/outcome-terms"
    _problem(client.post(url, json=_term(world), headers=provider), 403)
    _problem(client.post(url, json=_term(world, tariff_pence=1.5), headers=buyer), 422)
    proposed = client.post(url, json=_term(world), headers=buyer)
    assert proposed.status_code == 201 and proposed.json["status"] == "proposed"
    term_id = proposed.json["id"]
    _problem(client.post(f"{url}/{term_id}/agree", headers=buyer), 403)
    _problem(client.post(f"{url}/{term_id}/reject", json={"reason": ""}, headers=provider), 422)
    agreed = client.post(f"{url}/{term_id}/agree", headers=provider)
    assert agreed.status_code == 200 and agreed.json["status"] == "agreed"
    again = client.get(f"/api/v1/orders/{call_off_id}", headers=buyer).json
    assert again["outcome_max_pence"] == 60_001 and again["version"] == 2
