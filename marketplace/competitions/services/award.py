"""The award: the buyer's decision (assessment summaries to every bidder, the standstill), its
confirmation after the standstill (the call-off, through orders' ``place_awarded_call_off``),
and closing a competition without an award.

The call-off is placed with plain values (orders never reads a competition): the winning unit
price and VAT treatment, the competition's quantity, unit, dates and title, and its funders'
shares as ``FundingShare``s. If a funder's budget no longer covers its share, orders refuses
and nothing is written: the competition stays evaluated, with the reason.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.queries import people_with_roles
from marketplace.competitions import permissions
from marketplace.competitions.models import (
    COMPETITION_TRANSITIONS,
    REASON_MAX,
    AssessmentSummary,
    Bid,
    BidStatus,
    Competition,
    CompetitionStatus,
    InvitedProvider,
)
from marketplace.competitions.services import evaluation, scoring
from marketplace.core import state
from marketplace.core.audit import record
from marketplace.core.clock import LONDON, add_working_days, london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.filters import govuk_date
from marketplace.core.notifications.services import queue_email
from marketplace.orders.services.awarded import AwardedCallOff, place_awarded_call_off
from marketplace.orders.services.details import FundingShare

BIDDER_CONTACT_ROLES = (Role.PROVIDER_ADMIN,)


def require_manager(actor: User, organisation: Organisation | None, competition: Competition):
    if not permissions.can_manage(actor, organisation, competition):
        raise NotFound("There is no competition with that id that your organisation runs")


def last_day_of_standstill(competition: Competition):
    """The last day of the standstill (London), as people read it."""
    if competition.standstill_ends_at is None:
        return None
    return london_date(competition.standstill_ends_at - timedelta(seconds=1))


def standstill_end(decided_at: datetime, working_days: int) -> datetime:
    """When the standstill ends: at the end (midnight, London) of the last of its working days
    after the decision; at once when it is 0 working days (light-touch, with the reason
    recorded at set-up)."""
    if working_days <= 0:
        return decided_at
    last = add_working_days(london_date(decided_at), working_days)
    midnight = datetime.combine(last + timedelta(days=1), time(0), tzinfo=LONDON)
    return midnight.astimezone(UTC)


# ---------------------------------------------------------------------------------------------
# The award decision and assessment summaries


def _summary(competition, bid, winner, shown, moderated) -> dict:
    """What one bidder is told (s.50): its own results per criterion with the reasons, the
    winner's per criterion, and why it did or did not win; an excluded bid, why."""
    questions = evaluation.scored_questions(competition)

    def criteria(of: Bid, with_reasons: bool) -> list[dict]:
        figures = shown.get(of.id, {})
        rows = [
            {
                "criterion": "Price",
                "kind": "price",
                "weight": competition.price_weight,
                "score": None,
                "max_score": None,
                "points": of.price_score,
                "reason": competition.price_formula.label if with_reasons else "",
            }
        ]
        for question in questions:
            agreed = moderated.get((of.id, question.id))
            rows.append(
                {
                    "criterion": question.text,
                    "kind": question.kind.value,
                    "weight": question.weight,
                    "score": agreed.score if agreed else None,
                    "max_score": question.max_score,
                    "points": figures.get(question.id),
                    "reason": (agreed.reason if agreed and with_reasons else ""),
                }
            )
        return rows

    content: dict = {
        "competition": competition.reference or str(competition.id),
        "title": competition.title,
        "winner": winner.organisation.name,
        "winner_total": winner.total_score,
        "winner_criteria": criteria(winner, with_reasons=False),
    }
    if bid.status is BidStatus.EXCLUDED:
        content.update(
            {
                "excluded": True,
                "exclusion_reason": bid.exclusion_reason,
                "criteria": [],
                "total": None,
                "why": f"Your bid was excluded: {bid.exclusion_reason}",
            }
        )
        return content
    content.update(
        {"excluded": False, "criteria": criteria(bid, with_reasons=True), "total": bid.total_score}
    )
    if bid.id == winner.id:
        content["why"] = (
            "Your bid is the most advantageous tender: it has the highest total score"
            if bid.rank == 1
            else f"The buyer chose your bid: {competition.award_reason}"
        )
    elif (bid.total_score or 0) < (winner.total_score or 0):
        gap = (winner.total_score or 0) - (bid.total_score or 0)
        content["why"] = (
            f"Your bid scored {scoring.points(bid.total_score)} points, "
            f"{scoring.points(gap)} fewer than the winning bid's "
            f"{scoring.points(winner.total_score)}."
        )
    else:
        content["why"] = (
            f"Your bid scored {scoring.points(bid.total_score)} points and the winning bid "
            f"{scoring.points(winner.total_score)}; "
            + (
                "the published tie-break favoured the winning bid."
                if winner.rank == 1
                else f"the buyer chose the winning bid: {competition.award_reason}"
            )
        )
    return content


