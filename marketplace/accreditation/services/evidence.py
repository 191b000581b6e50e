"""Expiring evidence: the latest answer with expiring evidence per organisation and criterion,
which of it is outstanding, and what expires soon. Only the answer counts (accepted evidence): a
renewal still waiting for an assessor does not."""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    Application,
    ApplicationStatus,
    Criterion,
    LotMembership,
    MembershipStatus,
)
from marketplace.core.db import db


def evidence_answers(organisation_id: int | None = None) -> list[Answer]:
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


def current_memberships(organisation_id: int, arrangement_id: int) -> list[LotMembership]:
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


def evidence_outstanding(organisation_id: int, arrangement_id: int, today: date) -> bool:
    """Whether any expiring evidence of the organisation is expired, unmarked or failed.

    Only the answer counts: a renewal still waiting for an assessor does not.
    """
    for row in evidence_answers(organisation_id):
        if row.application.arrangement_id != arrangement_id:
            continue
        if row.evidence_expires_on <= today:
            return True
        awaiting = row.outcome is None and row.criterion.mandatory and row.criterion.pass_fail
        if awaiting or row.outcome == AnswerOutcome.FAIL:
            return True
    return False


# How far ahead a provider is warned of evidence that expires (its accreditation and home pages).
EXPIRY_WARNING_DAYS = 30


def expiring_within(
    organisation_id: int, today: date, days: int = EXPIRY_WARNING_DAYS
) -> list[Answer]:
    """The organisation's evidence that expires within ``days`` (for its accreditation page)."""
    horizon = today + timedelta(days=days)
    return sorted(
        (row for row in evidence_answers(organisation_id) if row.evidence_expires_on <= horizon),
        key=lambda row: row.evidence_expires_on,
    )
