"""The authority's administration pages: organisations and the audit log."""

from __future__ import annotations

import json
from functools import wraps
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts import queries
from marketplace.accounts.forms.admin import (
    CREATABLE_TYPES,
    AuditFilterForm,
    OrganisationFilterForm,
    OrganisationForm,
    types_like,
)
from marketplace.accounts.forms.team import ConfirmForm
from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accounts.permissions import (
    can_manage_organisations,
    can_manage_team,
    can_view_audit,
)
from marketplace.accounts.services.organisations import (
    create_organisation,
    set_organisation_active,
    update_organisation,
)
from marketplace.accounts.views import bp
from marketplace.accounts.views.team import TEAM_PAGE_SIZE, rule_errors
from marketplace.core.db import commit
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.forms import parse_iso_date
from marketplace.core.views_helpers import apply_errors
from marketplace.reference.queries import all_pcc_areas, all_regions

ORGANISATIONS_PAGE_SIZE = 25
ORGANISATION_FILTERS = ("name", "type", "status")
AUDIT_FILTERS = (
    "action",
    "object_type",
    "object_id",
    "actor_email",
    "organisation_id",
    "date_from",
    "date_to",
)


def _allowed(predicate):
    """Sign-in required; anyone the predicate refuses gets 403."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not predicate(current_user):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


authority_admin_required = _allowed(can_manage_organisations)


def _organisation_or_404(organisation_id: int) -> Organisation:
    organisation = queries.get_organisation(organisation_id)
    if organisation is None:
        abort(404)
    return organisation


def _filter_args(names: tuple[str, ...]) -> dict[str, str]:
    """The filters in the query string that have a value, to keep them across pages."""
    return {name: request.args[name] for name in names if request.args.get(name)}


def _organisation_form(organisation: Organisation | None = None, **kwargs) -> OrganisationForm:
    types = types_like(organisation.type) if organisation else CREATABLE_TYPES
    return OrganisationForm(types=types, regions=all_regions(), pcc_areas=all_pcc_areas(), **kwargs)


def _organisation_details(form: OrganisationForm) -> dict[str, Any]:
    return {
        "name": form.name.data,
        "type": OrganisationType(form.type.data),
        "charity_number": form.charity_number.data or None,
        "companies_house_number": form.companies_house_number.data or None,
        "region_id": form.region_id.data,
        "pcc_area_id": form.pcc_area_id.data,
    }


@bp.get("/organisations")
@authority_admin_required
def organisations():
    form = OrganisationFilterForm(formdata=request.args)
    results = None
    if form.validate():
        args = _filter_args(ORGANISATION_FILTERS)
        status = form.status.data
        results = queries.organisations(
            type=OrganisationType(form.type.data) if form.type.data else None,
            active={"active": True, "inactive": False}.get(status),
            name=form.name.data or None,
            page=queries.page_number(request.args.get("page")),
            per_page=ORGANISATIONS_PAGE_SIZE,
            url_for_page=lambda n: url_for("accounts.organisations", page=n, **args),
        )
    return render_template(
        "accounts/organisations.html",
        form=form,
        results=results,
        counts=queries.organisation_counts(),
        filtered=bool(_filter_args(ORGANISATION_FILTERS)),
    )


@bp.route("/organisations/new", methods=["GET", "POST"])
@authority_admin_required
def new_organisation():
    form = _organisation_form()
    form.submit.label.text = "Create organisation"
    if form.validate_on_submit():
        try:
            organisation = create_organisation(current_user, **_organisation_details(form))
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            flash(f"{organisation.name} has been created. Invite its first people now.", "success")
            return redirect(url_for("accounts.organisation", organisation_id=organisation.id))
    return render_template("accounts/organisation_form.html", form=form, organisation=None)


@bp.get("/organisations/<int:organisation_id>")
@authority_admin_required
def organisation(organisation_id: int):
    organisation = _organisation_or_404(organisation_id)
    manage_team = can_manage_team(current_user, organisation)
    team_args = {"organisation_id": organisation.id}
    members = queries.team_members(
        organisation,
        queries.page_number(request.args.get("page")),
        TEAM_PAGE_SIZE,
        url_for_page=lambda n: url_for(
            "accounts.organisation", organisation_id=organisation.id, page=n
        ),
    )
    return render_template(
        "accounts/organisation.html",
        organisation=organisation,
        members=members,
        invitations=queries.pending_invitations(organisation) if manage_team else [],
        manage_team=manage_team,
        org_args=team_args,
    )


@bp.route("/organisations/<int:organisation_id>/edit", methods=["GET", "POST"])
@authority_admin_required
def edit_organisation(organisation_id: int):
    organisation = _organisation_or_404(organisation_id)
    form = _organisation_form(organisation, obj=organisation if request.method == "GET" else None)
    form.submit.label.text = "Save changes"
    if form.validate_on_submit():
        try:
            update_organisation(current_user, organisation, **_organisation_details(form))
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            flash(f"{organisation.name}'s details have been saved", "success")
            return redirect(url_for("accounts.organisation", organisation_id=organisation.id))
    return render_template("accounts/organisation_form.html", form=form, organisation=organisation)


def _set_active(organisation_id: int, active: bool):
    organisation = _organisation_or_404(organisation_id)
    if organisation.active == active:
        flash(f"{organisation.name} is already {'active' if active else 'inactive'}", "info")
        return redirect(url_for("accounts.organisation", organisation_id=organisation.id))
    form = ConfirmForm()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            set_organisation_active(current_user, organisation, active)
        except BusinessRuleViolation as error:
            errors = rule_errors(error)
        else:
            commit()
            flash(
                f"{organisation.name} has been {'reactivated' if active else 'deactivated'}",
                "success",
            )
            return redirect(url_for("accounts.organisation", organisation_id=organisation.id))
    return render_template(
        "accounts/organisation_active.html",
        organisation=organisation,
        form=form,
        active=active,
        errors=errors,
        page_has_errors=bool(errors),
    )


@bp.route("/organisations/<int:organisation_id>/deactivate", methods=["GET", "POST"])
@authority_admin_required
def deactivate_organisation(organisation_id: int):
    return _set_active(organisation_id, False)


@bp.route("/organisations/<int:organisation_id>/reactivate", methods=["GET", "POST"])
@authority_admin_required
def reactivate_organisation(organisation_id: int):
    return _set_active(organisation_id, True)


def pretty_json(value: Any) -> str:
    """Before/after values, indented for reading (the template escapes them)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@bp.get("/audit")
@_allowed(can_view_audit)
def audit_log():
    form = AuditFilterForm(
        formdata=request.args,
        object_types=queries.audit_object_types(),
        organisations=queries.all_organisations(),
    )
    events = None
    if form.validate():
        args = _filter_args(AUDIT_FILTERS)
        filters = queries.AuditFilters(
            action=form.action.data or None,
            object_type=form.object_type.data or None,
            object_id=form.object_id.data or None,
            actor_email=form.actor_email.data or None,
            organisation_id=form.organisation_id.data,
            date_from=parse_iso_date(form.date_from.data),
            date_to=parse_iso_date(form.date_to.data),
        )
        events = queries.audit_events(
            filters,
            queries.page_number(request.args.get("page")),
            url_for_page=lambda n: url_for("accounts.audit_log", page=n, **args),
        )
    return render_template(
        "accounts/audit_log.html",
        form=form,
        events=events,
        pretty_json=pretty_json,
        filtered=bool(_filter_args(AUDIT_FILTERS)),
    )
