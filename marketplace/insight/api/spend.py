"""Spend and the VCSE share as JSON: ``GET /api/v1/insight/spend`` and
``GET /api/v1/insight/vcse-share``, with the pages' filters as query parameters and the pages'
numbers (``insight.queries.spend``, one query function each).

Money is integer pence (VAT included). A share is an object ``{numerator, denominator,
percent}``: the exact fraction, and the percentage to one decimal place as a string ("12.5",
halves rounded up), ``null`` when the denominator is 0 (nothing paid: "no spend" on the page).
The authority's token sees every commissioner; a commissioner's its own; any other
organisation's gets 404. A filter naming what does not exist (or, for a commissioner, another
organisation) or a period not yet started answers 422 problem+json with the field named."""

from __future__ import annotations

import marshmallow as ma
from flask import current_app, g
from flask.views import MethodView

from marketplace.core.errors import NotFound
from marketplace.insight.api import blp
from marketplace.insight.queries import spend as queries

TEXT = {"validate": ma.validate.Length(max=queries.FILTER_MAX)}


class SpendQuerySchema(ma.Schema):
    period = ma.fields.String(
        metadata={
            "description": "A financial year (2026 is 2026-27), a half-year (2026-H1, 2026-H2) "
            "or a month (2026-05) that has started; all years if left out"
        },
        **TEXT,
    )
    region = ma.fields.String(metadata={"description": "A probation region's code"}, **TEXT)
    category = ma.fields.String(metadata={"description": "A service category's code"}, **TEXT)
    funder = ma.fields.String(
        metadata={
            "description": "The authority: one commissioning organisation's id. A commissioner "
            "may only name itself."
        },
        **TEXT,
    )
    by = ma.fields.String(
        validate=ma.validate.OneOf([g.value for g in queries.Grouping]),
        metadata={"description": "What to group by (a commissioner cannot group by funder)"},
    )
    interval = ma.fields.String(validate=ma.validate.OneOf([i.value for i in queries.Interval]))


class VcseShareQuerySchema(ma.Schema):
    funder = ma.fields.String(
        metadata={
            "description": "The authority: one commissioning organisation's id. A commissioner "
            "may only name itself."
        },
        **TEXT,
    )


class SpendMeasuresSchema(ma.Schema):
    committed = ma.fields.Integer(required=True, metadata={"description": "Pence"})
    invoiced = ma.fields.Integer(required=True, metadata={"description": "Pence"})
    paid = ma.fields.Integer(required=True, metadata={"description": "Pence"})


class SpendReportLineSchema(ma.Schema):
    period = ma.fields.String(allow_none=True)
    period_label = ma.fields.String(allow_none=True)
    key = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    measures = ma.fields.Nested(SpendMeasuresSchema, required=True)


class SpendFiltersSchema(ma.Schema):
    period = ma.fields.String(allow_none=True)
    region = ma.fields.String(allow_none=True)
    category = ma.fields.String(allow_none=True)
    funder = ma.fields.Integer(allow_none=True)
    by = ma.fields.String(required=True)
    interval = ma.fields.String(required=True)


class SpendReportSchema(ma.Schema):
    filters = ma.fields.Nested(SpendFiltersSchema, required=True)
    total = ma.fields.Nested(SpendMeasuresSchema, required=True)
    by_group = ma.fields.List(ma.fields.Nested(SpendReportLineSchema), required=True)
    by_period = ma.fields.List(ma.fields.Nested(SpendReportLineSchema), required=True)
    lines = ma.fields.List(ma.fields.Nested(SpendReportLineSchema), required=True)


class InsightShareSchema(ma.Schema):
    numerator = ma.fields.Integer(required=True)
    denominator = ma.fields.Integer(required=True)
    percent = ma.fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "To one decimal place; null when the denominator is 0"},
    )


class InsightShareLineSchema(ma.Schema):
    period = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    total = ma.fields.Integer(required=True)
    vcse = ma.fields.Integer(required=True)
    sme = ma.fields.Integer(required=True)
    vcse_share = ma.fields.Nested(InsightShareSchema, required=True)
    sme_share = ma.fields.Nested(InsightShareSchema, required=True)


class InsightBidLineSchema(ma.Schema):
    period = ma.fields.String(required=True)
    label = ma.fields.String(required=True)
    received = ma.fields.Nested(InsightShareLineSchema, required=True)
    won = ma.fields.Nested(InsightShareLineSchema, required=True)


