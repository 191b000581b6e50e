"""Bids are sealed until the bid deadline: every page and API path of the competitions feature,
requested by every role before the deadline, shows nothing of a bid but to its own bidder.

The paths are not listed by hand: every GET route of the competitions blueprints (pages and
API) is requested, with its parameters filled from the world, so a route added later is checked
too (and one whose parameters this test cannot fill fails it, until it is taught them). A bid's
answers, price, schedule, commitments and consortium carry markers that must never appear in
another person's response; the bid's own administrator does see them (the markers are real).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.competitions.models import (
    BidPriceLine,
    ConsortiumMember,
    ConsortiumRole,
    SocialValueCommitment,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import commit
from tests.competitions.factories import add_bid, build_competition_world, publish_directly
from tests.conftest import sign_in_as
from tests.factories import make_member

SECRET_ANSWER = "ZEBRA-ANSWER-7731"
SECRET_PRICE_POUNDS = "1,234.57"
SECRET_PRICE_PENCE = 123_457
SECRET_LINE = "OKAPI-SCHEDULE-5520"
SECRET_COMMITMENT = "NARWHAL-COMMITMENT-9188"
SECRET_PARTNER = "QUOKKA-SUBCONTRACTOR-4410"
MARKERS = (
    SECRET_ANSWER,
    SECRET_PRICE_POUNDS,
    str(SECRET_PRICE_PENCE),
    SECRET_LINE,
    SECRET_COMMITMENT,
    SECRET_PARTNER,
)
BLUEPRINTS = ("competitions", "competitions_api", "competitions_public_api")


@pytest.fixture
def sealed(app):
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now, bid_deadline=now + timedelta(days=12))
    bidder = world.providers[0]
    bid = add_bid(world, bidder, unit_price_pence=SECRET_PRICE_PENCE)
    for answer in bid.answers:
        answer.text = f"{SECRET_ANSWER} {answer.text}"
    bid.price_lines.append(BidPriceLine(position=1, description=SECRET_LINE, amount_pence=1))
    bid.commitments.append(
        SocialValueCommitment(
            position=1, what=SECRET_COMMITMENT, how_much="3 jobs", by_when=world.start
        )
    )
    bid.consortium.append(
        ConsortiumMember(
            role=ConsortiumRole.SUBCONTRACTOR, name=SECRET_PARTNER, share_basis_points=2_000
        )
    )
    world.extra["bid"] = bid
    world.extra["authority_admin"] = make_member(Role.AUTHORITY_ADMIN)
    world.extra["assessor"] = make_member(Role.ASSESSOR)
    commit()
    return world


def _parameters(world) -> dict[str, int]:
    competition, bid = world.competition, world.extra["bid"]
    return {
        "competition_id": competition.id,
        "bid_id": bid.id,
        "question_id": competition.questions[0].id,
        "evaluator_id": competition.evaluators[0].id,
        "document_id": 0,  # none uploaded: a document route must answer without leaking
        "clarification_id": 0,
        "organisation_id": bid.organisation_id,
        "summary_id": 0,
    }


def _get_routes(app) -> list:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.split(".")[0] in BLUEPRINTS and "GET" in rule.methods
    ]


def _paths(app, world) -> list[str]:
    values = _parameters(world)
    paths = []
    for rule in _get_routes(app):
        missing = set(rule.arguments) - set(values)
        assert not missing, f"{rule.rule}: teach this test the parameters {sorted(missing)}"
        paths.append(rule.build({name: values[name] for name in rule.arguments})[1])
    return paths


def _people(world) -> list[tuple[str, object, object]]:
    """(who, user, the organisation they act for): everyone but the bidder."""
    return [
        ("lead buyer's buyer", world.buyer, world.buyer_org),
        ("lead buyer's approver", world.approver, world.buyer_org),
        ("co-funder's approver", world.pcc_approver, world.pcc),
        ("evaluator", world.evaluators[0], world.buyer_org),
        ("evaluator from the co-funder", world.evaluators[1], world.pcc),
        ("authority administrator", world.extra["authority_admin"], None),
        ("assessor", world.extra["assessor"], None),
        ("another invited provider", world.provider_admins[1], world.providers[1]),
        ("a member outside the areas", world.outsider_admin, world.outsider),
    ]


def _leaks(body: str) -> list[str]:
    return [marker for marker in MARKERS if marker in body]


def test_the_competitions_feature_has_routes_to_check(app, sealed):
    # The check below is only as good as the routes it finds.
    assert len(_get_routes(app)) >= 1


def test_no_page_or_api_path_shows_a_bid_before_the_deadline(app, sealed):
    paths = _paths(app, sealed)
    leaks = []
    for who, user, organisation in _people(sealed):
        organisation = organisation or user.memberships[0].organisation
        client = app.test_client()
        sign_in_as(client, user, organisation)
        _, secret = create_api_token(user, organisation, "seal test")
        commit()
        bearer = {"Authorization": f"Bearer {secret}"}
        for path in paths:
            headers = bearer if path.startswith("/api/") else {}
            response = client.get(path, headers=headers)
            assert response.status_code < 500, (who, path, response.status_code)
            found = _leaks(response.get_data(as_text=True))
            if found:
                leaks.append((who, path, found))
    signed_out = app.test_client()
    for path in paths:
        response = signed_out.get(path)
        assert response.status_code < 500, ("signed out", path, response.status_code)
        found = _leaks(response.get_data(as_text=True))
        if found:
            leaks.append(("signed out", path, found))
    assert leaks == []


def test_the_bidder_itself_reads_every_marker_of_its_own_bid(app, sealed):
    # The markers are real: the same paths show them to the bid's own administrator.
    admin, bidder = sealed.provider_admins[0], sealed.providers[0]
    competition, bid = sealed.competition, sealed.extra["bid"]
    client = app.test_client()
    sign_in_as(client, admin, bidder)
    page = client.get(f"/competitions/{competition.id}/bids/{bid.id}")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert [m for m in MARKERS if m in body] == [
        SECRET_ANSWER,
        SECRET_PRICE_POUNDS,
        SECRET_LINE,
        SECRET_COMMITMENT,
        SECRET_PARTNER,
    ]
    _, secret = create_api_token(admin, bidder, "own bid")
    commit()
    own = client.get(
        f"/api/v1/competitions/{competition.id}/bid", headers={"Authorization": f"Bearer {secret}"}
    )
    assert own.status_code == 200
    assert SECRET_ANSWER in own.get_data(as_text=True)
    assert str(SECRET_PRICE_PENCE) in own.get_data(as_text=True)
