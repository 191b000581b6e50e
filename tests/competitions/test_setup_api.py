"""The set-up API: create a draft with its sections, read, publish (once), cancel, the invited
list; the public list without a token; problem+json refusals; 404 for another organisation."""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.clock import utcnow
from marketplace.core.db import commit
from marketplace.core.errors import PROBLEM_JSON
from tests.accreditation.factories import region
from tests.competitions.factories import build_competition_world
from tests.factories import make_member, make_organisation
from tests.orders.test_call_off_api import bearer


@pytest.fixture
def world(app):
    world = build_competition_world()
    commit()
    return world


def body(world, **changes) -> dict:
    now = utcnow()
    data = {
        "title": "Accommodation for young adults",
        "need": "Move-on accommodation.",
        "lot_id": world.lot.id,
        "region_ids": [region("A").id],
        "estimated_value_pence": 12_000_000,
        "quantity": 400,
        "unit": "bed_night",
        "contract_start": world.start.isoformat(),
        "contract_end": (world.start + timedelta(days=364)).isoformat(),
        "funders": [
            {"organisation_id": world.buyer_org.id, "basis_points": 6_000},
            {"organisation_id": world.pcc.id, "basis_points": 4_000},
        ],
        "price_weight": 50,
        "price_formula": "lowest_over_price",
        "tie_break": "price_then_quality",
        "questions": [
            {
                "kind": "quality",
                "text": "How?",
                "scoring_scheme": "0-4",
                "word_limit": 300,
                "max_score": 4,
                "weight": 40,
            },
            {
                "kind": "social_value",
                "text": "Social value?",
                "scoring_scheme": "0-4",
                "word_limit": 200,
                "max_score": 4,
                "weight": 10,
            },
            {"kind": "pass_fail", "text": "Insured?"},
        ],
        "clarification_deadline": (now + timedelta(days=7)).isoformat(),
        "bid_deadline": (now + timedelta(days=14)).isoformat(),
        "standstill_working_days": 8,
        "evaluator_user_ids": [u.id for u in world.evaluators],
    }
    data.update(changes)
    return data


def test_a_buyer_creates_reads_publishes_and_cancels(client, world):
    headers = bearer(world.buyer, world.buyer_org)
    created = client.post("/api/v1/competitions", json=body(world), headers=headers)
    assert created.status_code == 201, created.json
    draft = created.json
    assert draft["status"] == "draft" and draft["problems"] == {}
    assert [f["basis_points"] for f in draft["funders"]] == [6_000, 4_000]
    path = f"/api/v1/competitions/{draft['id']}"
    assert client.get(path, headers=headers).json["title"] == "Accommodation for young adults"
    published = client.post(f"{path}/publish", headers=headers)
    assert published.status_code == 200 and published.json["status"] == "published"
    assert published.json["reference"].startswith("FC-")
    again = client.post(f"{path}/publish", headers=headers)
    assert again.status_code == 409 and again.headers["Content-Type"] == PROBLEM_JSON
    invited = client.get(f"{path}/invited", headers=headers).json
    assert sorted(i["organisation_name"] for i in invited["items"]) == [
        "Provider 1",
        "Provider 2",
        "Provider 3",
    ]
    # A provider reads the public facts, not the funding nor the invited list.
    provider = bearer(world.provider_admins[0], world.providers[0])
    seen = client.get(path, headers=provider).json
    assert seen["funders"] is None and seen["estimated_value_pence"] is None
    assert seen["value_band"] == "£100,000 to £500,000"
    assert client.get(f"{path}/invited", headers=provider).status_code == 404
    listed = client.get("/api/v1/open-competitions").json
    assert [c["id"] for c in listed["items"]] == [draft["id"]]
    cancelled = client.post(f"{path}/cancel", json={"reason": "Budget gone"}, headers=headers)
    assert cancelled.status_code == 200 and cancelled.json["status"] == "cancelled"
    assert client.get("/api/v1/open-competitions").json["items"] == []


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"price_weight": 60}, "questions"),
        ({"bid_deadline": (utcnow() + timedelta(days=9)).isoformat()}, "bid_deadline"),
        ({"evaluator_user_ids": [1_000_000]}, "user_ids"),
    ],
)
def test_bad_input_is_problem_json_and_writes_nothing(client, world, changes, field):
    headers = bearer(world.buyer, world.buyer_org)
    answer = client.post("/api/v1/competitions", json=body(world, **changes), headers=headers)
    if field == "questions":
        # The weights are a publishing rule: the draft is kept, and publishing refuses.
        assert answer.status_code == 201
        assert "add up to 100" in " ".join(answer.json["problems"]["questions"])
        refused = client.post(f"/api/v1/competitions/{answer.json['id']}/publish", headers=headers)
        assert refused.status_code == 422 and refused.headers["Content-Type"] == PROBLEM_JSON
        return
    assert answer.status_code == 422 and answer.headers["Content-Type"] == PROBLEM_JSON
    assert field in str(answer.json)
    assert client.get("/api/v1/open-competitions").json["items"] == []


def test_another_organisations_draft_is_404_and_a_provider_cannot_create(client, world):
    other = make_organisation(OrganisationType.PCC, name="Other PCC")
    other_buyer = make_member(Role.BUYER, other)
    commit()
    headers = bearer(other_buyer, other)
    path = f"/api/v1/competitions/{world.competition.id}"
    assert client.get(path, headers=headers).status_code == 404
    assert client.post(f"{path}/publish", headers=headers).status_code == 404
    assert client.post(f"{path}/cancel", json={"reason": "x"}, headers=headers).status_code == 404
    provider = bearer(world.provider_admins[0], world.providers[0])
    answer = client.post("/api/v1/competitions", json=body(world), headers=provider)
    assert answer.status_code == 403 and answer.headers["Content-Type"] == PROBLEM_JSON
