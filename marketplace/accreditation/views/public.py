"""Public pages, no sign-in: live arrangements, what they buy, their criteria and register of members.

Nothing here needs a session or shows personal data: the register lists organisations only.
"""

from __future__ import annotations

import csv
import io
import json

from flask import Blueprint, Response, abort, render_template, request, url_for

from marketplace.accounts.queries import page_number
from marketplace.accreditation import queries
from marketplace.accreditation.models import Arrangement, ArrangementStatus

bp = Blueprint("public_arrangements", __name__, template_folder="../templates")

REGISTER_PAGE_SIZE = 50
# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _published_or_404(arrangement_id: int, *, with_criteria: bool = True) -> Arrangement:
    arrangement = queries.get_arrangement(
        arrangement_id, published_only=True, with_criteria=with_criteria
    )
    if arrangement is None:
        abort(404)
    return arrangement


@bp.get("/arrangements")
def arrangements():
    return render_template(
        "accreditation/public/arrangements.html", arrangements=queries.live_arrangements()
    )


@bp.get("/arrangements/<int:arrangement_id>")
def arrangement(arrangement_id: int):
    arrangement = _published_or_404(arrangement_id)
    return render_template(
        "accreditation/public/arrangement.html",
        arrangement=arrangement,
        lots=[(lot, queries.criteria_in_force(lot)) for lot in arrangement.lots],
        accepting=arrangement.status == ArrangementStatus.LIVE,
    )


@bp.get("/arrangements/<int:arrangement_id>/register")
def register(arrangement_id: int):
    arrangement = _published_or_404(arrangement_id, with_criteria=False)
    lot = queries.lot_by_code(arrangement, request.args.get("lot"))
    region = queries.region_by_code(arrangement, request.args.get("region"))
    filters = {}
    if lot is not None:
        filters["lot"] = lot.category.code
    if region is not None:
        filters["region"] = region.code

    def url_for_page(n: int) -> str:
        return url_for(
            "public_arrangements.register", arrangement_id=arrangement.id, page=n, **filters
        )

    members = queries.register_page(
        arrangement,
        lot=lot,
        region=region,
        page=page_number(request.args.get("page")),
        per_page=REGISTER_PAGE_SIZE,
        url_for_page=url_for_page,
    )
    return render_template(
        "accreditation/public/register.html",
        arrangement=arrangement,
        members=members,
        url_for_page=url_for_page,
        selected_lot=lot,
        selected_region=region,
        filtered=bool(filters),
    )


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


@bp.get("/arrangements/<int:arrangement_id>/register.csv")
def register_csv(arrangement_id: int):
    arrangement = _published_or_404(arrangement_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(queries.REGISTER_COLUMNS)
    for membership in queries.register_rows(arrangement):
        record = queries.register_record(membership)
        writer.writerow([_csv_cell(_plain(record[name])) for name in queries.REGISTER_COLUMNS])
    return Response(
        buffer.getvalue(),
        mimetype="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="{arrangement.reference}-register.csv"'
        },
    )


def _plain(value):
    return value.isoformat() if hasattr(value, "isoformat") else value


@bp.get("/arrangements/<int:arrangement_id>/register.json")
def register_json(arrangement_id: int):
    arrangement = _published_or_404(arrangement_id)
    records = [
        {name: _plain(value) for name, value in queries.register_record(membership).items()}
        for membership in queries.register_rows(arrangement)
    ]
    return Response(json.dumps(records, ensure_ascii=False), mimetype="application/json")
