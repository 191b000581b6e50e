"""Budget and standing-authorisation pages. Views are thin: the rules are in
``marketplace.funding.services``; a budget or authorisation of another organisation is 404.

- an approver sets a budget (``new_budget``), sees it with its history (``budget``) and raises or
  lowers it with a reason (``change_budget``); buyers see the same pages read-only, and the
  organisation's budgets are listed at ``orders.budgets``;
- the authority sees every organisation's budgets (``all_budgets``), read-only;
- a co-funder's approvers give, change and revoke standing authorisations, and a lead buyer sees
  the ones it holds (``authorisations``).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Organisation, Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.core.clock import financial_year_label
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.forms import parse_whole_number
from marketplace.core.money import pounds_or_none
from marketplace.core.views_helpers import act_on_form
from marketplace.funding import permissions, queries, services
from marketplace.funding.forms import (
    AuthorisationForm,
    BudgetFilterForm,
    BudgetForm,
    ChangeAuthorisationForm,
    ChangeBudgetForm,
    RevokeAuthorisationForm,
    year_choices,
)
from marketplace.orders.models import Budget, FundingAuthorisation
from marketplace.reference.models import ServiceCategory

bp = Blueprint("funding", __name__, template_folder="templates")

READERS = (Role.BUYER, Role.APPROVER)
PER_PAGE = 25

# The services name amounts in pence; the forms ask for pounds under other names.
_BUDGET_FIELDS = {"allocated_pence": "allocated"}
_AUTHORISATION_FIELDS = {
    "per_call_off_limit_pence": "per_call_off",
    "annual_limit_pence": "annual",
}


def _organisation() -> Organisation:
    organisation = current_organisation()
    if organisation is None:
        abort(403)
    return organisation


def _renamed(act, names: dict[str, str]):
    """``act``, with the services' field names in its refusals turned into the form's."""

    def run():
        try:
            return act()
        except BusinessRuleViolation as error:
            error.errors = {names.get(k, k): v for k, v in error.errors.items()}
            raise

    return run


def _year_label(year: int) -> str:
    return financial_year_label(year)


# ---------------------------------------------------------------------------------------------
# Budgets


def _budget(budget_id: int) -> Budget:
    budget = db.session.get(Budget, budget_id)
    if budget is None or not permissions.can_see_budget(
        current_user, current_organisation(), budget
    ):
        abort(404)
    return budget


@bp.route("/budgets/new", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def new_budget():
    organisation = _organisation()
    if not permissions.can_manage_money(current_user, organisation):
        abort(403)
    form = BudgetForm()
    form.financial_year.choices = year_choices(services.open_years(), _year_label)
    form.category_id.choices = [SelectChoice("", "All services")] + [
        SelectChoice(str(c.id), c.name)
        for c in db.session.scalars(sa.select(ServiceCategory).order_by(ServiceCategory.name))
    ]
    created: list[Budget] = []

    def act():
        created.append(
            services.create_budget(
                current_user,
                organisation,
                services.NewBudget(
                    financial_year=parse_whole_number(form.financial_year.data),
                    category_id=parse_whole_number(form.category_id.data),
                    allocated_pence=pounds_or_none(form.allocated.data),
                    reason=form.reason.data or "",
                ),
            )
        )

    if act_on_form(
        form, _renamed(act, _BUDGET_FIELDS), "Budget set. Your other approvers have been told."
    ):
        return redirect(url_for("funding.budget", budget_id=created[0].id))
    return render_template("funding/new_budget.html", form=form, organisation=organisation), (
        422 if form.errors else 200
    )


@bp.get("/budgets/<int:budget_id>")
@roles_required(*READERS, Role.AUTHORITY_ADMIN)
def budget(budget_id: int):
    budget = _budget(budget_id)
    return render_template(
        "funding/budget.html",
        budget=budget,
        name=services.budget_name(budget),
        history=queries.budget_history(budget.id),
        can_change=permissions.can_change_budget(current_user, current_organisation(), budget),
        authority=permissions.is_authority(current_user, current_organisation()),
    )


@bp.route("/budgets/<int:budget_id>/change", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def change_budget(budget_id: int):
    budget = _budget(budget_id)
    if not permissions.can_change_budget(current_user, current_organisation(), budget):
        abort(403)
    form = ChangeBudgetForm()
    if request.method == "GET":
        form.expected.data = str(budget.allocated_pence)
    act = _renamed(
        lambda: services.change_budget(
            current_user,
            budget,
            pounds_or_none(form.allocated.data),
            form.reason.data,
            expected_allocated_pence=parse_whole_number(form.expected.data, max_digits=12),
        ),
        _BUDGET_FIELDS,
    )
    if act_on_form(form, act, "Budget changed. Your other approvers have been told."):
        # Changed, or refused because someone else changed it first (its message flashed):
        # either way the budget page shows where it stands.
        return redirect(url_for("funding.budget", budget_id=budget.id))
    budget = db.session.get(Budget, budget_id)
    return render_template(
        "funding/change_budget.html",
        form=form,
        budget=budget,
        name=services.budget_name(budget),
    ), (422 if form.errors else 200)


@bp.get("/budgets/all")
@roles_required(Role.AUTHORITY_ADMIN)
def all_budgets():
    """Every organisation's budgets, for the authority: read-only, filtered, paginated."""
    form = BudgetFilterForm(formdata=request.args)
    organisations = queries.commissioners()
    form.organisation.choices = [SelectChoice("", "All organisations")] + [
        SelectChoice(str(o.id), o.name) for o in organisations
    ]
    form.year.choices = [SelectChoice("", "All years")] + year_choices(
        queries.budget_years(), _year_label
    )
    results = None
    if form.validate():
        filters = queries.BudgetFilters(
            organisation_id=parse_whole_number(form.organisation.data),
            financial_year=parse_whole_number(form.year.data),
        )
        args = {
            key: value
            for key, value in (("organisation", form.organisation.data), ("year", form.year.data))
            if value
        }
        results = paginate(
            queries.budgets_query(filters),
            page_number(request.args.get("page")),
            PER_PAGE,
            url_for_page=lambda n: url_for("funding.all_budgets", page=n, **args),
        )
    return render_template(
        "funding/all_budgets.html",
        form=form,
        results=results,
        filtered=bool(form.organisation.data or form.year.data),
    ), (200 if results is not None else 400)


