"""Membership use cases: suspend, reinstate, remove, renewed declarations and renewed evidence.
(The daily expiry check is ``services.expiry``; which evidence expires, ``services.evidence``.)

Renewed evidence waits in ``EvidenceRenewal`` until an assessor accepts or rejects it (page,
API and ``flask accreditation accept-evidence`` / ``reject-evidence`` all call the services
here); only accepted evidence is on the answer, and only the answer counts for expiry.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import User
from marketplace.accreditation.models import (
    DEFAULT_REDECLARATION_DAYS,
    MEMBERSHIP_TRANSITIONS,
    REASON_MAX,
    REMOVAL_REASON_LABELS,
    RENEWAL_TRANSITIONS,
    Answer,
    AnswerOutcome,
    Application,
    ApplicationStatus,
    ArrangementLot,
    Criterion,
    EvidenceFile,
    EvidenceRenewal,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
    RemovalReason,
    RenewalStatus,
    SuspensionCause,
)
from marketplace.accreditation.permissions import can_apply, can_assess, can_manage_memberships
from marketplace.accreditation.services.applications import assessors, email_provider
from marketplace.accreditation.services.evidence import current_memberships, evidence_outstanding
from marketplace.core import audit
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
)
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.urls import absolute_url
from marketplace.core.validation import check_date_horizon

MEMBERSHIP_FIELDS = [
    "status",
    "suspended_at",
    "suspension_cause",
    "suspension_reason",
    "removed_at",
    "removal_reason",
    "removal_details",
]
SUSPENSION_REASON_MISSING = "Give the reason for suspending this member"
REDECLARATION_REASON_MISSING = "Give the reason for asking for a renewed self-declaration"
REMOVAL_DETAILS_MISSING = "Give the details of why you are removing this member"


def _require_manager(actor: User | None) -> None:
    # ``None`` is the system itself (the daily expiry run).
    if actor is not None and not can_manage_memberships(actor):
        raise PermissionDenied("Only the authority can change memberships")


def _reason(reason: str, field_name: str = "reason", missing: str = "Give the reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({field_name: [missing]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {field_name: [f"The reason must be {REASON_MAX:,} characters or fewer"]}
        )
    return reason


def suspend(
    actor: User | None,
    membership: LotMembership,
    reason: str,
    cause: SuspensionCause = SuspensionCause.AUTHORITY,
    *,
    at: datetime | None = None,
    notify: bool = True,
) -> None:
    """Suspend an active membership with a recorded reason; the provider is told."""
    _require_manager(actor)
    reason = _reason(reason, missing=SUSPENSION_REASON_MISSING)
    lock(membership)
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    transition(membership, MembershipStatus.SUSPENDED, MEMBERSHIP_TRANSITIONS, noun="membership")
    membership.suspended_at = at or utcnow()
    membership.suspension_cause = SuspensionCause(cause)
    membership.suspension_reason = reason
    db.session.flush()
    audit.record(
        actor,
        "membership.suspended",
        membership,
        before=before,
        after=audit.snapshot(membership, MEMBERSHIP_FIELDS),
    )
    if notify:
        email_provider(
            membership.organisation,
            "accreditation_membership_suspended",
            memberships=[membership],
            reason=reason,
            arrangement=membership.arrangement,
            memberships_url=_memberships_url(),
        )


def reinstate(
    actor: User | None,
    membership: LotMembership,
    *,
    at: datetime | None = None,
    notify: bool = True,
) -> None:
    """Make a suspended membership active again; the provider is told."""
    _require_manager(actor)
    lock(membership)
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    transition(
        membership,
        MembershipStatus.ACTIVE,
        MEMBERSHIP_TRANSITIONS,
        noun="membership",
        done="reinstated",
        already="This membership is already active",
    )
    membership.suspended_at = None
    membership.suspension_cause = None
    membership.suspension_reason = None
    db.session.flush()
    audit.record(
        actor,
        "membership.reinstated",
        membership,
        before=before,
        after=audit.snapshot(membership, MEMBERSHIP_FIELDS),
    )
    if notify:
        email_provider(
            membership.organisation,
            "accreditation_membership_reinstated",
            memberships=[membership],
            arrangement=membership.arrangement,
        )


def remove(
    actor: User,
    membership: LotMembership,
    reason_code: RemovalReason,
    details: str,
    *,
    at: datetime | None = None,
) -> None:
    """Remove a member at once, with the reason recorded; the provider is told."""
    if not can_manage_memberships(actor):
        raise PermissionDenied("Only the authority can remove members")
    try:
        reason_code = RemovalReason(reason_code)
    except ValueError:
        raise BusinessRuleViolation({"reason_code": ["Choose the reason for removal"]}) from None
    details = _reason(details, "details", REMOVAL_DETAILS_MISSING)
    lock(membership)
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    transition(membership, MembershipStatus.REMOVED, MEMBERSHIP_TRANSITIONS, noun="membership")
    membership.removed_at = at or utcnow()
    membership.removal_reason = reason_code
    membership.removal_details = details
    # The CHECK ties suspension columns to the suspended state.
    membership.suspended_at = None
    membership.suspension_cause = None
    membership.suspension_reason = None
    db.session.flush()
    audit.record(
        actor,
        "membership.removed",
        membership,
        before=before,
        after=audit.snapshot(membership, MEMBERSHIP_FIELDS),
    )
    email_provider(
        membership.organisation,
        "accreditation_membership_removed",
        membership=membership,
        reason_label=REMOVAL_REASON_LABELS[reason_code],
        details=details,
        memberships_url=_memberships_url(),
    )


def request_redeclaration(
    actor: User,
    *,
    lot: ArrangementLot | None = None,
    membership: LotMembership | None = None,
    reason: str = "",
    at: datetime | None = None,
) -> list[RedeclarationRequest]:
    """Ask one member, or every current member of a lot, to renew its self-declaration."""
    _require_manager(actor)
    if (lot is None) == (membership is None):
        raise BusinessRuleViolation({"lot": ["Choose a lot or a single membership"]})
    reason = _reason(reason, missing=REDECLARATION_REASON_MISSING)
    if membership is not None:
        if membership.status == MembershipStatus.REMOVED:
            raise BusinessRuleViolation({"membership": ["This membership has been removed"]})
        targets = [membership]
    else:
        targets = list(
            db.session.scalars(
                sa.select(LotMembership)
                .where(
                    LotMembership.lot_id == lot.id,
                    LotMembership.status != MembershipStatus.REMOVED,
                )
                .order_by(LotMembership.id)
            )
        )
    now = at or utcnow()
    days = current_app.config.get("REDECLARATION_DAYS", DEFAULT_REDECLARATION_DAYS)
    due_on = add_working_days(london_date(now), days)
    requests: list[RedeclarationRequest] = []
    by_organisation: dict[int, list[LotMembership]] = defaultdict(list)
    for target in targets:
        request = RedeclarationRequest(
            membership_id=target.id,
            requested_at=now,
            requested_by_id=actor.id,
            due_on=due_on,
            reason=reason,
        )
        db.session.add(request)
        db.session.flush()
        audit.record(
            actor,
            "membership.redeclaration_requested",
            target,
            after={"request_id": request.id, "due_on": due_on, "reason": reason},
        )
        requests.append(request)
        by_organisation[target.organisation_id].append(target)
    for memberships in by_organisation.values():
        email_provider(
            memberships[0].organisation,
            "accreditation_declaration_renewal",
            memberships=memberships,
            arrangement=memberships[0].arrangement,
            due_on=due_on,
            reason=reason,
            memberships_url=_memberships_url(),
        )
    return requests


def answer_redeclaration(
    actor: User, request: RedeclarationRequest, *, at: datetime | None = None
) -> None:
    """The provider renews its declaration; an overdue suspension for it is lifted."""
    membership = request.membership
    if not can_apply(actor, membership.organisation):
        raise NotFound("Declaration request not found")
    if request.answered_at is not None:
        raise BusinessRuleViolation({"request": ["You have already renewed this declaration"]})
    if membership.status == MembershipStatus.REMOVED:
        raise BusinessRuleViolation({"request": ["This membership has been removed"]})
    request.answered_at = at or utcnow()
    request.answered_by_id = actor.id
    membership.declared_version = membership.arrangement.criteria_version
    db.session.flush()
    audit.record(
        actor,
        "membership.redeclared",
        membership,
        after={"request_id": request.id, "declared_version": membership.declared_version},
    )
    if (
        membership.status == MembershipStatus.SUSPENDED
        and membership.suspension_cause == SuspensionCause.REDECLARATION_OVERDUE
        and not _open_overdue_requests(membership, london_date(at))
    ):
        reinstate(None, membership, at=at)


def _open_overdue_requests(membership: LotMembership, today: date) -> list[RedeclarationRequest]:
    return list(
        db.session.scalars(
            sa.select(RedeclarationRequest).where(
                RedeclarationRequest.membership_id == membership.id,
                RedeclarationRequest.answered_at.is_(None),
                RedeclarationRequest.due_on < today,
            )
        )
    )


def _memberships_url() -> str:
    """The provider's "Our accreditation" page: its memberships and what it must do."""
    return absolute_url("accreditation.memberships")


