"""What the home page shows of further competitions to a commissioner, in one read of what is
committed (``read_committed``, as the call-off figures are read: the home page is the busiest
page, and a transaction of its own would cost more than these counts): competitions to evaluate
for a panel member, to evaluate or award for the buyer, and clarification questions waiting for
the buyer's answer. A bidder's assessment summaries are in its invitations
(``queries.provider.home_invitations``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import url_for

from marketplace.accounts.models import Organisation, Role, User
from marketplace.competitions.models import (
    Clarification,
    Competition,
    CompetitionEvaluator,
    CompetitionStatus,
)
from marketplace.competitions.permissions import BUYER_ROLES
from marketplace.core.cache import read_committed
from marketplace.core.clock import utcnow
from marketplace.core.store import PrecompiledRead


@dataclass(frozen=True)
class HomeItem:
    title: str
    body: str
    href: str
    link_text: str
    count: int | None = None
    more_links: tuple[tuple[str, str], ...] = ()


def commissioner_counts_columns() -> list:
    """The three counts of ``CommissionerCounts``, as uncorrelated scalar subqueries: read
    alone (``commissioner_counts``) or beside the call-off figures in the home page's one read."""
    organisation_id = sa.bindparam("organisation_id")
    # Bids have closed: closed or evaluated, or published with its deadline passed (closed by
    # the first evaluation page opened). No IN list: a precompiled read takes none.
    in_evaluation = sa.or_(
        Competition.status == CompetitionStatus.CLOSED,
        Competition.status == CompetitionStatus.EVALUATED,
        sa.and_(
            Competition.status == CompetitionStatus.PUBLISHED,
            Competition.bid_deadline <= sa.bindparam("now"),
        ),
    )
    on_panel = Competition.id.in_(
        sa.select(CompetitionEvaluator.competition_id).where(
            CompetitionEvaluator.user_id == sa.bindparam("user_id"),
            CompetitionEvaluator.organisation_id == organisation_id,
        )
    )
    count = sa.select(sa.func.count(Competition.id)).where(in_evaluation)
    return [
        count.where(on_panel).scalar_subquery(),
        count.where(Competition.buyer_id == organisation_id).scalar_subquery(),
        sa.select(sa.func.count(Clarification.id))
        .join(Competition, Competition.id == Clarification.competition_id)
        .where(
            Competition.buyer_id == organisation_id,
            Competition.status == CompetitionStatus.PUBLISHED,
            Clarification.answered_at.is_(None),
        )
        .scalar_subquery(),
    ]


_COMMISSIONER_COUNTS = PrecompiledRead(sa.select(*commissioner_counts_columns()))


@dataclass(frozen=True)
class CommissionerCounts:
    on_panel: int  # competitions past their bid deadline on whose panel the person sits
    running: int  # … run by the organisation, waiting for evaluation or award
    questions: int  # clarification questions waiting for the organisation's answer

    @classmethod
    def from_row(cls, values) -> CommissionerCounts:
        return cls(*(int(value or 0) for value in values))


def commissioner_counts(
    user_id: int, organisation_id: int, now: datetime | None = None
) -> CommissionerCounts:
    row = read_committed(
        _COMMISSIONER_COUNTS,
        organisation_id=organisation_id,
        user_id=user_id,
        now=now or utcnow(),
    )
    return CommissionerCounts.from_row(row)


def home_items(
    user: User,
    organisation: Organisation,
    roles: set[Role],
    counts: CommissionerCounts | None = None,
) -> list[HomeItem]:
    """Evaluators are from the buying organisations and act for the one that named them.
    ``counts``: read already with the call-off figures (else read here)."""
    if not organisation.type.is_commissioner:
        return []
    counts = counts or commissioner_counts(user.id, organisation.id)
    buyer = bool(roles & BUYER_ROLES)
    items = []
    panel, running = counts.on_panel, counts.running if buyer else 0
    if panel or running:
        parts = []
        if panel:
            parts.append(f"{panel} on your evaluation panel")
        if running:
            parts.append(f"{running} run by your organisation waiting for evaluation or award")
        items.append(
            HomeItem(
                "Competitions to evaluate",
                "Further competitions whose bids have closed: " + "; ".join(parts) + ".",
                url_for("competitions.evaluation_home"),
                "Go to competitions to evaluate",
                panel + running,
            )
        )
    if buyer and counts.questions:
        waiting = counts.questions
        items.append(
            HomeItem(
                "Clarification questions to answer",
                f"{waiting} question{'s' if waiting != 1 else ''} from invited providers in your "
                "further competitions. Each answer is published to every invited provider.",
                url_for("competitions.questions_to_answer"),
                "Answer questions",
                waiting,
            )
        )
    return items
