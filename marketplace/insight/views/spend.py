"""Spend and the voluntary sector's share: ``/insight/spend`` and ``/insight/vcse-share``, each
with its downloads at the same URL with ``?format=csv`` or ``?format=xlsx`` (and the same
filters). The authority sees every commissioner's spend, a commissioner its own; anyone else
gets 404. Filters are checked on the page (GOV.UK error summary, 400, and nothing shown as if
the filters were good). The numbers come from ``insight.queries.spend``, as the API's do."""

from __future__ import annotations

import csv
import io
from fractions import Fraction

from flask import Response, abort, current_app, render_template, request, url_for
from flask_login import login_required

from marketplace.accounts.session import current_organisation
from marketplace.catalogue.rate_cards import write_workbook
from marketplace.core.charts import Series, bar_chart, line_chart
from marketplace.core.clock import london_date
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.filters import pounds
from marketplace.insight.queries import spend as queries
from marketplace.insight.views import bp

FORMATS = ("csv", "xlsx")


def _scope() -> queries.Scope:
    scope = queries.report_scope(current_organisation())
    if scope is None:
        abort(404)
    return scope


def _format() -> str | None:
    value = request.args.get("format") or None
    if value is not None and value not in FORMATS:
        abort(404)
    return value


def _download(rows: list[list], stem: str, kind: str) -> Response:
    if kind == "csv":
        out = io.StringIO()
        csv.writer(out).writerows(rows)
        # UTF-8 with a byte order mark, so a spreadsheet program reads names as they are.
        return Response(
            out.getvalue().encode("utf-8-sig"),
            mimetype="text/csv",
            headers={"Content-Disposition": f"attachment; filename={stem}.csv"},
        )
    return Response(
        write_workbook([(stem[:31], rows)]),
        mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f"attachment; filename={stem}.xlsx"},
    )


def _stem(name: str, filters: queries.SpendFilters) -> str:
    parts = [name]
    if filters.period:
        parts.append(filters.period.code)
    if filters.funder_id is not None:
        parts.append(f"org{filters.funder_id}")
    return "-".join(parts)


def _percent(value) -> str:
    return f"{queries.format_percent(Fraction(value))}%"


def _pounds_axis(value: float) -> str:
    return f"£{value:,.0f}"


def _spend_chart(report: queries.SpendReport):
    grouping = report.filters.grouping
    lines = report.by_group
    return bar_chart(
        f"spend-by-{grouping.value.replace('_', '-')}",
        title=f"Spend by {grouping.label.lower()}",
        description=(
            f"Bars for committed, invoiced and paid spend for each "
            f"{grouping.label.lower()}; the table below the chart gives the figures."
        ),
        label_heading=grouping.label,
        labels=[line.label for line in lines],
        series=[
            Series("Committed", [Fraction(line.measures.committed, 100) for line in lines]),
            Series("Invoiced", [Fraction(line.measures.invoiced, 100) for line in lines]),
            Series("Paid", [Fraction(line.measures.paid, 100) for line in lines]),
        ],
        format_value=lambda v: pounds(int(Fraction(v) * 100)),
        axis_format=_pounds_axis,
        totals=[
            "Total",
            pounds(report.total.committed),
            pounds(report.total.invoiced),
            pounds(report.total.paid),
        ],
    )


@bp.get("/spend")
@login_required
def spend():
    """Spend by period and by region, PCC area, category, commissioner or provider type."""
    scope = _scope()
    kind = _format()
    today = london_date()
    choices = queries.filter_choices(scope, today)
    errors: dict[str, list[str]] = {}
    try:
        filters = queries.parse_filters(request.args, scope, today)
    except BusinessRuleViolation as error:
        errors, filters = error.errors, None
    if errors:
        if kind:
            abort(400)
        return render_template(
            "insight/spend.html",
            errors=errors,
            raw=request.args,
            scope=scope,
            organisation=current_organisation(),
            options=_options(scope, choices),
            selected=_selected(),
        ), 400
    # filter_choices brought the ledger up to date: once a request is enough.
    report = queries.spend_report(filters, caught_up=True)
    if kind:
        return _download(queries.spend_rows(report), _stem("spend", filters), kind)
    return render_template(
        "insight/spend.html",
        errors={},
        raw=request.args,
        filters=filters,
        report=report,
        chart=None if report.empty else _spend_chart(report),
        scope=scope,
        organisation=current_organisation(),
        options=_options(scope, choices),
        selected=_selected(),
        download_args=filters.args(),
    )


