"""The call-offs an organisation is party to (what waits for it first, with filters), the same
as CSV, and the organisation's budgets."""

from __future__ import annotations

import csv
import io

from flask import Response, render_template, request, url_for
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.catalogue.rate_cards import safe_cell
from marketplace.core.db import db, parse_id
from marketplace.core.forms import parse_day
from marketplace.orders import signals as orders_signals
from marketplace.orders.models import CallOffStatus
from marketplace.orders.queries import CallOffFilters, budgets_of, call_offs_query, waiting_first
from marketplace.orders.views import PARTIES, bp, own_organisation
from marketplace.orders.views.call_off import cancellation_text, page_values

PER_PAGE = 25
WAITING_SHOWN = 10  # above the list; the rest through its "waiting for us" filter


def _filters() -> tuple[CallOffFilters, dict[str, str]]:
    args = request.args
    raw = {
        k: (args.get(k) or "").strip()[:40]
        for k in ("status", "crn", "provider", "from", "to", "waiting")
    }
    if raw["waiting"] != "yes":
        raw["waiting"] = ""  # the one value it has: anything else is no filter
    status = None
    if raw["status"]:
        try:
            status = CallOffStatus(raw["status"])
        except ValueError:
            status = None
    return (
        CallOffFilters(
            status=status,
            provider_id=parse_id(raw["provider"]) if raw["provider"] else None,
            crn=raw["crn"].upper() or None,
            placed_from=parse_day(raw["from"]),
            placed_to=parse_day(raw["to"]),
            waiting_for=own_organisation().id if raw["waiting"] else None,
            approver_id=_approver_id(),
        ),
        raw,
    )


def _approver_id() -> int | None:
    """The signed-in person, if they approve for their organisation: what waits for approval
    is, for them, only what they can approve (placed by someone else, within their limit)."""
    return current_user.id if Role.APPROVER in current_user.roles_in(own_organisation()) else None


def _query():
    organisation = own_organisation()
    is_authority = Role.AUTHORITY_ADMIN in current_user.roles_in(organisation)
    filters, raw = _filters()
    return call_offs_query(None if is_authority else organisation.id, filters), raw


@bp.get("/")
@roles_required(*PARTIES, Role.AUTHORITY_ADMIN)
def index():
    query, raw = _query()

    def url_for_page(number: int) -> str:
        return url_for("orders.index", **{k: v for k, v in raw.items() if v}, page=number)

    page = paginate(
        query, page_number(request.args.get("page")), PER_PAGE, url_for_page=url_for_page
    )
    organisation = own_organisation()
    # What waits for the organisation comes first, whichever page of the list is shown.
    waiting, waiting_total = waiting_first(organisation.id, WAITING_SHOWN, _approver_id())
    return render_template(
        "orders/index.html",
        page=page,
        raw=raw,
        statuses=list(CallOffStatus),
        organisation=organisation,
        waiting=waiting,
        waiting_total=waiting_total,
        export_url=url_for("orders.export", **{k: v for k, v in raw.items() if v}),
    )


@bp.get("/export.csv")
@roles_required(*PARTIES, Role.AUTHORITY_ADMIN)
def export():
    query, _ = _query()
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        [
            "Reference",
            "Status",
            "Placed",
            "Service",
            "Provider",
            "Lead buyer",
            "CRN",
            "PDU",
            "Purchase order",
            "Units",
            "Delivered",
            "Unit price (pence, ex VAT)",
            "VAT treatment",
            "Value (pence, incl VAT)",
            "Start",
            "End",
            "Cancellation reason",
            "Completion summary",
        ]
    )
    for c in db.session.scalars(query.limit(10_000)):
        writer.writerow(
            [
                c.reference,
                c.status.value,
                c.placed_at.date().isoformat(),
                safe_cell(c.service_title),
                safe_cell(c.provider.name),
                safe_cell(c.lead_buyer.name),
                c.crn if c.for_one_person else "Not for one person",
                safe_cell(c.pdu),
                safe_cell(c.po_number),
                c.quantity,
                c.delivered_units,
                c.unit_price_pence,
                c.vat_treatment.value,
                c.gross_pence,
                c.start_date.isoformat(),
                c.end_date.isoformat(),
                safe_cell(cancellation_text(c)),
                safe_cell(c.completion_summary),
            ]
        )
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=call-offs.csv"},
    )


@bp.get("/budgets")
@roles_required(Role.BUYER, Role.APPROVER)
def budgets():
    organisation = own_organisation()
    return render_template(
        "orders/budgets.html",
        organisation=organisation,
        budgets=budgets_of(organisation.id),
        **page_values(orders_signals.budgets_page, organisation),
    )
