"""Invoice pages: the invoices one's organisation issued or received (with overdue flags), one
invoice with its lines, credit notes, co-funders' recharge split and the actions the reader may
take; downloads (printable page, CSV, UBL 2.1); a co-funder's recharge statement; the provider's
summary; and the payment-performance figures for a six-month period. Views are thin: the rules
are in ``marketplace.invoices.services`` and the reads in ``marketplace.invoices.queries``.
"""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa
from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Organisation, Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.catalogue.rate_cards import safe_cell
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.forms import parse_day
from marketplace.core.money import decimal_pounds
from marketplace.core.views_helpers import act_on_click, act_on_form
from marketplace.invoices import permissions, queries
from marketplace.invoices.forms import (
    ActionForm,
    CreditNoteForm,
    DisputeForm,
    PaymentForm,
)
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.invoices.services import common, credit_notes, issuing, recharging
from marketplace.invoices.ubl import credit_note_xml, invoice_xml
from marketplace.orders.permissions import BUYER_ROLES

bp = Blueprint("invoices", __name__, url_prefix="/invoices", template_folder="templates")

PROVIDER_ROLES = (Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
PER_PAGE = 25


def _organisation() -> Organisation:
    organisation = current_organisation()
    if organisation is None:
        abort(403)
    return organisation


def _side(organisation: Organisation) -> str:
    return queries.PROVIDER_SIDE if organisation.is_provider else queries.BUYER_SIDE


def _invoice(invoice_id: int) -> Invoice:
    """An invoice the current organisation issued, or received once issued; else 404."""
    try:
        return common.visible_invoice(current_user, invoice_id, _organisation().id)
    except NotFound:
        abort(404)


def _today():
    return london_date(utcnow())


def _csv(rows: list[list], filename: str) -> Response:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={filename}"},
    )


# ---------------------------------------------------------------------------------------------
# Lists


def _list_filters(organisation: Organisation, today) -> tuple[sa.Select, dict[str, str], str]:
    """The list's query for the filters in the URL (anything unknown is ignored)."""
    side = _side(organisation)
    raw = {k: (request.args.get(k) or "").strip()[:20] for k in ("status", "overdue")}
    try:
        status = InvoiceStatus(raw["status"]) if raw["status"] else None
    except ValueError:
        status, raw["status"] = None, ""
    overdue_only = raw["overdue"] == "1"
    if not overdue_only:
        raw["overdue"] = ""
    query = queries.invoices_query(
        organisation.id, side, status=status, overdue_on=today if overdue_only else None
    )
    return query, raw, side


@bp.get("/")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def index():
    organisation = _organisation()
    today = _today()
    query, raw, side = _list_filters(organisation, today)

    def url_for_page(number: int) -> str:
        return url_for("invoices.index", **{k: v for k, v in raw.items() if v}, page=number)

    page = paginate(
        query, page_number(request.args.get("page")), PER_PAGE, url_for_page=url_for_page
    )
    statuses = [s for s in InvoiceStatus if side == queries.PROVIDER_SIDE or s.value != "draft"]
    return render_template(
        "invoices/index.html",
        page=page,
        raw=raw,
        side=side,
        statuses=statuses,
        today=today,
        overdue=queries.overdue_count(organisation.id, side, today),
        is_co_funder=organisation.is_commissioner,
        export_url=url_for("invoices.export", **{k: v for k, v in raw.items() if v}),
    )


EXPORT_LIMIT = 10_000


