"""Evaluation and award pages: the panel's home, declaring conflicts, scoring each bid alone,
moderation with the individual scores side by side, the ranking, the buyer's award decision,
standstill and confirmation, no award, the scores CSV, and each bidder's assessment summary.

Opening any of them after the bid deadline closes the competition if the scheduled job has not
yet (``close_if_due``). Bids are read only once unsealed (``permissions.bids_are_sealed``)."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from flask import Response, abort, redirect, render_template, url_for
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.session import current_organisation
from marketplace.catalogue.rate_cards import safe_cell
from marketplace.competitions import permissions
from marketplace.competitions.forms_evaluation import (
    AwardDecisionForm,
    ConfirmButtonForm,
    DeclareForm,
    NoAwardForm,
    score_form,
)
from marketplace.competitions.models import (
    AssessmentSummary,
    Bid,
    BidStatus,
    Competition,
    CompetitionEvaluator,
    CompetitionStatus,
)
from marketplace.competitions.services import award as award_services
from marketplace.competitions.services import evaluation, scoring
from marketplace.competitions.services.evaluation import ModerationEntry, ScoreEntry
from marketplace.competitions.views import bp
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.views_helpers import act_on_click, act_on_form

AFTER_DEADLINE = (
    CompetitionStatus.PUBLISHED,
    CompetitionStatus.CLOSED,
    CompetitionStatus.EVALUATED,
    CompetitionStatus.AWARDED,
    CompetitionStatus.NO_AWARD,
)


def _user():
    return current_user._get_current_object()


def _closed_if_due(competition: Competition) -> Competition:
    if evaluation.close_if_due(competition):
        commit()
    return competition


def _for_panel(competition_id: int) -> tuple[Competition, CompetitionEvaluator]:
    """The competition if the signed-in person is on its panel (else 404), closed if due; a
    refusal while bids are sealed."""
    competition = db.session.get(Competition, competition_id)
    evaluator = competition and permissions.evaluator_of(_user(), competition)
    if competition is None or evaluator is None or competition.status not in AFTER_DEADLINE:
        abort(404)
    _closed_if_due(competition)
    if permissions.bids_are_sealed(competition):
        abort(403)
    return competition, evaluator


def _overseen(competition_id: int) -> Competition:
    """The competition for the buyer, its funders, panel and the authority (else 404), closed
    if due; a refusal while bids are sealed."""
    competition = db.session.get(Competition, competition_id)
    if competition is None or not permissions.can_oversee(
        _user(), current_organisation(), competition
    ):
        abort(404)
    _closed_if_due(competition)
    if permissions.bids_are_sealed(competition):
        abort(403)
    return competition


def _managed(competition_id: int) -> Competition:
    competition = _overseen(competition_id)
    if not permissions.can_manage(_user(), current_organisation(), competition):
        abort(404)
    return competition


# ---------------------------------------------------------------------------------------------
# The panel's home


@bp.get("/evaluation")
@login_required
def evaluation_home():
    """Competitions to evaluate (the person is on their panel) and to award (their
    organisation runs them), after the bid deadline."""
    user, organisation = _user(), current_organisation()
    now = utcnow()
    panel = db.session.scalars(
        sa.select(Competition)
        .join(CompetitionEvaluator, CompetitionEvaluator.competition_id == Competition.id)
        .where(
            CompetitionEvaluator.user_id == user.id,
            Competition.status.in_(AFTER_DEADLINE),
            Competition.bid_deadline <= now,
        )
        .order_by(Competition.bid_deadline.desc(), Competition.id)
    ).all()
    running = []
    if organisation is not None and user.roles_in(organisation) & permissions.BUYER_ROLES:
        running = db.session.scalars(
            sa.select(Competition)
            .where(
                Competition.buyer_id == organisation.id,
                Competition.status.in_(AFTER_DEADLINE),
                Competition.bid_deadline <= now,
            )
            .order_by(Competition.bid_deadline.desc(), Competition.id)
        ).all()
    if sum(evaluation.close_if_due(c, now=now) for c in {*panel, *running}):
        commit()
    return render_template(
        "competitions/evaluation/home.html",
        panel=panel,
        running=running,
        evaluator_of=lambda c: permissions.evaluator_of(user, c),
    )


# ---------------------------------------------------------------------------------------------
# Declaring, scoring


@bp.route("/<int:competition_id>/evaluation/declare", methods=["GET", "POST"])
@login_required
def declare(competition_id: int):
    competition, evaluator = _for_panel(competition_id)
    if evaluator.declared_at is not None:
        return redirect(url_for(".evaluate", competition_id=competition.id))
    form = DeclareForm()

    def act():
        answer = form.has_conflict.data
        evaluation.declare_conflicts(
            _user(),
            competition,
            has_conflict=None if not answer else answer == "yes",
            details=form.conflict_details.data or "",
        )

    if act_on_form(form, act, "Your declaration is recorded."):
        return redirect(url_for(".evaluate", competition_id=competition.id))
    bidders = [b.organisation.name for b in evaluation.in_the_running(competition)]
    return render_template(
        "competitions/evaluation/declare.html", competition=competition, form=form, bidders=bidders
    )


@bp.get("/<int:competition_id>/evaluation")
@login_required
def evaluate(competition_id: int):
    competition, evaluator = _for_panel(competition_id)
    bids = evaluation.in_the_running(competition)
    own = evaluation.evaluator_scores(competition, evaluator)
    scored_ids = {bid_id for (bid_id, _, _) in own}
    return render_template(
        "competitions/evaluation/evaluate.html",
        competition=competition,
        evaluator=evaluator,
        bids=bids,
        scored_ids=scored_ids,
        ready=evaluation.scoring_complete(competition, bids),
    )


@bp.route("/<int:competition_id>/evaluation/bids/<int:bid_id>", methods=["GET", "POST"])
@login_required
def score(competition_id: int, bid_id: int):
    competition, evaluator = _for_panel(competition_id)
    if not evaluator.declared_at:
        return redirect(url_for(".declare", competition_id=competition.id))
    if evaluator.has_conflict:
        abort(404)  # one with a conflict of interest reads no answers
    bid = _bid(competition, bid_id)
    questions = evaluation.scored_questions(competition)
    form = score_form(questions)
    own = evaluation.evaluator_scores(competition, evaluator)
    if not form.is_submitted():
        for question in questions:
            mine = own.get((bid.id, question.id, evaluator.id))
            if mine is not None:
                form[f"score_{question.id}"].data = str(mine.score)
                form[f"reason_{question.id}"].data = mine.reason

    def act():
        evaluation.score_bid(
            _user(),
            competition,
            bid.id,
            {
                q.id: ScoreEntry(form[f"score_{q.id}"].data, form[f"reason_{q.id}"].data or "")
                for q in questions
            },
        )

    if act_on_form(form, act, f"Your scores for {bid.organisation.name} are saved."):
        return redirect(url_for(".evaluate", competition_id=competition.id))
    return render_template(
        "competitions/evaluation/score.html",
        competition=competition,
        bid=bid,
        questions=questions,
        answers={a.question_id: a for a in bid.answers},
        form=form,
    )


def _bid(competition: Competition, bid_id: int) -> Bid:
    bid = db.session.get(Bid, bid_id)
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
        abort(404)
    return bid


# ---------------------------------------------------------------------------------------------
# Moderation


@bp.get("/<int:competition_id>/moderation")
@login_required
def moderation(competition_id: int):
    competition, evaluator = _for_panel(competition_id)
    bids = evaluation.in_the_running(competition)
    if not evaluation.scoring_complete(competition, bids):
        abort(404)
    moderated = evaluation.moderated_scores(competition)
    done = {b.id for b in bids if evaluation._moderated(competition, b, moderated)}
    return render_template(
        "competitions/evaluation/moderation.html",
        competition=competition,
        evaluator=evaluator,
        bids=bids,
        done=done,
        complete=evaluation.moderation_complete(competition, bids, moderated),
        form=ConfirmButtonForm(),
    )


@bp.route("/<int:competition_id>/moderation/bids/<int:bid_id>", methods=["GET", "POST"])
@login_required
def moderate(competition_id: int, bid_id: int):
    competition, evaluator = _for_panel(competition_id)
    if not evaluator.may_score or not evaluation.scoring_complete(competition):
        abort(404)
    bid = _bid(competition, bid_id)
    questions = list(competition.questions)
    form = score_form(questions, moderation=True)
    moderated = evaluation.moderated_scores(competition)
    if not form.is_submitted():
        for question in questions:
            agreed = moderated.get((bid.id, question.id))
            if agreed is None:
                continue
            if question.kind.scored:
                form[f"score_{question.id}"].data = str(agreed.score)
            else:
                form[f"passed_{question.id}"].data = "pass" if agreed.passed else "fail"
            form[f"reason_{question.id}"].data = agreed.reason

    def entry(question):
        reason = form[f"reason_{question.id}"].data or ""
        if question.kind.scored:
            return ModerationEntry(score=form[f"score_{question.id}"].data, reason=reason)
        passed = form[f"passed_{question.id}"].data
        return ModerationEntry(passed=None if not passed else passed == "pass", reason=reason)

    def act():
        evaluation.moderate_bid(_user(), competition, bid.id, {q.id: entry(q) for q in questions})

    if act_on_form(form, act, f"The agreed results for {bid.organisation.name} are saved."):
        return redirect(url_for(".moderation", competition_id=competition.id))
    scores = evaluation.evaluator_scores(competition)
    panel = [e for e in competition.evaluators if e.may_score]
    return render_template(
        "competitions/evaluation/moderate.html",
        competition=competition,
        bid=bid,
        questions=questions,
        answers={a.question_id: a for a in bid.answers},
        panel=panel,
        scores=scores,
        form=form,
    )


@bp.post("/<int:competition_id>/moderation/finish")
@login_required
def finish(competition_id: int):
    competition, _ = _for_panel(competition_id)
    act_on_click(
        ConfirmButtonForm(),
        lambda: evaluation.finish_evaluation(_user(), competition),
        "The bids are ranked. The buyer has been told.",
    )
    if competition.status is CompetitionStatus.EVALUATED:
        return redirect(url_for(".ranking", competition_id=competition.id))
    return redirect(url_for(".moderation", competition_id=competition.id))


# ---------------------------------------------------------------------------------------------
# Ranking, award, no award, CSV


@bp.get("/<int:competition_id>/ranking")
@login_required
def ranking(competition_id: int):
    competition = _overseen(competition_id)
    rows = evaluation.ranking_rows(competition)
    return render_template(
        "competitions/evaluation/ranking.html",
        competition=competition,
        rows=rows,
        questions=evaluation.scored_questions(competition),
        points=scoring.points,
        may_manage=permissions.can_manage(_user(), current_organisation(), competition),
        last_day=award_services.last_day_of_standstill(competition),
        standstill_over=competition.standstill_ends_at is not None
        and utcnow() >= competition.standstill_ends_at,
        form=ConfirmButtonForm(),
    )


@bp.route("/<int:competition_id>/award-decision", methods=["GET", "POST"])
@login_required
def award_decision(competition_id: int):
    competition = _managed(competition_id)
    if competition.status is not CompetitionStatus.EVALUATED or competition.award_decided_at:
        return redirect(url_for(".ranking", competition_id=competition.id))
    ranked = [r.bid for r in evaluation.ranking_rows(competition) if r.bid.rank]
    form = AwardDecisionForm()
    form.bid_id.choices = [
        SelectChoice(
            str(b.id),
            f"{b.organisation.name}: ranked {b.rank}, {scoring.points(b.total_score)} points",
        )
        for b in ranked
    ]
    if not form.is_submitted() and ranked:
        form.bid_id.data = str(ranked[0].id)

    def act():
        chosen = form.bid_id.data
        award_services.decide_award(
            _user(),
            current_organisation(),
            competition,
            int(chosen) if chosen and chosen.isdigit() else 0,
            form.reason.data or "",
        )

    if act_on_form(
        form,
        act,
        "The award decision is recorded. Every bidder has been sent its assessment summary.",
    ):
        return redirect(url_for(".ranking", competition_id=competition.id))
    return render_template(
        "competitions/evaluation/award_decision.html", competition=competition, form=form
    )


@bp.post("/<int:competition_id>/confirm-award")
@login_required
def confirm_award(competition_id: int):
    competition = _managed(competition_id)
    act_on_click(
        ConfirmButtonForm(),
        lambda: award_services.confirm_award(_user(), current_organisation(), competition),
        "The award is confirmed: the call-off has been placed.",
    )
    return redirect(url_for(".ranking", competition_id=competition.id))


@bp.route("/<int:competition_id>/no-award", methods=["GET", "POST"])
@login_required
def no_award(competition_id: int):
    competition = _managed(competition_id)
    form = NoAwardForm()

    def act():
        award_services.close_without_award(
            _user(), current_organisation(), competition, form.reason.data or ""
        )

    if act_on_form(
        form, act, "The competition is closed without award. Every invited provider has been told."
    ):
        return redirect(url_for(".ranking", competition_id=competition.id))
    return render_template(
        "competitions/evaluation/no_award.html", competition=competition, form=form
    )


@bp.get("/<int:competition_id>/scores.csv")
@login_required
def scores_csv(competition_id: int):
    competition = _overseen(competition_id)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "Bidder",
            "Status",
            "Criterion",
            "Weight",
            "Moderated score",
            "Maximum score",
            "Reason",
            "Weighted points",
            "Total points",
            "Rank",
        ]
    )
    questions = evaluation.scored_questions(competition)
    for row in evaluation.ranking_rows(competition):
        bid = row.bid
        common = [safe_cell(bid.organisation.name), bid.status.value]
        tail = [scoring.points(bid.total_score), bid.rank or ""]
        if bid.status is BidStatus.EXCLUDED:
            writer.writerow(
                [*common, "Excluded", "", "", "", safe_cell(bid.exclusion_reason), "", "", ""]
            )
            continue
        writer.writerow(
            [
                *common,
                "Price",
                competition.price_weight,
                "",
                "",
                competition.price_formula.label,
                scoring.points(bid.price_score),
                *tail,
            ]
        )
        for question in questions:
            agreed = row.moderated.get(question.id)
            writer.writerow(
                [
                    *common,
                    safe_cell(question.text),
                    question.weight,
                    "" if agreed is None else agreed.score,
                    question.max_score,
                    "" if agreed is None else safe_cell(agreed.reason),
                    scoring.points(row.by_question.get(question.id)),
                    *tail,
                ]
            )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f"attachment; filename={competition.reference or competition.id}-scores.csv"
        },
    )


# ---------------------------------------------------------------------------------------------
# The bidder's assessment summary


@bp.get("/<int:competition_id>/assessment-summary")
@login_required
def assessment_summary(competition_id: int):
    organisation = current_organisation()
    if organisation is None or not _user().roles_in(organisation) & permissions.PROVIDER_ROLES:
        abort(404)
    summary = db.session.scalar(
        sa.select(AssessmentSummary)
        .join(Bid, Bid.id == AssessmentSummary.bid_id)
        .where(
            AssessmentSummary.competition_id == competition_id,
            Bid.organisation_id == organisation.id,
        )
    )
    if summary is None:
        abort(404)
    return render_template(
        "competitions/evaluation/assessment_summary.html",
        competition=summary.competition,
        summary=summary,
        content=summary.content,
        points=scoring.points,
        last_day=award_services.last_day_of_standstill(summary.competition),
    )
