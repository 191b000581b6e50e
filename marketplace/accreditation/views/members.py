"""The authority's member pages: the list of lot memberships, suspend, reinstate, remove, and
renewed self-declarations for one member or every member of a lot.

Authority admins use them; anyone else gets 403.
"""

from __future__ import annotations

from functools import wraps

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy.orm import aliased, contains_eager, selectinload

from marketplace.accounts.models import Organisation
from marketplace.accounts.permissions import can_view_audit
from marketplace.accounts.queries import page_number, paginate
from marketplace.accreditation import queries
from marketplace.accreditation.forms.assessment import (
    MEMBERSHIP_STATUS_LABELS,
    REMOVAL_REASON_LABELS,
    LotRedeclarationForm,
    MemberFilterForm,
    ReasonForm,
    RedeclarationForm,
    ReinstateForm,
    RemovalForm,
)
from marketplace.accreditation.models import (
    Arrangement,
    ArrangementLot,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
    RemovalReason,
)
from marketplace.accreditation.permissions import can_manage_memberships
from marketplace.accreditation.services import memberships as services
from marketplace.accreditation.views import bp
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.views_helpers import apply_errors
from marketplace.reference.models import PccArea, ProbationRegion, ServiceCategory
from marketplace.reference.queries import all_categories, all_regions

MEMBERS_PER_PAGE = 50


def membership_admin_required(view):
    """Sign-in required; anyone but an authority admin gets 403."""

    @wraps(view)
    @login_required
    def wrapped(*args, **kwargs):
        if not can_manage_memberships(current_user):
            abort(403)
        return view(*args, **kwargs)

    return wrapped


def _members_query(
    *,
    arrangement_id: int | None,
    category_code: str | None,
    region_code: str | None,
    status: MembershipStatus | None,
) -> sa.Select:
    """Lot memberships in every state, by organisation, with what the list shows (one statement)."""
    pcc_region = aliased(ProbationRegion)
    query = (
        sa.select(LotMembership)
        .join(LotMembership.arrangement)
        .join(LotMembership.lot)
        .join(ArrangementLot.category)
        .join(LotMembership.organisation)
        .outerjoin(LotMembership.region)
        .outerjoin(LotMembership.pcc_area)
        .outerjoin(pcc_region, pcc_region.id == PccArea.region_id)
        .options(
            contains_eager(LotMembership.arrangement),
            contains_eager(LotMembership.lot).contains_eager(ArrangementLot.category),
            contains_eager(LotMembership.organisation),
            contains_eager(LotMembership.region),
            contains_eager(LotMembership.pcc_area).contains_eager(PccArea.region, alias=pcc_region),
        )
        .order_by(Organisation.name, ServiceCategory.name, LotMembership.id)
    )
    if arrangement_id is not None:
        query = query.where(LotMembership.arrangement_id == arrangement_id)
    if category_code:
        query = query.where(ServiceCategory.code == category_code)
    if region_code:
        query = query.where(
            sa.or_(ProbationRegion.code == region_code, pcc_region.code == region_code)
        )
    if status is not None:
        query = query.where(LotMembership.status == status)
    return query


@bp.get("/members")
@membership_admin_required
def members():
    form = MemberFilterForm(
        formdata=request.args,
        arrangements=list(db.session.scalars(queries.arrangements_query())),
        categories=all_categories(),
        regions=all_regions(),
    )
    # Unknown filter values are ignored, not refused: this is a read-only page.
    valid: dict[str, str] = {}
    for name in ("arrangement", "lot", "region", "status"):
        field = getattr(form, name)
        value = field.data or ""
        if value not in {choice.value for choice in field.choices}:
            value = field.data = ""
        valid[name] = value
    query = _members_query(
        arrangement_id=int(valid["arrangement"]) if valid["arrangement"] else None,
        category_code=valid["lot"] or None,
        region_code=valid["region"] or None,
        status=MembershipStatus(valid["status"]) if valid["status"] else None,
    )
    filters = {k: v for k, v in valid.items() if v}

    def url_for_page(number: int) -> str:
        return url_for("accreditation.members", page=number, **filters)

    page = paginate(
        query, page_number(request.args.get("page")), MEMBERS_PER_PAGE, url_for_page=url_for_page
    )
    return render_template(
        "accreditation/members/list.html",
        filter_form=form,
        page_obj=page,
        url_for_page=url_for_page,
        status_labels=MEMBERSHIP_STATUS_LABELS,
        filtered=bool(filters),
    )


def _membership_or_404(membership_id: int) -> LotMembership:
    membership = db.session.scalar(
        sa.select(LotMembership)
        .where(LotMembership.id == membership_id)
        .options(
            selectinload(LotMembership.arrangement),
            selectinload(LotMembership.lot).selectinload(ArrangementLot.category),
            selectinload(LotMembership.organisation),
            selectinload(LotMembership.region),
            selectinload(LotMembership.pcc_area),
        )
    )
    if membership is None:
        abort(404)
    return membership


