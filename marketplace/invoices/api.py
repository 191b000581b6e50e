"""Invoice endpoints: list and read the invoices the token's organisation is provider or lead
buyer of, and act on each step (issue, validate, dispute, mark paid).

Every rule is in the ``marketplace.invoices.services`` package; an invoice of another
organisation is not found (404).
"""

from __future__ import annotations

import marshmallow as ma
import sqlalchemy as sa
from flask import Response, abort, g, request, url_for
from flask.views import MethodView
from sqlalchemy.orm import selectinload

from marketplace.core.api import (
    CONFLICT_RESPONSE,
    HorizonDate,
    api_blueprint,
    paginate,
    paginated_schema,
)
from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError
from marketplace.core.money import VatTreatment
from marketplace.invoices.models import (
    PAYMENT_REFERENCE_MAX,
    REASON_MAX,
    Invoice,
    InvoiceKind,
    InvoiceStatus,
    PaymentMethod,
)
from marketplace.invoices.services import common, issuing
from marketplace.invoices.ubl import credit_note_xml, invoice_xml

blp = api_blueprint(
    "invoices_api",
    __name__,
    "Invoices drafted from recorded delivery: the provider issues them, the lead buyer validates "
    "or disputes them and records payment.",
)


class InvoiceLineSchema(ma.Schema):
    delivery_id = ma.fields.Integer(allow_none=True)
    outcome_claim_id = ma.fields.Integer(allow_none=True)
    delivered_on = ma.fields.Date()
    description = ma.fields.String()
    units = ma.fields.Integer()
    unit_price_pence = ma.fields.Integer()
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True)
    net_pence = ma.fields.Integer()
    vat_pence = ma.fields.Integer()
    gross_pence = ma.fields.Integer()


class InvoiceSchema(ma.Schema):
    id = ma.fields.Integer()
    number = ma.fields.String(allow_none=True, metadata={"example": "INV-000001"})
    status = ma.fields.Enum(InvoiceStatus, by_value=True)
    kind = ma.fields.Enum(InvoiceKind, by_value=True)
    provider_id = ma.fields.Integer()
    lead_buyer_id = ma.fields.Integer()
    call_off_id = ma.fields.Integer()
    call_off_reference = ma.fields.String()
    po_number = ma.fields.String()
    period_start = ma.fields.Date()
    period_end = ma.fields.Date()
    net_pence = ma.fields.Integer()
    vat_pence = ma.fields.Integer()
    gross_pence = ma.fields.Integer()
    received_at = ma.fields.AwareDateTime(allow_none=True)
    due_on = ma.fields.Date(allow_none=True)
    validated_at = ma.fields.AwareDateTime(allow_none=True)
    disputed_at = ma.fields.AwareDateTime(allow_none=True)
    dispute_reason = ma.fields.String(allow_none=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    paid_on = ma.fields.Date(allow_none=True)
    payment_method = ma.fields.Enum(PaymentMethod, by_value=True, allow_none=True)
    payment_reference = ma.fields.String(allow_none=True)
    lines = ma.fields.List(ma.fields.Nested(InvoiceLineSchema))
    url = ma.fields.Function(
        lambda i: url_for("invoices_api.InvoiceItem", invoice_id=i.id, _external=True)
    )


class InvoiceQuerySchema(ma.Schema):
    status = ma.fields.Enum(InvoiceStatus, by_value=True)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=100))


class DisputeSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=REASON_MAX))


class PaymentSchema(ma.Schema):
    payment_reference = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=PAYMENT_REFERENCE_MAX)
    )
    paid_on = HorizonDate(required=True)


InvoicePageSchema = paginated_schema(InvoiceSchema, "InvoicePage")


def _invoice(invoice_id: int) -> Invoice:
    """The invoice if the token's organisation is its provider, or its lead buyer once issued."""
    return common.visible_invoice(g.api_user, invoice_id, g.organisation.id)


@blp.route("/invoices")
class InvoiceCollection(MethodView):
    @blp.arguments(InvoiceQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, InvoicePageSchema)
    def get(self, args):
        """Invoices the token's organisation issued or received, newest first (a provider's
        drafts included)."""
        organisation_id = g.organisation.id
        query = (
            sa.select(Invoice)
            .where(
                sa.or_(
                    Invoice.provider_id == organisation_id,
                    sa.and_(
                        Invoice.lead_buyer_id == organisation_id,
                        Invoice.status != InvoiceStatus.DRAFT,
                    ),
                )
            )
            .options(selectinload(Invoice.lines))
            .order_by(Invoice.id.desc())
        )
        if args.get("status") is not None:
            query = query.where(Invoice.status == args["status"])
        return paginate(query, args["page"], args["page_size"])