def shown_question_points(competition: Competition, bids, moderated) -> dict[int, dict[int, int]]:
    """{bid id: {question id: shown weighted points}} for the scored bids, as ranked (the
    ranking is recomputed from the stored moderated scores: the same exact figures)."""
    scored = [b for b in bids if b.status is BidStatus.SCORED]
    results = scoring.rank(
        formula=competition.price_formula,
        price_weight=competition.price_weight,
        tie_break=competition.tie_break,
        questions=competition.questions,
        bids=[evaluation.figures(competition, b) for b in scored],
        moderated={k: m.score for k, m in moderated.items() if m.score is not None},
    )
    return {r.bid_id: r.shown_by_question for r in results}


def decide_award(
    actor: User,
    organisation: Organisation | None,
    competition: Competition,
    bid_id: int,
    reason: str = "",
    *,
    now: datetime | None = None,
) -> Competition:
    """The buyer records the award decision: the top-ranked bid, or another with a recorded
    reason. Every bidder is sent its assessment summary (written once), and the standstill
    starts."""
    now = now or utcnow()
    require_manager(actor, organisation, competition)
    state.lock(competition)
    if competition.status is not CompetitionStatus.EVALUATED:
        raise TransitionConflict(
            {
                "bid_id": [
                    f"This competition is {state.describe(competition.status)}, so no award "
                    "decision can be recorded"
                ]
            }
        )
    if competition.award_decided_at is not None:
        raise TransitionConflict({"bid_id": ["The award decision has already been recorded"]})
    bids = evaluation.in_the_running(competition)
    winner = next((b for b in bids if b.id == bid_id), None)
    if winner is None or winner.status is not BidStatus.SCORED:
        raise BusinessRuleViolation({"bid_id": ["Choose one of the ranked bids"]})
    reason = (reason or "").strip()
    if winner.rank != 1 and not reason:
        raise BusinessRuleViolation(
            {"reason": ["Enter why you are awarding to a bid that is not ranked first"]}
        )
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX} characters or fewer"]}
        )
    competition.winning_bid = winner
    competition.award_decided_at = now
    competition.award_decided_by_id = actor.id
    competition.award_reason = reason
    competition.standstill_ends_at = standstill_end(now, competition.standstill_working_days)
    moderated = evaluation.moderated_scores(competition)
    shown = shown_question_points(competition, bids, moderated)
    for bid in bids:
        if bid.status not in (BidStatus.SCORED, BidStatus.EXCLUDED):
            continue
        summary = AssessmentSummary(
            bid_id=bid.id,
            competition_id=competition.id,
            successful=bid.id == winner.id,
            content=_summary(competition, bid, winner, shown, moderated),
            created_at=now,
        )
        db.session.add(summary)
        for user in people_with_roles(bid.organisation_id, BIDDER_CONTACT_ROLES):
            queue_email(
                user.email,
                "competitions_assessment_summary",
                user=user,
                competition=competition,
                summary=summary,
                bid=bid,
                standstill_last_day=last_day_of_standstill(competition),
            )
    record(
        actor,
        "competition.award_decided",
        competition,
        after={
            "winning_bid_id": winner.id,
            "rank": winner.rank,
            "reason": reason,
            "standstill_ends_at": competition.standstill_ends_at,
        },
    )
    return competition


def summary_for(bid: Bid) -> AssessmentSummary | None:
    return db.session.scalar(sa.select(AssessmentSummary).where(AssessmentSummary.bid_id == bid.id))


# ---------------------------------------------------------------------------------------------
# Confirming the award: the call-off


