"""Sealed bids (issue 21, acceptance 2): before the deadline, every page and API path that could
show a bid, or how many there are, refuses everyone but the bidder: the buyer, an approver, a
funder, each evaluator, the authority, an assessor, another invited provider and a visitor."""

from datetime import timedelta

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.competitions.models import CompetitionStatus
from marketplace.competitions.services import bids
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.money import VatTreatment
from tests.competitions.factories import build_competition_world, publish_directly
from tests.competitions.test_bid_services import complete_input
from tests.factories import make_member, make_organisation

SECRET = "Our secret approach with Zebra-Crossing mentors"
PRICE = 12_345  # £123.45 a bed-night


@pytest.fixture
def sealed(app):
    world = build_competition_world()
    publish_directly(world)
    bidder, admin = world.providers[0], world.provider_admins[0]
    data = complete_input(world, unit_price_pence=PRICE, vat_treatment=VatTreatment.EXEMPT)
    data.answers[0].text = SECRET
    bid = bids.save_bid(admin, bidder, world.competition, data)
    bids.submit_bid(admin, bidder, bid)
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS Commissioning")
    world.extra.update(
        bid=bid,
        authority_admin=(make_member(Role.AUTHORITY_ADMIN, authority), authority),
        assessor=(make_member(Role.ASSESSOR, authority), authority),
    )
    commit()
    return world


def people(world):
    """Everyone but the bidder, as (name, user, organisation); None is a visitor."""
    return [
        ("buyer", world.buyer, world.buyer_org),
        ("approver", world.approver, world.buyer_org),
        ("funder", world.pcc_approver, world.pcc),
        ("evaluator in the lead buyer", world.evaluators[0], world.buyer_org),
        ("evaluator in the funder", world.evaluators[1], world.pcc),
        ("authority admin", *world.extra["authority_admin"]),
        ("assessor", *world.extra["assessor"]),
        ("another invited provider", world.provider_admins[1], world.providers[1]),
        ("a provider not invited", world.outsider_admin, world.outsider),
        ("visitor", None, None),
    ]


def page_paths(world):
    c, b = world.competition.id, world.extra["bid"].id
    # Paths that name the bid, or list or count the bids: refused outright.
    refused = [
        f"/competitions/{c}/bids",
        f"/competitions/{c}/bids.csv",
        f"/competitions/{c}/bids/{b}",
    ]
    # Pages a person may open for their own organisation: never show the sealed bid.
    own = [
        f"/competitions/{c}/bid",
        f"/competitions/{c}/bid/edit",
        f"/competitions/{c}/bid/check",
        f"/competitions/{c}/clarifications",
        f"/competitions/{c}/questions/ask",
        "/competitions/invited",
        "/competitions/questions",
        "/",
    ]
    return refused, own


def api_paths(world):
    c, b = world.competition.id, world.extra["bid"].id
    refused = [f"/api/v1/competitions/{c}/bids", f"/api/v1/bids/{b}"]
    own = [f"/api/v1/competitions/{c}/bid", f"/api/v1/competitions/{c}/clarifications"]
    return refused, own


def shows_the_bid(text: str) -> bool:
    return SECRET in text or "123.45" in text or "12345" in text


def test_every_bid_page_refuses_everyone_but_the_bidder_before_the_deadline(sealed, client):
    from tests.conftest import sign_in_as

    refused, own = page_paths(sealed)
    for name, user, organisation in people(sealed):
        with client.session_transaction() as session:
            session.clear()
        if user is not None:
            sign_in_as(client, user, organisation)
        for path in refused:
            response = client.get(path)
            assert response.status_code in (302, 401, 403, 404), (name, path)
            assert not shows_the_bid(response.text), (name, path)
            if user is not None:
                assert response.status_code in (403, 404), (name, path)
        for path in own:
            response = client.get(path)
            assert not shows_the_bid(response.text), (name, path)


def test_every_bid_api_path_refuses_everyone_but_the_bidder_before_the_deadline(sealed, client):
    refused, own = api_paths(sealed)
    for name, user, organisation in people(sealed):
        headers = {}
        if user is not None:
            _, secret = create_api_token(user, organisation, "tests")
            commit()
            headers = {"Authorization": f"Bearer {secret}"}
        for path in refused + own:
            response = client.get(path, headers=headers)
            assert not shows_the_bid(response.get_data(as_text=True)), (name, path)
            if path in refused:
                expected = (403, 404) if user is not None else (401,)
                assert response.status_code in expected, (name, path, response.status_code)
                assert response.mimetype == "application/problem+json"


def test_the_bidder_reads_its_own_bid(sealed, client, login):
    world = sealed
    bid = world.extra["bid"]
    admin, bidder = world.provider_admins[0], world.providers[0]
    page = login(admin, bidder).get(f"/competitions/{world.competition.id}/bids/{bid.id}")
    assert page.status_code == 200 and SECRET in page.text and "£123.45" in page.text
    _, secret = create_api_token(admin, bidder, "tests")
    commit()
    headers = {"Authorization": f"Bearer {secret}"}
    own = client.get(f"/api/v1/competitions/{world.competition.id}/bid", headers=headers)
    assert own.status_code == 200 and own.json["unit_price_pence"] == PRICE
    assert client.get(f"/api/v1/bids/{bid.id}", headers=headers).json["id"] == bid.id
    # Its own bid, but not the list of bids (nor their number).
    listed = client.get(f"/api/v1/competitions/{world.competition.id}/bids", headers=headers)
    assert listed.status_code == 404


def test_past_the_deadline_but_not_yet_closed_bids_stay_sealed(sealed, login):
    world = sealed
    world.competition.bid_deadline = utcnow() - timedelta(minutes=1)
    world.competition.clarification_deadline = utcnow() - timedelta(days=1)
    commit()
    client = login(world.buyer, world.buyer_org)
    assert client.get(f"/competitions/{world.competition.id}/bids").status_code == 403
    world.competition.status = CompetitionStatus.CLOSED
    commit()
    page = client.get(f"/competitions/{world.competition.id}/bids")
    assert page.status_code == 200 and world.providers[0].name in page.text
    db.session.expire_all()
