"""The arithmetic of a ranking, pure: price by the published formula, quality and social value
from the moderated scores, and the figures shown in hundredths of a point.

Every figure is computed exactly (``Fraction``) and the bids are ranked on those exact values;
what is shown is rounded once, per figure, so that the shown parts (price and each scored
question) sum to the shown total exactly (largest remainder, as pence are split).

Price is compared on the gross price (VAT included): it is what the funders' budgets are
charged by the call-off the award becomes, so a VAT-exempt charity's bid and a standard-rated
company's bid are compared on what each would actually cost; comparing net prices would favour
the bid that costs the funders 20% more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

from marketplace.competitions.models import (
    SCORE_SCALE,
    CompetitionQuestion,
    PriceFormula,
    QuestionKind,
    TieBreak,
)
from marketplace.core.money import round_half_up


@dataclass(frozen=True)
class BidFigures:
    """What a bid brings to the ranking: its key, gross price and when it was submitted."""

    bid_id: int
    gross_pence: int
    submitted_at: datetime


@dataclass
class BidResult:
    bid_id: int
    price: Fraction  # points, exact
    by_question: dict[int, Fraction]  # question id -> weighted points, exact
    quality: Fraction
    social_value: Fraction
    total: Fraction
    rank: int = 0
    # Shown figures, in hundredths of a point (SCORE_SCALE), summing exactly.
    shown_price: int = 0
    shown_by_question: dict[int, int] = field(default_factory=dict)
    shown_quality: int = 0
    shown_social_value: int = 0
    shown_total: int = 0


def price_points(
    formula: PriceFormula, weight: int, gross_pence: int, lowest_pence: int
) -> Fraction:
    """Lowest price ÷ this price × the price weight (a free bid takes the whole weight, and
    against a free bid every priced bid scores nothing)."""
    if formula is not PriceFormula.LOWEST_OVER_PRICE:  # pragma: no cover - the one formula
        raise ValueError(f"unknown price formula {formula}")
    if gross_pence == 0:
        return Fraction(weight)
    return Fraction(lowest_pence, gross_pence) * weight


def question_points(question: CompetitionQuestion, moderated: int) -> Fraction:
    """Moderated score ÷ the question's maximum score × its weight."""
    return Fraction(moderated, question.max_score) * question.weight


def shown_parts(parts: Sequence[Fraction]) -> tuple[list[int], int]:
    """Each part and their total in hundredths, the total rounded half up once and the parts
    rounded down, then the shortfall given to the largest remainders (earlier first on ties),
    so that the shown parts sum to the shown total."""
    scaled = [p * SCORE_SCALE for p in parts]
    total = round_half_up(sum(scaled, Fraction(0)))
    floors = [int(s) for s in scaled]  # parts are never negative: int() is floor
    short = total - sum(floors)
    order = sorted(range(len(parts)), key=lambda i: (-(scaled[i] - floors[i]), i))
    for index in order[:short]:
        floors[index] += 1
    return floors, total


def rank(
    *,
    formula: PriceFormula,
    price_weight: int,
    tie_break: TieBreak,
    questions: Sequence[CompetitionQuestion],
    bids: Sequence[BidFigures],
    moderated: Mapping[tuple[int, int], int],
) -> list[BidResult]:
    """Score and rank ``bids`` (those still in the running) from ``moderated`` ({(bid id,
    question id): agreed score}); best first, with ranks 1, 2, 3… (the tie-break leaves no
    ties: then the earlier submitted bid, then the lower key)."""
    scored = [q for q in questions if q.kind.scored]
    if not bids:
        return []
    lowest = min(b.gross_pence for b in bids)
    results = []
    gross = {}
    for bid in bids:
        gross[bid.bid_id] = bid.gross_pence
        by_question = {q.id: question_points(q, moderated[(bid.bid_id, q.id)]) for q in scored}
        price = price_points(formula, price_weight, bid.gross_pence, lowest)
        quality = sum(
            (v for q in scored if q.kind is QuestionKind.QUALITY for v in [by_question[q.id]]),
            Fraction(0),
        )
        social = sum(
            (v for q in scored if q.kind is QuestionKind.SOCIAL_VALUE for v in [by_question[q.id]]),
            Fraction(0),
        )
        result = BidResult(
            bid_id=bid.bid_id,
            price=price,
            by_question=by_question,
            quality=quality,
            social_value=social,
            total=price + quality + social,
        )
        shown, result.shown_total = shown_parts([price, *(by_question[q.id] for q in scored)])
        result.shown_price = shown[0]
        result.shown_by_question = {q.id: s for q, s in zip(scored, shown[1:], strict=True)}
        result.shown_quality = sum(
            result.shown_by_question[q.id] for q in scored if q.kind is QuestionKind.QUALITY
        )
        result.shown_social_value = sum(
            result.shown_by_question[q.id] for q in scored if q.kind is QuestionKind.SOCIAL_VALUE
        )
        results.append(result)
    submitted = {b.bid_id: b.submitted_at for b in bids}

    def key(result: BidResult):
        non_price = result.quality + result.social_value
        if tie_break is TieBreak.QUALITY_THEN_PRICE:
            then = (-non_price, gross[result.bid_id])
        else:
            then = (gross[result.bid_id], -non_price)
        return (-result.total, *then, submitted[result.bid_id], result.bid_id)

    results.sort(key=key)
    for position, result in enumerate(results, start=1):
        result.rank = position
    return results


def points(hundredths: int | None) -> str:
    """A shown score in points: 4250 -> "42.50"."""
    if hundredths is None:
        return ""
    whole, part = divmod(hundredths, SCORE_SCALE)
    return f"{whole}.{part:02d}"
