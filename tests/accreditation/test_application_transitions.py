"""Applications are submitted and decided once, and memberships suspended once, however many
clients ask at the same moment: one succeeds, the others get a clear 409, and the audit log,
the memberships and the emails show one decision. Two clients on every backend; twenty on
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.accreditation.models import (
    AnswerOutcome,
    Application,
    ApplicationStatus,
    ArrangementLot,
    LotMembership,
    MembershipStatus,
)
from marketplace.accreditation.services import applications, assessment, memberships
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import TransitionConflict
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import (
    draft_application,
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)
from tests.accreditation.factories import make_lot_membership
from tests.racing import OK, elsewhere, one_wins, race

CLIENTS = 20
AT = datetime(2026, 12, 30, 10, 0, tzinfo=UTC)
several = pytest.mark.parametrize(
    "clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)]
)


def audited(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def emailed(template: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.template == template)
    )


def marked(lots: str) -> tuple:
    """A submitted application for ``lots`` ("a", "b" or "ab") in two regions, every answer
    marked a pass by an assessor."""
    world = make_world()
    organisation, admin = make_provider()
    chosen = [{"a": world.lot_a, "b": world.lot_b}[name] for name in lots]
    application = submitted_application(world, organisation, admin, lots=chosen)
    marker, _ = make_authority()
    assessment.declare_conflict(marker, application, False, at=AT)
    for answer in application.answers:
        assessment.mark_answer(marker, answer, AnswerOutcome.PASS, at=AT)
    return world, organisation, application


def assessors(application: Application, count: int) -> list[int]:
    """Assessors who have each declared no conflict with the application."""
    people = []
    for _ in range(count):
        assessor, _ = make_authority()
        assessment.declare_conflict(assessor, application, False, at=AT)
        people.append(assessor.id)
    return people


def deciding(user_id: int, application_id: int, lot_id: int):
    def client():
        actor = db.session.get(User, user_id)
        application = db.session.get(Application, application_id)
        list(application.lots), list(application.answers)
        lot = db.session.get(ArrangementLot, lot_id)
        return lambda: assessment.decide_lot(actor, application, lot, True, "Meets them", at=AT)

    return client


@several
def test_decisions_of_an_application_at_once_decide_it_once(app, clients):
    world, organisation, application = marked("b")
    people = assessors(application, clients)
    commit()
    application_id, lot_id = application.id, world.lot_b.id

    outcomes = race(app, [deciding(p, application_id, lot_id) for p in people])

    one_wins(outcomes, "409: This application has already been decided")
    db.session.expire_all()
    assert db.session.get(Application, application_id).status == ApplicationStatus.ADMITTED
    current = db.session.scalars(
        sa.select(LotMembership.region_id).where(LotMembership.organisation_id == organisation.id)
    ).all()
    assert sorted(current) == sorted([world.region_1.id, world.region_2.id])
    assert audited("application.lot_decided") == 1
    assert audited("application.admitted") == 1
    assert audited("membership.admitted") == 2
    assert emailed("accreditation_application_decided") == 1  # its one provider admin


def test_the_last_two_lots_decided_at_once_decide_the_application(app):
    # Each decision used to see the other lot still pending: the application was never decided.
    world, _, application = marked("ab")
    first, second = assessors(application, 2)
    commit()
    application_id = application.id

    outcomes = race(
        app,
        [
            deciding(first, application_id, world.lot_a.id),
            deciding(second, application_id, world.lot_b.id),
        ],
    )

    assert outcomes == [OK, OK]
    db.session.expire_all()
    decided = db.session.get(Application, application_id)
    assert decided.status == ApplicationStatus.ADMITTED and decided.decided_at is not None
    assert audited("application.lot_decided") == 2
    assert audited("application.admitted") == 1
    assert emailed("accreditation_application_decided") == 1


def test_an_application_submitted_from_a_page_read_before_it_was_submitted_is_refused(app):
    world = make_world()
    organisation, admin = make_provider()
    make_authority()  # someone to tell of the application
    application = draft_application(world, organisation, admin)
    commit()
    application = db.session.get(Application, application.id)
    assert application.status == ApplicationStatus.DRAFT
    admin_id = admin.id

    def submit():
        applications.submit(
            db.session.get(User, admin_id), db.session.get(Application, application.id), at=AT
        )

    elsewhere(app, submit)
    before = (audited("application.submitted"), emailed("accreditation_application_received"))
    assert before == (1, 2)  # the assessor and the authority's administrator

    with pytest.raises(TransitionConflict) as refused:
        applications.submit(admin, application, at=AT)
    assert refused.value.errors == {"status": ["This application has already been submitted"]}
    db.session.rollback()
    assert (audited("application.submitted"), emailed("accreditation_application_received")) == (
        before
    )


def test_a_membership_suspended_from_a_page_read_before_it_was_suspended_is_refused(app):
    world = make_world()
    organisation, _ = make_provider()
    membership = make_lot_membership(world.lot_a, organisation, region_code="A")
    _, authority_admin = make_authority()
    commit()
    membership = db.session.get(LotMembership, membership.id)
    assert membership.status == MembershipStatus.ACTIVE
    admin_id = authority_admin.id

    def suspend():
        memberships.suspend(
            db.session.get(User, admin_id),
            db.session.get(LotMembership, membership.id),
            "Safeguarding concern under review",
        )

    elsewhere(app, suspend)

    with pytest.raises(TransitionConflict) as refused:
        memberships.suspend(authority_admin, membership, "The same concern, again")
    assert refused.value.errors == {"status": ["This membership has already been suspended"]}
    db.session.rollback()
    suspended = db.session.get(LotMembership, membership.id)
    assert suspended.suspension_reason == "Safeguarding concern under review"
    assert audited("membership.suspended") == 1
    assert emailed("accreditation_membership_suspended") == 1
