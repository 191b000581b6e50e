"""Clarification questions: an invited provider asks before the clarification deadline; the lead
buyer answers; each answer is published to every invited provider without the asker's name."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.services.common import email_people
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    CLARIFICATION_MAX,
    Clarification,
    Competition,
    CompetitionStatus,
    InvitedProvider,
)
from marketplace.competitions.services.common import require_invited, require_open_until
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.state import lock


def _text(value: str | None, field: str, empty: str) -> str:
    text = (value or "").strip()
    if not text:
        raise BusinessRuleViolation({field: [empty]})
    if len(text) > CLARIFICATION_MAX:
        raise BusinessRuleViolation({field: [f"Use {CLARIFICATION_MAX:,} characters or fewer"]})
    return text


def ask_clarification(
    actor: User,
    organisation: Organisation | None,
    competition: Competition,
    question: str | None,
    *,
    now: datetime | None = None,
) -> Clarification:
    """An invited provider asks a question before the clarification deadline."""
    now = now or utcnow()
    require_invited(actor, organisation, competition)
    require_open_until(
        competition,
        competition.clarification_deadline or competition.bid_deadline,
        now,
        "questions can no longer be asked",
    )
    text = _text(question, "question", "Enter your question")
    clarification = Clarification(
        competition=competition,
        asked_by_organisation_id=organisation.id,
        asked_by_id=actor.id,
        question=text,
        asked_at=now,
    )
    db.session.add(clarification)
    audit.record(
        actor,
        "clarification.asked",
        clarification,
        object_type="clarification",
        organisation=organisation,
        after={"competition_id": competition.id, "question": text},
    )
    email_people(
        competition.buyer_id,
        [Role.BUYER, Role.APPROVER],
        "competitions_clarification_asked",
        competition=competition,
    )
    return clarification


def answer_clarification(
    actor: User,
    organisation: Organisation | None,
    clarification: Clarification,
    answer: str | None,
    *,
    now: datetime | None = None,
) -> Clarification:
    """The lead buyer answers; the answer goes to every invited provider, without the asker."""
    competition = clarification.competition
    if not permissions.can_manage(actor, organisation, competition):
        raise NotFound("Question not found")
    text = _text(answer, "answer", "Enter your answer")
    now = now or utcnow()
    # Locked so that two answers at once publish one (the second is told it is answered).
    lock(clarification)
    if clarification.answered_at is not None:
        raise TransitionConflict({"answer": ["This question has already been answered"]})
    if competition.status is not CompetitionStatus.PUBLISHED:
        raise BusinessRuleViolation(
            {
                "answer": [
                    f"This competition is {competition.status.label.lower()}: "
                    "questions can no longer be answered"
                ]
            }
        )
    clarification.answer, clarification.answered_at = text, now
    clarification.answered_by_id = actor.id
    audit.record(
        actor,
        "clarification.answered",
        clarification,
        object_type="clarification",
        organisation=competition.buyer,
        after={"competition_id": competition.id, "answer": text},
    )
    invited = db.session.scalars(
        sa.select(InvitedProvider.organisation_id)
        .where(InvitedProvider.competition_id == competition.id)
        .order_by(InvitedProvider.organisation_id)
    )
    # The same words to everyone invited (the asker too): never who asked.
    for organisation_id in invited:
        email_people(
            organisation_id,
            [Role.PROVIDER_ADMIN],
            "competitions_clarification_answered",
            competition=competition,
            question=clarification.question,
            answer=text,
        )
    return clarification


def published_answers(competition: Competition) -> list[Clarification]:
    """The answered questions, as every invited provider reads them (oldest answer first)."""
    return list(
        db.session.scalars(
            sa.select(Clarification)
            .where(
                Clarification.competition_id == competition.id,
                Clarification.answered_at.is_not(None),
            )
            .order_by(Clarification.answered_at, Clarification.id)
        )
    )


def questions_for_buyer(competition: Competition) -> list[Clarification]:
    """Every question with who asked, unanswered first (for the buyer, funders, panel and
    authority: ``permissions.can_oversee``)."""
    return list(
        db.session.scalars(
            sa.select(Clarification)
            .options(sa.orm.selectinload(Clarification.asked_by_organisation))
            .where(Clarification.competition_id == competition.id)
            .order_by(Clarification.answered_at.is_not(None), Clarification.asked_at)
        )
    )


def unanswered_for_buyer(organisation_id: int) -> list[Clarification]:
    """Questions waiting for an answer in the organisation's published competitions."""
    return list(
        db.session.scalars(
            sa.select(Clarification)
            .join(Competition, Competition.id == Clarification.competition_id)
            .options(
                sa.orm.contains_eager(Clarification.competition),
                sa.orm.selectinload(Clarification.asked_by_organisation),
            )
            .where(
                Competition.buyer_id == organisation_id,
                Competition.status == CompetitionStatus.PUBLISHED,
                Clarification.answered_at.is_(None),
            )
            .order_by(Clarification.asked_at)
        )
    )
