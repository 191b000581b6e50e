"""The market map (``/insight/market``: public counts, a cell's details for signed-in
commissioners and the authority, the grid as CSV) and forward plans (``/insight/forward-plans``:
every published entry, public; ``/insight/forward-plans/yours``: a commissioner's own, with
adding, changing, publishing and withdrawing).

Views are thin: reads in ``insight.queries.market`` and ``insight.queries.forward_plan``, rules
in ``insight.services.forward_plan``. Another organisation's entry, and a region or lot that does
not exist, are 404."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from wtforms.fields.choices import SelectChoice

from marketplace.accounts.models import Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.core.clock import financial_year, financial_year_label, london_date
from marketplace.core.db import commit, rollback
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.views_helpers import act_on_form
from marketplace.insight.forward_plan_forms import PlanForm, PublishPlanForm, WithdrawPlanForm
from marketplace.insight.models import PlannedProcurement, PlanStatus
from marketplace.insight.queries import forward_plan as plan_queries
from marketplace.insight.queries import market as queries
from marketplace.insight.services import forward_plan as plans
from marketplace.insight.views import bp

PER_PAGE = 20


def _csv_safe(value: object) -> object:
    """A cell a spreadsheet will not run as a formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def can_see_cell_details(user, organisation) -> bool:
    """Signed-in commissioners (buyers and approvers) and the authority."""
    if not user.is_authenticated or organisation is None:
        return False
    roles = user.roles_in(organisation)
    return Role.AUTHORITY_ADMIN in roles or (
        organisation.type.is_commissioner and bool(roles & plans.PLANNER_ROLES)
    )


def _filters():
    """The region and lot asked for in the query string (unknown ones are 404)."""
    region = category = None
    if request.args.get("region"):
        region = queries.region_by_code(request.args["region"])
        if region is None:
            abort(404)
    if request.args.get("lot"):
        category = queries.category_by_code(request.args["lot"])
        if category is None:
            abort(404)
    return region, category


# ---------------------------------------------------------------------------------------------
# The market map


@bp.get("/market")
def market():
    region, category = _filters()
    gaps_only = request.args.get("gaps") == "yes"
    grid = queries.market_map(london_date(), region=region, category=category)
    sections = [
        (r, [cell for cell in cells if cell.gaps or not gaps_only]) for r, cells in grid.by_region()
    ]
    # Twelve regions of fifteen lots make a long page: a signed-in commissioner is offered a
    # link straight to its own region's section (only when that section is on the page).
    organisation = current_organisation() if current_user.is_authenticated else None
    own_region = next(
        (
            r
            for r, _ in sections
            if organisation is not None and organisation.region_id == r.id and region is None
        ),
        None,
    )
    return render_template(
        "insight/market.html",
        grid=grid,
        sections=sections,
        region=region,
        category=category,
        gaps_only=gaps_only,
        own_region=own_region,
        regions=queries.all_regions(),
        categories=queries.all_categories(),
        details=can_see_cell_details(current_user, current_organisation()),
    )


@bp.get("/market.csv")
def market_csv():
    region, category = _filters()
    grid = queries.market_map(london_date(), region=region, category=category)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "region_code",
            "region",
            "lot_code",
            "lot",
            "active_members",
            "published_listings",
            "capacity_free_units_next_3_months",
            "paid_pence_last_12_months",
            "gaps",
        ]
    )
    for cell in grid.rows():
        record = cell.record()
        writer.writerow(
            [
                _csv_safe(v)
                for v in (
                    record["region_code"],
                    record["region"],
                    record["lot_code"],
                    record["lot"],
                    record["active_members"],
                    record["published_listings"],
                    record["capacity_free"],
                    record["paid_pence"],
                    "; ".join(record["gaps"]),
                )
            ]
        )
    return Response(
        out.getvalue().encode("utf-8"),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="market-map-{grid.today}.csv"',
        },
    )


