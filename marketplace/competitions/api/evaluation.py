"""Evaluation and award endpoints on ``blp``: an evaluator declares conflicts, scores each bid
and moderates; anyone overseeing the competition reads the ranking once bids are unsealed; the
buyer records the award decision, confirms the award after the standstill, or closes without
award. Refusals are problem+json (422 a rule, 409 already done, 404 not yours, 403 sealed)."""

from __future__ import annotations

import marshmallow as ma
from flask import g
from flask.views import MethodView

from marketplace.competitions import permissions
from marketplace.competitions.api import blp
from marketplace.competitions.models import REASON_MAX, Competition, CompetitionStatus
from marketplace.competitions.services import award as award_services
from marketplace.competitions.services import evaluation
from marketplace.competitions.services.evaluation import ModerationEntry, ScoreEntry
from marketplace.core.api import CONFLICT_RESPONSE, commit_write
from marketplace.core.db import commit, db
from marketplace.core.errors import NotFound, PermissionDenied


def _competition(competition_id: int, *, unsealed: bool = True) -> Competition:
    """The competition if the token's person oversees it (buyer, funder, panel, authority),
    closed if its deadline has passed; refused while bids are sealed."""
    competition = db.session.get(Competition, competition_id)
    if competition is None or not permissions.can_oversee(g.api_user, g.organisation, competition):
        raise NotFound("There is no competition with that id that you oversee")
    if evaluation.close_if_due(competition):
        commit()
    if unsealed and permissions.bids_are_sealed(competition):
        raise PermissionDenied("Bids are sealed until the bid deadline")
    return competition


class DeclarationSchema(ma.Schema):
    has_conflict = ma.fields.Boolean(required=True)
    conflict_details = ma.fields.String(
        load_default="", validate=ma.validate.Length(max=REASON_MAX)
    )


class QuestionScoreSchema(ma.Schema):
    question_id = ma.fields.Integer(required=True)
    score = ma.fields.Integer(load_default=None, allow_none=True)
    passed = ma.fields.Boolean(load_default=None, allow_none=True)
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=REASON_MAX))


class ScoresSchema(ma.Schema):
    scores = ma.fields.List(ma.fields.Nested(QuestionScoreSchema), required=True)


class AwardDecisionSchema(ma.Schema):
    bid_id = ma.fields.Integer(required=True)
    reason = ma.fields.String(load_default="", validate=ma.validate.Length(max=REASON_MAX))


class NoAwardSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(max=REASON_MAX))


class DeclaredSchema(ma.Schema):
    evaluator_id = ma.fields.Integer(attribute="id")
    declared_at = ma.fields.AwareDateTime()
    has_conflict = ma.fields.Boolean()
    conflict_details = ma.fields.String()


class RecordedScoreSchema(ma.Schema):
    question_id = ma.fields.Integer()
    score = ma.fields.Integer(allow_none=True)
    passed = ma.fields.Boolean(allow_none=True)
    reason = ma.fields.String()


class RecordedScoresSchema(ma.Schema):
    bid_id = ma.fields.Integer()
    scores = ma.fields.List(ma.fields.Nested(RecordedScoreSchema))


def _recorded(bid_id: int, rows) -> dict:
    return {
        "bid_id": bid_id,
        "scores": [
            {
                "question_id": r.question_id,
                "score": r.score,
                "passed": getattr(r, "passed", None),
                "reason": r.reason,
            }
            for r in rows
        ],
    }


class RankedBidSchema(ma.Schema):
    bid_id = ma.fields.Function(lambda r: r.bid.id)
    bidder = ma.fields.Function(lambda r: r.bid.organisation.name)
    status = ma.fields.Function(lambda r: r.bid.status.value)
    rank = ma.fields.Function(lambda r: r.bid.rank)
    gross_pence = ma.fields.Function(lambda r: r.bid.gross_pence)
    price_score = ma.fields.Function(
        lambda r: r.bid.price_score, metadata={"description": "Hundredths of a point"}
    )
    quality_score = ma.fields.Function(lambda r: r.bid.quality_score)
    social_value_score = ma.fields.Function(lambda r: r.bid.social_value_score)
    total_score = ma.fields.Function(lambda r: r.bid.total_score)
    exclusion_reason = ma.fields.Function(lambda r: r.bid.exclusion_reason or None)
    moderated = ma.fields.Function(
        lambda r: [
            {"question_id": qid, "score": m.score, "passed": m.passed, "reason": m.reason}
            for qid, m in sorted(r.moderated.items())
        ]
    )