def _render_member(membership: LotMembership, *, error_form=None, **forms):
    requests = list(
        db.session.scalars(
            sa.select(RedeclarationRequest)
            .where(RedeclarationRequest.membership_id == membership.id)
            .order_by(RedeclarationRequest.requested_at.desc(), RedeclarationRequest.id.desc())
        )
    )
    return render_template(
        "accreditation/members/show.html",
        membership=membership,
        requests=requests,
        suspend_form=forms.get("suspend_form") or ReasonForm(formdata=None),
        reinstate_form=forms.get("reinstate_form") or ReinstateForm(formdata=None),
        redeclaration_form=forms.get("redeclaration_form") or RedeclarationForm(formdata=None),
        error_form=error_form,
        form=error_form,
        status_labels=MEMBERSHIP_STATUS_LABELS,
        removal_labels=REMOVAL_REASON_LABELS,
        audit_url=(
            url_for(
                "accounts.audit_log", object_type=membership.audit_type, object_id=membership.id
            )
            if can_view_audit(current_user)
            else None
        ),
    )


def _refuse(form, error: BusinessRuleViolation) -> None:
    rollback()
    apply_errors(form, error)


@bp.get("/members/<int:membership_id>")
@membership_admin_required
def member(membership_id: int):
    return _render_member(_membership_or_404(membership_id))


@bp.post("/members/<int:membership_id>/suspend")
@membership_admin_required
def suspend_member(membership_id: int):
    membership = _membership_or_404(membership_id)
    form = ReasonForm()
    if form.validate_on_submit():
        try:
            services.suspend(current_user, membership, form.reason.data or "")
        except BusinessRuleViolation as error:
            _refuse(form, error)
        else:
            commit()
            flash(f"{membership.organisation.name} has been suspended and told why.", "success")
            return redirect(url_for("accreditation.member", membership_id=membership.id))
    return _render_member(_membership_or_404(membership_id), error_form=form, suspend_form=form)


@bp.post("/members/<int:membership_id>/reinstate")
@membership_admin_required
def reinstate_member(membership_id: int):
    membership = _membership_or_404(membership_id)
    form = ReinstateForm()
    if form.validate_on_submit():
        try:
            services.reinstate(current_user, membership)
        except BusinessRuleViolation as error:
            _refuse(form, error)
        else:
            commit()
            flash(f"{membership.organisation.name} has been reinstated and told.", "success")
            return redirect(url_for("accreditation.member", membership_id=membership.id))
    return _render_member(_membership_or_404(membership_id), error_form=form, reinstate_form=form)


@bp.route("/members/<int:membership_id>/remove", methods=["GET", "POST"])
@membership_admin_required
def remove_member(membership_id: int):
    membership = _membership_or_404(membership_id)
    if membership.status == MembershipStatus.REMOVED:
        return redirect(url_for("accreditation.member", membership_id=membership.id))
    form = RemovalForm()
    if form.validate_on_submit():
        try:
            services.remove(
                current_user,
                membership,
                RemovalReason(form.reason_code.data),
                form.details.data or "",
            )
        except BusinessRuleViolation as error:
            _refuse(form, error)
            membership = _membership_or_404(membership_id)
        else:
            commit()
            flash(f"{membership.organisation.name} has been removed and told why.", "success")
            return redirect(url_for("accreditation.member", membership_id=membership.id))
    return render_template("accreditation/members/remove.html", membership=membership, form=form)


@bp.post("/members/<int:membership_id>/redeclaration")
@membership_admin_required
def request_member_redeclaration(membership_id: int):
    membership = _membership_or_404(membership_id)
    form = RedeclarationForm()
    if form.validate_on_submit():
        try:
            services.request_redeclaration(
                current_user, membership=membership, reason=form.reason.data or ""
            )
        except BusinessRuleViolation as error:
            _refuse(form, error)
        else:
            commit()
            flash("The provider has been asked to renew its self-declaration.", "success")
            return redirect(url_for("accreditation.member", membership_id=membership.id))
    return _render_member(
        _membership_or_404(membership_id), error_form=form, redeclaration_form=form
    )


@bp.route("/members/redeclaration", methods=["GET", "POST"])
@membership_admin_required
def request_lot_redeclaration():
    lots = list(
        db.session.scalars(
            sa.select(ArrangementLot)
            .join(ArrangementLot.arrangement)
            .join(ArrangementLot.category)
            .options(
                contains_eager(ArrangementLot.arrangement),
                contains_eager(ArrangementLot.category),
            )
            .order_by(Arrangement.name, ServiceCategory.name)
        )
    )
    form = LotRedeclarationForm(lots=lots)
    if request.method == "GET" and request.args.get("lot"):
        form.lot.data = request.args.get("lot")
    if form.validate_on_submit():
        lot = next((lot for lot in lots if str(lot.id) == form.lot.data), None)
        if lot is None:
            form.lot.errors = ["Select the lot"]
        else:
            try:
                sent = services.request_redeclaration(
                    current_user, lot=lot, reason=form.reason.data or ""
                )
            except BusinessRuleViolation as error:
                _refuse(form, error)
            else:
                commit()
                flash(
                    f"{len(sent)} member{'' if len(sent) == 1 else 's'} of {lot.category.name} "
                    "have been asked to renew their self-declaration.",
                    "success",
                )
                return redirect(url_for("accreditation.members"))
    return render_template("accreditation/members/lot_redeclaration.html", form=form)
