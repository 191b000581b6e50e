"""The bid and clarification endpoints: the same rules as the pages, refusals as problem+json."""

from datetime import timedelta

import pytest

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.competitions.models import QuestionKind
from marketplace.core.clock import utcnow
from marketplace.core.db import commit
from tests.competitions.factories import build_competition_world, publish_directly
from tests.factories import make_member


@pytest.fixture
def world(app):
    world = build_competition_world()
    publish_directly(world)
    commit()
    return world


def bearer(user, organisation):
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def body(world, **changes):
    answers = []
    for question in world.competition.questions:
        if question.kind is QuestionKind.PASS_FAIL:
            answers.append({"question_id": question.id, "text": "Yes", "meets_requirement": True})
        else:
            answers.append({"question_id": question.id, "text": "A good answer."})
    data = {
        "answers": answers,
        "unit_price_pence": 25_000,
        "vat_treatment": "exempt",
        "is_sme": True,
        "commitments": [{"what": "Jobs", "how_much": "Two", "by_when": "2027-12-31"}],
        "consortium": [
            {"name": world.providers[1].name, "role": "member", "share_basis_points": 3000}
        ],
    }
    data.update(changes)
    return data


def test_ask_answer_bid_submit_withdraw(world, client):
    c = world.competition.id
    provider = bearer(world.provider_admins[0], world.providers[0])
    asked = client.post(
        f"/api/v1/competitions/{c}/clarifications", json={"question": "Q?"}, headers=provider
    )
    assert asked.status_code == 201
    buyer = bearer(world.buyer, world.buyer_org)
    answered = client.post(
        f"/api/v1/competitions/{c}/clarifications/{asked.json['id']}/answer",
        json={"answer": "A."},
        headers=buyer,
    )
    assert answered.status_code == 200
    again = client.post(
        f"/api/v1/competitions/{c}/clarifications/{asked.json['id']}/answer",
        json={"answer": "A."},
        headers=buyer,
    )
    assert again.status_code == 409
    other = bearer(world.provider_admins[1], world.providers[1])
    published = client.get(f"/api/v1/competitions/{c}/clarifications", headers=other).json
    assert published == [
        {
            "id": asked.json["id"],
            "question": "Q?",
            "answer": "A.",
            "answered_at": published[0]["answered_at"],
        }
    ]
    saved = client.put(f"/api/v1/competitions/{c}/bid", json=body(world), headers=provider)
    assert saved.status_code == 200, saved.json
    assert saved.json["status"] == "draft" and saved.json["gross_pence"] == 10_000_000
    assert saved.json["consortium"][0]["role"] == "member"
    submitted = client.post(f"/api/v1/competitions/{c}/bid/submit", headers=provider)
    assert submitted.status_code == 200 and submitted.json["status"] == "submitted"
    twice = client.post(f"/api/v1/competitions/{c}/bid/submit", headers=provider)
    assert twice.status_code == 409 and twice.mimetype == "application/problem+json"
    withdrawn = client.post(f"/api/v1/competitions/{c}/bid/withdraw", headers=provider)
    assert withdrawn.json["status"] == "withdrawn"


def test_a_provider_not_invited_is_disregarded_with_the_reason(world, client):
    outsider = bearer(world.outsider_admin, world.outsider)
    refused = client.put(
        f"/api/v1/competitions/{world.competition.id}/bid", json=body(world), headers=outsider
    )
    assert refused.status_code == 422 and refused.mimetype == "application/problem+json"
    assert "disregarded" in refused.json["detail"]
    assert "Join the arrangement" in refused.json["detail"]


def test_over_the_word_limit_and_after_the_deadline(world, client):
    c = world.competition.id
    provider = bearer(world.provider_admins[0], world.providers[0])
    first = world.competition.questions[0]
    data = body(world)
    data["answers"][0]["text"] = "word " * 301
    refused = client.put(f"/api/v1/competitions/{c}/bid", json=data, headers=provider)
    assert refused.status_code == 422
    assert "301 words" in refused.json["errors"][f"answer_{first.id}"][0]
    world.competition.bid_deadline = utcnow() - timedelta(seconds=1)
    world.competition.clarification_deadline = utcnow() - timedelta(days=1)
    commit()
    late = client.put(f"/api/v1/competitions/{c}/bid", json=body(world), headers=provider)
    assert late.status_code == 422 and "London time" in late.json["detail"]
    question = client.post(
        f"/api/v1/competitions/{c}/clarifications", json={"question": "Q?"}, headers=provider
    )
    assert question.status_code == 422 and "London time" in question.json["detail"]


def test_an_editor_cannot_submit(world, client):
    editor = make_member(Role.PROVIDER_EDITOR, world.providers[0])
    headers = bearer(editor, world.providers[0])
    c = world.competition.id
    data = body(world, consortium=[])
    assert (
        client.put(f"/api/v1/competitions/{c}/bid", json=data, headers=headers).status_code == 200
    )
    refused = client.post(f"/api/v1/competitions/{c}/bid/submit", headers=headers)
    assert refused.status_code == 403


def test_a_consortium_member_not_in_the_lot_is_named(world, client):
    provider = bearer(world.provider_admins[0], world.providers[0])
    data = body(
        world,
        consortium=[
            {"organisation_id": world.outsider.id, "role": "member", "share_basis_points": 2000}
        ],
    )
    refused = client.put(
        f"/api/v1/competitions/{world.competition.id}/bid", json=data, headers=provider
    )
    assert refused.status_code == 422
    assert refused.json["errors"]["consortium_0_name"][0].startswith(world.outsider.name)


def test_documented_in_openapi(client):
    spec = client.get("/api/v1/openapi.json").json
    for path in (
        "/api/v1/competitions/{competition_id}/bid",
        "/api/v1/competitions/{competition_id}/bid/submit",
        "/api/v1/competitions/{competition_id}/bids",
        "/api/v1/bids/{bid_id}",
        "/api/v1/competitions/{competition_id}/clarifications",
    ):
        assert path in spec["paths"], path
