"""Public pages, no sign-in: live arrangements, what they buy, their criteria and register of members.

Nothing here needs a session or shows personal data: the register lists organisations only.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from flask import Blueprint, Response, abort, render_template, request, url_for
from markupsafe import Markup

from marketplace.accounts.queries import page_number
from marketplace.accreditation import queries
from marketplace.accreditation.models import Arrangement, ArrangementStatus
from marketplace.core.cache import Topic, page_cache

bp = Blueprint("public_arrangements", __name__, template_folder="../templates")

REGISTER_PAGE_SIZE = 50
# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# A UTF-8 byte order mark: without it Excel reads a CSV file as Windows-1252, and a Welsh name
# or an en dash ("Cymorth Adferiad Môn – Ynys") comes out garbled. CSV readers that know UTF-8
# skip it (Python's "utf-8-sig", LibreOffice, Google Sheets); the JSON download has none.
UTF8_BOM = "\ufeff"


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


@dataclass(frozen=True)
class RegisterView:
    """A rendered register page: the same for everyone until the register changes."""

    arrangement_id: int
    arrangement_name: str
    content: Markup


def _filter_code(raw: str | None) -> str:
    # Normalised here as the lookups do, so "acc" and "ACC " share one cached page.
    return (raw or "").strip().upper()[:40]


@bp.get("/arrangements/<int:arrangement_id>/register")
def register(arrangement_id: int):
    lot_code = _filter_code(request.args.get("lot"))
    region_code = _filter_code(request.args.get("region"))
    page = page_number(request.args.get("page"))
    # The register changes only when members, organisations or the arrangement do, and each
    # such change moves the register's generation on (see marketplace/core/cache).
    view = page_cache().fetch(
        Topic.REGISTER,
        ("register", arrangement_id, lot_code, region_code, page),
        lambda: _render_register(arrangement_id, lot_code, region_code, page),
    )
    if view is None:
        abort(404)
    return render_template("accreditation/public/register.html", view=view)


def _render_register(
    arrangement_id: int, lot_code: str, region_code: str, page: int
) -> RegisterView | None:
    arrangement = queries.get_arrangement(arrangement_id, published_only=True, with_criteria=False)
    if arrangement is None:
        return None
    lot = queries.lot_by_code(arrangement, lot_code)
    region = queries.region_by_code(arrangement, region_code)
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
        page=page,
        per_page=REGISTER_PAGE_SIZE,
        url_for_page=url_for_page,
    )
    content = render_template(
        "accreditation/public/_register_content.html",
        arrangement=arrangement,
        members=members,
        url_for_page=url_for_page,
        selected_lot=lot,
        selected_region=region,
        filtered=bool(filters),
    )
    return RegisterView(arrangement.id, arrangement.name, Markup(content))  # noqa: S704


def _csv_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


@bp.get("/arrangements/<int:arrangement_id>/register.csv")
def register_csv(arrangement_id: int):
    arrangement = _published_or_404(arrangement_id)
    buffer = io.StringIO()
    buffer.write(UTF8_BOM)
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