@bp.get("/export.csv")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def export():
    """The list as CSV, with the same filters (at most 10,000 invoices, newest first)."""
    organisation = _organisation()
    today = _today()
    query, _, _ = _list_filters(organisation, today)
    rows: list[list] = [
        [
            "Invoice",
            "Kind",
            "State",
            "Overdue",
            "Call-off",
            "Purchase order",
            "Provider",
            "Lead buyer",
            "Period start",
            "Period end",
            "Received",
            "Due",
            "Paid on",
            "Payment",
            "Net (£)",
            "VAT (£)",
            "Gross (£)",
            "Credited (£)",
            "Amount due (£)",
        ]
    ]
    for invoice in db.session.scalars(query.limit(EXPORT_LIMIT)):
        rows.append(
            [
                invoice.number or f"Draft {invoice.id}",
                invoice.kind.value,
                invoice.status.value,
                "yes" if invoice.is_overdue(today) else "no",
                invoice.call_off_reference,
                safe_cell(invoice.po_number),
                safe_cell(invoice.provider.name),
                safe_cell(invoice.lead_buyer.name),
                invoice.period_start.isoformat(),
                invoice.period_end.isoformat(),
                london_date(invoice.received_at).isoformat() if invoice.received_at else "",
                invoice.due_on.isoformat() if invoice.due_on else "",
                invoice.paid_on.isoformat() if invoice.paid_on else "",
                invoice.payment_method.value if invoice.payment_method else "",
                decimal_pounds(invoice.net_pence),
                decimal_pounds(invoice.vat_pence),
                decimal_pounds(invoice.gross_pence),
                decimal_pounds(invoice.credited_pence),
                decimal_pounds(invoice.amount_due_pence),
            ]
        )
    return _csv(rows, "invoices.csv")


# ---------------------------------------------------------------------------------------------
# One invoice


@bp.get("/<int:invoice_id>")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def show(invoice_id: int):
    invoice = _invoice(invoice_id)
    organisation = _organisation()
    is_provider = invoice.provider_id == organisation.id
    can = permissions.actions(current_user, organisation, invoice)
    co_funded = len(invoice.call_off.funders) > 1
    return render_template(
        "invoices/show.html",
        invoice=invoice,
        can=can,
        is_provider=is_provider,
        today=_today(),
        recharges=recharging.recharge_parts(invoice) if co_funded else [],
        organisations={o.id: o for o in (f.organisation for f in invoice.call_off.funders)},
    )


def _one_click(invoice_id: int, action, success: str):
    invoice = _invoice(invoice_id)
    act_on_click(ActionForm(), lambda: action(invoice), success)
    return redirect(url_for("invoices.show", invoice_id=invoice_id))


@bp.post("/<int:invoice_id>/issue")
@roles_required(Role.PROVIDER_ADMIN)
def issue(invoice_id: int):
    return _one_click(
        invoice_id,
        lambda invoice: issuing.issue(current_user, invoice),
        "Invoice issued. The buyer has been sent it and has 30 days to pay.",
    )


@bp.post("/<int:invoice_id>/validate")
@roles_required(*BUYER_ROLES)
def validate(invoice_id: int):
    return _one_click(
        invoice_id,
        lambda invoice: issuing.validate(current_user, invoice),
        "Invoice validated. The provider has been told it is approved for payment.",
    )


def _form_action(invoice_id: int, form, template: str, act, success: str):
    invoice = _invoice(invoice_id)
    if act_on_form(form, lambda: act(invoice, form), success):
        return redirect(url_for("invoices.show", invoice_id=invoice_id))
    return render_template(template, form=form, invoice=_invoice(invoice_id), today=_today())


