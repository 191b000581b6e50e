"""What the home page shows of evaluation and award (read-only, a query or two): competitions
to evaluate for a panel member, to award for the buyer, and a bidder's assessment summaries."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import url_for

from marketplace.accounts.models import Organisation, Role, User
from marketplace.competitions.models import (
    AssessmentSummary,
    Bid,
    Competition,
    CompetitionEvaluator,
    CompetitionStatus,
)
from marketplace.competitions.permissions import BUYER_ROLES, PROVIDER_ROLES
from marketplace.core.clock import utcnow
from marketplace.core.db import db

SUMMARIES_SHOWN = 3


@dataclass(frozen=True)
class HomeItem:
    title: str
    body: str
    href: str
    link_text: str
    count: int | None = None
    more_links: tuple[tuple[str, str], ...] = ()


def home_items(user: User, organisation: Organisation, roles: set[Role]) -> list[HomeItem]:
    items: list[HomeItem] = []
    # Evaluators are from the buying organisations and act for the one that named them; a
    # provider's home page asks only for its assessment summaries (one query either way).
    if organisation.type.is_commissioner:
        item = _to_evaluate(user, organisation, roles)
        if item is not None:
            items.append(item)
    if roles & PROVIDER_ROLES:
        summaries = db.session.execute(
            sa.select(Competition.id, Competition.reference, Competition.title)
            .join(AssessmentSummary, AssessmentSummary.competition_id == Competition.id)
            .join(Bid, Bid.id == AssessmentSummary.bid_id)
            .where(Bid.organisation_id == organisation.id)
            .order_by(AssessmentSummary.created_at.desc(), AssessmentSummary.id.desc())
            .limit(SUMMARIES_SHOWN)
        ).all()
        if summaries:
            first, *rest = summaries
            items.append(
                HomeItem(
                    "Assessment summaries",
                    "The results of further competitions you bid in: your scores and reasons, "
                    "and the winning bid's scores.",
                    url_for("competitions.assessment_summary", competition_id=first.id),
                    f"Your assessment summary for {first.reference}",
                    more_links=tuple(
                        (
                            f"Your assessment summary for {row.reference}",
                            url_for("competitions.assessment_summary", competition_id=row.id),
                        )
                        for row in rest
                    ),
                )
            )
    return items


def _to_evaluate(user: User, organisation: Organisation, roles: set[Role]) -> HomeItem | None:
    in_evaluation = sa.or_(
        Competition.status.in_([CompetitionStatus.CLOSED, CompetitionStatus.EVALUATED]),
        sa.and_(
            Competition.status == CompetitionStatus.PUBLISHED,
            Competition.bid_deadline <= utcnow(),
        ),
    )
    on_panel = Competition.id.in_(
        sa.select(CompetitionEvaluator.competition_id).where(
            CompetitionEvaluator.user_id == user.id,
            CompetitionEvaluator.organisation_id == organisation.id,
        )
    )
    runs = Competition.buyer_id == organisation.id if roles & BUYER_ROLES else sa.false()
    rows = db.session.execute(
        sa.select(on_panel.label("panel"), runs.label("runs")).where(
            in_evaluation, sa.or_(on_panel, runs)
        )
    ).all()
    panel = sum(bool(r.panel) for r in rows)
    running = sum(bool(r.runs) for r in rows)
    if panel or running:
        parts = []
        if panel:
            parts.append(f"{panel} on your evaluation panel")
        if running:
            parts.append(f"{running} run by your organisation waiting for evaluation or award")
        return HomeItem(
            "Competitions to evaluate",
            "Further competitions whose bids have closed: " + "; ".join(parts) + ".",
            url_for("competitions.evaluation_home"),
            "Go to competitions to evaluate",
            panel + running,
        )
    return None
