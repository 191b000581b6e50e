"""Closing, declarations, individual scoring, moderation and ranking, through the services."""

from datetime import timedelta
from fractions import Fraction

import pytest
import sqlalchemy as sa

from marketplace.competitions.models import (
    BidStatus,
    CompetitionStatus,
    EvaluatorScore,
    QuestionKind,
    TieBreak,
)
from marketplace.competitions.services import evaluation, scoring
from marketplace.competitions.services.evaluation import ScoreEntry
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.money import VatTreatment
from marketplace.core.notifications.models import Notification
from tests.competitions.evaluation_helpers import (
    closed_with_bids,
    declare_all,
    evaluated,
    moderate_all,
    score_all,
)
from tests.competitions.factories import add_bid, build_competition_world, publish_directly


def _templates(name):
    return db.session.scalars(
        sa.select(Notification.to_email).where(Notification.template == name)
    ).all()


def test_closing_counts_invited_submitted_bids_only_and_tells_the_buyer_and_panel(app):
    world = build_competition_world(members=3)
    now = utcnow()
    publish_directly(world, now=now - timedelta(days=20), bid_deadline=now - timedelta(hours=1))
    add_bid(world, world.providers[0], submitted_at=now - timedelta(days=2))  # a VCSE
    add_bid(world, world.providers[1], submitted_at=now - timedelta(days=2))  # private: SME
    add_bid(world, world.providers[2], status=BidStatus.DRAFT)
    stranger = add_bid(world, world.outsider, submitted_at=now - timedelta(days=2))
    competition = world.competition
    assert evaluation.close_if_due(competition, now=now - timedelta(hours=2)) is False
    assert competition.status is CompetitionStatus.PUBLISHED
    assert evaluation.close_if_due(competition, now=now) is True
    assert evaluation.close_if_due(competition, now=now) is False  # once
    assert competition.status is CompetitionStatus.CLOSED
    assert (competition.bids_received, competition.bids_from_vcse, competition.bids_from_sme) == (
        2,
        1,
        2,
    )
    assert stranger.status is BidStatus.EXCLUDED and "not invited" in stranger.exclusion_reason
    recipients = set(_templates("competitions_closed"))
    assert {world.buyer.email, world.approver.email} | {u.email for u in world.evaluators} <= (
        recipients
    )
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).where(AuditEvent.action == "competition.closed")
        )
        == 1
    )


def test_the_scheduled_job_closes_what_is_due(app):
    from marketplace.competitions.jobs import close_competitions

    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now - timedelta(days=20), bid_deadline=now - timedelta(minutes=1))
    assert close_competitions(now) == {"competitions closed": 1}
    assert close_competitions(now) == {"competitions closed": 0}


def test_scoring_before_declaring_is_refused_and_writes_nothing(app):
    world = build_competition_world()
    bids = closed_with_bids(world)
    question = evaluation.scored_questions(world.competition)[0]
    with pytest.raises(BusinessRuleViolation, match="Declare whether you have a conflict"):
        evaluation.score_bid(
            world.evaluators[0], world.competition, bids[0].id, {question.id: ScoreEntry(3, "ok")}
        )
    assert db.session.scalar(sa.select(sa.func.count(EvaluatorScore.id))) == 0


def test_an_evaluator_with_a_conflict_scores_nothing_and_the_buyer_is_told(app):
    world = build_competition_world()
    bids = closed_with_bids(world)
    with pytest.raises(BusinessRuleViolation) as refused:
        evaluation.declare_conflicts(world.evaluators[1], world.competition, has_conflict=True)
    assert "conflict_details" in refused.value.errors
    evaluation.declare_conflicts(
        world.evaluators[1], world.competition, has_conflict=True, details="My sister runs P1"
    )
    assert world.buyer.email in _templates("competitions_conflict_declared")
    event = db.session.scalar(
        sa.select(AuditEvent).where(AuditEvent.action == "competition.conflicts_declared")
    )
    assert event.after["conflict_details"] == "My sister runs P1"
    with pytest.raises(BusinessRuleViolation, match="conflict of interest, so you score nothing"):
        evaluation.score_bid(world.evaluators[1], world.competition, bids[0].id, {})
    with pytest.raises(TransitionConflict):
        evaluation.declare_conflicts(world.evaluators[1], world.competition, has_conflict=False)


def test_only_the_panel_declares_and_not_while_bids_are_sealed(app):
    world = build_competition_world()
    now = utcnow()
    publish_directly(world, now=now, bid_deadline=now + timedelta(days=10))
    with pytest.raises(BusinessRuleViolation, match="sealed"):
        evaluation.declare_conflicts(world.evaluators[0], world.competition, has_conflict=False)
    with pytest.raises(NotFound):
        evaluation.declare_conflicts(world.buyer, world.competition, has_conflict=False)


def test_a_score_needs_a_reason_and_a_whole_number_within_the_scheme(app):
    world = build_competition_world()
    bids = closed_with_bids(world)
    declare_all(world)
    questions = evaluation.scored_questions(world.competition)
    entries = {q.id: ScoreEntry("3", "fine") for q in questions}
    entries[questions[0].id] = ScoreEntry("5", "too high")
    entries[questions[1].id] = ScoreEntry("2", "  ")
    with pytest.raises(BusinessRuleViolation) as refused:
        evaluation.score_bid(world.evaluators[0], world.competition, bids[0].id, entries)
    assert set(refused.value.errors) == {f"score_{questions[0].id}", f"reason_{questions[1].id}"}
    assert db.session.scalar(sa.select(sa.func.count(EvaluatorScore.id))) == 0


