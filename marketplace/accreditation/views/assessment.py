"""The assessor's pages: the queue, the conflict-of-interest declaration, and assessing an application.

Assessors and authority admins use them (anyone else gets 403). An assessor declares whether they
have a conflict of interest before they can open an application; every mark, question, extension
and decision goes through the assessment services, whose refusals show in the error summary.
"""

from __future__ import annotations

from datetime import date
from functools import wraps

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from markupsafe import Markup
from sqlalchemy.orm import selectinload

from marketplace.accounts.queries import Page, page_number
from marketplace.accounts.session import current_organisation
from marketplace.accreditation.forms.assessment import (
    ClarificationForm,
    DecisionForm,
    DeclarationForm,
    ExtendDeadlineForm,
    MarkAnswerForm,
)
from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    Application,
    ApplicationArea,
    ApplicationLot,
    ApplicationStatus,
    ArrangementLot,
    ClarificationRequest,
    LotDecision,
)
from marketplace.accreditation.permissions import can_assess
from marketplace.accreditation.queries_assessment import assessment_queue, count_assessment_queue
from marketplace.accreditation.services import assessment as services
from marketplace.accreditation.services.applications import ASSESSABLE_STATUSES, criteria_for
from marketplace.accreditation.views import bp
from marketplace.core.cache import Topic, kept_page, page_cache
from marketplace.core.clock import london_date, working_days_between
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors

QUEUE_PER_PAGE = 25
# Applications an assessor may open: a draft is still the provider's own business.
VISIBLE_STATUSES = tuple(s for s in ApplicationStatus if s != ApplicationStatus.DRAFT)


def assessor_required(view):
    """Sign-in required; anyone but an assessor or an authority admin gets 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not can_assess(current_user):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def evidence_url(file_id: int) -> str:
    """The download link for an evidence file (the route belongs to the application pages)."""
    return url_for("accreditation.evidence", evidence_id=file_id)


def _application_or_404(application_id: int) -> Application:
    """A submitted (or later) application with everything its page shows, in a fixed few queries."""
    application = db.session.scalar(
        sa.select(Application)
        .where(Application.id == application_id, Application.status.in_(VISIBLE_STATUSES))
        .options(
            selectinload(Application.organisation),
            selectinload(Application.arrangement),
            selectinload(Application.lots)
            .selectinload(ApplicationLot.lot)
            .selectinload(ArrangementLot.category),
            selectinload(Application.lots)
            .selectinload(ApplicationLot.lot)
            .selectinload(ArrangementLot.criteria),
            selectinload(Application.areas).selectinload(ApplicationArea.region),
            selectinload(Application.areas).selectinload(ApplicationArea.pcc_area),
            selectinload(Application.answers).selectinload(Answer.file),
        )
    )
    if application is None:
        abort(404)
    return application


def _refuse(form, error: BusinessRuleViolation, field_names: dict[str, str] | None = None):
    rollback()
    field_names = field_names or {}
    apply_errors(
        form,
        BusinessRuleViolation({field_names.get(k, k): v for k, v in error.errors.items()}),
    )


# ---------------------------------------------------------------------------------------------
# The queue


@bp.get("/assessments")
@assessor_required
def assessments():
    page = page_number(request.args.get("page"))
    today = london_date()

    def render() -> str:
        # Every assessor sees the same queue; it changes when an application enters, leaves or
        # moves in it (each such change moves the queue's generation on:
        # marketplace/core/cache), and its "days left" change with the date.
        content = page_cache().fetch(
            Topic.ASSESSMENT_QUEUE, ("queue", today, page), lambda: _render_queue(today, page)
        )
        return render_template("accreditation/assessment/queue.html", content=content)

    # The whole page, header and all, for this assessor: assessors reload the queue all day.
    organisation = current_organisation()
    return kept_page(
        ("assessment-queue", current_user.id, organisation and organisation.id, today, page),
        [Topic.ASSESSMENT_QUEUE, Topic.PRINCIPALS],
        render,
    )


def _render_queue(today: date, page: int) -> Markup:
    total = count_assessment_queue()
    pages = max(1, -(-total // QUEUE_PER_PAGE))
    page = min(page, pages)
    entries = assessment_queue(today, limit=QUEUE_PER_PAGE, offset=(page - 1) * QUEUE_PER_PAGE)

    def url_for_page(number: int) -> str:
        return url_for("accreditation.assessments", page=number)

    return Markup(  # noqa: S704 (a rendered template, escaped by Jinja)
        render_template(
            "accreditation/assessment/_queue_content.html",
            entries=entries,
            page_obj=Page(
                items=entries,
                page=page,
                per_page=QUEUE_PER_PAGE,
                total=total,
                url_for_page=url_for_page,
            ),
            url_for_page=url_for_page,
        )
    )


# ---------------------------------------------------------------------------------------------
# Conflict of interest, before anything else


@bp.route("/assessments/<int:application_id>/declare", methods=["GET", "POST"])
@assessor_required
def declare_conflict(application_id: int):
    application = _application_or_404(application_id)
    declaration = services.declaration_of(current_user, application)
    if declaration is not None and not declaration.has_conflict:
        return redirect(url_for("accreditation.assess", application_id=application.id))
    form = DeclarationForm()
    if declaration is None and form.validate_on_submit():
        try:
            services.declare_conflict(
                current_user, application, form.has_conflict, form.details.data or ""
            )
            if not form.has_conflict:
                services.start_assessment(current_user, application)
        except BusinessRuleViolation as error:
            _refuse(form, error, {"conflict": "conflict", "status": "conflict"})
            application = _application_or_404(application_id)
        else:
            commit()
            if form.has_conflict:
                flash("Your conflict of interest has been recorded.", "success")
                return redirect(
                    url_for("accreditation.declare_conflict", application_id=application.id)
                )
            return redirect(url_for("accreditation.assess", application_id=application.id))
    return render_template(
        "accreditation/assessment/declare.html",
        application=application,
        declaration=declaration,
        form=form,
    )


# ---------------------------------------------------------------------------------------------
# Assessing an application


def _sections(application: Application) -> list[dict]:
    """Each lot applied for, with its criteria and the provider's answers to them."""
    answers = {answer.criterion_id: answer for answer in application.answers}
    return [
        {
            "application_lot": application_lot,
            "lot": application_lot.lot,
            "rows": [
                (criterion, answers.get(criterion.id))
                for criterion in criteria_for(application, [application_lot.lot])
            ],
        }
        for application_lot in application.lots
    ]