def _renewal_url(renewal: EvidenceRenewal) -> str:
    return absolute_url("accreditation.renewed_evidence", renewal_id=renewal.id)


def pending_renewal(answer: Answer) -> EvidenceRenewal | None:
    """The renewal of ``answer`` waiting for an assessor, if there is one."""
    return db.session.scalar(
        sa.select(EvidenceRenewal).where(
            EvidenceRenewal.answer_id == answer.id,
            EvidenceRenewal.status == RenewalStatus.PENDING,
        )
    )


def renew_evidence(
    actor: User,
    answer: Answer,
    evidence_file: EvidenceFile,
    expires_on: date,
    *,
    at: datetime | None = None,
) -> EvidenceRenewal:
    """The provider uploads renewed evidence; it waits for an assessor and counts once accepted.

    The answer keeps the evidence in force until then. A second upload before the first is
    checked replaces it (the first is marked superseded), so one renewal per answer waits.
    """
    application = answer.application
    today = london_date(at)
    _check_renewal(actor, answer, evidence_file, expires_on, today)
    now = at or utcnow()
    _supersede_pending_renewal(actor, answer, now)
    renewal = EvidenceRenewal(
        answer=answer,
        file_id=evidence_file.id,
        expires_on=expires_on,
        replaces_file_id=answer.file_id,
        replaces_expires_on=answer.evidence_expires_on,
        status=RenewalStatus.PENDING,
        submitted_at=now,
        submitted_by_id=actor.id,
    )
    db.session.add(renewal)
    db.session.flush()
    audit.record(
        actor,
        "evidence.renewed",
        renewal,
        after={
            "answer_id": answer.id,
            "application": application.reference,
            "file_id": evidence_file.id,
            "expires_on": expires_on,
            "replaces_file_id": answer.file_id,
            "replaces_expires_on": answer.evidence_expires_on,
        },
    )
    _tell_assessors(renewal)
    return renewal


