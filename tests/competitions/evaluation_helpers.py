"""Take a factory competition from its bid deadline to each later step through the services."""

from __future__ import annotations

from datetime import datetime, timedelta

from marketplace.competitions.models import Bid
from marketplace.competitions.services import evaluation
from marketplace.competitions.services.evaluation import ModerationEntry, ScoreEntry
from marketplace.core.clock import utcnow
from marketplace.core.money import VatTreatment
from tests.competitions.factories import CompetitionWorld, add_bid, publish_directly


def closed_with_bids(
    world: CompetitionWorld,
    prices: tuple[int, ...] = (25_000, 20_000, 30_000),
    *,
    vat: tuple[VatTreatment, ...] | None = None,
    now: datetime | None = None,
) -> list[Bid]:
    """Published three weeks ago with a deadline a week ago, one bid per price, then closed."""
    now = now or utcnow()
    publish_directly(world, now=now - timedelta(days=21), bid_deadline=now - timedelta(days=7))
    bids = [
        add_bid(
            world,
            world.providers[n],
            unit_price_pence=price,
            vat_treatment=(vat[n] if vat else VatTreatment.EXEMPT),
            submitted_at=now - timedelta(days=10, minutes=n),
        )
        for n, price in enumerate(prices)
    ]
    evaluation.close_if_due(world.competition, now=now)
    return bids


def declare_all(world: CompetitionWorld) -> None:
    for user in world.evaluators:
        evaluation.declare_conflicts(user, world.competition, has_conflict=False)


def score_all(world: CompetitionWorld, bids: list[Bid], score: int = 3) -> None:
    questions = evaluation.scored_questions(world.competition)
    for user in world.evaluators:
        for bid in bids:
            evaluation.score_bid(
                user,
                world.competition,
                bid.id,
                {q.id: ScoreEntry(score, f"{user.name} reason") for q in questions},
            )


def moderate_all(
    world: CompetitionWorld,
    bids: list[Bid],
    scores: dict[int, int] | None = None,
    failed: set[int] = frozenset(),
) -> None:
    """The first evaluator moderates every bid: ``scores`` {bid id: score for every question}."""
    competition = world.competition
    for bid in bids:
        entries = {
            q.id: ModerationEntry(passed=bid.id not in failed, reason="Checked the certificate")
            for q in evaluation.pass_fail_questions(competition)
        }
        if bid.id not in failed:
            entries.update(
                {
                    q.id: ModerationEntry(score=(scores or {}).get(bid.id, 3), reason="Agreed")
                    for q in evaluation.scored_questions(competition)
                }
            )
        evaluation.moderate_bid(world.evaluators[0], competition, bid.id, entries)


def evaluated(world: CompetitionWorld, bids: list[Bid], **moderation) -> None:
    declare_all(world)
    score_all(world, bids)
    moderate_all(world, bids, **moderation)
    evaluation.finish_evaluation(world.evaluators[0], world.competition)
