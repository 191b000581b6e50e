"""Assessment use cases: conflict declarations, marking, clarification, extension, decisions.

Every provider that meets the criteria is admitted: the number of members is never capped.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.accreditation.models import (
    ANSWER_TEXT_MAX,
    APPLICATION_TRANSITIONS,
    FEEDBACK_MAX,
    REASON_MAX,
    Answer,
    AnswerOutcome,
    Application,
    ApplicationStatus,
    ArrangementLot,
    ClarificationRequest,
    ConflictDeclaration,
    LotDecision,
    LotMembership,
    MembershipStatus,
)
from marketplace.accreditation.permissions import can_assess
from marketplace.accreditation.services.applications import (
    APPLICATION_FIELDS,
    ASSESSABLE_STATUSES,
    criteria_for,
    email_provider,
    require_applicant,
)
from marketplace.accreditation.signals import lot_membership_admitted
from marketplace.core import audit
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied, TransitionConflict
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import describe, lock, transition


def _require_assessor(actor: User) -> None:
    if not can_assess(actor):
        raise PermissionDenied("Only assessors and the authority can assess applications")


def _require_open(application: Application) -> None:
    status = application.status
    if status in ASSESSABLE_STATUSES:
        return
    if status == ApplicationStatus.WITHDRAWN:
        message = "This application has been withdrawn, so it cannot be assessed"
    elif status in (ApplicationStatus.ADMITTED, ApplicationStatus.REJECTED):
        message = "This application has already been decided"
    else:
        message = f"This application is {describe(status)}, so it cannot be assessed"
    raise TransitionConflict({"status": [message]})


def declaration_of(actor: User, application: Application) -> ConflictDeclaration | None:
    return db.session.scalar(
        sa.select(ConflictDeclaration).where(
            ConflictDeclaration.application_id == application.id,
            ConflictDeclaration.assessor_id == actor.id,
        )
    )


def _require_no_conflict(actor: User, application: Application) -> None:
    _require_assessor(actor)
    declaration = declaration_of(actor, application)
    if declaration is None:
        raise BusinessRuleViolation(
            {
                "conflict": [
                    "Declare whether you have a conflict of interest before assessing "
                    "this application"
                ]
            }
        )
    if declaration.has_conflict:
        raise BusinessRuleViolation(
            {
                "conflict": [
                    "You declared a conflict of interest, so another assessor must assess "
                    "this application"
                ]
            }
        )


def declare_conflict(
    actor: User,
    application: Application,
    has_conflict: bool,
    details: str = "",
    *,
    at: datetime | None = None,
) -> ConflictDeclaration:
    """Declare, before opening an application, whether the assessor has a conflict of interest."""
    _require_assessor(actor)
    _require_open(application)
    details = (details or "").strip()
    if has_conflict and not details:
        raise BusinessRuleViolation({"details": ["Describe the conflict of interest"]})
    if len(details) > REASON_MAX:
        raise BusinessRuleViolation(
            {"details": [f"Details must be {REASON_MAX:,} characters or fewer"]}
        )
    declaration = declaration_of(actor, application)
    if declaration is not None and declaration.has_conflict and not has_conflict:
        raise BusinessRuleViolation(
            {"conflict": ["A declared conflict of interest cannot be withdrawn"]}
        )
    before = None
    if declaration is None:
        declaration = ConflictDeclaration(application_id=application.id, assessor_id=actor.id)
        db.session.add(declaration)
    else:
        before = {"has_conflict": declaration.has_conflict, "details": declaration.details}
    declaration.has_conflict = bool(has_conflict)
    declaration.details = details
    declaration.declared_at = at or utcnow()
    db.session.flush()
    audit.record(
        actor,
        "application.conflict_declared",
        application,
        before=before,
        after={"assessor_id": actor.id, "has_conflict": bool(has_conflict), "details": details},
    )
    return declaration


def start_assessment(actor: User, application: Application, *, at: datetime | None = None) -> None:
    """Open a submitted application for assessment (submitted → under assessment)."""
    lock(application)
    _require_open(application)
    _require_no_conflict(actor, application)
    if application.status == ApplicationStatus.UNDER_ASSESSMENT:
        return
    before = audit.snapshot(application, APPLICATION_FIELDS)
    transition(
        application, ApplicationStatus.UNDER_ASSESSMENT, APPLICATION_TRANSITIONS, noun="application"
    )
    application.assessment_started_at = at or utcnow()
    db.session.flush()
    audit.record(
        actor,
        "application.assessment_started",
        application,
        before=before,
        after=audit.snapshot(application, APPLICATION_FIELDS),
    )


def mark_answer(
    actor: User,
    answer: Answer,
    outcome: AnswerOutcome,
    comment: str = "",
    *,
    at: datetime | None = None,
) -> None:
    """Mark one answer pass or fail, with a comment the provider will see (required for a fail)."""
    application = answer.application
    _require_open(application)
    _require_no_conflict(actor, application)
    outcome = AnswerOutcome(outcome)
    comment = (comment or "").strip()
    field = f"answer-{answer.id}"
    if outcome == AnswerOutcome.FAIL and not comment:
        raise BusinessRuleViolation({field: ["Say why the answer does not meet the criterion"]})
    if len(comment) > FEEDBACK_MAX:
        raise BusinessRuleViolation(
            {field: [f"The comment must be {FEEDBACK_MAX:,} characters or fewer"]}
        )
    application_lot = next(
        (al for al in application.lots if al.lot_id == answer.criterion.lot_id), None
    )
    if application_lot is not None and application_lot.decision != LotDecision.PENDING:
        raise BusinessRuleViolation({field: ["This lot has already been decided"]})
    start_assessment(actor, application, at=at)
    before = {"outcome": answer.outcome, "comment": answer.assessor_comment}
    answer.outcome = outcome
    answer.assessor_comment = comment
    answer.assessed_at = at or utcnow()
    answer.assessed_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        "answer.marked",
        application,
        before=before,
        after={"answer_id": answer.id, "outcome": outcome, "comment": comment},
    )


def request_clarification(
    actor: User, application: Application, question: str, *, at: datetime | None = None
) -> ClarificationRequest:
    """Ask the provider a question; the decision clock keeps running."""
    _require_open(application)
    _require_no_conflict(actor, application)
    question = (question or "").strip()
    if not question:
        raise BusinessRuleViolation({"question": ["Enter your question"]})
    if len(question) > ANSWER_TEXT_MAX:
        raise BusinessRuleViolation(
            {"question": [f"The question must be {ANSWER_TEXT_MAX:,} characters or fewer"]}
        )
    request = ClarificationRequest(
        application_id=application.id,
        question=question,
        asked_at=at or utcnow(),
        asked_by_id=actor.id,
    )
    db.session.add(request)
    db.session.flush()
    audit.record(
        actor,
        "application.clarification_requested",
        application,
        after={"clarification_id": request.id, "question": question},
    )
    email_provider(
        application.organisation,
        "accreditation_clarification_requested",
        application=application,
        question=question,
    )
    return request


def answer_clarification(
    actor: User, request: ClarificationRequest, answer: str, *, at: datetime | None = None
) -> None:
    """The provider answers an assessor's question."""
    application = db.session.get(Application, request.application_id)
    require_applicant(actor, application)
    _require_open(application)
    if request.answered_at is not None:
        raise BusinessRuleViolation({"answer": ["This question has already been answered"]})
    answer = (answer or "").strip()
    if not answer:
        raise BusinessRuleViolation({"answer": ["Enter your answer"]})
    if len(answer) > ANSWER_TEXT_MAX:
        raise BusinessRuleViolation(
            {"answer": [f"Your answer must be {ANSWER_TEXT_MAX:,} characters or fewer"]}
        )
    request.answer = answer
    request.answered_at = at or utcnow()
    request.answered_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        "application.clarification_answered",
        application,
        after={"clarification_id": request.id, "answer": answer},
    )
    asker = db.session.get(User, request.asked_by_id) if request.asked_by_id else None
    if asker is not None and asker.active:
        queue_email(
            asker.email,
            "accreditation_clarification_answered",
            user=asker,
            application=application,
            request=request,
        )


