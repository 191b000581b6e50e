"""The daily expiry check: reminders of evidence about to expire, and suspension of members
whose evidence has expired or whose renewed declaration is overdue.

``check_expiry`` runs daily (the scheduler, and ``flask accreditation check-expiry``); it is safe
to run again the same day: reminders are sent once (the audit log records each one) and only
active memberships are suspended.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa

from marketplace.accreditation.models import (
    Answer,
    EvidenceRenewal,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
    RenewalStatus,
    SuspensionCause,
)
from marketplace.accreditation.services.applications import email_provider
from marketplace.accreditation.services.evidence import current_memberships, evidence_answers
from marketplace.accreditation.services.memberships import suspend
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db

REMINDER_DAYS = (30, 7)


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

    # Only accepted evidence counts (the answer's): a renewal waiting to be checked does not stop
    # a suspension, though it does stop reminders to upload what has been uploaded.
    waiting = set(
        db.session.scalars(
            sa.select(EvidenceRenewal.answer_id).where(
                EvidenceRenewal.status == RenewalStatus.PENDING
            )
        )
    )
    for row in evidence_answers():
        application = row.application
        memberships = current_memberships(application.organisation_id, application.arrangement_id)
        if not memberships:
            continue
        if (row.evidence_expires_on - today).days <= 0:
            _suspend_for_expired_evidence(row, memberships, row.id in waiting, now, run)
        elif row.id not in waiting:
            _remind(row, today, run)
    _suspend_for_overdue_declarations(today, now, run)
    db.session.flush()
    return run


def _suspend_for_expired_evidence(
    row: Answer,
    memberships: list[LotMembership],
    renewal_waiting: bool,
    now: datetime,
    run: ExpiryRun,
) -> None:
    """Suspend the organisation's active memberships, and tell it once for them all."""
    active = [m for m in memberships if m.status == MembershipStatus.ACTIVE]
    if not active:
        return
    application = row.application
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
        renewal_waiting=renewal_waiting,
    )


def _remind(row: Answer, today: date, run: ExpiryRun) -> None:
    """The reminder of the window the evidence's expiry is in, once (the audit records it)."""
    application = row.application
    days_left = (row.evidence_expires_on - today).days
    key = f"{row.id}@{row.evidence_expires_on.isoformat()}"
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


def _suspend_for_overdue_declarations(today: date, now: datetime, run: ExpiryRun) -> None:
    """Suspend each active member whose renewed declaration was due before ``today``."""
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
