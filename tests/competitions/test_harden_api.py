"""The competitions API with bad input, as a careless client sends it: every refusal a 4xx
problem+json, nothing written."""

from __future__ import annotations

import json

import pytest

from marketplace.competitions.services.bids import own_bid
from marketplace.core.db import db
from tests.competitions.test_bid_api import bearer, body, world  # noqa: F401 (fixture)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_a_body_that_is_not_sent_as_json_is_refused_not_read_as_empty(
    world,  # noqa: F811
    client,
    content_type,
):
    """JSON sent with another Content-Type was read as no body: the PUT answered 200 and
    replaced the draft with the defaults, wiping its price and commitments."""
    c = world.competition.id
    headers = bearer(world.provider_admins[0], world.providers[0])
    saved = client.put(
        f"/api/v1/competitions/{c}/bid", json=body(world, consortium=[]), headers=headers
    )
    assert saved.status_code == 200
    answer = client.put(
        f"/api/v1/competitions/{c}/bid",
        data=json.dumps({"unit_price_pence": 1}),
        headers={**headers, "Content-Type": content_type},
    )
    assert answer.status_code == 415
    assert answer.content_type == "application/problem+json"
    assert "Content-Type: application/json" in answer.json["detail"]
    db.session.expire_all()
    bid = own_bid(world.competition, world.providers[0])
    assert bid.unit_price_pence == 25_000 and bid.version == 1 and len(bid.commitments) == 1


def test_an_action_without_a_body_still_works(world, client):  # noqa: F811
    """Action endpoints take no body: an empty request is not refused as the wrong type."""
    c = world.competition.id
    headers = bearer(world.provider_admins[0], world.providers[0])
    client.put(f"/api/v1/competitions/{c}/bid", json=body(world, consortium=[]), headers=headers)
    submitted = client.post(f"/api/v1/competitions/{c}/bid/submit", headers=headers)
    assert submitted.status_code == 200, submitted.json
