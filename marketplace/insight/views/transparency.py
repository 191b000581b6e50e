"""Transparency exports: an index of the exports the signed-in organisation can download, each
with its period (and, for the authority, the organisation), and each export's rows on a page
and as CSV. A commissioner sees only its own (another's is 404); the authority chooses any
commissioner; a provider may not use them."""

from __future__ import annotations

import math
from datetime import date, timedelta

from flask import Response, abort, render_template, request, url_for

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Organisation, OrganisationType, Role
from marketplace.accounts.queries import Page, page_number
from marketplace.accounts.session import current_organisation
from marketplace.core.clock import london_date
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.insight import exports
from marketplace.insight.queries import transparency as q
from marketplace.insight.views import bp
from marketplace.invoices.queries import half_year_of

ROLES = (Role.BUYER, Role.APPROVER, Role.AUTHORITY_ADMIN)
PER_PAGE = 50


def _viewer() -> Organisation:
    organisation = current_organisation()
    if organisation is None or not (organisation.is_commissioner or organisation.is_authority):
        abort(403)
    return organisation


def available(viewer: Organisation) -> list[exports.Export]:
    """The exports the organisation can download: the PCC's spend only for a PCC (and the
    authority, for any PCC)."""
    return [
        export
        for export in exports.EXPORTS.values()
        if not export.pcc_only or viewer.is_authority or viewer.type == OrganisationType.PCC
    ]


def _last_ended(export: exports.Export, today: date) -> str:
    """The period a form starts with: the last one that has ended."""
    if export.period_noun == "month":
        last = today.replace(day=1) - timedelta(days=1)
        return f"{last.year}-{last.month:02d}"
    if export.period_noun == "quarter":
        return q.quarter_of(q.quarter_of(today).start - timedelta(days=1)).code
    return half_year_of(today).previous().code


def _index(
    viewer: Organisation, errors: dict | None = None, values: dict | None = None, status=200
):
    today = london_date()
    forms = []
    for export in available(viewer):
        mine = (errors or {}).get(export.key, {})
        given = (values or {}).get(export.key, {})
        forms.append(
            {
                "export": export,
                "period": given.get("period", _last_ended(export, today)),
                "organisation": given.get("organisation", ""),
                "errors": mine,
                "choices": q.commissioners(export.pcc_only) if viewer.is_authority else [],
            }
        )
    summary = [
        (message, f"#{key}-{field}")
        for key, fields in (errors or {}).items()
        for field, messages in fields.items()
        for message in messages
    ]
    return render_template(
        "insight/transparency.html", viewer=viewer, forms=forms, summary=summary
    ), status


@bp.get("/transparency")
@roles_required(*ROLES)
def transparency():
    return _index(_viewer())


def _subject(viewer: Organisation, export: exports.Export) -> Organisation:
    raw = (request.args.get("organisation") or "").strip()
    if raw and (not raw.isdigit() or len(raw) > 12):
        raise NotFound("There is no commissioning organisation with that id")
    return q.export_subject(viewer, int(raw) if raw else None, pcc_only=export.pcc_only)


@bp.get("/transparency/<key>")
@roles_required(*ROLES)
def transparency_export(key: str):
    """One export's rows for a period: on a page, or as CSV with ``format=csv``. Bad input is
    answered on the index, beside the export's fields."""
    viewer = _viewer()
    export = exports.EXPORTS.get(key)
    if export is None or export not in available(viewer):
        abort(404)
    values = {
        key: {
            "period": (request.args.get("period") or "")[:20],
            "organisation": (request.args.get("organisation") or "")[:12],
        }
    }
    try:
        organisation = _subject(viewer, export)
        period = export.parse(request.args.get("period"), london_date())
    except NotFound:
        abort(404)
    except BusinessRuleViolation as error:
        return _index(viewer, {key: error.errors}, values, status=400)
    records = export.records(organisation, period)
    if request.args.get("format") == "csv":
        return Response(
            exports.csv_text(export, records).encode("utf-8"),
            mimetype="text/csv",
            headers={
                "Content-Disposition": "attachment; filename="
                + exports.filename(export, organisation, period)
            },
        )
    number = page_number(request.args.get("page"))
    pages = max(1, math.ceil(len(records) / PER_PAGE))
    number = min(number, pages)
    arguments = {"period": period.code}
    if viewer.is_authority:
        arguments["organisation"] = organisation.id
    page = Page(
        items=records[(number - 1) * PER_PAGE : number * PER_PAGE],
        page=number,
        per_page=PER_PAGE,
        total=len(records),
        url_for_page=lambda n: url_for("insight.transparency_export", key=key, page=n, **arguments),
    )
    return render_template(
        "insight/transparency_export.html",
        export=export,
        organisation=organisation,
        period=period,
        page=page,
        csv_url=url_for("insight.transparency_export", key=key, format="csv", **arguments),
    )
