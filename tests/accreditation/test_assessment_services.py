"""Assessment services: conflicts, marking, clarification, extension, decisions, the queue."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import (
    AnswerOutcome,
    ApplicationStatus,
    LotMembership,
)
from marketplace.accreditation.queries_assessment import assessment_queue
from marketplace.accreditation.services import applications, assessment
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import (
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)

AT = datetime(2026, 12, 23, 10, 0, tzinfo=UTC)


@pytest.fixture
def case(app):
    world = make_world()
    organisation, admin = make_provider()
    assessor, authority_admin = make_authority()
    application = submitted_application(world, organisation, admin, at=AT)
    return world, organisation, admin, assessor, authority_admin, application


def answer_for(application, criterion):
    return next(a for a in application.answers if a.criterion_id == criterion.id)


def test_assessor_must_declare_no_conflict_first(case):
    world, _, _, assessor, _, application = case
    with pytest.raises(BusinessRuleViolation) as error:
        assessment.decide_lot(assessor, application, world.lot_a, True)
    assert "conflict" in error.value.errors
    with pytest.raises(BusinessRuleViolation):
        assessment.mark_answer(
            assessor, answer_for(application, world.safeguarding_a), AnswerOutcome.PASS
        )
    with pytest.raises(BusinessRuleViolation):
        assessment.declare_conflict(assessor, application, True, "")  # details needed
    assessment.declare_conflict(assessor, application, True, "My sister is their chair")
    with pytest.raises(BusinessRuleViolation) as error:
        assessment.start_assessment(assessor, application)
    assert "another assessor" in error.value.errors["conflict"][0]
    with pytest.raises(BusinessRuleViolation):
        assessment.declare_conflict(assessor, application, False)


def test_providers_cannot_assess(case):
    _, _, admin, _, _, application = case
    with pytest.raises(PermissionDenied):
        assessment.declare_conflict(admin, application, False)


def test_mandatory_fail_or_unmarked_forbids_admission(case):
    world, _, _, assessor, _, application = case
    assessment.declare_conflict(assessor, application, False)
    with pytest.raises(BusinessRuleViolation):  # unmarked
        assessment.decide_lot(assessor, application, world.lot_a, True)
    assessment.mark_answer(
        assessor, answer_for(application, world.safeguarding_a), AnswerOutcome.PASS
    )
    with pytest.raises(BusinessRuleViolation):  # a fail needs a comment
        assessment.mark_answer(
            assessor, answer_for(application, world.insurance_a), AnswerOutcome.FAIL, ""
        )
    assessment.mark_answer(
        assessor, answer_for(application, world.insurance_a), AnswerOutcome.FAIL, "Expired"
    )
    with pytest.raises(BusinessRuleViolation) as error:
        assessment.decide_lot(assessor, application, world.lot_a, True)
    assert world.insurance_a.question in str(error.value)
    with pytest.raises(BusinessRuleViolation):  # rejection needs feedback
        assessment.decide_lot(assessor, application, world.lot_a, False, "")
    assessment.decide_lot(assessor, application, world.lot_a, False, "Renew your insurance")
    with pytest.raises(BusinessRuleViolation):
        assessment.decide_lot(assessor, application, world.lot_a, False, "again")
    assessment.decide_lot(assessor, application, world.lot_b, False, "No DBS evidence")
    assert application.status == ApplicationStatus.REJECTED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LotMembership)) == 0


def test_extend_once_with_a_reason(case):
    _, _, _, assessor, _, application = case
    with pytest.raises(BusinessRuleViolation):
        assessment.extend_deadline(assessor, application, "  ")
    assessment.extend_deadline(assessor, application, "Waiting for a reference")
    assert application.decision_due_on == date(2027, 1, 18)
    assert application.extension_reason == "Waiting for a reference"
    with pytest.raises(BusinessRuleViolation) as error:
        assessment.extend_deadline(assessor, application, "More time")
    assert "already been extended" in error.value.errors["reason"][0]


def test_deciding_after_withdrawal_is_refused(case):
    world, _, admin, assessor, _, application = case
    applications.withdraw(admin, application)
    with pytest.raises(BusinessRuleViolation) as error:
        assessment.decide_lot(assessor, application, world.lot_a, False, "No")
    assert "withdrawn" in error.value.errors["status"][0]
    with pytest.raises(BusinessRuleViolation):
        assessment.declare_conflict(assessor, application, False)


def test_clarification_keeps_the_clock_and_emails_both_ways(case):
    _, _, admin, assessor, _, application = case
    due = application.decision_due_on
    assessment.declare_conflict(assessor, application, False)
    request = assessment.request_clarification(assessor, application, "Which areas do you serve?")
    assert application.decision_due_on == due
    _, outsider = make_provider()
    with pytest.raises(NotFound):
        assessment.answer_clarification(outsider, request, "All of them")
    assessment.answer_clarification(admin, request, "Tyne and Wear")
    with pytest.raises(BusinessRuleViolation):
        assessment.answer_clarification(admin, request, "again")
    templates = list(db.session.scalars(sa.select(Notification.template)))
    assert "accreditation_clarification_requested" in templates
    assert "accreditation_clarification_answered" in templates


def test_admission_never_duplicates_a_current_membership(case):
    world, organisation, admin, assessor, _, application = case
    assessment.declare_conflict(assessor, application, False)
    for row in application.answers:
        assessment.mark_answer(assessor, row, AnswerOutcome.PASS)
    assessment.decide_lot(assessor, application, world.lot_a, True)
    assessment.decide_lot(assessor, application, world.lot_b, True)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LotMembership)) == 4
    again = submitted_application(world, organisation, admin, at=AT, lots=[world.lot_a])
    assessment.declare_conflict(assessor, again, False)
    for row in again.answers:
        assessment.mark_answer(assessor, row, AnswerOutcome.PASS)
    assessment.decide_lot(assessor, again, world.lot_a, True)
    assert again.status == ApplicationStatus.ADMITTED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LotMembership)) == 4


def test_queue_sorted_by_deadline_with_days_left(app, count_queries):
    world = make_world()
    for submitted_at in (
        datetime(2027, 1, 20, 10, tzinfo=UTC),
        datetime(2026, 12, 23, 10, tzinfo=UTC),
        datetime(2027, 1, 4, 10, tzinfo=UTC),
    ):
        organisation, admin = make_provider()
        submitted_application(world, organisation, admin, at=submitted_at)
    organisation, admin = make_provider()
    draft = applications.start_application(
        admin, organisation, world.arrangement, at=AT
    )  # drafts are not queued
    commit()
    db.session.expire_all()
    with count_queries() as counter:
        queue = assessment_queue(today=date(2027, 1, 13))
        [entry.application.organisation.name for entry in queue]
        [lot.lot.category.name for entry in queue for lot in entry.application.lots]
    assert counter.count <= 4
    assert [entry.application.decision_due_on for entry in queue] == [
        date(2027, 1, 11),
        date(2027, 1, 18),
        date(2027, 2, 3),
    ]
    assert [entry.days_left for entry in queue][:2] == [-2, 3]
    assert queue[0].breached and not queue[1].breached
    assert draft.id not in {entry.application.id for entry in queue}
