"""Membership use cases: suspend, reinstate, remove, renewed declarations and evidence expiry.

``check_expiry`` runs daily from ``flask accreditation check-expiry``; it is safe to run again the
same day: reminders are sent once (the audit log records each one) and only active memberships
are suspended.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import selectinload

from marketplace import audit
from marketplace.accounts.models import User
from marketplace.accreditation.models import (
    DEFAULT_REDECLARATION_DAYS,
    MEMBERSHIP_TRANSITIONS,
    REASON_MAX,
    Answer,
    AnswerOutcome,
    Application,
    ApplicationStatus,
    ArrangementLot,
    Criterion,
    EvidenceFile,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
    RemovalReason,
    SuspensionCause,
)
from marketplace.accreditation.permissions import can_apply, can_assess, can_manage_memberships
from marketplace.accreditation.services.applications import (
    assessors,
    email_provider,
    london_date,
)
from marketplace.audit import AuditEvent
from marketplace.db import db, utcnow
from marketplace.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.notifications.services import queue_email
from marketplace.validation import check_date_horizon
from marketplace.workdays import add_working_days

MEMBERSHIP_FIELDS = [
    "status",
    "suspended_at",
    "suspension_cause",
    "suspension_reason",
    "removed_at",
    "removal_reason",
    "removal_details",
]
REMINDER_DAYS = (30, 7)


def _require_manager(actor: User | None) -> None:
    # ``None`` is the system itself (the daily expiry run).
    if actor is not None and not can_manage_memberships(actor):
        raise PermissionDenied("Only the authority can change memberships")


def _move(membership: LotMembership, new_status: MembershipStatus) -> None:
    if new_status not in MEMBERSHIP_TRANSITIONS[membership.status]:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This membership is {membership.status.value}, "
                    f"so it cannot become {new_status.value}"
                ]
            }
        )
    membership.status = new_status


def _reason(reason: str, field_name: str = "reason") -> str:
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({field_name: ["Give the reason"]})
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
    reason = _reason(reason)
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    _move(membership, MembershipStatus.SUSPENDED)
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
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    _move(membership, MembershipStatus.ACTIVE)
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
    details = _reason(details, "details")
    before = audit.snapshot(membership, MEMBERSHIP_FIELDS)
    _move(membership, MembershipStatus.REMOVED)
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
        reason_label=reason_code.value.replace("_", " "),
        details=details,
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
    reason = _reason(reason)
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


# ---------------------------------------------------------------------------------------------
# Expiring evidence


def _evidence_answers(organisation_id: int | None = None) -> list[Answer]:
    """Answers with expiring evidence on admitted applications, one per organisation and criterion.

    Where an organisation has answered the same criterion more than once, the latest expiry wins.
    """
    query = (
        sa.select(Answer)
        .join(Application, Application.id == Answer.application_id)
        .where(
            Answer.evidence_expires_on.is_not(None),
            Application.status == ApplicationStatus.ADMITTED,
        )
        .options(
            selectinload(Answer.application).selectinload(Application.organisation),
            selectinload(Answer.criterion).selectinload(Criterion.lot),
        )
        .order_by(Answer.id)
    )
    if organisation_id is not None:
        query = query.where(Application.organisation_id == organisation_id)
    latest: dict[tuple[int, int], Answer] = {}
    for row in db.session.scalars(query):
        key = (row.application.organisation_id, row.criterion_id)
        if key not in latest or row.evidence_expires_on > latest[key].evidence_expires_on:
            latest[key] = row
    return list(latest.values())


def _reminder_sent(action: str, key: str) -> bool:
    return (
        db.session.scalar(
            sa.select(AuditEvent.id)
            .where(
                AuditEvent.action == action,
                AuditEvent.object_type == "answer",
                AuditEvent.object_id == key,
            )
            .limit(1)
        )
        is not None
    )


def _current_memberships(organisation_id: int, arrangement_id: int) -> list[LotMembership]:
    return list(
        db.session.scalars(
            sa.select(LotMembership)
            .where(
                LotMembership.organisation_id == organisation_id,
                LotMembership.arrangement_id == arrangement_id,
                LotMembership.status != MembershipStatus.REMOVED,
            )
            .order_by(LotMembership.id)
        )
    )


@dataclass
class ExpiryRun:
    """What one run of ``check_expiry`` did."""

    reminders: int = 0
    suspended_for_evidence: int = 0
    suspended_for_redeclaration: int = 0
    suspended_ids: list[int] = field(default_factory=list)


def check_expiry(today: date | None = None, *, at: datetime | None = None) -> ExpiryRun:
    """Send evidence reminders, and suspend members whose evidence or declaration is overdue."""
    today = today or london_date(at)
    now = at or utcnow()
    run = ExpiryRun()

    for row in _evidence_answers():
        application = row.application
        memberships = _current_memberships(application.organisation_id, application.arrangement_id)
        if not memberships:
            continue
        days_left = (row.evidence_expires_on - today).days
        key = f"{row.id}@{row.evidence_expires_on.isoformat()}"
        if days_left <= 0:
            active = [m for m in memberships if m.status == MembershipStatus.ACTIVE]
            if not active:
                continue
            reason = (
                f"The evidence for “{row.criterion.question}” expired on "
                f"{row.evidence_expires_on.day} {row.evidence_expires_on:%B %Y}"
            )
            for membership in active:
                suspend(
                    None,
                    membership,
                    reason,
                    SuspensionCause.EVIDENCE_EXPIRED,
                    at=now,
                    notify=False,
                )
                run.suspended_for_evidence += 1
                run.suspended_ids.append(membership.id)
            email_provider(
                application.organisation,
                "accreditation_evidence_expired",
                answer=row,
                criterion=row.criterion,
                application=application,
                arrangement=application.arrangement,
                memberships=active,
            )
            continue
        for days in REMINDER_DAYS:
            # The nearest window applies: a 7-day reminder replaces a 30-day one not yet sent.
            if days_left > days or (days == 30 and days_left <= 7):
                continue
            action = f"evidence.reminder_{days}"
            if _reminder_sent(action, key):
                continue
            email_provider(
                application.organisation,
                "accreditation_evidence_reminder",
                answer=row,
                criterion=row.criterion,
                application=application,
                arrangement=application.arrangement,
                days_left=days_left,
            )
            audit.record(
                None,
                action,
                object_type="answer",
                object_id=key,
                organisation=application.organisation,
                after={"expires_on": row.evidence_expires_on, "days_left": days_left},
            )
            run.reminders += 1

    overdue = db.session.scalars(
        sa.select(RedeclarationRequest)
        .join(LotMembership, LotMembership.id == RedeclarationRequest.membership_id)
        .where(
            RedeclarationRequest.answered_at.is_(None),
            RedeclarationRequest.due_on < today,
            LotMembership.status == MembershipStatus.ACTIVE,
        )
        .order_by(RedeclarationRequest.id)
    ).all()
    for request in overdue:
        membership = request.membership
        if membership.status != MembershipStatus.ACTIVE:
            continue  # several overdue requests for one membership
        suspend(
            None,
            membership,
            f"The renewed declaration asked for was due by "
            f"{request.due_on.day} {request.due_on:%B %Y} and has not been made",
            SuspensionCause.REDECLARATION_OVERDUE,
            at=now,
        )
        run.suspended_for_redeclaration += 1
        run.suspended_ids.append(membership.id)
    db.session.flush()
    return run


def renew_evidence(
    actor: User,
    answer: Answer,
    evidence_file: EvidenceFile,
    expires_on: date,
    *,
    at: datetime | None = None,
) -> None:
    """The provider uploads renewed evidence; it counts once the authority accepts it."""
    application = answer.application
    if not can_apply(actor, application.organisation):
        raise NotFound("Answer not found")
    if not answer.criterion.evidence_expires:
        raise BusinessRuleViolation({"answer": ["This evidence does not expire"]})
    if application.status != ApplicationStatus.ADMITTED:
        raise BusinessRuleViolation({"answer": ["Only evidence of an admission can be renewed"]})
    if evidence_file.organisation_id != application.organisation_id:
        raise BusinessRuleViolation({"file": ["Upload the renewed evidence"]})
    if not isinstance(expires_on, date) or expires_on <= london_date(at):
        raise BusinessRuleViolation({"expires_on": ["Enter an expiry date in the future"]})
    check_date_horizon("expires_on", expires_on, "The expiry date", today=london_date(at))
    before = {
        "file_id": answer.file_id,
        "evidence_expires_on": answer.evidence_expires_on,
        "outcome": answer.outcome,
    }
    answer.file_id = evidence_file.id
    answer.evidence_expires_on = expires_on
    # Awaiting acceptance: no mark until an assessor accepts it.
    answer.outcome = None
    answer.assessed_at = None
    answer.assessed_by_id = None
    answer.assessor_comment = ""
    db.session.flush()
    audit.record(
        actor,
        "evidence.renewed",
        application,
        before=before,
        after={
            "answer_id": answer.id,
            "file_id": evidence_file.id,
            "evidence_expires_on": expires_on,
        },
    )
    for user in assessors():
        queue_email(
            user.email,
            "accreditation_evidence_renewed",
            user=user,
            application=application,
            organisation=application.organisation,
            criterion=answer.criterion,
            expires_on=expires_on,
        )


def accept_renewed_evidence(
    actor: User, answer: Answer, comment: str = "", *, at: datetime | None = None
) -> list[LotMembership]:
    """Accept renewed evidence; memberships suspended for expiry return when nothing else is due."""
    if not can_assess(actor):
        raise PermissionDenied("Only assessors and the authority can accept evidence")
    application = answer.application
    if answer.outcome is not None or answer.evidence_expires_on is None:
        raise BusinessRuleViolation({"answer": ["There is no renewed evidence waiting"]})
    today = london_date(at)
    if answer.evidence_expires_on <= today:
        raise BusinessRuleViolation({"answer": ["This evidence has already expired"]})
    answer.outcome = AnswerOutcome.PASS
    answer.assessor_comment = (comment or "").strip()
    answer.assessed_at = at or utcnow()
    answer.assessed_by_id = actor.id
    db.session.flush()
    audit.record(
        actor,
        "evidence.accepted",
        application,
        after={"answer_id": answer.id, "evidence_expires_on": answer.evidence_expires_on},
    )
    reinstated: list[LotMembership] = []
    for membership in _current_memberships(application.organisation_id, application.arrangement_id):
        if (
            membership.status != MembershipStatus.SUSPENDED
            or membership.suspension_cause != SuspensionCause.EVIDENCE_EXPIRED
        ):
            continue
        if _evidence_outstanding(application.organisation_id, application.arrangement_id, today):
            break
        reinstate(None, membership, at=at, notify=False)
        reinstated.append(membership)
    if reinstated:
        email_provider(
            application.organisation,
            "accreditation_membership_reinstated",
            memberships=reinstated,
            arrangement=application.arrangement,
        )
    return reinstated


def _evidence_outstanding(organisation_id: int, arrangement_id: int, today: date) -> bool:
    """Whether any expiring evidence of the organisation is expired or awaits acceptance."""
    for row in _evidence_answers(organisation_id):
        if row.application.arrangement_id != arrangement_id:
            continue
        if row.evidence_expires_on <= today:
            return True
        awaiting = row.outcome is None and row.criterion.mandatory and row.criterion.pass_fail
        if awaiting or row.outcome == AnswerOutcome.FAIL:
            return True
    return False


def expiring_within(organisation_id: int, today: date, days: int = 30) -> list[Answer]:
    """The organisation's evidence that expires within ``days`` (for its accreditation page)."""
    horizon = today + timedelta(days=days)
    return sorted(
        (row for row in _evidence_answers(organisation_id) if row.evidence_expires_on <= horizon),
        key=lambda row: row.evidence_expires_on,
    )
