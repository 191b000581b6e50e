"""From the bid deadline to the ranking: closing (bids unsealed and counted), each evaluator's
declaration of conflicts, individual scoring, the panel's moderation (pass/fail and agreed
scores) and the ranking that makes the competition evaluated.

Who may do each step is checked here again (pages and the API ask ``permissions`` first); every
step locks the competition (``marketplace.core.state.lock``) before it reads what it depends
on, so two evaluators acting at once are serialised and the competition moves once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import Role, User
from marketplace.accounts.queries import people_with_roles
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    BID_TRANSITIONS,
    COMPETITION_TRANSITIONS,
    REASON_MAX,
    Bid,
    BidStatus,
    Competition,
    CompetitionEvaluator,
    CompetitionQuestion,
    CompetitionStatus,
    EvaluatorScore,
    InvitedProvider,
    ModeratedScore,
    QuestionKind,
)
from marketplace.competitions.services import scoring
from marketplace.core import state
from marketplace.core.audit import record
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.notifications.services import queue_email
from marketplace.orders.services.call_offs import call_off_value

BUYER_ROLES = (Role.BUYER, Role.APPROVER)
NOT_INVITED = (
    "Disregarded: the bidder was not invited (not a member of the lot in the competition's "
    "areas), so its bid does not count (Procurement Act 2023 s.34)"
)


# ---------------------------------------------------------------------------------------------
# Reading


def figures(competition: Competition, bid: Bid) -> scoring.BidFigures:
    """What the ranking reads of a bid: its gross price (worked out from its unit price, the
    competition's units and its VAT treatment if the bid did not keep it) and when it was
    submitted."""
    gross = bid.gross_pence
    if gross is None:
        gross = call_off_value(bid.unit_price_pence, competition.quantity, bid.vat_treatment)[2]
    return scoring.BidFigures(bid.id, gross, bid.submitted_at)


def in_the_running(competition: Competition) -> list[Bid]:
    """The bids the panel evaluates, or has: submitted, excluded or scored (never drafts or
    withdrawn ones), oldest first, with their bidders, in one query whatever their number."""
    return list(
        db.session.scalars(
            sa.select(Bid)
            .where(
                Bid.competition_id == competition.id,
                Bid.status.in_([BidStatus.SUBMITTED, BidStatus.EXCLUDED, BidStatus.SCORED]),
            )
            .options(selectinload(Bid.organisation))
            .order_by(Bid.submitted_at, Bid.id)
        )
    )


def evaluator_scores(
    competition: Competition, evaluator: CompetitionEvaluator | None = None
) -> dict[tuple[int, int, int], EvaluatorScore]:
    """Individual scores {(bid id, question id, evaluator id): score}: one evaluator's own, or
    (``evaluator`` None) everyone's, which only moderation may show."""
    statement = (
        sa.select(EvaluatorScore)
        .join(Bid, Bid.id == EvaluatorScore.bid_id)
        .where(Bid.competition_id == competition.id)
    )
    if evaluator is not None:
        statement = statement.where(EvaluatorScore.evaluator_id == evaluator.id)
    return {(s.bid_id, s.question_id, s.evaluator_id): s for s in db.session.scalars(statement)}


def moderated_scores(competition: Competition) -> dict[tuple[int, int], ModeratedScore]:
    """The panel's agreed results {(bid id, question id): result}, in one query."""
    rows = db.session.scalars(
        sa.select(ModeratedScore)
        .join(Bid, Bid.id == ModeratedScore.bid_id)
        .where(Bid.competition_id == competition.id)
    )
    return {(m.bid_id, m.question_id): m for m in rows}


def scored_questions(competition: Competition) -> list[CompetitionQuestion]:
    return [q for q in competition.questions if q.kind.scored]


def pass_fail_questions(competition: Competition) -> list[CompetitionQuestion]:
    return [q for q in competition.questions if q.kind is QuestionKind.PASS_FAIL]


def scoring_complete(
    competition: Competition,
    bids: Sequence[Bid] | None = None,
    scores: Mapping[tuple[int, int, int], EvaluatorScore] | None = None,
) -> bool:
    """Every evaluator has declared, at least one may score, and every one who may has scored
    every question of every bid still to be scored: moderation may start (and the individual
    scores are shown side by side)."""
    if competition.status is not CompetitionStatus.CLOSED:
        return competition.status is CompetitionStatus.EVALUATED
    panel = competition.evaluators
    if not panel or any(e.declared_at is None for e in panel):
        return False
    scorers = [e for e in panel if e.may_score]
    bids = [b for b in (bids if bids is not None else in_the_running(competition))]
    waiting = [b for b in bids if b.status is BidStatus.SUBMITTED]
    if not scorers or not waiting:
        return False
    scores = scores if scores is not None else evaluator_scores(competition)
    return all(
        (bid.id, question.id, evaluator.id) in scores
        for bid in waiting
        for question in scored_questions(competition)
        for evaluator in scorers
    )


# ---------------------------------------------------------------------------------------------
# Closing


def close_if_due(competition: Competition, *, now: datetime | None = None) -> bool:
    """Close the competition if its bid deadline has passed and it is still published (the
    scheduled job, and any evaluation page opened after the deadline); say whether this call
    closed it. Exactly once: the row is locked and read again before the move, so of two
    callers at once the second finds it closed and does nothing."""
    now = now or utcnow()
    if (
        competition.status is not CompetitionStatus.PUBLISHED
        or competition.bid_deadline is None
        or now < competition.bid_deadline
    ):
        return False
    state.lock(competition)
    if competition.status is not CompetitionStatus.PUBLISHED:
        return False
    invited = set(
        db.session.scalars(
            sa.select(InvitedProvider.organisation_id).where(
                InvitedProvider.competition_id == competition.id
            )
        )
    )
    submitted = list(
        db.session.scalars(
            sa.select(Bid)
            .where(Bid.competition_id == competition.id, Bid.status == BidStatus.SUBMITTED)
            .order_by(Bid.id)
        )
    )
    counted = []
    for bid in submitted:
        if bid.organisation_id in invited:
            counted.append(bid)
            continue
        # Only invited providers' bids count (s.34): any other is disregarded with the reason.
        state.transition(bid, BidStatus.EXCLUDED, BID_TRANSITIONS, noun="bid", done="excluded")
        bid.excluded_at = now
        bid.exclusion_reason = NOT_INVITED
        record(None, "bid.excluded", bid, after={"reason": NOT_INVITED})
    state.transition(
        competition, CompetitionStatus.CLOSED, COMPETITION_TRANSITIONS, noun="competition"
    )
    competition.closed_at = now
    competition.bids_received = len(counted)
    competition.bids_from_vcse = sum(bool(b.bidder_is_vcse) for b in counted)
    competition.bids_from_sme = sum(bool(b.bidder_is_sme) for b in counted)
    record(
        None,
        "competition.closed",
        competition,
        before={"status": CompetitionStatus.PUBLISHED.value},
        after={
            "status": CompetitionStatus.CLOSED.value,
            "bids_received": competition.bids_received,
            "bids_from_vcse": competition.bids_from_vcse,
            "bids_from_sme": competition.bids_from_sme,
        },
    )
    for user in _buyer_and_panel(competition):
        queue_email(user.email, "competitions_closed", user=user, competition=competition)
    return True


def close_due(*, now: datetime | None = None) -> int:
    """Close every published competition whose bid deadline has passed; how many closed."""
    now = now or utcnow()
    due = db.session.scalars(
        sa.select(Competition)
        .where(
            Competition.status == CompetitionStatus.PUBLISHED,
            Competition.bid_deadline <= now,
        )
        .order_by(Competition.id)
    ).all()
    return sum(close_if_due(competition, now=now) for competition in due)


def _buyer_and_panel(competition: Competition) -> list[User]:
    people = {u.id: u for u in people_with_roles(competition.buyer_id, BUYER_ROLES)}
    for evaluator in competition.evaluators:
        people.setdefault(evaluator.user_id, evaluator.user)
    return list(people.values())


# ---------------------------------------------------------------------------------------------
# Declaring conflicts


def require_evaluator(actor: User, competition: Competition) -> CompetitionEvaluator:
    evaluator = permissions.evaluator_of(actor, competition)
    if evaluator is None:
        raise NotFound("You are not on this competition's evaluation panel")
    return evaluator


def _require_unsealed(competition: Competition, now: datetime) -> None:
    close_if_due(competition, now=now)
    if permissions.bids_are_sealed(competition, now):
        raise BusinessRuleViolation(
            {"": ["Bids are sealed until the bid deadline: nothing can be evaluated yet"]}
        )


def declare_conflicts(
    actor: User,
    competition: Competition,
    *,
    has_conflict: bool | None,
    details: str = "",
    now: datetime | None = None,
) -> CompetitionEvaluator:
    """The evaluator says, once, whether it has a conflict of interest with any bidder (now that
    the bidders are known). One with a conflict scores nothing; the buyer is told."""
    now = now or utcnow()
    evaluator = require_evaluator(actor, competition)
    _require_unsealed(competition, now)
    state.lock(competition)
    if competition.status is not CompetitionStatus.CLOSED:
        raise TransitionConflict(
            {"has_conflict": ["The evaluation is finished: declarations can no longer change"]}
        )
    if evaluator.declared_at is not None:
        raise TransitionConflict({"has_conflict": ["You have already declared your conflicts"]})
    details = (details or "").strip()
    errors: dict[str, list[str]] = {}
    if has_conflict is None:
        errors["has_conflict"] = ["Select whether you have a conflict of interest with a bidder"]
    elif has_conflict and not details:
        errors["conflict_details"] = ["Enter the bidder and the nature of the conflict"]
    if len(details) > REASON_MAX:
        errors["conflict_details"] = [f"The details must be {REASON_MAX} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    evaluator.declared_at = now
    evaluator.has_conflict = bool(has_conflict)
    evaluator.conflict_details = details if has_conflict else ""
    record(
        actor,
        "competition.conflicts_declared",
        competition,
        after={
            "evaluator_id": evaluator.id,
            "has_conflict": evaluator.has_conflict,
            "conflict_details": evaluator.conflict_details,
        },
    )
    if has_conflict:
        for user in people_with_roles(competition.buyer_id, BUYER_ROLES):
            queue_email(
                user.email,
                "competitions_conflict_declared",
                user=user,
                competition=competition,
                evaluator=evaluator,
            )
    return evaluator


# ---------------------------------------------------------------------------------------------
# Individual scoring


@dataclass(frozen=True)
class ScoreEntry:
    """A score for one question as entered (text or a whole number) and its reason."""

    score: object
    reason: str


def parse_score(value: object, maximum: int) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    else:
        text = str(value or "").strip()
        if not text.isdigit():
            return None
        number = int(text)
    return number if 0 <= number <= maximum else None


def _score_errors(
    questions: Sequence[CompetitionQuestion], entries: Mapping[int, ScoreEntry]
) -> tuple[dict[str, list[str]], dict[int, tuple[int, str]]]:
    errors: dict[str, list[str]] = {}
    parsed: dict[int, tuple[int, str]] = {}
    for number, question in enumerate(questions, start=1):
        entry = entries.get(question.id) or ScoreEntry(None, "")
        score = parse_score(entry.score, question.max_score)
        reason = (entry.reason or "").strip()
        if score is None:
            errors[f"score_{question.id}"] = [
                f"Enter a score for question {number} as a whole number from 0 to "
                f"{question.max_score}"
            ]
        if not reason:
            errors[f"reason_{question.id}"] = [
                f"Enter the reason for your score for question {number}"
            ]
        elif len(reason) > REASON_MAX:
            errors[f"reason_{question.id}"] = [
                f"The reason for question {number} must be {REASON_MAX} characters or fewer"
            ]
        if score is not None and reason and len(reason) <= REASON_MAX:
            parsed[question.id] = (score, reason)
    return errors, parsed


def _bid_to_evaluate(competition: Competition, bid_id: int) -> Bid:
    bid = db.session.get(Bid, bid_id) if isinstance(bid_id, int) else None
    if (
        bid is None
        or bid.competition_id != competition.id
        or bid.status
        not in (
            BidStatus.SUBMITTED,
            BidStatus.EXCLUDED,
            BidStatus.SCORED,
        )
    ):
        raise NotFound("There is no bid with that id in this competition's evaluation")
    return bid


def score_bid(
    actor: User,
    competition: Competition,
    bid_id: int,
    entries: Mapping[int, ScoreEntry],
    *,
    now: datetime | None = None,
) -> list[EvaluatorScore]:
    """The evaluator's own score (0 to the question's maximum, by the published scheme) and
    reason for each quality and social value question of one bid, alone: refused before it has
    declared, if it declared a conflict, and once every score is in (moderation has begun)."""
    now = now or utcnow()
    evaluator = require_evaluator(actor, competition)
    _require_unsealed(competition, now)
    state.lock(competition)
    bid = _bid_to_evaluate(competition, bid_id)
    if evaluator.declared_at is None:
        raise BusinessRuleViolation(
            {"": ["Declare whether you have a conflict of interest before you score any bid"]}
        )
    if evaluator.has_conflict:
        raise BusinessRuleViolation(
            {"": ["You declared a conflict of interest, so you score nothing in this competition"]}
        )
    if competition.status is not CompetitionStatus.CLOSED or scoring_complete(competition):
        raise TransitionConflict(
            {"": ["Every score is in: the panel now agrees the scores at moderation"]}
        )
    if bid.status is not BidStatus.SUBMITTED:
        raise TransitionConflict({"": ["This bid has already been evaluated"]})
    questions = scored_questions(competition)
    errors, parsed = _score_errors(questions, entries)
    if errors:
        raise BusinessRuleViolation(errors)
    existing = {
        s.question_id: s
        for s in db.session.scalars(
            sa.select(EvaluatorScore).where(
                EvaluatorScore.bid_id == bid.id, EvaluatorScore.evaluator_id == evaluator.id
            )
        )
    }
    written = []
    for question in questions:
        score, reason = parsed[question.id]
        row = existing.get(question.id)
        if row is None:
            row = EvaluatorScore(bid_id=bid.id, question_id=question.id, evaluator_id=evaluator.id)
            db.session.add(row)
        row.score, row.reason, row.scored_at = score, reason, now
        written.append(row)
    record(
        actor,
        "competition.bid_scored",
        competition,
        after={
            "bid_id": bid.id,
            "evaluator_id": evaluator.id,
            "scores": {str(q.id): parsed[q.id][0] for q in questions},
        },
    )
    return written


# ---------------------------------------------------------------------------------------------
# Moderation


@dataclass(frozen=True)
class ModerationEntry:
    """The panel's agreed result for one question: a score (scored questions) or passed
    (pass/fail: True, False, or None when not chosen), and the reason."""

    score: object = None
    passed: bool | None = None
    reason: str = ""


def require_moderator(actor: User, competition: Competition) -> CompetitionEvaluator:
    evaluator = require_evaluator(actor, competition)
    if not evaluator.may_score:
        raise BusinessRuleViolation(
            {"": ["Only an evaluator who declared no conflict may moderate"]}
        )
    return evaluator


def moderate_bid(
    actor: User,
    competition: Competition,
    bid_id: int,
    entries: Mapping[int, ModerationEntry],
    *,
    now: datetime | None = None,
) -> list[ModeratedScore]:
    """The panel's agreed result for each question of one bid, with a reason: passed or failed
    for each pass/fail question, and (unless one failed: the bid is then excluded) one score
    for each quality and social value question. Changeable until the evaluation is finished;
    who moderated is recorded."""
    now = now or utcnow()
    require_moderator(actor, competition)
    _require_unsealed(competition, now)
    state.lock(competition)
    bid = _bid_to_evaluate(competition, bid_id)
    if competition.status is not CompetitionStatus.CLOSED or bid.status is not BidStatus.SUBMITTED:
        raise TransitionConflict({"": ["The evaluation of this bid is finished"]})
    if not scoring_complete(competition):
        raise BusinessRuleViolation(
            {"": ["Moderation starts when every evaluator has scored every bid"]}
        )
    errors: dict[str, list[str]] = {}
    results: dict[int, tuple[int | None, bool | None, str]] = {}
    failed = False
    for number, question in enumerate(pass_fail_questions(competition), start=1):
        entry = entries.get(question.id) or ModerationEntry()
        reason = (entry.reason or "").strip()
        if entry.passed is None:
            errors[f"passed_{question.id}"] = [
                f"Select whether the bid passes pass or fail question {number}"
            ]
        if not reason:
            errors[f"reason_{question.id}"] = [
                f"Enter the reason for the result of pass or fail question {number}"
            ]
        elif len(reason) > REASON_MAX:
            errors[f"reason_{question.id}"] = [
                f"The reason must be {REASON_MAX} characters or fewer"
            ]
        failed = failed or entry.passed is False
        results[question.id] = (None, entry.passed, reason)
    scored = scored_questions(competition)
    if not failed:
        score_errors, parsed = _score_errors(
            scored,
            {
                q.id: ScoreEntry(e.score, e.reason)
                for q in scored
                for e in [entries.get(q.id) or ModerationEntry()]
            },
        )
        errors.update(score_errors)
        results.update({qid: (score, None, reason) for qid, (score, reason) in parsed.items()})
    if errors:
        raise BusinessRuleViolation(errors)
    existing = {
        m.question_id: m
        for m in db.session.scalars(
            sa.select(ModeratedScore).where(ModeratedScore.bid_id == bid.id)
        )
    }
    written = []
    for question_id, (score, passed, reason) in results.items():
        row = existing.pop(question_id, None)
        if row is None:
            row = ModeratedScore(bid_id=bid.id, question_id=question_id)
            db.session.add(row)
        row.score, row.passed, row.reason = score, passed, reason
        row.moderated_at, row.moderated_by_id = now, actor.id
        written.append(row)
    for stale in existing.values():  # scores agreed before a pass/fail was failed
        db.session.delete(stale)
    record(
        actor,
        "competition.bid_moderated",
        competition,
        after={
            "bid_id": bid.id,
            "results": {
                str(qid): ({"score": s} if p is None else {"passed": p})
                for qid, (s, p, _) in results.items()
            },
        },
    )
    return written


def moderation_complete(
    competition: Competition,
    bids: Sequence[Bid],
    moderated: Mapping[tuple[int, int], ModeratedScore],
) -> bool:
    """Every bid still to be evaluated has its pass/fail results and, unless it failed one,
    its agreed scores."""
    waiting = [b for b in bids if b.status is BidStatus.SUBMITTED]
    return bool(waiting) and all(_moderated(competition, b, moderated) for b in waiting)


def _moderated(competition, bid, moderated) -> bool:
    pass_fail = [moderated.get((bid.id, q.id)) for q in pass_fail_questions(competition)]
    if any(m is None for m in pass_fail):
        return False
    if any(m.passed is False for m in pass_fail):
        return True
    return all((bid.id, q.id) in moderated for q in scored_questions(competition))


def exclusion_reason(competition: Competition, bid: Bid, moderated) -> str | None:
    """Why the bid is excluded: each pass/fail question it failed, with the panel's reason."""
    failed = [
        (number, question, moderated[(bid.id, question.id)])
        for number, question in enumerate(pass_fail_questions(competition), start=1)
        if (bid.id, question.id) in moderated and moderated[(bid.id, question.id)].passed is False
    ]
    if not failed:
        return None
    text = "; ".join(f'Failed "{q.text}": {m.reason}' for _, q, m in failed)
    return text[:REASON_MAX]


def finish_evaluation(
    actor: User, competition: Competition, *, now: datetime | None = None
) -> list[scoring.BidResult]:
    """Once every bid is moderated: exclude each bid that failed a pass/fail question (with the
    reason), score and rank the rest by the published formula and tie-break, and move the
    competition to evaluated (the buyer is told)."""
    now = now or utcnow()
    require_moderator(actor, competition)
    _require_unsealed(competition, now)
    state.check_transition(
        competition,
        CompetitionStatus.EVALUATED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="evaluated",
    )
    bids = in_the_running(competition)
    moderated = moderated_scores(competition)
    if not moderation_complete(competition, bids, moderated):
        raise BusinessRuleViolation(
            {"": ["Agree the results of every question for every bid before ranking them"]}
        )
    remaining = []
    for bid in bids:
        if bid.status is not BidStatus.SUBMITTED:
            continue
        reason = exclusion_reason(competition, bid, moderated)
        if reason is None:
            remaining.append(bid)
            continue
        state.transition(bid, BidStatus.EXCLUDED, BID_TRANSITIONS, noun="bid", done="excluded")
        bid.excluded_at, bid.exclusion_reason = now, reason
        record(actor, "bid.excluded", bid, after={"reason": reason})
    results = scoring.rank(
        formula=competition.price_formula,
        price_weight=competition.price_weight,
        tie_break=competition.tie_break,
        questions=competition.questions,
        bids=[figures(competition, b) for b in remaining],
        moderated={key: m.score for key, m in moderated.items() if m.score is not None},
    )
    by_id = {b.id: b for b in remaining}
    for result in results:
        bid = by_id[result.bid_id]
        state.transition(bid, BidStatus.SCORED, BID_TRANSITIONS, noun="bid", done="scored")
        bid.price_score = result.shown_price
        bid.quality_score = result.shown_quality
        bid.social_value_score = result.shown_social_value
        bid.total_score = result.shown_total
        bid.rank = result.rank
    state.transition(
        competition, CompetitionStatus.EVALUATED, COMPETITION_TRANSITIONS, noun="competition"
    )
    competition.evaluated_at = now
    record(
        actor,
        "competition.evaluated",
        competition,
        before={"status": CompetitionStatus.CLOSED.value},
        after={
            "status": CompetitionStatus.EVALUATED.value,
            "ranking": [
                {"bid_id": r.bid_id, "rank": r.rank, "total": r.shown_total} for r in results
            ],
            "excluded": [b.id for b in bids if b.status is BidStatus.EXCLUDED],
        },
    )
    for user in people_with_roles(competition.buyer_id, BUYER_ROLES):
        queue_email(user.email, "competitions_evaluated", user=user, competition=competition)
    return results


# ---------------------------------------------------------------------------------------------
# The ranking as pages, the CSV and the API read it


@dataclass
class RankingRow:
    bid: Bid
    by_question: dict[int, int]  # shown weighted points per scored question
    moderated: dict[int, ModeratedScore]


def ranking_rows(competition: Competition) -> list[RankingRow]:
    """Every bid in the evaluation, ranked ones first by rank, then the excluded, with their
    moderated results and shown weighted points per question: a fixed number of queries
    whatever the number of bids (the bids with their bidders, the moderated scores)."""
    bids = in_the_running(competition)
    moderated = moderated_scores(competition)
    scored = [b for b in bids if b.status is BidStatus.SCORED]
    results = scoring.rank(
        formula=competition.price_formula,
        price_weight=competition.price_weight,
        tie_break=competition.tie_break,
        questions=competition.questions,
        bids=[figures(competition, b) for b in scored],
        moderated={k: m.score for k, m in moderated.items() if m.score is not None},
    )
    shown = {r.bid_id: r.shown_by_question for r in results}
    by_bid: dict[int, dict[int, ModeratedScore]] = {}
    for (bid_id, question_id), row in moderated.items():
        by_bid.setdefault(bid_id, {})[question_id] = row
    ordered = sorted(
        bids,
        key=lambda b: (b.rank is None, b.rank or 0, b.status is not BidStatus.EXCLUDED, b.id),
    )
    return [RankingRow(b, shown.get(b.id, {}), by_bid.get(b.id, {})) for b in ordered]