def extend_deadline(
    actor: User, application: Application, reason: str, *, at: datetime | None = None
) -> None:
    """Extend the decision deadline once, to the extended period, with a recorded reason."""
    _require_assessor(actor)
    _require_open(application)
    reason = (reason or "").strip()
    if application.extended_at is not None:
        raise BusinessRuleViolation(
            {"reason": ["The deadline has already been extended once and cannot be extended again"]}
        )
    if not reason:
        raise BusinessRuleViolation({"reason": ["Give the reason for extending the deadline"]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX:,} characters or fewer"]}
        )
    before = audit.snapshot(application, APPLICATION_FIELDS)
    application.decision_due_on = add_working_days(
        london_date(application.submitted_at), application.arrangement.extended_period_days
    )
    application.extended_at = at or utcnow()
    application.extended_by_id = actor.id
    application.extension_reason = reason
    db.session.flush()
    audit.record(
        actor,
        "application.deadline_extended",
        application,
        before=before,
        after=audit.snapshot(application, APPLICATION_FIELDS),
    )
    email_provider(
        application.organisation,
        "accreditation_deadline_extended",
        application=application,
        reason=reason,
    )


def decide_lot(
    actor: User,
    application: Application,
    lot: ArrangementLot,
    admit: bool,
    feedback: str = "",
    *,
    at: datetime | None = None,
) -> None:
    """Admit or reject one lot; when every lot is decided, decide the application and tell them."""
    # Locked first, with its lots' decisions and its answers' marks: of two decisions of one lot
    # at once, the second is refused; of the last two lots decided at once, the second sees the
    # first, and decides the application.
    lock(application, "lots", "answers")
    _require_open(application)
    _require_no_conflict(actor, application)
    feedback = (feedback or "").strip()
    application_lot = next((al for al in application.lots if al.lot_id == lot.id), None)
    if application_lot is None:
        raise BusinessRuleViolation({"lot": ["This application does not cover that lot"]})
    if application_lot.decision != LotDecision.PENDING:
        raise TransitionConflict({"lot": [f"{lot} has already been decided"]})
    if len(feedback) > FEEDBACK_MAX:
        raise BusinessRuleViolation(
            {"feedback": [f"Feedback must be {FEEDBACK_MAX:,} characters or fewer"]}
        )
    if admit:
        answers = {a.criterion_id: a for a in application.answers}
        blocking = [
            criterion
            for criterion in criteria_for(application, [lot])
            if criterion.mandatory
            and criterion.pass_fail
            and (
                answers.get(criterion.id) is None
                or answers[criterion.id].outcome != AnswerOutcome.PASS
            )
        ]
        if blocking:
            raise BusinessRuleViolation(
                {
                    f"criterion-{criterion.id}": [
                        f"{lot} cannot be admitted: “{criterion.question}” is mandatory "
                        "and has not been marked as a pass"
                    ]
                    for criterion in blocking
                }
            )
    elif not feedback:
        raise BusinessRuleViolation({"feedback": ["Give feedback saying why the lot is rejected"]})
    start_assessment(actor, application, at=at)
    now = at or utcnow()
    application_lot.decision = LotDecision.ADMITTED if admit else LotDecision.REJECTED
    application_lot.feedback = feedback
    application_lot.decided_at = now
    application_lot.decided_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        "application.lot_decided",
        application,
        after={"lot_id": lot.id, "decision": application_lot.decision, "feedback": feedback},
    )
    if all(al.decision != LotDecision.PENDING for al in application.lots):
        _decide_application(actor, application, now)


