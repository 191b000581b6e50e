"""Transparency export endpoints: the same rows as the pages and the CSV downloads (one query
function each, ``marketplace.insight.exports``), as JSON or, with ``format=csv``, as CSV. A
commissioner's token reads its own exports (another organisation's is 404); the authority's
reads any commissioner's; a provider's may not (403). Bad input is problem+json."""

from __future__ import annotations

import marshmallow as ma
from flask import Response, abort, g
from flask.views import MethodView

from marketplace.accounts.models import Role
from marketplace.core.clock import london_date
from marketplace.core.errors import PermissionDenied
from marketplace.insight import exports
from marketplace.insight.api import blp
from marketplace.insight.queries import transparency as q

ROLES = {Role.BUYER, Role.APPROVER, Role.AUTHORITY_ADMIN}


class TransparencyQuerySchema(ma.Schema):
    period = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=20),
        metadata={
            "description": "A month (2026-04) for pcc-spend, a quarter of a financial year "
            "(2026-Q1 is April to June 2026) for contracts and large-payments, a six-month "
            "period (2026-H1) for payments-compliance; one that has ended or is under way"
        },
    )
    organisation = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=2**31 - 1),
        metadata={"description": "The commissioner (the authority's tokens only; required)"},
    )
    format = ma.fields.String(load_default="json", validate=ma.validate.OneOf(["json", "csv"]))


class TransparencyExportSchema(ma.Schema):
    export = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    organisation_id = ma.fields.Integer(required=True)
    organisation = ma.fields.String(required=True)
    period = ma.fields.String(required=True, metadata={"example": "2026-04"})
    period_start = ma.fields.Date(required=True)
    period_end = ma.fields.Date(required=True)
    columns = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.String()), required=True
    )
    rows = ma.fields.List(
        ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Raw(allow_none=True)),
        required=True,
        metadata={"description": "Money in pence (VAT included), percentages in tenths"},
    )


@blp.route("/insight/transparency/<string:key>")
class TransparencyExportItem(MethodView):
    @blp.arguments(TransparencyQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, TransparencyExportSchema)
    @blp.alt_response(
        200,
        description="The same rows as CSV, with the published column headings",
        content_type="text/csv",
        success=True,
    )
    def get(self, args, key):
        """One transparency export (pcc-spend, contracts, large-payments, payments-compliance)
        for a period: JSON, or CSV with `format=csv`."""
        viewer = g.organisation
        if not g.api_user.roles_in(viewer) & ROLES or not (
            viewer.is_commissioner or viewer.is_authority
        ):
            raise PermissionDenied("Only commissioners and the authority read transparency exports")
        export = exports.EXPORTS.get(key)
        if export is None:
            abort(404, "There is no such export")
        organisation = q.export_subject(viewer, args.get("organisation"), pcc_only=export.pcc_only)
        period = export.parse(args["period"], london_date())
        records = export.records(organisation, period)
        if args["format"] == "csv":
            return Response(
                exports.csv_text(export, records).encode("utf-8"),
                mimetype="text/csv",
                headers={
                    "Content-Disposition": "attachment; filename="
                    + exports.filename(export, organisation, period)
                },
            )
        return {
            "export": export.key,
            "title": export.title,
            "organisation_id": organisation.id,
            "organisation": organisation.name,
            "period": period.code,
            "period_start": period.start,
            "period_end": period.end,
            "columns": [{"key": c.key, "heading": c.heading} for c in export.columns],
            "rows": [exports.json_record(export, record) for record in records],
        }
