"""A bid submitted (or a question answered) by several requests at once, as a double click or two
people do: once; the others are told it is done (real concurrent clients, SQLite and PostgreSQL)."""

from __future__ import annotations

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.competitions.models import Bid, BidStatus, Clarification
from marketplace.competitions.services import bids, clarifications
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from tests.competitions.factories import build_competition_world, publish_directly
from tests.competitions.test_bid_services import complete_input
from tests.factories import make_member
from tests.racing import one_wins, race

CLIENTS = 6


def test_a_bid_submitted_at_once_by_several_requests_is_submitted_once(app):
    world = build_competition_world()
    publish_directly(world)
    provider = world.providers[0]
    admins = [world.provider_admins[0].id] + [
        make_member(Role.PROVIDER_ADMIN, provider).id for _ in range(CLIENTS - 1)
    ]
    bid = bids.save_bid(
        world.provider_admins[0], provider, world.competition, complete_input(world)
    )
    commit()
    bid_id, provider_id = bid.id, provider.id

    def client(user_id):
        def read():
            actor = db.session.get(User, user_id)
            organisation = db.session.get(Organisation, provider_id)
            row = db.session.get(Bid, bid_id)
            return lambda: bids.submit_bid(actor, organisation, row)

        return read

    outcomes = race(app, [client(user_id) for user_id in admins])
    one_wins(outcomes, "409: This bid has already been submitted")
    db.session.expire_all()
    assert db.session.get(Bid, bid_id).status is BidStatus.SUBMITTED
    submitted = sa.select(sa.func.count(AuditEvent.id)).where(AuditEvent.action == "bid.submitted")
    assert db.session.scalar(submitted) == 1
    receipts = sa.select(sa.func.count(Notification.id)).where(
        Notification.template == "competitions_bid_submitted"
    )
    # One receipt to each of the provider's administrators, once.
    assert db.session.scalar(receipts) == CLIENTS


def test_a_question_answered_at_once_is_answered_once(app):
    world = build_competition_world()
    publish_directly(world)
    asked = clarifications.ask_clarification(
        world.provider_admins[0], world.providers[0], world.competition, "Pets?"
    )
    buyers = [world.buyer.id] + [
        make_member(Role.BUYER, world.buyer_org).id for _ in range(CLIENTS - 1)
    ]
    commit()
    asked_id, buyer_org_id = asked.id, world.buyer_org.id

    def client(index, user_id):
        def read():
            actor = db.session.get(User, user_id)
            organisation = db.session.get(Organisation, buyer_org_id)
            row = db.session.get(Clarification, asked_id)
            return lambda: clarifications.answer_clarification(
                actor, organisation, row, f"Answer {index}"
            )

        return read

    outcomes = race(app, [client(i, user_id) for i, user_id in enumerate(buyers)])
    one_wins(outcomes, "409: This question has already been answered")
    answered = sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "clarification.answered"
    )
    assert db.session.scalar(answered) == 1