def _check_renewal(
    actor: User, answer: Answer, evidence_file: EvidenceFile, expires_on: date, today: date
) -> None:
    """Renewed evidence is the provider's own file, for expiring evidence of an admission, and
    expires in the future, after the evidence it replaces."""
    application = answer.application
    if not can_apply(actor, application.organisation):
        raise NotFound("Answer not found")
    if not answer.criterion.evidence_expires:
        raise BusinessRuleViolation({"answer": ["This evidence does not expire"]})
    if application.status != ApplicationStatus.ADMITTED:
        raise BusinessRuleViolation({"answer": ["Only evidence of an admission can be renewed"]})
    if evidence_file.organisation_id != application.organisation_id:
        raise BusinessRuleViolation({"file": ["Upload the renewed evidence"]})
    if not isinstance(expires_on, date) or expires_on <= today:
        raise BusinessRuleViolation({"expires_on": ["Enter an expiry date in the future"]})
    check_date_horizon("expires_on", expires_on, "The expiry date", today=today)
    if answer.evidence_expires_on is not None and expires_on <= answer.evidence_expires_on:
        current = answer.evidence_expires_on
        raise BusinessRuleViolation(
            {
                "expires_on": [
                    "Renewed evidence must expire after the evidence it replaces, which expires "
                    f"on {current.day} {current:%B %Y}"
                ]
            }
        )


def _supersede_pending_renewal(actor: User, answer: Answer, now: datetime) -> None:
    """The renewal of ``answer`` still waiting, if any, is superseded: one renewal waits."""
    superseded = pending_renewal(answer)
    if superseded is None:
        return
    check_transition(superseded, RenewalStatus.SUPERSEDED, RENEWAL_TRANSITIONS, **DECIDING_RENEWAL)
    _decide(None, superseded, RenewalStatus.SUPERSEDED, None, now)
    audit.record(
        actor,
        "evidence.renewal_superseded",
        superseded,
        before={"status": RenewalStatus.PENDING},
        after={"status": RenewalStatus.SUPERSEDED},
    )


