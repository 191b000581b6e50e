"""The competition tables and the seal rule, on the factory world."""

from datetime import timedelta

from marketplace.competitions import permissions
from marketplace.competitions.models import (
    BID_TRANSITIONS,
    COMPETITION_TRANSITIONS,
    OPEN_COMPETITION_STATUSES,
    CompetitionStatus,
)
from marketplace.core.clock import utcnow
from tests.competitions.factories import add_bid, build_competition_world, publish_directly


def test_every_state_is_in_the_maps():
    assert set(COMPETITION_TRANSITIONS) == set(CompetitionStatus)
    assert all(targets <= set(BID_TRANSITIONS) for targets in BID_TRANSITIONS.values())
    assert CompetitionStatus.AWARDED not in OPEN_COMPETITION_STATUSES
    assert CompetitionStatus.EVALUATED in OPEN_COMPETITION_STATUSES


def test_weights_of_the_factory_competition_sum_to_100(app):
    world = build_competition_world()
    assert world.competition.scored_weight == 100
    assert world.competition.social_value_weight == 10


def test_bids_are_sealed_until_the_deadline_and_the_bidder_alone_reads_its_own(app):
    world = build_competition_world()
    assert permissions.bids_are_sealed(world.competition)
    now = utcnow()
    publish_directly(world, now=now, bid_deadline=now + timedelta(days=10))
    bid = add_bid(world, world.providers[0])
    assert permissions.bids_are_sealed(world.competition, now + timedelta(days=9))
    own_admin = world.provider_admins[0]
    assert permissions.can_read_bid(own_admin, world.providers[0], bid, now)
    assert not permissions.can_read_bid(world.buyer, world.buyer_org, bid, now)
    assert not permissions.can_read_bid(world.evaluators[0], world.buyer_org, bid, now)
    later = now + timedelta(days=11)
    # Past the deadline but not yet closed: still sealed until the competition is closed.
    assert permissions.bids_are_sealed(world.competition, later)
    world.competition.status = CompetitionStatus.CLOSED
    assert not permissions.bids_are_sealed(world.competition, later)
    assert permissions.can_read_bid(world.buyer, world.buyer_org, bid, later)
    other_admin = world.provider_admins[1]
    assert not permissions.can_read_bid(other_admin, world.providers[1], bid, later)
