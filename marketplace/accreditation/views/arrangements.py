"""The authority's arrangement pages: list, create, view, edit, criteria per lot, status changes."""

from __future__ import annotations

from functools import wraps

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accreditation import queries
from marketplace.accreditation.forms.arrangements import (
    ArrangementForm,
    CriterionForm,
    LotForm,
    TransitionForm,
    pence_to_pounds,
)
from marketplace.accreditation.models import (
    ARRANGEMENT_TRANSITIONS,
    Arrangement,
    ArrangementStatus,
    QuestionType,
)
from marketplace.accreditation.permissions import can_manage_arrangements
from marketplace.accreditation.services import arrangements as services
from marketplace.accreditation.views import bp
from marketplace.core.db import commit, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors
from marketplace.reference.queries import all_categories, all_regions

# Service error keys that name a form field differently.
FIELD_NAMES = {"direct_award_limit_pence": "direct_award_limit", "lots": "category_ids"}


def arrangement_admin_required(view):
    """Sign-in required; anyone but an authority admin gets 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not can_manage_arrangements(current_user):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _arrangement_or_404(arrangement_id: int) -> Arrangement:
    arrangement = queries.get_arrangement(arrangement_id)
    if arrangement is None:
        abort(404)
    return arrangement


def _refused(form, error: BusinessRuleViolation) -> None:
    rollback()
    apply_errors(
        form,
        BusinessRuleViolation({FIELD_NAMES.get(k, k): v for k, v in error.errors.items()}),
    )


def _arrangement_form(**kwargs) -> ArrangementForm:
    return ArrangementForm(regions=all_regions(), categories=all_categories(), **kwargs)


@bp.get("/arrangements")
@arrangement_admin_required
def arrangements():
    return render_template(
        "accreditation/arrangements/list.html",
        arrangements=list(queries.db.session.scalars(queries.arrangements_query())),
    )


@bp.route("/arrangements/new", methods=["GET", "POST"])
@arrangement_admin_required
def new_arrangement():
    form = _arrangement_form()
    form.submit.label.text = "Create arrangement"
    if form.validate_on_submit():
        try:
            arrangement = services.create_arrangement(
                current_user,
                **form.details(),
                region_ids=form.region_ids.data or [],
                lots=[(category_id, "") for category_id in form.category_ids.data or []],
            )
        except BusinessRuleViolation as error:
            _refused(form, error)
        else:
            commit()
            flash(f"{arrangement.name} has been created. Add each lot's questions next.", "success")
            return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement.id))
    return render_template("accreditation/arrangements/form.html", form=form, arrangement=None)


@bp.get("/arrangements/<int:arrangement_id>")
@arrangement_admin_required
def arrangement(arrangement_id: int):
    arrangement = _arrangement_or_404(arrangement_id)
    return render_template(
        "accreditation/arrangements/show.html",
        arrangement=arrangement,
        lots=[(lot, queries.criteria_in_force(lot)) for lot in arrangement.lots],
        allowed=sorted(ARRANGEMENT_TRANSITIONS[arrangement.status]),
    )


@bp.route("/arrangements/<int:arrangement_id>/edit", methods=["GET", "POST"])
@arrangement_admin_required
def edit_arrangement(arrangement_id: int):
    arrangement = _arrangement_or_404(arrangement_id)
    if arrangement.status == ArrangementStatus.CLOSED:
        abort(404)
    form = _arrangement_form()
    if request.method == "GET":
        form.process(
            data={
                "name": arrangement.name,
                "reference": arrangement.reference,
                "description": arrangement.description,
                "legal_regime": arrangement.legal_regime.value,
                "valid_from": arrangement.valid_from.isoformat(),
                "valid_to": arrangement.valid_to.isoformat(),
                "direct_award_limit": pence_to_pounds(arrangement.direct_award_limit_pence),
                "award_limit_scope": arrangement.award_limit_scope.value,
                "decision_period_days": str(arrangement.decision_period_days),
                "extended_period_days": str(arrangement.extended_period_days),
                "region_ids": [r.id for r in arrangement.regions],
                "category_ids": [lot.category_id for lot in arrangement.lots],
            }
        )
    if form.validate_on_submit():
        try:
            _save_changes(arrangement, form)
        except BusinessRuleViolation as error:
            _refused(form, error)
            arrangement = _arrangement_or_404(arrangement_id)
        else:
            commit()
            flash("The arrangement has been saved.", "success")
            return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement.id))
    return render_template(
        "accreditation/arrangements/form.html", form=form, arrangement=arrangement
    )


def _save_changes(arrangement: Arrangement, form: ArrangementForm) -> None:
    services.update_arrangement(current_user, arrangement, **form.details())
    wanted_regions = set(form.region_ids.data or [])
    current_regions = {r.id: r for r in arrangement.regions}
    wanted_lots = set(form.category_ids.data or [])
    current_lots = {lot.category_id: lot for lot in arrangement.lots}
    scope_changes = wanted_regions != set(current_regions) or wanted_lots != set(current_lots)
    if not scope_changes:
        return
    for region_id in sorted(wanted_regions - set(current_regions)):
        services.add_region(current_user, arrangement, region_id)
    for region_id in sorted(set(current_regions) - wanted_regions):
        services.remove_region(current_user, arrangement, current_regions[region_id])
    for category_id in sorted(wanted_lots - set(current_lots)):
        services.add_lot(current_user, arrangement, category_id)
    for category_id in sorted(set(current_lots) - wanted_lots):
        services.remove_lot(current_user, current_lots[category_id])


@bp.route("/arrangements/<int:arrangement_id>/status", methods=["GET", "POST"])
@arrangement_admin_required
def arrangement_status(arrangement_id: int):
    arrangement = _arrangement_or_404(arrangement_id)
    allowed = sorted(ARRANGEMENT_TRANSITIONS[arrangement.status])
    if not allowed:
        abort(404)
    form = TransitionForm(allowed=allowed)
    if form.validate_on_submit():
        try:
            services.change_arrangement_status(
                current_user, arrangement, ArrangementStatus(form.status.data), form.reason.data
            )
        except BusinessRuleViolation as error:
            _refused(form, error)
            arrangement = _arrangement_or_404(arrangement_id)
        else:
            commit()
            flash(f"{arrangement.name} is now {arrangement.status.value}.", "success")
            return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement.id))
    return render_template(
        "accreditation/arrangements/status.html", form=form, arrangement=arrangement
    )


# ---------------------------------------------------------------------------------------------
# Criteria


def _lot_or_404(arrangement_id: int, lot_id: int):
    arrangement = _arrangement_or_404(arrangement_id)
    lot = queries.get_lot(arrangement, lot_id)
    if lot is None:
        abort(404)
    return arrangement, lot


def _criterion_page(form, arrangement, lot, criterion=None):
    return render_template(
        "accreditation/arrangements/criterion_form.html",
        form=form,
        arrangement=arrangement,
        lot=lot,
        criterion=criterion,
        versioning=arrangement.status != ArrangementStatus.PENDING,
    )


@bp.route("/arrangements/<int:arrangement_id>/lots/<int:lot_id>", methods=["GET", "POST"])
@arrangement_admin_required
def edit_lot(arrangement_id: int, lot_id: int):
    arrangement, lot = _lot_or_404(arrangement_id, lot_id)
    form = LotForm(obj=lot)
    if form.validate_on_submit():
        try:
            services.update_lot(current_user, lot, form.description.data)
        except BusinessRuleViolation as error:
            _refused(form, error)
        else:
            commit()
            flash(f"The description of {lot.category.name} has been saved.", "success")
            return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement_id))
    return render_template(
        "accreditation/arrangements/lot_form.html", form=form, arrangement=arrangement, lot=lot
    )


@bp.route(
    "/arrangements/<int:arrangement_id>/lots/<int:lot_id>/criteria/new", methods=["GET", "POST"]
)
@arrangement_admin_required
def new_criterion(arrangement_id: int, lot_id: int):
    arrangement, lot = _lot_or_404(arrangement_id, lot_id)
    form = CriterionForm()
    if request.method == "GET":
        form.process(data={"mandatory": "yes", "pass_fail": "yes", "type": QuestionType.YES_NO})
    if form.validate_on_submit():
        try:
            services.add_criterion(current_user, lot, **form.values())
        except BusinessRuleViolation as error:
            _refused(form, error)
            arrangement, lot = _lot_or_404(arrangement_id, lot_id)
        else:
            commit()
            flash("The question has been added.", "success")
            return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement_id))
    return _criterion_page(form, arrangement, lot)


def _criterion_or_404(arrangement_id: int, lot_id: int, criterion_id: int):
    arrangement, lot = _lot_or_404(arrangement_id, lot_id)
    criterion = queries.get_criterion(lot, criterion_id)
    if criterion is None or not criterion.in_force(arrangement.criteria_version):
        abort(404)
    return arrangement, lot, criterion


@bp.route(
    "/arrangements/<int:arrangement_id>/lots/<int:lot_id>/criteria/<int:criterion_id>",
    methods=["GET", "POST"],
)
@arrangement_admin_required
def edit_criterion(arrangement_id: int, lot_id: int, criterion_id: int):
    arrangement, lot, criterion = _criterion_or_404(arrangement_id, lot_id, criterion_id)
    form = CriterionForm()
    if request.method == "GET":
        yes_no = {True: "yes", False: "no", None: None}
        form.process(
            data={
                "question": criterion.question,
                "guidance": criterion.guidance,
                "type": criterion.type.value,
                "mandatory": yes_no[criterion.mandatory],
                "pass_fail": yes_no[criterion.pass_fail],
                "pass_answer": yes_no[criterion.pass_answer],
                "evidence_expires": criterion.evidence_expires,
            }
        )
    if form.validate_on_submit():
        try:
            services.update_criterion(current_user, criterion, **form.values())
        except BusinessRuleViolation as error:
            _refused(form, error)
            arrangement, lot, criterion = _criterion_or_404(arrangement_id, lot_id, criterion_id)
        else:
            commit()
            flash("The question has been saved.", "success")
            return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement_id))
    return _criterion_page(form, arrangement, lot, criterion)


@bp.post("/arrangements/<int:arrangement_id>/lots/<int:lot_id>/criteria/<int:criterion_id>/retire")
@arrangement_admin_required
def retire_criterion(arrangement_id: int, lot_id: int, criterion_id: int):
    arrangement, lot, criterion = _criterion_or_404(arrangement_id, lot_id, criterion_id)
    form = CriterionForm()
    try:
        services.retire_criterion(current_user, criterion)
    except BusinessRuleViolation as error:
        _refused(form, error)
        form.question.data = criterion.question
        return _criterion_page(form, *_criterion_or_404(arrangement_id, lot_id, criterion_id))
    commit()
    flash("The question has been removed.", "success")
    return redirect(url_for("accreditation.arrangement", arrangement_id=arrangement_id))
