"""Clarification pages: an invited provider asks (``ask_question``); the buyer, funders, panel and
authority see every question with who asked (``clarifications``), the lead buyer answers one
(``answer_clarification``), and sees what waits for an answer in all its competitions
(``questions_to_answer``, linked from its home page)."""

from __future__ import annotations

from flask import abort, redirect, render_template, url_for
from flask_login import current_user, login_required

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.competitions import permissions
from marketplace.competitions.forms.bids import AnswerForm, QuestionForm
from marketplace.competitions.models import Clarification, CompetitionStatus
from marketplace.competitions.services import clarifications as services
from marketplace.competitions.services.common import is_invited
from marketplace.competitions.views import bp, visible_competition
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.views_helpers import act_on_form


@bp.route("/<int:competition_id>/questions/ask", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def ask_question(competition_id: int):
    competition = visible_competition(competition_id)
    organisation = current_organisation()
    if competition.status is CompetitionStatus.DRAFT or not is_invited(competition, organisation):
        abort(404)
    form = QuestionForm()
    deadline = competition.clarification_deadline or competition.bid_deadline
    if act_on_form(
        form,
        lambda: services.ask_clarification(
            current_user._get_current_object(), organisation, competition, form.question.data
        ),
        "Your question is sent. The answer will be published to every invited provider, "
        "without your name.",
    ):
        return redirect(url_for("competitions.bid", competition_id=competition.id))
    return render_template(
        "competitions/ask_question.html",
        form=form,
        competition=competition,
        deadline=deadline,
        open=competition.status is CompetitionStatus.PUBLISHED
        and deadline is not None
        and utcnow() < deadline,
    ), (422 if form.errors else 200)


@bp.get("/<int:competition_id>/clarifications")
@login_required
def clarifications(competition_id: int):
    competition = visible_competition(competition_id)
    organisation = current_organisation()
    if not permissions.can_oversee(current_user, organisation, competition):
        abort(404)
    return render_template(
        "competitions/clarifications.html",
        competition=competition,
        questions=services.questions_for_buyer(competition),
        can_answer=permissions.can_manage(current_user, organisation, competition)
        and competition.status is CompetitionStatus.PUBLISHED,
    )


@bp.route(
    "/<int:competition_id>/clarifications/<int:clarification_id>/answer", methods=["GET", "POST"]
)
@roles_required(Role.BUYER, Role.APPROVER)
def answer_clarification(competition_id: int, clarification_id: int):
    competition = visible_competition(competition_id)
    organisation = current_organisation()
    clarification = db.session.get(Clarification, clarification_id)
    if (
        clarification is None
        or clarification.competition_id != competition.id
        or not permissions.can_manage(current_user, organisation, competition)
    ):
        abort(404)
    form = AnswerForm()
    if act_on_form(
        form,
        lambda: services.answer_clarification(
            current_user._get_current_object(), organisation, clarification, form.answer.data
        ),
        "Answer published to every invited provider, without the name of who asked.",
    ):
        return redirect(url_for("competitions.clarifications", competition_id=competition.id))
    return render_template(
        "competitions/answer_clarification.html",
        form=form,
        competition=competition,
        clarification=clarification,
    ), (422 if form.errors else 200)


@bp.get("/questions")
@roles_required(Role.BUYER, Role.APPROVER)
def questions_to_answer():
    organisation = current_organisation()
    return render_template(
        "competitions/questions_to_answer.html",
        questions=services.unanswered_for_buyer(organisation.id),
        organisation=organisation,
    )
