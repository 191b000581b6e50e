"""Read-only queries for assessors: the queue of applications awaiting a decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import sqlalchemy as sa
from sqlalchemy.orm import contains_eager, selectinload

from marketplace.accreditation.models import (
    Application,
    ApplicationLot,
    ApplicationStatus,
    ArrangementLot,
)
from marketplace.core.clock import london_date, utcnow, working_days_between
from marketplace.core.db import db

QUEUE_STATUSES = (ApplicationStatus.SUBMITTED, ApplicationStatus.UNDER_ASSESSMENT)


@dataclass(frozen=True)
class QueueEntry:
    application: Application
    days_left: int  # working days to the deadline; negative once it has passed
    # A further competition for one of its lots and areas waits on it (``prioritised_until``).
    prioritised: bool = False

    @property
    def breached(self) -> bool:
        return self.days_left < 0

    @property
    def due_today(self) -> bool:
        return self.days_left == 0


def count_assessment_queue() -> int:
    """How many applications are in the queue (one SQL query)."""
    return db.session.scalar(
        sa.select(sa.func.count(Application.id)).where(Application.status.in_(QUEUE_STATUSES))
    )


def assessment_queue(
    today: date | None = None, limit: int | None = None, offset: int = 0
) -> list[QueueEntry]:
    """Submitted and under-assessment applications, soonest deadline first (three SQL queries).

    ``limit`` and ``offset`` select one page in SQL, so a page loads only its own rows.
    """
    today = today or london_date()
    now = utcnow()
    query = (
        sa.select(Application)
        .join(Application.organisation)
        .join(Application.arrangement)
        .where(Application.status.in_(QUEUE_STATUSES))
        .options(
            contains_eager(Application.organisation),
            contains_eager(Application.arrangement),
            selectinload(Application.lots)
            .selectinload(ApplicationLot.lot)
            .selectinload(ArrangementLot.category),
        )
        .order_by(
            # Applications a further competition is waiting on come first (``prioritised_until``,
            # while it is in the future), then the soonest deadline.
            sa.case((Application.prioritised_until > now, 0), else_=1),
            Application.decision_due_on,
            Application.submitted_at,
            Application.id,
        )
    )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [
        QueueEntry(
            application,
            working_days_between(today, application.decision_due_on),
            application.prioritised_until is not None and application.prioritised_until > now,
        )
        for application in db.session.scalars(query).unique()
    ]


__all__ = ["QueueEntry", "assessment_queue", "count_assessment_queue"]
