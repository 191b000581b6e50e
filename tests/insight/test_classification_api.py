"""The classification endpoints: a provider reads and confirms or changes its own, the authority
reads any provider's (and the list, with the page's filters) and corrects one; another
organisation's is not found; bad input is 4xx problem+json with nothing written."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketplace.accounts.models import OrganisationClassification, OrganisationType, Role
from marketplace.accounts.services.classification import record_at_registration
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from tests.factories import make_member, make_organisation
from tests.insight.test_classification import SMALL_CHARITY, _joined, entries
from tests.orders.test_call_off_api import bearer
from tests.pages import count


@pytest.fixture
def world(app):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Trust",
                                 charity_number="1123456")  # fmt: skip
    _joined(provider, 800)
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    editor = make_member(Role.PROVIDER_EDITOR, provider)
    authority = make_member(Role.AUTHORITY_ADMIN)
    company = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Acme Ltd")
    other = make_member(Role.PROVIDER_ADMIN, company)
    buyer = make_member(Role.BUYER)
    record_at_registration(admin, provider, SMALL_CHARITY)
    commit()
    return type("World", (), locals())


def refused(response, status: int = 422) -> dict:
    assert response.status_code == status, response.json
    assert response.headers["Content-Type"] == PROBLEM_JSON
    return response.json


def test_a_provider_reads_and_confirms_its_own(client, world):
    headers = bearer(world.admin, world.provider)
    own = client.get("/api/v1/insight/classification", headers=headers)
    assert own.status_code == 200
    assert own.json["current"]["vcse_basis"] == "registered_charity"
    assert own.json["current"]["sme"] is True and own.json["overdue"] is False
    assert [e["source"] for e in own.json["history"]] == ["registration"]
    confirmed = client.post(
        "/api/v1/insight/classification/confirmations", json={}, headers=headers
    )
    assert confirmed.status_code == 201, confirmed.json
    assert [e["source"] for e in confirmed.json["history"]] == ["confirmation", "registration"]
    changed = client.post(
        "/api/v1/insight/classification/confirmations",
        json={"vcse_basis": "cio", "staff_band": "50_to_249", "turnover_band": "2m_to_10m"},
        headers=headers,
    )
    assert changed.status_code == 201
    assert changed.json["current"]["vcse_basis"] == "cio"
    by_id = client.get(f"/api/v1/insight/classifications/{world.provider.id}", headers=headers)
    assert by_id.status_code == 200 and len(by_id.json["history"]) == 3


def test_an_editor_reads_but_cannot_confirm(client, world):
    headers = bearer(world.editor, world.provider)
    assert client.get("/api/v1/insight/classification", headers=headers).status_code == 200
    refused(
        client.post("/api/v1/insight/classification/confirmations", json={}, headers=headers), 403
    )
    assert len(entries(world.provider)) == 1


def test_another_organisations_classification_is_not_found(client, world):
    headers = bearer(world.other, world.company)
    refused(
        client.get(f"/api/v1/insight/classifications/{world.provider.id}", headers=headers), 404
    )
    refused(
        client.post(
            f"/api/v1/insight/classifications/{world.provider.id}/corrections",
            json={"vcse_basis": "not_vcse", "staff_band": "250_or_more",
                  "turnover_band": "over_44m", "effective_from": london_date().isoformat(),
                  "reason": "Mine"},
            headers=headers,
        ),
        404,
    )  # fmt: skip
    refused(client.get("/api/v1/insight/classifications", headers=headers), 403)
    buyer = bearer(world.buyer, world.buyer.organisations[0])
    refused(client.get("/api/v1/insight/classification", headers=buyer), 404)
    assert len(entries(world.provider)) == 1


def test_the_authority_lists_reads_and_corrects(client, world):
    db.session.query(OrganisationClassification).update(
        {"effective_from": london_date() - timedelta(days=400)}
    )
    commit()
    headers = bearer(world.authority, world.authority.organisations[0])
    listed = client.get("/api/v1/insight/classifications", headers=headers).json
    assert [r["name"] for r in listed["items"]] == ["Acme Ltd", "Hope Trust"]
    assert listed["pagination"]["total"] == 2
    unclassified = client.get(
        "/api/v1/insight/classifications?unclassified=true", headers=headers
    ).json
    assert [r["name"] for r in unclassified["items"]] == ["Acme Ltd"]
    assert unclassified["items"][0]["overdue"] is True
    # Hope registered 400 days ago and Acme never: both due.
    overdue = client.get("/api/v1/insight/classifications?overdue=true", headers=headers).json
    assert [r["name"] for r in overdue["items"]] == ["Acme Ltd", "Hope Trust"]
    vcse = client.get("/api/v1/insight/classifications?vcse=true", headers=headers).json
    assert [r["name"] for r in vcse["items"]] == ["Hope Trust"]
    day = london_date() - timedelta(days=10)
    corrected = client.post(
        f"/api/v1/insight/classifications/{world.provider.id}/corrections",
        json={"vcse_basis": "not_vcse", "staff_band": "250_or_more",
              "turnover_band": "over_44m", "effective_from": day.isoformat(),
              "reason": "Accounts"},
        headers=headers,
    )  # fmt: skip
    assert corrected.status_code == 201, corrected.json
    assert corrected.json["history"][0]["source"] == "correction"
    assert corrected.json["history"][0]["reason"] == "Accounts"


@pytest.mark.parametrize(
    "change,field",
    [
        ({"effective_from": "future"}, "effective_from"),
        ({"vcse_basis": "charity_ish"}, "vcse_basis"),
        ({"reason": None}, "reason"),
        ({"reason": ""}, "reason"),
    ],
)
def test_bad_corrections_are_refused_and_write_nothing(client, world, change, field):
    headers = bearer(world.authority, world.authority.organisations[0])
    body = {
        "vcse_basis": "not_vcse",
        "staff_band": "250_or_more",
        "turnover_band": "over_44m",
        "effective_from": london_date().isoformat(),
        "reason": "Accounts",
    }
    if change.get("effective_from") == "future":
        change = {"effective_from": (london_date() + timedelta(days=1)).isoformat()}
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    problem = refused(
        client.post(
            f"/api/v1/insight/classifications/{world.provider.id}/corrections",
            json=body,
            headers=headers,
        )
    )
    assert field in str(problem)
    assert count(OrganisationClassification) == 1
