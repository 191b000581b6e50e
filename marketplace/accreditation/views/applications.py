"""A provider's application pages: start, task list, lots and areas, answers, partners, check and
submit, withdraw, see the decision and amend; and evidence downloads.

Provider administrators of the applicant organisation use them; anyone else holding another role
gets 403, and another organisation's application answers 404.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import selectinload

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.accreditation import queries, uploads
from marketplace.accreditation.forms.applications import (
    ClarificationAnswerForm,
    ConfirmForm,
    PartnersForm,
    ScopeForm,
    StartApplicationForm,
    SubmitApplicationForm,
    expiry_field_name,
    field_name,
    lot_answers_form,
    parse_day,
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
    EvidenceFile,
    LotDecision,
    QuestionType,
)
from marketplace.accreditation.permissions import can_apply, can_view_evidence
from marketplace.accreditation.services import applications as services
from marketplace.accreditation.services import assessment as assessment_services
from marketplace.accreditation.views import bp
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors
from marketplace.reference.models import PccArea

SCOPE_FIELDS = {"lots": "lot_ids", "regions": "region_ids", "pcc_areas": "pcc_area_ids"}
WITHDRAWABLE = (ApplicationStatus.DRAFT, ApplicationStatus.SUBMITTED)
DECIDED = (ApplicationStatus.ADMITTED, ApplicationStatus.REJECTED)

provider_admin_required = roles_required(Role.PROVIDER_ADMIN)


def _rule_errors(error: BusinessRuleViolation) -> dict[str, list[str]]:
    """A rule violation's messages for the error summary of a page without fields."""
    return {"": [message for messages in error.errors.values() for message in messages]}


def _applicant_organisation():
    organisation = current_organisation()
    if not can_apply(current_user, organisation):
        abort(403)
    return organisation