def _mark_form(answer: Answer, formdata=None) -> MarkAnswerForm:
    return MarkAnswerForm(
        formdata=formdata,
        prefix=f"answer-{answer.id}",
        data={
            "outcome": answer.outcome.value if answer.outcome else None,
            "comment": answer.assessor_comment,
        },
    )


def _render_assessment(
    application: Application,
    *,
    error_form=None,
    mark_forms: dict[int, MarkAnswerForm] | None = None,
    decision_forms: dict[int, DecisionForm] | None = None,
    clarification_form: ClarificationForm | None = None,
    extend_form: ExtendDeadlineForm | None = None,
):
    mark_forms = mark_forms or {}
    decision_forms = decision_forms or {}
    for answer in application.answers:
        mark_forms.setdefault(answer.id, _mark_form(answer))
    for application_lot in application.lots:
        decision_forms.setdefault(
            application_lot.lot_id,
            DecisionForm(formdata=None, prefix=f"lot-{application_lot.lot_id}"),
        )
    clarifications = list(
        db.session.scalars(
            sa.select(ClarificationRequest)
            .where(ClarificationRequest.application_id == application.id)
            .order_by(ClarificationRequest.asked_at, ClarificationRequest.id)
        )
    )
    today = london_date()
    return render_template(
        "accreditation/assessment/application.html",
        application=application,
        sections=_sections(application),
        mark_forms=mark_forms,
        decision_forms=decision_forms,
        clarification_form=clarification_form or ClarificationForm(formdata=None),
        extend_form=extend_form or ExtendDeadlineForm(formdata=None),
        clarifications=clarifications,
        error_form=error_form,
        form=error_form,
        open_for_assessment=application.status in ASSESSABLE_STATUSES,
        days_left=(
            working_days_between(today, application.decision_due_on)
            if application.decision_due_on
            else None
        ),
        evidence_url=evidence_url,
        LotDecision=LotDecision,
        AnswerOutcome=AnswerOutcome,
    )


