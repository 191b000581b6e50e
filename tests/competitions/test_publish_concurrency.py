"""Publishing twice at once publishes once: one invited list, one set of emails (PostgreSQL with
20 clients; SQLite with 2)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.competitions.models import Competition, CompetitionStatus, InvitedProvider
from marketplace.competitions.services import publishing
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from tests.competitions.factories import build_competition_world
from tests.factories import make_member
from tests.racing import OK, race

CLIENTS = 20


def publishing_client(user_id: int, competition_id: int):
    """Reads the person and the draft, as the check page does, then publishes."""

    def client():
        actor = db.session.get(User, user_id)
        competition = db.session.get(Competition, competition_id)
        competition.status  # noqa: B018 - read before the others act
        return lambda: publishing.publish(actor, competition)

    return client


@pytest.mark.parametrize("clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)])
def test_publishing_at_once_publishes_once(app, clients):
    world = build_competition_world()
    competition = world.competition
    competition.reference = None
    competition.clarification_deadline = utcnow() + timedelta(days=7)
    competition.bid_deadline = utcnow() + timedelta(days=14)
    people = [world.buyer.id, world.approver.id] + [
        make_member(Role.BUYER, world.buyer_org).id for _ in range(clients - 2)
    ]
    commit()

    outcomes = race(app, [publishing_client(pk, competition.id) for pk in people])

    assert outcomes.count(OK) == 1, outcomes
    assert all("already been published" in o for o in outcomes if o != OK), outcomes
    db.session.expire_all()
    assert db.session.get(Competition, competition.id).status is CompetitionStatus.PUBLISHED
    invited = db.session.scalars(
        sa.select(InvitedProvider.organisation_id).where(
            InvitedProvider.competition_id == competition.id
        )
    ).all()
    assert sorted(invited) == sorted(p.id for p in world.providers)
    assert db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(
            Notification.template == "competition_invited"
        )
    ) == len(world.providers)
    assert (
        db.session.scalar(
            sa.select(sa.func.count(AuditEvent.id)).where(
                AuditEvent.action == "competition.published"
            )
        )
        == 1
    )