def _groupings(scope: queries.Scope) -> list[queries.Grouping]:
    return [g for g in queries.Grouping if scope.national or g is not queries.Grouping.FUNDER]


def _options(scope: queries.Scope, choices: queries.FilterChoices) -> dict[str, list]:
    """Each filter's (value, label) options; a half-year is shown under its year."""
    return {
        "period": [("", "All years")]
        + [
            (p.code, p.label if len(p.code) == 4 else f"{p.label} (half-year)")
            for p in choices.periods
        ],
        "region": [("", "All regions")] + [(o.value, o.label) for o in choices.regions],
        "category": [("", "All categories")] + [(o.value, o.label) for o in choices.categories],
        # A commissioner's only choice is itself (shown to it only to put a refused one right).
        "funder": [("", "All commissioners")] + [(o.value, o.label) for o in choices.funders]
        if scope.national
        else [("", "Your organisation")],
        "by": [(g.value, g.label) for g in _groupings(scope)],
        "interval": [(i.value, i.label) for i in queries.Interval],
    }


def _selected() -> dict[str, str]:
    selected = {k: request.args.get(k, "") for k in ("period", "region", "category", "funder")}
    selected["by"] = request.args.get("by") or queries.Grouping.REGION.value
    selected["interval"] = request.args.get("interval") or queries.Interval.YEAR.value
    return selected


def vcse_settings() -> tuple[int, int]:
    """The aim (whole per cent) and the first year of the two-year period, from the config."""
    return (
        int(current_app.config["VCSE_SHARE_AIM_PERCENT"]),
        int(current_app.config["VCSE_PERIOD_START_YEAR"]),
    )


def _share_value(share: queries.Share):
    return share.percent


def _short_half(code: str) -> str:
    """A half-year's label short enough for a chart's axis ("Apr to Sep 2025")."""
    year, half = int(code[:4]), code[-1]
    return f"Apr to Sep {year}" if half == "1" else f"Oct {year} to Mar {year + 1}"


def _vcse_chart(report: queries.VcseShareReport):
    halves = report.paid_halves
    return line_chart(
        "vcse-share-trend",
        title="The VCSE share of paid spend by half-year, against the aim",
        description=(
            f"A line for the share of paid spend that went to voluntary, community and social "
            f"enterprise providers in each half-year, one for the SME share, and a dashed line "
            f"for the aim of {report.aim_percent}%. The table below the chart gives the figures."
        ),
        label_heading="Half-year",
        labels=[_short_half(line.code) for line in halves],
        series=[
            Series("VCSE share", [_share_value(line.vcse_share) for line in halves]),
            Series("SME share", [_share_value(line.sme_share) for line in halves]),
            Series("Aim", [report.aim_percent for _ in halves], aim=True),
        ],
        format_value=_percent,
        axis_format=lambda v: f"{v:.0f}%",
        empty_text="No spend",
    )


@bp.get("/vcse-share")
@login_required
def vcse_share():
    """The VCSE (and SME) share of paid spend, of providers paid and of bids, against the aim."""
    scope = _scope()
    kind = _format()
    today = london_date()
    aim, start_year = vcse_settings()
    choices = queries.filter_choices(scope, today)
    try:
        filters = queries.parse_filters(request.args, scope, today, periods_only=True)
    except BusinessRuleViolation as error:
        if kind:
            abort(400)
        return render_template(
            "insight/vcse_share.html",
            errors=error.errors,
            aim=aim,
            raw=request.args,
            options=_options(scope, choices),
            selected=_selected(),
            scope=scope,
            organisation=current_organisation(),
        ), 400
    report = queries.vcse_share_report(filters, aim, start_year, today, caught_up=True)
    if kind:
        return _download(queries.vcse_rows(report), _stem("vcse-share", filters), kind)
    return render_template(
        "insight/vcse_share.html",
        errors={},
        aim=aim,
        raw=request.args,
        filters=filters,
        report=report,
        chart=_vcse_chart(report) if any(h.total for h in report.paid_halves) else None,
        options=_options(scope, choices),
        selected=_selected(),
        scope=scope,
        organisation=current_organisation(),
        download_args={"funder": filters.funder.value} if filters.funder else {},
        spend_url=url_for(
            "insight.spend", **({"funder": filters.funder.value} if filters.funder else {})
        ),
    )