@blp.route("/invoices/<int:invoice_id>")
class InvoiceItem(MethodView):
    @blp.response(200, InvoiceSchema)
    @blp.alt_response(
        200,
        description="The issued invoice as UBL 2.1 (Peppol BIS Billing 3.0), when the request "
        "asks for application/xml",
        content_type="application/xml",
        success=True,
    )
    def get(self, invoice_id):
        """One invoice the token's organisation issued or received: JSON, or UBL 2.1 XML with
        `Accept: application/xml` (an issued invoice only: a draft has no UBL form, 406)."""
        invoice = _invoice(invoice_id)
        accepted = request.accept_mimetypes
        if accepted.best_match(["application/json", "application/xml"]) == "application/xml":
            if invoice.number is None:
                abort(406, "A draft invoice has no UBL form: issue it first, or ask for JSON")
            return Response(invoice_xml(invoice), mimetype="application/xml")
        return invoice


class CreditNoteSchema(ma.Schema):
    id = ma.fields.Integer()
    number = ma.fields.String(metadata={"example": "CN-000001"})
    invoice_id = ma.fields.Integer()
    reason = ma.fields.String()
    net_pence = ma.fields.Integer()
    vat_pence = ma.fields.Integer()
    gross_pence = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()
    refund_reference = ma.fields.String(allow_none=True)


@blp.route("/invoices/<int:invoice_id>/credit-notes/<int:note_id>")
class CreditNoteItem(MethodView):
    @blp.response(200, CreditNoteSchema)
    @blp.alt_response(
        200,
        description="The credit note as a UBL 2.1 CreditNote (Peppol BIS Billing 3.0), when the "
        "request asks for application/xml",
        content_type="application/xml",
        success=True,
    )
    def get(self, invoice_id, note_id):
        """A credit note on an invoice the token's organisation issued or received: JSON, or
        UBL 2.1 XML with `Accept: application/xml`."""
        invoice = _invoice(invoice_id)
        note = next((n for n in invoice.credit_notes if n.id == note_id), None)
        if note is None:
            abort(404, "The invoice has no credit note with that id")
        accepted = request.accept_mimetypes
        if accepted.best_match(["application/json", "application/xml"]) == "application/xml":
            return Response(credit_note_xml(note), mimetype="application/xml")
        return note


def _write(invoice: Invoice, action) -> Invoice:
    try:
        action()
    except DomainError:
        rollback()
        raise
    commit(keep_loaded=True)
    return invoice


@blp.route("/invoices/<int:invoice_id>/issue", methods=["POST"])
@blp.response(200, InvoiceSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def issue(invoice_id):
    """The provider's administrator issues a draft: it takes the provider's next number."""
    invoice = _invoice(invoice_id)
    return _write(invoice, lambda: issuing.issue(g.api_user, invoice))


@blp.route("/invoices/<int:invoice_id>/validate", methods=["POST"])
@blp.response(200, InvoiceSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def validate(invoice_id):
    """The lead buyer accepts an issued (or disputed) invoice as right."""
    invoice = _invoice(invoice_id)
    return _write(invoice, lambda: issuing.validate(g.api_user, invoice))


@blp.route("/invoices/<int:invoice_id>/dispute", methods=["POST"])
@blp.arguments(DisputeSchema)
@blp.response(200, InvoiceSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def dispute(args, invoice_id):
    """The lead buyer disputes an issued invoice, with a reason the provider sees."""
    invoice = _invoice(invoice_id)
    return _write(invoice, lambda: issuing.dispute(g.api_user, invoice, args["reason"]))


@blp.route("/invoices/<int:invoice_id>/mark-paid", methods=["POST"])
@blp.arguments(PaymentSchema)
@blp.response(200, InvoiceSchema)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def mark_paid(args, invoice_id):
    """The lead buyer records a BACS payment of a validated invoice."""
    invoice = _invoice(invoice_id)
    return _write(
        invoice,
        lambda: issuing.mark_paid_by_bacs(
            g.api_user, invoice, args["payment_reference"], args["paid_on"]
        ),
    )