class VcseShareReportSchema(ma.Schema):
    funder = ma.fields.Integer(allow_none=True)
    aim_percent = ma.fields.Integer(required=True)
    period_start_year = ma.fields.Integer(required=True)
    period_label = ma.fields.String(required=True)
    paid_years = ma.fields.List(
        ma.fields.Nested(InsightShareLineSchema),
        required=True,
        metadata={"description": "Paid spend (pence) per financial year"},
    )
    paid_period = ma.fields.Nested(InsightShareLineSchema, required=True)
    paid_halves = ma.fields.List(ma.fields.Nested(InsightShareLineSchema), required=True)
    providers_years = ma.fields.List(ma.fields.Nested(InsightShareLineSchema), required=True)
    providers_period = ma.fields.Nested(InsightShareLineSchema, required=True)
    bids_years = ma.fields.List(ma.fields.Nested(InsightBidLineSchema), required=True)
    bids_period = ma.fields.Nested(InsightBidLineSchema, required=True)


def _scope() -> queries.Scope:
    scope = queries.report_scope(g.organisation)
    if scope is None:
        raise NotFound("Only the authority and commissioning organisations have spend reports")
    return scope


def _line(line: queries.SpendLine) -> dict:
    return {
        "period": line.period.code if line.period else None,
        "period_label": line.period.label if line.period else None,
        "key": line.key,
        "label": line.label,
        "measures": line.measures.as_dict(),
    }


def spend_record(report: queries.SpendReport) -> dict:
    filters = report.filters
    return {
        "filters": {
            "period": filters.period.code if filters.period else None,
            "region": filters.region.value if filters.region else None,
            "category": filters.category.value if filters.category else None,
            "funder": filters.funder_id,
            "by": filters.grouping.value,
            "interval": filters.interval.value,
        },
        "total": report.total.as_dict(),
        "by_group": [_line(line) for line in report.by_group],
        "by_period": [_line(line) for line in report.by_period],
        "lines": [_line(line) for line in report.lines],
    }


def _share(share: queries.Share) -> dict:
    return {"numerator": share.part, "denominator": share.whole, "percent": share.percent_text}


def _share_line(line: queries.ShareLine, label: str | None = None) -> dict:
    return {
        "period": line.code,
        "label": label or line.label,
        "total": line.total,
        "vcse": line.vcse,
        "sme": line.sme,
        "vcse_share": _share(line.vcse_share),
        "sme_share": _share(line.sme_share),
    }


def _bid_line(line: queries.BidLine) -> dict:
    return {
        "period": line.code,
        "label": line.label,
        "received": _share_line(line.received, line.label),
        "won": _share_line(line.won, line.label),
    }


def vcse_record(report: queries.VcseShareReport) -> dict:
    return {
        "funder": report.filters.funder_id,
        "aim_percent": report.aim_percent,
        "period_start_year": report.period_start_year,
        "period_label": report.period_label,
        "paid_years": [_share_line(line) for line in report.paid_years],
        "paid_period": _share_line(report.paid_period),
        "paid_halves": [_share_line(line) for line in report.paid_halves],
        "providers_years": [_share_line(line) for line in report.providers_years],
        "providers_period": _share_line(report.providers_period),
        "bids_years": [_bid_line(line) for line in report.bids_years],
        "bids_period": _bid_line(report.bids_period),
    }


@blp.route("/insight/spend")
class SpendReport(MethodView):
    @blp.arguments(SpendQuerySchema, location="query")
    @blp.response(200, SpendReportSchema)
    def get(self, args):
        """Committed, invoiced and paid spend (pence) by period and group, with totals: the
        authority every commissioner's, a commissioner its own."""
        filters = queries.parse_filters(args, _scope())
        return spend_record(queries.spend_report(filters))


@blp.route("/insight/vcse-share")
class VcseShare(MethodView):
    @blp.arguments(VcseShareQuerySchema, location="query")
    @blp.response(200, VcseShareReportSchema)
    def get(self, args):
        """The VCSE and SME shares of paid spend, providers paid and further-competition bids,
        per financial year, for the two-year period and (paid spend) per half-year, with the
        aim."""
        filters = queries.parse_filters(args, _scope(), periods_only=True)
        return vcse_record(
            queries.vcse_share_report(
                filters,
                int(current_app.config["VCSE_SHARE_AIM_PERCENT"]),
                int(current_app.config["VCSE_PERIOD_START_YEAR"]),
            )
        )