def _tell_assessors(renewal: EvidenceRenewal) -> None:
    """Each assessor is asked to check the renewed evidence (through the outbox)."""
    answer = renewal.answer
    application = answer.application
    link = _renewal_url(renewal)
    for user in assessors():
        queue_email(
            user.email,
            "accreditation_evidence_renewed",
            user=user,
            application=application,
            organisation=application.organisation,
            criterion=answer.criterion,
            expires_on=renewal.expires_on,
            current_expires_on=answer.evidence_expires_on,
            link=link,
        )


# How a decision on renewed evidence is refused: for the decision field, saying why it can no
# longer be decided whatever decision was asked for. The row is locked first, so of two
# assessors deciding at once the second is told it is decided.
DECIDING_RENEWAL = {
    "noun": "renewed evidence",
    "error_field": "decision",
    "refused": {
        RenewalStatus.ACCEPTED: "This renewed evidence has already been accepted",
        RenewalStatus.REJECTED: "This renewed evidence has already been rejected",
        RenewalStatus.SUPERSEDED: "The provider has sent newer evidence in place of this",
    },
}


def _decide(
    actor: User | None,
    renewal: EvidenceRenewal,
    status: RenewalStatus,
    reason: str | None,
    now: datetime,
) -> None:
    """Record the decision on a renewal that ``check_transition`` has let through."""
    transition(renewal, status, RENEWAL_TRANSITIONS, **DECIDING_RENEWAL)
    renewal.decided_at = now
    renewal.decided_by_id = actor.id if actor is not None else None
    renewal.decision_reason = reason


def _require_assessor(actor: User) -> None:
    if not can_assess(actor):
        raise PermissionDenied("Only assessors and the authority can check renewed evidence")


def accept_renewed_evidence(
    actor: User, renewal: EvidenceRenewal, comment: str = "", *, at: datetime | None = None
) -> list[LotMembership]:
    """Accept renewed evidence: it becomes the answer's evidence, and memberships suspended
    because evidence expired are reinstated when nothing else keeps them suspended."""
    _require_assessor(actor)
    comment = (comment or "").strip()
    if len(comment) > REASON_MAX:
        raise BusinessRuleViolation(
            {"comment": [f"The comment must be {REASON_MAX:,} characters or fewer"]}
        )
    now = at or utcnow()
    today = london_date(now)
    answer = renewal.answer
    application = answer.application
    before = {
        "file_id": answer.file_id,
        "evidence_expires_on": answer.evidence_expires_on,
        "outcome": answer.outcome,
    }
    check_transition(renewal, RenewalStatus.ACCEPTED, RENEWAL_TRANSITIONS, **DECIDING_RENEWAL)
    if renewal.expires_on <= today:
        raise BusinessRuleViolation(
            {
                "decision": [
                    f"This renewed evidence expired on {renewal.expires_on.day} "
                    f"{renewal.expires_on:%B %Y}: reject it and ask for current evidence"
                ]
            }
        )
    _decide(actor, renewal, RenewalStatus.ACCEPTED, comment or None, now)
    answer.file_id = renewal.file_id
    answer.evidence_expires_on = renewal.expires_on
    answer.outcome = AnswerOutcome.PASS
    answer.assessor_comment = comment
    answer.assessed_at = now
    answer.assessed_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        "evidence.accepted",
        renewal,
        before={"status": RenewalStatus.PENDING, "answer": before},
        after={
            "status": RenewalStatus.ACCEPTED,
            "answer": {
                "file_id": answer.file_id,
                "evidence_expires_on": answer.evidence_expires_on,
                "outcome": answer.outcome,
            },
            "comment": comment,
        },
    )
    reinstated = _lift_evidence_suspensions(application, today, now)
    email_provider(
        application.organisation,
        "accreditation_evidence_accepted",
        renewal=renewal,
        criterion=answer.criterion,
        application=application,
        arrangement=application.arrangement,
        comment=comment,
        reinstated=reinstated,
    )
    return reinstated