def confirm_award(
    actor: User,
    organisation: Organisation | None,
    competition: Competition,
    *,
    now: datetime | None = None,
) -> Competition:
    """After the standstill, the buyer confirms the award: it becomes a call-off with route
    ``further_competition`` at the winning price, funded by the competition's shares. Refused
    during the standstill, and (nothing written) if a funder's budget no longer covers its
    share. Exactly once: the competition is locked before anything is read."""
    now = now or utcnow()
    require_manager(actor, organisation, competition)
    state.check_transition(
        competition,
        CompetitionStatus.AWARDED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="awarded",
    )
    if competition.award_decided_at is None or competition.winning_bid is None:
        raise BusinessRuleViolation({"": ["Record the award decision first"]})
    if now < competition.standstill_ends_at:
        raise BusinessRuleViolation(
            {
                "": [
                    "The standstill period runs to the end of "
                    f"{govuk_date(last_day_of_standstill(competition))}: the award can be "
                    "confirmed after that"
                ]
            }
        )
    winner = competition.winning_bid
    details = AwardedCallOff(
        provider_id=winner.organisation_id,
        arrangement_id=competition.arrangement_id,
        category_id=competition.category_id,
        service_title=competition.title,
        quantity=competition.quantity,
        unit=competition.unit,
        unit_price_pence=winner.unit_price_pence,
        vat_treatment=winner.vat_treatment,
        start_date=competition.contract_start,
        end_date=competition.contract_end,
        shares=tuple(FundingShare(f.organisation_id, f.basis_points) for f in competition.funders),
        missed_sessions_chargeable=competition.missed_sessions_chargeable,
        competition_id=competition.id,
    )
    try:
        call_off = place_awarded_call_off(actor, competition.buyer, details, now=now)
    except TransitionConflict:
        raise
    except BusinessRuleViolation as refused:
        # Orders' reasons are keyed by its own fields (a funder's share, a year's budget) and
        # are phrases: the buyer reads them as one sentence on the ranking page, and what to do.
        reasons = "; ".join(m for ms in refused.errors.values() for m in ms) or refused.detail
        raise BusinessRuleViolation(
            {
                "": [
                    f"The award cannot be confirmed: {reasons}. Nothing has been placed; once "
                    "this is put right, confirm the award again"
                ]
            }
        ) from refused
    state.transition(
        competition,
        CompetitionStatus.AWARDED,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="awarded",
    )
    competition.call_off_id = call_off.id
    competition.call_off = call_off
    competition.awarded_at = now
    competition.awarded_by_id = actor.id
    record(
        actor,
        "competition.awarded",
        competition,
        before={"status": CompetitionStatus.EVALUATED.value},
        after={
            "status": CompetitionStatus.AWARDED.value,
            "winning_bid_id": winner.id,
            "call_off_id": call_off.id,
            "gross_pence": call_off.gross_pence,
        },
    )
    for bid in evaluation.in_the_running(competition):
        for user in people_with_roles(bid.organisation_id, BIDDER_CONTACT_ROLES):
            queue_email(
                user.email,
                "competitions_awarded",
                user=user,
                competition=competition,
                won=bid.id == winner.id,
                winner=winner,
            )
    return competition


# ---------------------------------------------------------------------------------------------
# No award


def close_without_award(
    actor: User,
    organisation: Organisation | None,
    competition: Competition,
    reason: str,
    *,
    now: datetime | None = None,
) -> Competition:
    """The buyer closes a closed or evaluated competition with no suitable bid (a competition
    with no bids included), with a reason; every invited provider is told."""
    now = now or utcnow()
    require_manager(actor, organisation, competition)
    evaluation.close_if_due(competition, now=now)
    previous = state.check_transition(
        competition,
        CompetitionStatus.NO_AWARD,
        COMPETITION_TRANSITIONS,
        noun="competition",
        done="closed without award",
        error_field="reason",
        refused={
            CompetitionStatus.PUBLISHED: "Bids are still open: cancel the competition instead, "
            "or wait for the bid deadline",
            CompetitionStatus.DRAFT: "This competition is a draft: cancel it instead",
        },
    )
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({"reason": ["Enter why no bid is suitable for the award"]})
    if len(reason) > REASON_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_MAX} characters or fewer"]}
        )
    state.transition(
        competition, CompetitionStatus.NO_AWARD, COMPETITION_TRANSITIONS, noun="competition"
    )
    competition.no_award_at = now
    competition.no_award_reason = reason
    record(
        actor,
        "competition.no_award",
        competition,
        before={"status": previous.value},
        after={"status": CompetitionStatus.NO_AWARD.value, "reason": reason},
    )
    invited = db.session.scalars(
        sa.select(InvitedProvider.organisation_id).where(
            InvitedProvider.competition_id == competition.id
        )
    ).all()
    for organisation_id in invited:
        for user in people_with_roles(organisation_id, BIDDER_CONTACT_ROLES):
            queue_email(user.email, "competitions_no_award", user=user, competition=competition)
    return competition