def _application_or_404(application_id: int) -> Application:
    """The application with everything its pages show, if the signed-in person may act on it."""
    application = db.session.scalar(
        sa.select(Application)
        .where(Application.id == application_id)
        .options(
            selectinload(Application.arrangement),
            selectinload(Application.organisation),
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
    if application is None or not can_apply(current_user, application.organisation):
        abort(404)
    return application


def _draft_or_redirect(application: Application):
    """Pages that change an application are for drafts; others go back to its summary."""
    if application.status != ApplicationStatus.DRAFT:
        flash("This application has been submitted, so it can no longer be changed.")
        return redirect(url_for("accreditation.application", application_id=application.id))
    return None


def _startable_arrangements():
    today = services.london_date()
    return [
        arrangement
        for arrangement in queries.live_arrangements()
        if arrangement.valid_from <= today <= arrangement.valid_to
    ]


def _sections(application: Application) -> list[dict]:
    """Each lot applied for with its questions in force and the answers given."""
    answers = {a.criterion_id: a for a in application.answers}
    sections = []
    for lot in services.chosen_lots(application):
        criteria = services.criteria_for(application, [lot])
        sections.append(
            {
                "lot": lot,
                "criteria": criteria,
                "answers": answers,
                "complete": all(
                    not c.mandatory or services.is_answered(answers.get(c.id)) for c in criteria
                ),
            }
        )
    return sections


# ---------------------------------------------------------------------------------------------
# List and start


@bp.get("/applications")
@provider_admin_required
def applications():
    organisation = _applicant_organisation()
    rows = db.session.scalars(
        sa.select(Application)
        .where(Application.organisation_id == organisation.id)
        .options(selectinload(Application.arrangement))
        .order_by(Application.id.desc())
    ).all()
    arrangements = _startable_arrangements()
    return render_template(
        "accreditation/applications/list.html",
        applications=rows,
        form=StartApplicationForm(arrangements=arrangements),
        arrangements=arrangements,
    )


@bp.post("/applications/start")
@provider_admin_required
def start_application():
    organisation = _applicant_organisation()
    arrangements = _startable_arrangements()
    form = StartApplicationForm(arrangements=arrangements)
    if form.validate_on_submit():
        arrangement = next(a for a in arrangements if a.id == form.arrangement_id.data)
        try:
            application = services.start_application(current_user, organisation, arrangement)
        except BusinessRuleViolation as error:
            rollback()
            apply_errors(form, BusinessRuleViolation(_rule_errors(error)))
        else:
            commit()
            return redirect(url_for("accreditation.application", application_id=application.id))
    rows = db.session.scalars(
        sa.select(Application)
        .where(Application.organisation_id == organisation.id)
        .order_by(Application.id.desc())
    ).all()
    return render_template(
        "accreditation/applications/list.html",
        applications=rows,
        form=form,
        arrangements=arrangements,
    )


# ---------------------------------------------------------------------------------------------
# The task list (a draft) or the summary and decision (once submitted)


@bp.get("/applications/<int:application_id>")
@provider_admin_required
def application(application_id: int):
    application = _application_or_404(application_id)
    sections = _sections(application)
    failed_answers = []
    if application.status in DECIDED:
        failed_answers = [a for a in application.answers if a.outcome == AnswerOutcome.FAIL]
    can_amend = application.status in DECIDED and any(
        al.decision == LotDecision.REJECTED for al in application.lots
    )
    return render_template(
        "accreditation/applications/show.html",
        application=application,
        sections=sections,
        scope_done=bool(application.lots and application.areas),
        ready=bool(application.lots and application.areas)
        and not services.missing_answers(application),
        failed_answers=failed_answers,
        can_withdraw=application.status in WITHDRAWABLE,
        clarifications=_clarifications(application),
        can_amend=can_amend,
        amend_form=ConfirmForm() if can_amend else None,
        errors=None,
    )


# ---------------------------------------------------------------------------------------------
# Lots and areas


@bp.route("/applications/<int:application_id>/scope", methods=["GET", "POST"])
@provider_admin_required
def application_scope(application_id: int):
    application = _application_or_404(application_id)
    if (response := _draft_or_redirect(application)) is not None:
        return response
    arrangement = application.arrangement
    region_ids = [r.id for r in arrangement.regions]
    pcc_areas = db.session.scalars(
        sa.select(PccArea)
        .where(PccArea.region_id.in_(region_ids))
        .options(selectinload(PccArea.region))
        .order_by(PccArea.name)
    ).all()
    form = ScopeForm(lots=arrangement.lots, regions=arrangement.regions, pcc_areas=pcc_areas)
    if request.method == "GET":
        form.process(
            data={
                "lot_ids": [al.lot_id for al in application.lots],
                "region_ids": [a.region_id for a in application.areas if a.region_id],
                "pcc_area_ids": [a.pcc_area_id for a in application.areas if a.pcc_area_id],
            }
        )
    if form.validate_on_submit():
        try:
            services.choose_lots_and_areas(
                current_user,
                application,
                form.lot_ids.data or [],
                form.region_ids.data or [],
                form.pcc_area_ids.data or [],
            )
        except BusinessRuleViolation as error:
            rollback()
            apply_errors(
                form,
                BusinessRuleViolation({SCOPE_FIELDS.get(k, k): v for k, v in error.errors.items()}),
            )
        else:
            commit()
            return redirect(url_for("accreditation.application", application_id=application.id))
    return render_template(
        "accreditation/applications/scope.html", form=form, application=application
    )


# ---------------------------------------------------------------------------------------------
# A lot's questions


def _initial_answers(criteria, answers: dict[int, Answer]) -> dict:
    data = {}
    for criterion in criteria:
        row = answers.get(criterion.id)
        if row is None:
            continue
        name = field_name(criterion)
        if criterion.type == QuestionType.YES_NO and row.value_bool is not None:
            data[name] = "yes" if row.value_bool else "no"
        elif criterion.type == QuestionType.TEXT:
            data[name] = row.value_text or ""
        elif criterion.type == QuestionType.NUMBER and row.value_number is not None:
            data[name] = str(row.value_number)
        elif criterion.type == QuestionType.DATE and row.value_date is not None:
            data[name] = row.value_date.isoformat()
        if criterion.type == QuestionType.FILE and row.evidence_expires_on:
            data[expiry_field_name(criterion)] = row.evidence_expires_on.isoformat()
    return data


def _save_answer(application: Application, form, criterion, existing: Answer | None) -> None:
    """Record what was entered for one question; a question left empty is left as it was."""
    field = form.answer_field(criterion)
    if criterion.type == QuestionType.FILE:
        expiry = form.expiry_field(criterion)
        expiry_text = (expiry.data or "").strip() if expiry is not None else ""
        expires_on = parse_day(expiry_text) if expiry_text else None
        upload = field.data
        if getattr(upload, "filename", None):
            evidence = uploads.store_evidence(
                current_user, application.organisation, upload.filename, upload.stream
            )
            services.answer(
                current_user, application, criterion, file=evidence, expires_on=expires_on
            )
        elif existing is not None and existing.file is not None:
            if expiry is not None and expires_on != existing.evidence_expires_on:
                services.answer(
                    current_user,
                    application,
                    criterion,
                    file=existing.file,
                    expires_on=expires_on,
                )
        elif expiry_text:
            raise BusinessRuleViolation({field_name(criterion): ["Upload a file as evidence"]})
        return
    value = field.data
    if criterion.type == QuestionType.YES_NO:
        if value in ("yes", "no"):
            services.answer(current_user, application, criterion, value == "yes")
        return
    if not (value or "").strip():
        return
    if criterion.type == QuestionType.DATE:
        value = parse_day(value)
    services.answer(current_user, application, criterion, value)


@bp.route("/applications/<int:application_id>/lots/<int:lot_id>", methods=["GET", "POST"])
@provider_admin_required
def application_lot(application_id: int, lot_id: int):
    application = _application_or_404(application_id)
    if (response := _draft_or_redirect(application)) is not None:
        return response
    lot = next((lot for lot in services.chosen_lots(application) if lot.id == lot_id), None)
    if lot is None:
        abort(404)
    criteria = services.criteria_for(application, [lot])
    answers = {a.criterion_id: a for a in application.answers}
    form = lot_answers_form(criteria)
    if request.method == "GET":
        form.process(data=_initial_answers(criteria, answers))
    if form.validate_on_submit():
        errors: dict[str, list[str]] = {}
        for criterion in criteria:
            try:
                _save_answer(application, form, criterion, answers.get(criterion.id))
            except BusinessRuleViolation as error:
                for key, messages in error.errors.items():
                    target = key if key.startswith("criterion-") else field_name(criterion)
                    errors.setdefault(target, []).extend(messages)
        if errors:
            rollback()
            apply_errors(form, BusinessRuleViolation(errors))
            application = _application_or_404(application_id)
            answers = {a.criterion_id: a for a in application.answers}
        else:
            commit()
            flash(f"Your answers for {lot.category.name} have been saved.", "success")
            return redirect(url_for("accreditation.application", application_id=application.id))
    return render_template(
        "accreditation/applications/lot.html",
        form=form,
        application=application,
        lot=lot,
        criteria=criteria,
        answers=answers,
    )


# ---------------------------------------------------------------------------------------------
# Partners


@bp.route("/applications/<int:application_id>/partners", methods=["GET", "POST"])
@provider_admin_required
def application_partners(application_id: int):
    application = _application_or_404(application_id)
    if (response := _draft_or_redirect(application)) is not None:
        return response
    form = PartnersForm()
    if request.method == "GET":
        form.process(data={"partners": application.partners})
    if form.validate_on_submit():
        try:
            services.set_partners(current_user, application, form.partners.data or "")
        except BusinessRuleViolation as error:
            rollback()
            apply_errors(form, error)
        else:
            commit()
            return redirect(url_for("accreditation.application", application_id=application.id))
    return render_template(
        "accreditation/applications/partners.html", form=form, application=application
    )


# ---------------------------------------------------------------------------------------------
# Check your answers and submit


@bp.route("/applications/<int:application_id>/check", methods=["GET", "POST"])
@provider_admin_required
def application_check(application_id: int):
    application = _application_or_404(application_id)
    if (response := _draft_or_redirect(application)) is not None:
        return response
    form = SubmitApplicationForm()
    if form.validate_on_submit():
        try:
            services.submit(current_user, application, declaration=bool(form.declaration.data))
        except BusinessRuleViolation as error:
            rollback()
            apply_errors(form, error)
            application = _application_or_404(application_id)
        else:
            commit()
            return redirect(
                url_for("accreditation.application_submitted", application_id=application.id)
            )
    return render_template(
        "accreditation/applications/check.html",
        form=form,
        application=application,
        sections=_sections(application),
    )


@bp.get("/applications/<int:application_id>/submitted")
@provider_admin_required
def application_submitted(application_id: int):
    application = _application_or_404(application_id)
    if application.submitted_at is None:
        return redirect(url_for("accreditation.application", application_id=application.id))
    return render_template("accreditation/applications/submitted.html", application=application)


# ---------------------------------------------------------------------------------------------
# Withdraw and amend


@bp.route("/applications/<int:application_id>/withdraw", methods=["GET", "POST"])
@provider_admin_required
def withdraw_application(application_id: int):
    application = _application_or_404(application_id)
    form = ConfirmForm()
    form.submit.label.text = "Withdraw application"
    errors = None
    if application.status not in WITHDRAWABLE:
        flash("Only a draft or submitted application can be withdrawn.")
        return redirect(url_for("accreditation.application", application_id=application.id))
    if form.validate_on_submit():
        try:
            services.withdraw(current_user, application)
        except BusinessRuleViolation as error:
            rollback()
            errors = _rule_errors(error)
            application = _application_or_404(application_id)
        else:
            commit()
            flash(f"Application {application.reference} has been withdrawn.", "success")
            return redirect(url_for("accreditation.applications"))
    return render_template(
        "accreditation/applications/withdraw.html",
        form=form,
        application=application,
        errors=errors or (form.errors or None),
    )


@bp.post("/applications/<int:application_id>/amend")
@provider_admin_required
def amend_application(application_id: int):
    application = _application_or_404(application_id)
    form = ConfirmForm()
    if form.validate_on_submit():
        try:
            new = services.amend_after_rejection(current_user, application)
        except BusinessRuleViolation as error:
            rollback()
            flash(" ".join(m for messages in error.errors.values() for m in messages))
        else:
            commit()
            flash(
                f"Application {new.reference} has been started from your rejected lots. "
                "Change your answers, then submit it again.",
                "success",
            )
            return redirect(url_for("accreditation.application", application_id=new.id))
    else:
        flash("The form has expired. Try again.")
    return redirect(url_for("accreditation.application", application_id=application_id))


# ---------------------------------------------------------------------------------------------
# Evidence downloads


@bp.get("/evidence/<int:evidence_id>")
@login_required
def evidence(evidence_id: int):
    """Send an evidence file to its organisation's people, assessors and the authority."""
    row = db.session.scalar(
        sa.select(EvidenceFile)
        .where(EvidenceFile.id == evidence_id)
        .options(selectinload(EvidenceFile.organisation))
    )
    if row is None or not can_view_evidence(current_user, row.organisation):
        abort(404)
    return uploads.evidence_download(row)


# ---------------------------------------------------------------------------------------------
# Clarification requests from the assessor


def _clarifications(application: Application) -> list[ClarificationRequest]:
    return list(
        db.session.scalars(
            sa.select(ClarificationRequest)
            .where(ClarificationRequest.application_id == application.id)
            .order_by(ClarificationRequest.asked_at)
        )
    )


@bp.route(
    "/applications/<int:application_id>/clarifications/<int:clarification_id>",
    methods=["GET", "POST"],
)
@provider_admin_required
def answer_clarification(application_id: int, clarification_id: int):
    application = _application_or_404(application_id)
    clarification = db.session.scalar(
        sa.select(ClarificationRequest).where(
            ClarificationRequest.id == clarification_id,
            ClarificationRequest.application_id == application.id,
        )
    )
    if clarification is None:
        abort(404)
    form = ClarificationAnswerForm()
    if clarification.answered_at is None and form.validate_on_submit():
        try:
            assessment_services.answer_clarification(current_user, clarification, form.answer.data)
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            flash("Your answer has been sent to the assessor", "success")
            return redirect(url_for("accreditation.application", application_id=application.id))
    return render_template(
        "accreditation/applications/clarification.html",
        application=application,
        clarification=clarification,
        form=form,
    )