@bp.get("/market/<region_code>/<lot_code>")
@login_required
def market_cell(region_code: str, lot_code: str):
    organisation = current_organisation()
    if not can_see_cell_details(current_user, organisation):
        abort(404)
    region = queries.region_by_code(region_code)
    category = queries.category_by_code(lot_code)
    if region is None or category is None:
        abort(404)
    authority = Role.AUTHORITY_ADMIN in current_user.roles_in(organisation)
    details = queries.cell_details(
        london_date(), region, category, funder=None if authority else organisation
    )
    return render_template(
        "insight/market_cell.html", details=details, authority=authority, organisation=organisation
    )


# ---------------------------------------------------------------------------------------------
# Forward plans: the public list


@bp.get("/forward-plans")
def forward_plans():
    region, category = _filters()
    year = None
    raw_year = (request.args.get("year") or "").strip()
    if raw_year:
        if not raw_year.isdigit() or len(raw_year) != 4:
            abort(404)
        year = int(raw_year)
    organisation = current_organisation() if current_user.is_authenticated else None
    provider = organisation is not None and organisation.type.is_provider
    mine = provider and request.args.get("member") == "yes"
    query = plan_queries.published_query(
        category_id=category.id if category else None,
        region_id=region.id if region else None,
        year=year,
        member_id=organisation.id if mine else None,
    )
    args = {k: v for k, v in request.args.items() if k != "page" and v}
    results = paginate(
        query,
        page_number(request.args.get("page")),
        PER_PAGE,
        url_for_page=lambda n: url_for("insight.forward_plans", **args, page=n),
    )
    return render_template(
        "insight/forward_plans.html",
        results=results,
        region=region,
        category=category,
        year=year,
        mine=mine,
        provider=provider,
        can_apply=provider and Role.PROVIDER_ADMIN in current_user.roles_in(organisation),
        regions=queries.all_regions(),
        categories=queries.all_categories(),
        years=sorted({*plan_queries.published_years(), financial_year(london_date())}),
        quarter_label=plans.quarter_label,
        financial_year_label=financial_year_label,
    )


# ---------------------------------------------------------------------------------------------
# Forward plans: a commissioner's own


def _planner():
    organisation = current_organisation()
    if not plans.can_plan(current_user, organisation):
        abort(404)
    return organisation


def _own(plan_id: int) -> PlannedProcurement:
    try:
        return plans.owned_plan(current_user, current_organisation(), plan_id)
    except NotFound:
        abort(404)


def _fill_choices(form: PlanForm, organisation) -> None:
    regions, pccs = plans.plannable_areas(organisation)
    form.category_id.choices = [SelectChoice("", "Choose a lot")] + [
        SelectChoice(str(c.id), c.name) for c in plans.plannable_categories()
    ]
    form.area.choices = (
        [SelectChoice("", "Choose an area")]
        + [SelectChoice(f"region:{r.id}", f"{r.name} (region)") for r in regions]
        + [SelectChoice(f"pcc:{p.id}", f"{p.name} (PCC area)") for p in pccs]
    )
    this_year = financial_year(london_date())
    form.financial_year.choices = [SelectChoice("", "Choose a financial year")] + [
        SelectChoice(str(y), financial_year_label(y))
        for y in range(this_year, this_year + plans.YEARS_AHEAD + 1)
    ]


def _details(form: PlanForm) -> plans.PlanDetails:
    return plans.PlanDetails(
        title=form.title.data or "",
        description=form.description.data or "",
        category_id=form.category_id.data,
        area=form.area.data or "",
        route=form.route.data,
        value_band=form.value_band.data,
        financial_year=form.financial_year.data,
        quarter=form.quarter.data,
    )


@bp.get("/forward-plans/yours")
@login_required
def forward_plans_yours():
    organisation = _planner()
    results = paginate(
        plan_queries.own_query(organisation.id),
        page_number(request.args.get("page")),
        PER_PAGE,
        url_for_page=lambda n: url_for("insight.forward_plans_yours", page=n),
    )
    return render_template(
        "insight/forward_plans_yours.html",
        results=results,
        organisation=organisation,
        quarter_label=plans.quarter_label,
    )