def test_an_evaluator_sees_only_its_own_scores_until_every_score_is_in(app):
    world = build_competition_world()
    bids = closed_with_bids(world)
    declare_all(world)
    first, second = world.competition.evaluators
    score_all(world, bids[:1])
    own = evaluation.evaluator_scores(world.competition, first)
    assert {key[2] for key in own} == {first.id}
    assert not evaluation.scoring_complete(world.competition)
    with pytest.raises(BusinessRuleViolation, match="Moderation starts"):
        moderate_all(world, bids)
    score_all(world, bids[1:])
    assert evaluation.scoring_complete(world.competition)
    # Every score is in: no one changes theirs after seeing the others'.
    with pytest.raises(TransitionConflict):
        score_all(world, bids[:1])
    del second


def test_moderation_excludes_a_failed_pass_fail_and_ranks_the_rest_exactly(app):
    world = build_competition_world()
    # Gross prices (exempt): 10,000,000 / 8,000,000 / 12,000,000 pence.
    bids = closed_with_bids(world)
    evaluated(world, bids, scores={bids[0].id: 4, bids[1].id: 2}, failed={bids[2].id})
    competition = world.competition
    assert competition.status is CompetitionStatus.EVALUATED
    excluded = bids[2]
    assert excluded.status is BidStatus.EXCLUDED
    assert "employer's liability" in excluded.exclusion_reason
    assert "Checked the certificate" in excluded.exclusion_reason
    # bids[0]: price 8/10 × 50 = 40; quality (4/4 × 25 + 4/4 × 15) = 40; social 10 → 90.
    # bids[1]: price 50; quality 2/4 × 40 = 20; social 5 → 75.
    assert (bids[0].price_score, bids[0].quality_score, bids[0].social_value_score) == (
        4000,
        4000,
        1000,
    )
    assert (bids[0].total_score, bids[0].rank) == (9000, 1)
    assert (bids[1].total_score, bids[1].rank) == (7500, 2)
    assert bids[0].status is BidStatus.SCORED


def test_prices_are_compared_gross_across_vat_treatments(app):
    world = build_competition_world()
    # The same net price: the standard-rated bid costs the funders 20% more.
    bids = closed_with_bids(
        world, (25_000, 25_000), vat=(VatTreatment.EXEMPT, VatTreatment.STANDARD)
    )
    evaluated(world, bids)
    assert bids[0].price_score == 5000
    assert bids[1].price_score == 4167  # 50 ÷ 1.2 = 41.666…
    assert bids[0].rank == 1


def test_shown_parts_sum_to_the_shown_total():
    thirds = [Fraction(100, 3), Fraction(100, 3), Fraction(100, 3)]
    parts, total = scoring.shown_parts(thirds)
    assert total == 10000 and sum(parts) == 10000
    parts, total = scoring.shown_parts([Fraction(1, 300), Fraction(1, 300), Fraction(1, 300)])
    assert total == 1 and sum(parts) == 1


def test_ties_are_broken_by_the_published_rule_on_exact_values():
    class Q:
        def __init__(self, id, kind, weight):
            self.id, self.kind, self.weight, self.max_score = id, kind, weight, 4

    questions = [Q(1, QuestionKind.QUALITY, 50)]
    now = utcnow()
    bids = [
        scoring.BidFigures(1, 100, now),  # price 50, quality 0 → 50
        scoring.BidFigures(2, 200, now + timedelta(seconds=1)),  # price 25, quality 25 → 50
    ]
    moderated = {(1, 1): 0, (2, 1): 2}
    common = {
        "formula": scoring.PriceFormula.LOWEST_OVER_PRICE,
        "price_weight": 50,
        "questions": questions,
        "bids": bids,
        "moderated": moderated,
    }
    quality_first = scoring.rank(tie_break=TieBreak.QUALITY_THEN_PRICE, **common)
    assert [r.bid_id for r in quality_first] == [2, 1]
    price_first = scoring.rank(tie_break=TieBreak.PRICE_THEN_QUALITY, **common)
    assert [r.bid_id for r in price_first] == [1, 2]


def test_finishing_before_every_bid_is_moderated_is_refused(app):
    world = build_competition_world()
    bids = closed_with_bids(world)
    declare_all(world)
    score_all(world, bids)
    moderate_all(world, bids[:2])
    with pytest.raises(BusinessRuleViolation, match="every question for every bid"):
        evaluation.finish_evaluation(world.evaluators[0], world.competition)
    assert world.competition.status is CompetitionStatus.CLOSED


def test_a_bid_that_kept_only_its_unit_price_is_ranked_on_its_gross_price(app):
    world = build_competition_world()
    bids = closed_with_bids(
        world, (25_000, 25_000), vat=(VatTreatment.EXEMPT, VatTreatment.STANDARD)
    )
    for bid in bids:
        bid.net_pence = bid.vat_pence = bid.gross_pence = None
    evaluated(world, bids)
    assert (bids[0].price_score, bids[1].price_score) == (5000, 4167)
