"""Who is VCSE and SME, as of when: a provider's own classification (``/insight/classification``:
its administrators confirm or change it each year, its editors read it), and the authority's
list of every provider (``/insight/classifications``, with a CSV) and each provider's history,
where it corrects one with a date and a reason. The rules are in
``marketplace.accounts.services.classification``."""

from __future__ import annotations

import csv
import io

from flask import Response, abort, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts import queries as account_queries
from marketplace.accounts.forms.classification import (
    ChangeClassificationForm,
    ConfirmClassificationForm,
    CorrectClassificationForm,
)
from marketplace.accounts.models import Organisation
from marketplace.accounts.permissions import (
    can_confirm_classification,
    can_correct_classification,
    can_read_classification,
    is_authority_admin,
)
from marketplace.accounts.services.classification import (
    ClassificationAnswers,
    confirm_classification,
    correct_classification,
)
from marketplace.accounts.session import current_organisation
from marketplace.core.clock import london_date
from marketplace.core.forms import parse_day
from marketplace.core.views_helpers import act_on_form
from marketplace.insight.queries.classification import (
    CSV_HEADER,
    classification_query,
    classification_rows,
    csv_cells,
    parse_filters,
    to_row,
)
from marketplace.insight.views import bp

PER_PAGE = 50
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _own_provider() -> Organisation:
    """The signed-in person's current organisation, if it is a provider they may read for."""
    organisation = current_organisation()
    if organisation is None or not can_read_classification(current_user, organisation):
        abort(404)
    return organisation


def _history(organisation: Organisation) -> list:
    """Newest first: the entry in force today is not always the first (a correction dated in
    the past), so the page marks it."""
    return list(reversed(account_queries.classification_history(organisation.id)))


def _summary(organisation: Organisation) -> dict:
    today = london_date()
    current = account_queries.classifications_in_force([organisation.id], today).get(
        organisation.id
    )
    last = account_queries.last_confirmed_on(organisation.id)
    due = account_queries.confirmation_due_on(last)
    return {
        "current": current,
        "last_confirmed_on": last,
        "due_on": due,
        "overdue": due is None or due <= today,
        "history": _history(organisation),
    }


@bp.route("/classification", methods=["GET", "POST"])
@login_required
def classification():
    organisation = _own_provider()
    form = ConfirmClassificationForm()
    may_confirm = can_confirm_classification(current_user, organisation)
    if request.method == "POST":
        if not may_confirm:
            abort(403)
        if act_on_form(
            form,
            lambda: confirm_classification(current_user, organisation),
            "Classification confirmed. Thank you: we will ask again in a year.",
        ):
            return redirect(url_for("insight.classification"))
    return render_template(
        "insight/classification.html",
        organisation=organisation,
        form=form,
        may_confirm=may_confirm,
        **_summary(organisation),
    )


def _answers(form) -> ClassificationAnswers:
    return ClassificationAnswers(
        form.vcse_basis.data,
        form.staff_band.data,
        form.turnover_band.data,
        form.charity_number.data,
    )


def _prefill(form, organisation: Organisation) -> None:
    current = account_queries.classifications_in_force([organisation.id], london_date()).get(
        organisation.id
    )
    if current is not None:
        form.vcse_basis.data = current.vcse_basis.value
        form.staff_band.data = current.staff_band.value
        form.turnover_band.data = current.turnover_band.value


@bp.route("/classification/change", methods=["GET", "POST"])
@login_required
def change_classification():
    organisation = _own_provider()
    if not can_confirm_classification(current_user, organisation):
        abort(403)
    form = ChangeClassificationForm()
    if request.method == "GET":
        _prefill(form, organisation)
    if act_on_form(
        form,
        lambda: confirm_classification(current_user, organisation, _answers(form)),
        "Classification saved and confirmed. It applies from today.",
    ):
        return redirect(url_for("insight.classification"))
    return render_template(
        "insight/classification_change.html", organisation=organisation, form=form
    )


# ---------------------------------------------------------------------------------------------
# The authority


def _require_authority() -> None:
    if not is_authority_admin(current_user):
        abort(403)


def _safe(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in FORMULA_PREFIXES else text


@bp.get("/classifications")
@login_required
def classifications():
    _require_authority()
    today = london_date()
    filters, errors = parse_filters(request.args)
    if request.args.get("format") == "csv" and not errors:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_HEADER)
        writer.writerows(
            [_safe(cell) for cell in csv_cells(row)] for row in classification_rows(filters, today)
        )
        return Response(
            "\ufeff" + out.getvalue(),
            mimetype="text/csv; charset=utf-8",
            headers={"Content-Disposition": f"attachment; filename=classifications-{today}.csv"},
        )
    args = {
        k: v for k, v in request.args.items() if k in ("vcse", "sme", "unclassified", "overdue")
    }
    if errors:
        args = {k: v for k, v in args.items() if k not in errors}
    page = account_queries.paginate(
        classification_query(filters, today),
        account_queries.page_number(request.args.get("page")),
        PER_PAGE,
        url_for_page=lambda n: url_for("insight.classifications", page=n, **args),
        scalars=False,
    )
    page.items = [to_row(raw, today) for raw in page.items]
    return render_template(
        "insight/classifications.html",
        page=page,
        errors=errors,
        args=args,
        today=today,
        csv_url=url_for("insight.classifications", format="csv", **args),
    ), (400 if errors else 200)


@bp.route("/classifications/<int:organisation_id>", methods=["GET", "POST"])
@login_required
def classification_detail(organisation_id: int):
    _require_authority()
    organisation = account_queries.get_organisation(organisation_id)
    if organisation is None or not can_correct_classification(current_user, organisation):
        abort(404)
    form = CorrectClassificationForm()
    if request.method == "GET":
        _prefill(form, organisation)
    if act_on_form(
        form,
        lambda: correct_classification(
            current_user,
            organisation,
            _answers(form),
            effective_from=parse_day(form.effective_from.data),
            reason=form.reason.data,
        ),
        "Classification corrected. The provider's administrators have been told by email.",
    ):
        return redirect(url_for("insight.classification_detail", organisation_id=organisation.id))
    return render_template(
        "insight/classification_detail.html",
        organisation=organisation,
        form=form,
        **_summary(organisation),
    )