@bp.route("/forward-plans/yours/new", methods=["GET", "POST"])
@login_required
def forward_plan_new():
    organisation = _planner()
    form = PlanForm()
    _fill_choices(form, organisation)
    created = []
    if act_on_form(
        form,
        lambda: created.append(
            plans.add_plan(current_user._get_current_object(), organisation, _details(form))
        ),
        "Planned procurement saved as a draft. Publish it when providers may see it.",
    ):
        return redirect(url_for("insight.forward_plan", plan_id=created[0].id))
    return render_template("insight/forward_plan_form.html", form=form, plan=None)


@bp.get("/forward-plans/yours/<int:plan_id>")
@login_required
def forward_plan(plan_id: int):
    plan = _own(plan_id)
    return render_template(
        "insight/forward_plan.html",
        plan=plan,
        when=plans.quarter_label(plan.financial_year, plan.quarter),
        PlanStatus=PlanStatus,
    )


@bp.route("/forward-plans/yours/<int:plan_id>/edit", methods=["GET", "POST"])
@login_required
def forward_plan_edit(plan_id: int):
    plan = _own(plan_id)
    if plan.status is not PlanStatus.DRAFT:
        return redirect(url_for("insight.forward_plan", plan_id=plan.id))
    form = PlanForm(
        data=None
        if request.method == "POST"
        else {
            "title": plan.title,
            "description": plan.description,
            "category_id": str(plan.category_id),
            "area": f"region:{plan.region_id}" if plan.region_id else f"pcc:{plan.pcc_area_id}",
            "route": plan.route.value,
            "value_band": plan.value_band.value,
            "financial_year": str(plan.financial_year),
            "quarter": str(plan.quarter),
        }
    )
    _fill_choices(form, plan.organisation)
    if act_on_form(
        form,
        lambda: plans.edit_plan(current_user._get_current_object(), plan, _details(form)),
        "Planned procurement changed.",
    ):
        return redirect(url_for("insight.forward_plan", plan_id=plan.id))
    return render_template("insight/forward_plan_form.html", form=form, plan=plan)


@bp.route("/forward-plans/yours/<int:plan_id>/publish", methods=["GET", "POST"])
@login_required
def forward_plan_publish(plan_id: int):
    plan = _own(plan_id)
    form = PublishPlanForm()
    refusals: list[str] = []
    if form.validate_on_submit():
        try:
            plans.publish_plan(current_user._get_current_object(), plan)
            commit()
        except TransitionConflict as conflict:
            rollback()
            flash(" ".join(m for ms in conflict.errors.values() for m in ms), "error")
            return redirect(url_for("insight.forward_plan", plan_id=plan.id))
        except BusinessRuleViolation as refusal:
            # What to change is on the entry's edit page: the error summary links there.
            rollback()
            refusals = [m for messages in refusal.errors.values() for m in messages]
        else:
            flash(
                "Planned procurement published. The lot's members in its area have been told.",
                "success",
            )
            return redirect(url_for("insight.forward_plan", plan_id=plan.id))
    elif plan.status is not PlanStatus.DRAFT:
        return redirect(url_for("insight.forward_plan", plan_id=plan.id))
    return render_template(
        "insight/forward_plan_publish.html",
        form=form,
        plan=plan,
        refusals=refusals,
        page_has_errors=bool(refusals),
        when=plans.quarter_label(plan.financial_year, plan.quarter),
        told=len(plans.providers_to_tell(plan)),
    ), (422 if refusals else 200)


@bp.route("/forward-plans/yours/<int:plan_id>/withdraw", methods=["GET", "POST"])
@login_required
def forward_plan_withdraw(plan_id: int):
    plan = _own(plan_id)
    form = WithdrawPlanForm()
    if act_on_form(
        form,
        lambda: plans.withdraw_plan(current_user._get_current_object(), plan, form.reason.data),
        "Planned procurement withdrawn.",
    ):
        return redirect(url_for("insight.forward_plan", plan_id=plan.id))
    if plan.status is PlanStatus.WITHDRAWN and request.method == "GET":
        return redirect(url_for("insight.forward_plan", plan_id=plan.id))
    return render_template("insight/forward_plan_withdraw.html", form=form, plan=plan)