def reject_renewed_evidence(
    actor: User, renewal: EvidenceRenewal, reason: str, *, at: datetime | None = None
) -> None:
    """Reject renewed evidence with a reason the provider is told; the answer keeps what it had."""
    _require_assessor(actor)
    reason = _reason(reason)
    now = at or utcnow()
    check_transition(renewal, RenewalStatus.REJECTED, RENEWAL_TRANSITIONS, **DECIDING_RENEWAL)
    _decide(actor, renewal, RenewalStatus.REJECTED, reason, now)
    db.session.flush()
    audit.record(
        actor,
        "evidence.rejected",
        renewal,
        before={"status": RenewalStatus.PENDING},
        after={"status": RenewalStatus.REJECTED, "reason": reason},
    )
    answer = renewal.answer
    application = answer.application
    email_provider(
        application.organisation,
        "accreditation_evidence_rejected",
        renewal=renewal,
        criterion=answer.criterion,
        application=application,
        arrangement=application.arrangement,
        reason=reason,
        link=_renew_url(answer),
    )


def _renew_url(answer: Answer) -> str:
    return absolute_url("accreditation.renew_evidence", answer_id=answer.id)


def _lift_evidence_suspensions(
    application: Application, today: date, now: datetime
) -> list[LotMembership]:
    """Reinstate the organisation's memberships suspended for expired evidence, if no evidence
    is still outstanding; one with an overdue declaration stays suspended, for that reason."""
    suspended = [
        m
        for m in current_memberships(application.organisation_id, application.arrangement_id)
        if m.status == MembershipStatus.SUSPENDED
        and m.suspension_cause == SuspensionCause.EVIDENCE_EXPIRED
    ]
    if not suspended or evidence_outstanding(
        application.organisation_id, application.arrangement_id, today
    ):
        return []
    reinstated: list[LotMembership] = []
    for membership in suspended:
        overdue = _open_overdue_requests(membership, today)
        if overdue:
            # Still suspended, now for the declaration: answering it reinstates the member.
            before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
            membership.suspension_cause = SuspensionCause.REDECLARATION_OVERDUE
            membership.suspension_reason = (
                f"The renewed declaration asked for was due by {overdue[0].due_on.day} "
                f"{overdue[0].due_on:%B %Y} and has not been made"
            )
            db.session.flush()
            audit.record(
                None,
                "membership.suspension_cause_changed",
                membership,
                before=before,
                after=audit.snapshot(membership, MEMBERSHIP_FIELDS),
            )
            continue
        reinstate(None, membership, at=now, notify=False)
        reinstated.append(membership)
    return reinstated


def renewals_query() -> sa.Select:
    """Renewed evidence, oldest first, with what its pages and API answers show."""
    answer = selectinload(EvidenceRenewal.answer)
    application = answer.selectinload(Answer.application)
    return (
        sa.select(EvidenceRenewal)
        .options(
            selectinload(EvidenceRenewal.file),
            selectinload(EvidenceRenewal.replaces_file),
            application.selectinload(Application.organisation),
            answer.selectinload(Answer.application).selectinload(Application.arrangement),
            answer.selectinload(Answer.criterion)
            .selectinload(Criterion.lot)
            .selectinload(ArrangementLot.category),
        )
        .order_by(EvidenceRenewal.submitted_at, EvidenceRenewal.id)
    )


def pending_renewals_query() -> sa.Select:
    """Renewed evidence waiting for an assessor, oldest first."""
    return renewals_query().where(EvidenceRenewal.status == RenewalStatus.PENDING)


def count_pending_renewals() -> int:
    """How many renewals wait for an assessor (one query)."""
    return db.session.scalar(
        sa.select(sa.func.count(EvidenceRenewal.id)).where(
            EvidenceRenewal.status == RenewalStatus.PENDING
        )
    )


def latest_renewals(answer_ids: list[int]) -> dict[int, EvidenceRenewal]:
    """The latest renewal of each of these answers (for the provider's page), in one query."""
    if not answer_ids:
        return {}
    latest: dict[int, EvidenceRenewal] = {}
    for renewal in db.session.scalars(
        sa.select(EvidenceRenewal)
        .where(EvidenceRenewal.answer_id.in_(answer_ids))
        .order_by(EvidenceRenewal.submitted_at, EvidenceRenewal.id)
    ):
        latest[renewal.answer_id] = renewal
    return latest