def _decide_application(actor: User, application: Application, now: datetime) -> None:
    before = audit.snapshot(application, APPLICATION_FIELDS)
    admitted = [al for al in application.lots if al.decision == LotDecision.ADMITTED]
    decision = ApplicationStatus.ADMITTED if admitted else ApplicationStatus.REJECTED
    transition(application, decision, APPLICATION_TRANSITIONS, noun="application")
    application.decided_at = now
    db.session.flush()
    audit.record(
        actor,
        f"application.{application.status.value}",
        application,
        before=before,
        after=audit.snapshot(application, APPLICATION_FIELDS),
    )
    memberships = [
        membership
        for al in admitted
        for membership in _admit(actor, application, al.lot, london_date(now))
    ]
    if memberships:
        lot_membership_admitted.send(application, actor=actor, memberships=memberships, now=now)
    failed_answers = [
        a for a in application.answers if a.outcome is not None and a.outcome == AnswerOutcome.FAIL
    ]
    email_provider(
        application.organisation,
        "accreditation_application_decided",
        application=application,
        application_lots=application.lots,
        failed_answers=failed_answers,
        memberships=memberships,
        admitted=bool(admitted),
        rejected=any(al.decision == LotDecision.REJECTED for al in application.lots),
    )


def _admit(
    actor: User, application: Application, lot: ArrangementLot, today
) -> list[LotMembership]:
    """One membership per chosen area, never duplicating a current one; never capped."""
    current = db.session.scalars(
        sa.select(LotMembership).where(
            LotMembership.organisation_id == application.organisation_id,
            LotMembership.lot_id == lot.id,
            LotMembership.status != MembershipStatus.REMOVED,
        )
    ).all()
    held = {(m.region_id, m.pcc_area_id) for m in current}
    created = []
    for area in application.areas:
        if (area.region_id, area.pcc_area_id) in held:
            continue
        membership = LotMembership(
            arrangement_id=application.arrangement_id,
            lot_id=lot.id,
            organisation_id=application.organisation_id,
            region_id=area.region_id,
            pcc_area_id=area.pcc_area_id,
            application_id=application.id,
            status=MembershipStatus.ACTIVE,
            admitted_on=today,
            declared_version=application.criteria_version,
        )
        try:
            # The unique current-membership index settles a race between two decisions for
            # the same provider, lot and area: the later one finds the member already admitted.
            with db.session.begin_nested():
                db.session.add(membership)
                db.session.flush()
        except sa.exc.IntegrityError:
            continue
        audit.record(
            actor,
            "membership.admitted",
            membership,
            after={
                "application": application.reference,
                "lot_id": lot.id,
                "region_id": area.region_id,
                "pcc_area_id": area.pcc_area_id,
                "admitted_on": today,
            },
        )
        created.append(membership)
    return created