@bp.route("/<int:invoice_id>/dispute", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def dispute(invoice_id: int):
    return _form_action(
        invoice_id,
        DisputeForm(),
        "invoices/dispute.html",
        lambda invoice, form: issuing.dispute(current_user, invoice, form.reason.data),
        "Invoice disputed. The provider has been sent your reason.",
    )


@bp.route("/<int:invoice_id>/mark-paid", methods=["GET", "POST"])
@roles_required(*BUYER_ROLES)
def mark_paid(invoice_id: int):
    return _form_action(
        invoice_id,
        PaymentForm(),
        "invoices/mark_paid.html",
        lambda invoice, form: issuing.mark_paid_by_bacs(
            current_user, invoice, form.payment_reference.data, parse_day(form.paid_on.data)
        ),
        "Payment recorded. The provider has been told.",
    )


@bp.route("/<int:invoice_id>/credit-notes/new", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def credit_note(invoice_id: int):
    return _form_action(
        invoice_id,
        CreditNoteForm(),
        "invoices/credit_note.html",
        lambda invoice, form: credit_notes.raise_credit_note(
            current_user, invoice, form.amount_pence, form.reason.data
        ),
        "Credit note issued. The buyer has been sent it.",
    )


# ---------------------------------------------------------------------------------------------
# Downloads


@bp.get("/<int:invoice_id>/print")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def printable(invoice_id: int):
    invoice = _invoice(invoice_id)
    return render_template("invoices/print.html", invoice=invoice)


@bp.get("/<int:invoice_id>/invoice.csv")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def invoice_csv(invoice_id: int):
    invoice = _invoice(invoice_id)
    rows: list[list] = [
        ["Invoice", invoice.number or "Draft"],
        ["Provider", safe_cell(invoice.provider.name)],
        ["Provider VAT number", invoice.provider_vat_number or ""],
        ["Lead buyer", safe_cell(invoice.lead_buyer.name)],
        ["Purchase order", safe_cell(invoice.po_number)],
        ["Call-off", invoice.call_off_reference],
        ["Period", f"{invoice.period_start.isoformat()} to {invoice.period_end.isoformat()}"],
        ["Received", london_date(invoice.received_at).isoformat() if invoice.received_at else ""],
        ["Due", invoice.due_on.isoformat() if invoice.due_on else ""],
        [],
        [
            "Line",
            "Date",
            "Description",
            "Units",
            "Unit price (£, ex VAT)",
            "VAT treatment",
            "Net (£)",
            "VAT (£)",
            "Gross (£)",
        ],
    ]
    for number, line in enumerate(invoice.lines, start=1):
        rows.append(
            [
                number,
                line.delivered_on.isoformat() if line.delivered_on else "",
                safe_cell(line.description),
                line.units,
                decimal_pounds(line.unit_price_pence),
                line.vat_treatment.value,
                decimal_pounds(line.net_pence),
                decimal_pounds(line.vat_pence),
                decimal_pounds(line.gross_pence),
            ]
        )
    rows.append(
        ["Total", "", "", "", "", "", *map(decimal_pounds, (invoice.net_pence, invoice.vat_pence))]
        + [decimal_pounds(invoice.gross_pence)]
    )
    for note in invoice.credit_notes:
        rows.append(
            [
                "Credit note " + note.number,
                london_date(note.created_at).isoformat(),
                safe_cell(note.reason),
                "",
                "",
                "",
                decimal_pounds(-note.net_pence),
                decimal_pounds(-note.vat_pence),
                decimal_pounds(-note.gross_pence),
            ]
        )
    if invoice.credit_notes:
        rows.append(
            ["Amount due", "", "", "", "", "", "", "", decimal_pounds(invoice.amount_due_pence)]
        )
    return _csv(rows, f"{invoice.number or 'draft-invoice'}.csv")


@bp.get("/<int:invoice_id>/invoice.xml")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def invoice_ubl(invoice_id: int):
    invoice = _invoice(invoice_id)
    if invoice.number is None:
        abort(404)
    return _ubl_download(invoice, lambda: invoice_xml(invoice), invoice.number)


@bp.get("/<int:invoice_id>/credit-notes/<int:note_id>/credit-note.xml")
@roles_required(*PROVIDER_ROLES, *BUYER_ROLES)
def credit_note_ubl(invoice_id: int, note_id: int):
    invoice = _invoice(invoice_id)
    note = next((n for n in invoice.credit_notes if n.id == note_id), None)
    if note is None:
        abort(404)
    return _ubl_download(invoice, lambda: credit_note_xml(note), note.number)


def _ubl_download(invoice: Invoice, build, number: str):
    """The UBL document as a download; if the rules would refuse it (an organisation has not
    recorded what it needs), back to the invoice with what is missing."""
    try:
        document = build()
    except BusinessRuleViolation as error:
        for messages in error.errors.values():
            for message in messages:
                flash(message, "error")
        return redirect(url_for("invoices.show", invoice_id=invoice.id))
    return Response(
        document,
        mimetype="application/xml",
        headers={"Content-Disposition": f"attachment; filename={number}.xml"},
    )


# ---------------------------------------------------------------------------------------------
# Co-funders' recharges, the provider's summary, payment performance


def _half_year():
    try:
        return queries.parse_half_year(request.args.get("period"), _today()), None
    except BusinessRuleViolation as error:
        return queries.half_year_of(_today()), error.errors["period"][0]


@bp.get("/recharges")
@roles_required(*BUYER_ROLES)
def recharges():
    organisation = _organisation()
    period, error = _half_year()
    rows = queries.recharge_statement(organisation.id, period.start, period.end)
    if request.args.get("format") == "csv" and error is None:
        table = [
            [
                "Document",
                "Type",
                "Issued",
                "Call-off",
                "Provider",
                "Lead buyer",
                "Document total (£, incl VAT)",
                "Your share (%)",
                "Your part net (£)",
                "Your part VAT (£)",
                "Your part gross (£)",
            ]
        ]
        for row in rows:
            table.append(
                [
                    row.document,
                    row.kind,
                    row.issued_on.isoformat(),
                    row.invoice.call_off_reference,
                    safe_cell(row.invoice.provider.name),
                    safe_cell(row.invoice.lead_buyer.name),
                    decimal_pounds(row.total_gross_pence),
                    f"{row.basis_points / 100:.2f}",
                    decimal_pounds(row.part_net_pence),
                    decimal_pounds(row.part_vat_pence),
                    decimal_pounds(row.part_gross_pence),
                ]
            )
        return _csv(table, f"recharge-statement-{period.code}.csv")
    return render_template(
        "invoices/recharges.html",
        period=period,
        error=error,
        rows=rows,
        total=sum(row.part_gross_pence for row in rows),
    ), (400 if error else 200)


@bp.get("/summary")
@roles_required(*PROVIDER_ROLES)
def summary():
    organisation = _organisation()
    return render_template(
        "invoices/summary.html",
        summary=queries.provider_summary(organisation.id, _today()),
    )


@bp.get("/payment-performance")
@roles_required(*BUYER_ROLES, Role.AUTHORITY_ADMIN)
def payment_performance():
    organisation = _organisation()
    is_authority = organisation.is_authority
    period, error = _half_year()
    report = queries.payment_performance(period, None if is_authority else organisation.id)
    if request.args.get("format") == "csv" and error is None:
        table = [
            [
                "Period",
                "Buyer",
                "Invoices paid",
                "Paid within 30 days",
                "Paid within 30 days (%)",
                "Average days to pay",
                "Amount paid (£)",
                "Amount paid late (£)",
            ]
        ]
        lines = [*report.by_buyer, report.total] if is_authority else [report.total]
        for line in lines:
            table.append(
                [
                    period.label,
                    safe_cell(
                        line.buyer_name if line.buyer_id or not is_authority else "All buyers"
                    ),
                    line.paid_count,
                    line.on_time_count,
                    "" if line.on_time_percent is None else f"{line.on_time_percent:.1f}",
                    "" if line.average_days is None else f"{line.average_days:.1f}",
                    decimal_pounds(line.paid_pence),
                    decimal_pounds(line.late_pence),
                ]
            )
        return _csv(table, f"payment-performance-{period.code}.csv")
    return render_template(
        "invoices/payment_performance.html",
        report=report,
        period=period,
        error=error,
        is_authority=is_authority,
        organisation=organisation,
    ), (400 if error else 200)


@bp.get("/vat-number")
@roles_required(Role.PROVIDER_ADMIN)
def vat_number():
    """Moved to the organisation settings, with the rest of what e-invoices need."""
    return redirect(url_for("accounts.vat_registration"), 301)
