"""The seal reaches the audit log: a bid's events (created, saved, submitted, withdrawn) say who is
bidding and how many bids there are, so before the bid deadline the authority's audit search
shows none of them, whatever it filters on; from the deadline on it shows them all."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.competitions.models import QuestionKind
from marketplace.competitions.services import bids
from marketplace.competitions.services.bids import AnswerInput, BidInput, CommitmentInput
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import frozen_at, utcnow
from marketplace.core.db import commit, db
from marketplace.core.money import VatTreatment
from tests.competitions.factories import build_competition_world, publish_directly
from tests.factories import make_member
from tests.pages import main

BID_ACTIONS = ("bid.created", "bid.saved", "bid.submitted", "bid.withdrawn")


def _complete(world) -> BidInput:
    answers = [
        AnswerInput(q.id, "Certificate", True)
        if q.kind is QuestionKind.PASS_FAIL
        else AnswerInput(q.id, "We will do it well.")
        for q in world.competition.questions
    ]
    return BidInput(
        answers=answers,
        unit_price_pence=25_000,
        vat_treatment=VatTreatment.EXEMPT,
        is_sme=True,
        commitments=[CommitmentInput("Apprenticeships", "Two", date(2027, 12, 31))],
    )


@pytest.fixture
def bidding(app):
    """Two providers bid through the services (one saves twice, submits, withdraws and submits
    again), with the deadline twelve days away; an unrelated event sits beside them."""
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now, bid_deadline=now + timedelta(days=12))
    for provider, admin in zip(world.providers[:2], world.provider_admins[:2], strict=True):
        bid = bids.save_bid(admin, provider, world.competition, _complete(world))
        bids.save_bid(admin, provider, world.competition, _complete(world))
        bids.submit_bid(admin, provider, bid)
    first = bids.own_bid(world.competition, world.providers[0])
    bids.withdraw_bid(world.provider_admins[0], world.providers[0], first)
    bids.submit_bid(world.provider_admins[0], world.providers[0], first)
    audit.record(world.buyer, "thing.unrelated", object_type="thing", object_id=1)
    world.extra["authority_admin"] = make_member(Role.AUTHORITY_ADMIN)
    commit()
    return world


def _searches(world) -> list[str]:
    bid = bids.own_bid(world.competition, world.providers[0])
    return [
        "/audit",
        "/audit?action=bid",
        "/audit?action=bid.submitted",
        "/audit?object_type=bid",
        f"/audit?object_type=bid&object_id={bid.id}",
        f"/audit?organisation_id={world.providers[0].id}",
        f"/audit?actor_email={world.provider_admins[0].email}",
    ]


def test_the_bids_audit_events_are_sealed_until_the_bid_deadline(bidding):
    stored = set(
        db.session.scalars(sa.select(AuditEvent.action).where(AuditEvent.object_type == "bid"))
    )
    assert stored == set(BID_ACTIONS)  # the events are written: only their reading is sealed
    deadline = bidding.competition.bid_deadline
    assert set(
        db.session.scalars(
            sa.select(AuditEvent.sealed_until).where(AuditEvent.object_type == "bid")
        )
    ) == {deadline}


def test_before_the_deadline_the_authority_finds_no_bid_event(bidding, web):
    web.as_user(bidding.extra["authority_admin"])
    for url in _searches(bidding):
        response = web.get(url)
        assert response.status_code == 200, url
        results = main(response).split("</form>", 1)[1]  # past the filters, which echo them
        for action in BID_ACTIONS:
            assert action not in results, url
        assert bidding.providers[0].name not in results, url
    unfiltered = main(web.get("/audit"))
    assert "thing.unrelated" in unfiltered and "1 event" in unfiltered
    # Not even the kind of object: the type filter offers no "bid" before any is unsealed.
    assert 'value="bid"' not in unfiltered


def test_from_the_deadline_the_authority_finds_every_bid_event(bidding, web):
    web.as_user(bidding.extra["authority_admin"])
    with frozen_at(bidding.competition.bid_deadline):
        for url in ("/audit", "/audit?action=bid", "/audit?object_type=bid"):
            html = main(web.get(url))
            for action in BID_ACTIONS:
                assert action in html, url
        html = main(web.get("/audit?object_type=bid"))
        # Two bids created, saved and submitted; the first withdrawn and submitted again.
        assert re.search(r'id="result-count">\s*8 events', html)
        assert 'value="bid"' in main(web.get("/audit"))


def test_a_sealed_event_is_visible_to_its_own_organisation_only(app):
    """The condition readers put on audit events: a sealed one only for its own organisation,
    until its moment comes; then for everyone."""
    world = build_competition_world()
    now = utcnow()
    later = now + timedelta(days=3)
    own, other = world.providers[0], world.providers[1]
    audit.record(None, "open.event", object_type="thing", organisation=own)
    audit.record(None, "own.sealed", object_type="thing", organisation=own, sealed_until=later)
    audit.record(None, "other.sealed", object_type="thing", organisation=other, sealed_until=later)
    db.session.flush()

    def visible(moment, **kwargs):
        return set(
            db.session.scalars(sa.select(AuditEvent.action).where(audit.unsealed(moment, **kwargs)))
        )

    assert visible(now) == {"open.event"}
    assert visible(now, organisation_id=own.id) == {"open.event", "own.sealed"}
    assert visible(later) == {"open.event", "own.sealed", "other.sealed"}
