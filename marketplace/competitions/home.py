"""What the home page shows of evaluation and award (read-only, a query or two): competitions
to evaluate for a panel member and to award for the buyer (a bidder's assessment summaries are
in its invitations: ``queries.provider.home_invitations``)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import url_for

from marketplace.accounts.models import Organisation, Role, User
from marketplace.competitions.models import (
    Competition,
    CompetitionEvaluator,
    CompetitionStatus,
)
from marketplace.competitions.permissions import BUYER_ROLES
from marketplace.core.clock import utcnow
from marketplace.core.db import db


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