class RankingSchema(ma.Schema):
    competition_id = ma.fields.Integer()
    status = ma.fields.Enum(CompetitionStatus, by_value=True)
    bids_received = ma.fields.Integer(allow_none=True)
    bids_from_vcse = ma.fields.Integer(allow_none=True)
    bids_from_sme = ma.fields.Integer(allow_none=True)
    winning_bid_id = ma.fields.Integer(allow_none=True)
    award_decided_at = ma.fields.AwareDateTime(allow_none=True)
    standstill_ends_at = ma.fields.AwareDateTime(allow_none=True)
    call_off_id = ma.fields.Integer(allow_none=True)
    bids = ma.fields.List(ma.fields.Nested(RankedBidSchema))


def _ranking(competition: Competition) -> dict:
    return {
        "competition_id": competition.id,
        "status": competition.status,
        "bids_received": competition.bids_received,
        "bids_from_vcse": competition.bids_from_vcse,
        "bids_from_sme": competition.bids_from_sme,
        "winning_bid_id": competition.winning_bid_id,
        "award_decided_at": competition.award_decided_at,
        "standstill_ends_at": competition.standstill_ends_at,
        "call_off_id": competition.call_off_id,
        "bids": evaluation.ranking_rows(competition),
    }


@blp.route("/competitions/<int:competition_id>/ranking")
class Ranking(MethodView):
    @blp.response(200, RankingSchema)
    def get(self, competition_id):
        """The bids with their moderated results, scores and ranks (once unsealed)."""
        return _ranking(_competition(competition_id))


@blp.route("/competitions/<int:competition_id>/declaration", methods=["POST"])
@blp.arguments(DeclarationSchema)
@blp.response(200, DeclaredSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def declare(args, competition_id):
    """The token's person, an evaluator, declares (once) whether it has a conflict of
    interest with any bidder."""
    competition = _competition(competition_id)
    return commit_write(
        lambda: evaluation.declare_conflicts(
            g.api_user,
            competition,
            has_conflict=args["has_conflict"],
            details=args["conflict_details"],
        )
    )


@blp.route("/competitions/<int:competition_id>/bids/<int:bid_id>/scores", methods=["PUT"])
@blp.arguments(ScoresSchema)
@blp.response(200, RecordedScoresSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def score(args, competition_id, bid_id):
    """The evaluator's own score and reason for each quality and social value question of one
    bid (after declaring no conflict)."""
    competition = _competition(competition_id)
    entries = {s["question_id"]: ScoreEntry(s["score"], s["reason"]) for s in args["scores"]}
    rows = commit_write(lambda: evaluation.score_bid(g.api_user, competition, bid_id, entries))
    return _recorded(bid_id, rows)


@blp.route("/competitions/<int:competition_id>/bids/<int:bid_id>/moderation", methods=["PUT"])
@blp.arguments(ScoresSchema)
@blp.response(200, RecordedScoresSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def moderate(args, competition_id, bid_id):
    """The panel's agreed result per question of one bid: passed (pass/fail questions) or a
    score (quality and social value), each with a reason."""
    competition = _competition(competition_id)
    entries = {
        s["question_id"]: ModerationEntry(score=s["score"], passed=s["passed"], reason=s["reason"])
        for s in args["scores"]
    }
    rows = commit_write(lambda: evaluation.moderate_bid(g.api_user, competition, bid_id, entries))
    return _recorded(bid_id, rows)


@blp.route("/competitions/<int:competition_id>/evaluation/finish", methods=["POST"])
@blp.response(200, RankingSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def finish(competition_id):
    """Exclude the bids that failed a pass/fail question and rank the rest: evaluated."""
    competition = _competition(competition_id)
    commit_write(lambda: evaluation.finish_evaluation(g.api_user, competition))
    return _ranking(competition)


@blp.route("/competitions/<int:competition_id>/award-decision", methods=["POST"])
@blp.arguments(AwardDecisionSchema)
@blp.response(200, RankingSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def award_decision(args, competition_id):
    """The buyer records the award decision (a bid not ranked first needs a reason); the
    assessment summaries are sent and the standstill starts."""
    competition = _competition(competition_id)
    commit_write(
        lambda: award_services.decide_award(
            g.api_user, g.organisation, competition, args["bid_id"], args["reason"]
        )
    )
    return _ranking(competition)


@blp.route("/competitions/<int:competition_id>/award", methods=["POST"])
@blp.response(200, RankingSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def confirm(competition_id):
    """After the standstill, the buyer confirms the award: it becomes a call-off."""
    competition = _competition(competition_id)
    commit_write(lambda: award_services.confirm_award(g.api_user, g.organisation, competition))
    return _ranking(competition)


@blp.route("/competitions/<int:competition_id>/no-award", methods=["POST"])
@blp.arguments(NoAwardSchema)
@blp.response(200, RankingSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def no_award(args, competition_id):
    """The buyer closes a closed or evaluated competition without award, with a reason."""
    competition = _competition(competition_id)
    commit_write(
        lambda: award_services.close_without_award(
            g.api_user, g.organisation, competition, args["reason"]
        )
    )
    return _ranking(competition)
