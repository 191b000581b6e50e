"""Concurrent admissions on PostgreSQL: one current membership per provider, lot and area."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from marketplace import create_app
from marketplace.accounts.models import User
from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    Application,
    ApplicationStatus,
    LotMembership,
    MembershipStatus,
)
from marketplace.accreditation.services import assessment
from marketplace.core.db import commit, db
from tests.accreditation.builders import (
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)

pytestmark = pytest.mark.postgres_only

CLIENTS = 20
AT = datetime(2026, 12, 30, 10, 0, tzinfo=UTC)


def test_parallel_admissions_of_the_same_provider_never_duplicate_a_membership(app):
    world = make_world()
    organisation, admin = make_provider()
    _, assessor = make_authority()
    application_ids = []
    for _ in range(CLIENTS):
        application = submitted_application(world, organisation, admin, lots=[world.lot_b])
        assessment.declare_conflict(assessor, application, False, at=AT)
        application_ids.append(application.id)
    commit()
    assessor_id = assessor.id
    lot_id = world.lot_b.id

    # Its own app, so that every client has a connection of its own (the default pool is 15).
    racing_app = create_app(
        {**app.config, "SQLALCHEMY_ENGINE_OPTIONS": {"pool_size": CLIENTS + 2, "max_overflow": 0}}
    )
    barrier = threading.Barrier(CLIENTS)
    outcomes: list[str] = []

    def decide(application_id: int) -> None:
        try:
            _decide(application_id)
        except Exception as error:  # a failure before the race is still a failure
            outcomes.append(f"setup error: {error!r}")
            barrier.abort()

    def _decide(application_id: int) -> None:
        with racing_app.app_context():
            actor = db.session.get(User, assessor_id)
            application = db.session.get(Application, application_id)
            lot = next(item.lot for item in application.lots if item.lot_id == lot_id)
            for answer in db.session.scalars(
                sa.select(Answer).where(Answer.application_id == application_id)
            ):
                assessment.mark_answer(actor, answer, AnswerOutcome.PASS, at=AT)
            barrier.wait(timeout=30)
            try:
                assessment.decide_lot(actor, application, lot, True, "Meets the criteria", at=AT)
                commit()
                outcomes.append("admitted")
            except Exception as error:  # recorded, then asserted below
                db.session.rollback()
                outcomes.append(f"error: {error!r}")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=decide, args=(i,)) for i in application_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    with racing_app.app_context():
        db.engine.dispose()

    assert outcomes.count("admitted") == CLIENTS, outcomes
    db.session.expire_all()
    current = db.session.scalars(
        sa.select(LotMembership).where(
            LotMembership.organisation_id == organisation.id,
            LotMembership.status != MembershipStatus.REMOVED,
        )
    ).all()
    # Two regions were chosen: exactly one current membership each, however many decisions raced.
    assert sorted(m.region_id for m in current) == sorted([world.region_1.id, world.region_2.id])
    statuses = db.session.scalars(
        sa.select(Application.status).where(Application.id.in_(application_ids))
    ).all()
    assert set(statuses) == {ApplicationStatus.ADMITTED}