def _declared_application_or_redirect(application_id: int):
    """The application, or a redirect to the declaration until the assessor has declared none."""
    application = _application_or_404(application_id)
    declaration = services.declaration_of(current_user, application)
    if declaration is None or declaration.has_conflict:
        return application, redirect(
            url_for("accreditation.declare_conflict", application_id=application.id)
        )
    return application, None


@bp.get("/assessments/<int:application_id>")
@assessor_required
def assess(application_id: int):
    application, redirection = _declared_application_or_redirect(application_id)
    if redirection is not None:
        return redirection
    return _render_assessment(application)


def _answer_or_404(application: Application, answer_id: int) -> Answer:
    answer = next((a for a in application.answers if a.id == answer_id), None)
    if answer is None:
        abort(404)
    return answer


@bp.post("/assessments/<int:application_id>/answers/<int:answer_id>")
@assessor_required
def mark_answer(application_id: int, answer_id: int):
    application, redirection = _declared_application_or_redirect(application_id)
    if redirection is not None:
        return redirection
    answer = _answer_or_404(application, answer_id)
    form = MarkAnswerForm(prefix=f"answer-{answer.id}")
    if form.validate_on_submit():
        try:
            services.mark_answer(
                current_user, answer, AnswerOutcome(form.outcome.data), form.comment.data or ""
            )
        except BusinessRuleViolation as error:
            _refuse(form, error, {f"answer-{answer.id}": "comment", "status": "outcome"})
        else:
            commit()
            flash("The mark has been saved.", "success")
            return redirect(
                url_for("accreditation.assess", application_id=application.id)
                + f"#answer-{answer.id}"
            )
    application = _application_or_404(application_id)
    return _render_assessment(application, error_form=form, mark_forms={answer_id: form})


@bp.post("/assessments/<int:application_id>/clarification")
@assessor_required
def request_clarification(application_id: int):
    application, redirection = _declared_application_or_redirect(application_id)
    if redirection is not None:
        return redirection
    form = ClarificationForm()
    if form.validate_on_submit():
        try:
            services.request_clarification(current_user, application, form.question.data or "")
        except BusinessRuleViolation as error:
            _refuse(form, error)
        else:
            commit()
            flash("Your question has been sent to the provider.", "success")
            return redirect(url_for("accreditation.assess", application_id=application.id))
    application = _application_or_404(application_id)
    return _render_assessment(application, error_form=form, clarification_form=form)


@bp.post("/assessments/<int:application_id>/extend")
@assessor_required
def extend_deadline(application_id: int):
    application, redirection = _declared_application_or_redirect(application_id)
    if redirection is not None:
        return redirection
    form = ExtendDeadlineForm()
    if form.validate_on_submit():
        try:
            services.extend_deadline(current_user, application, form.reason.data or "")
        except BusinessRuleViolation as error:
            _refuse(form, error)
        else:
            commit()
            flash("The deadline has been extended and the provider told.", "success")
            return redirect(url_for("accreditation.assess", application_id=application.id))
    application = _application_or_404(application_id)
    return _render_assessment(application, error_form=form, extend_form=form)


@bp.post("/assessments/<int:application_id>/lots/<int:lot_id>/decision")
@assessor_required
def decide_lot(application_id: int, lot_id: int):
    application, redirection = _declared_application_or_redirect(application_id)
    if redirection is not None:
        return redirection
    application_lot = next((al for al in application.lots if al.lot_id == lot_id), None)
    if application_lot is None:
        abort(404)
    form = DecisionForm(prefix=f"lot-{lot_id}")
    if form.validate_on_submit():
        try:
            services.decide_lot(
                current_user, application, application_lot.lot, form.admit, form.feedback.data or ""
            )
        except BusinessRuleViolation as error:
            _refuse(form, error, {"status": "decision", "lot": "decision"})
        else:
            commit()
            flash(f"Your decision on {application_lot.lot} has been saved.", "success")
            return redirect(url_for("accreditation.assess", application_id=application.id))
    application = _application_or_404(application_id)
    return _render_assessment(application, error_form=form, decision_forms={lot_id: form})