# ---------------------------------------------------------------------------------------------
# Standing authorisations


def _authorisation(authorisation_id: int) -> FundingAuthorisation:
    authorisation = db.session.get(FundingAuthorisation, authorisation_id)
    if authorisation is None or not permissions.can_see_authorisation(
        current_user, current_organisation(), authorisation
    ):
        abort(404)
    return authorisation


@bp.get("/funding-authorisations")
@roles_required(*READERS)
def authorisations():
    organisation = _organisation()
    return render_template(
        "funding/authorisations.html",
        organisation=organisation,
        given=queries.authorisations_given(organisation.id),
        held=queries.authorisations_held(organisation.id),
        can_manage=permissions.can_manage_money(current_user, organisation),
    )


@bp.route("/funding-authorisations/new", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def new_authorisation():
    organisation = _organisation()
    if not permissions.can_manage_money(current_user, organisation):
        abort(403)
    form = AuthorisationForm()
    form.lead_buyer_id.choices = [SelectChoice("", "Choose an organisation")] + [
        SelectChoice(str(o.id), o.name) for o in queries.commissioners(excluding=organisation.id)
    ]
    form.financial_year.choices = year_choices(services.open_years(), _year_label)
    created: list[FundingAuthorisation] = []

    def act():
        created.append(
            services.create_authorisation(
                current_user,
                organisation,
                services.NewAuthorisation(
                    lead_buyer_id=parse_whole_number(form.lead_buyer_id.data),
                    financial_year=parse_whole_number(form.financial_year.data),
                    per_call_off_limit_pence=pounds_or_none(form.per_call_off.data),
                    annual_limit_pence=pounds_or_none(form.annual.data),
                ),
            )
        )

    if act_on_form(form, _renamed(act, _AUTHORISATION_FIELDS), "Standing authorisation set up."):
        authorisation = created[0]
        return redirect(url_for("funding.authorisation", authorisation_id=authorisation.id))
    return render_template(
        "funding/new_authorisation.html", form=form, organisation=organisation
    ), (422 if form.errors else 200)


@bp.get("/funding-authorisations/<int:authorisation_id>")
@roles_required(*READERS, Role.AUTHORITY_ADMIN)
def authorisation(authorisation_id: int):
    authorisation = _authorisation(authorisation_id)
    return render_template(
        "funding/authorisation.html",
        authorisation=authorisation,
        year=financial_year_label(authorisation.financial_year),
        can_change=permissions.can_change_authorisation(
            current_user, current_organisation(), authorisation
        ),
    )


@bp.route("/funding-authorisations/<int:authorisation_id>/change", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def change_authorisation(authorisation_id: int):
    authorisation = _authorisation(authorisation_id)
    if not permissions.can_change_authorisation(
        current_user, current_organisation(), authorisation
    ):
        abort(403)
    form = ChangeAuthorisationForm()
    if request.method == "GET":
        form.per_call_off.data = f"{authorisation.per_call_off_limit_pence / 100:.2f}"
        form.annual.data = f"{authorisation.annual_limit_pence / 100:.2f}"
    act = _renamed(
        lambda: services.change_authorisation(
            current_user,
            authorisation,
            pounds_or_none(form.per_call_off.data),
            pounds_or_none(form.annual.data),
            form.reason.data,
        ),
        _AUTHORISATION_FIELDS,
    )
    if act_on_form(form, act, "Standing authorisation changed. The lead buyer has been told."):
        return redirect(url_for("funding.authorisation", authorisation_id=authorisation.id))
    authorisation = db.session.get(FundingAuthorisation, authorisation_id)
    return render_template(
        "funding/change_authorisation.html",
        form=form,
        authorisation=authorisation,
        year=financial_year_label(authorisation.financial_year),
    ), (422 if form.errors else 200)


@bp.route("/funding-authorisations/<int:authorisation_id>/revoke", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def revoke_authorisation(authorisation_id: int):
    authorisation = _authorisation(authorisation_id)
    if not permissions.can_change_authorisation(
        current_user, current_organisation(), authorisation
    ):
        abort(403)
    form = RevokeAuthorisationForm()
    act = lambda: services.revoke_authorisation(  # noqa: E731
        current_user, authorisation, form.reason.data
    )
    if act_on_form(
        form,
        act,
        "Standing authorisation revoked. Call-offs it already funded stay funded; the lead "
        "buyer has been told.",
    ):
        return redirect(url_for("funding.authorisation", authorisation_id=authorisation.id))
    authorisation = db.session.get(FundingAuthorisation, authorisation_id)
    return render_template(
        "funding/revoke_authorisation.html",
        form=form,
        authorisation=authorisation,
        year=financial_year_label(authorisation.financial_year),
    ), (422 if form.errors else 200)
