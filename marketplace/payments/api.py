"""Card payment endpoints: the token's organisation's saved cards, and paying one of its
validated invoices with its saved card (once, however often asked).

Every rule is in ``marketplace.payments.services``, as for the pages: only the organisation's
buyers and approvers may use them (403 for its other people); another organisation's invoice or
card is not found (404). Without Stripe configured every endpoint here answers 404.
"""

from __future__ import annotations

import http

import marshmallow as ma
from flask import abort, g, url_for
from flask.views import MethodView

from marketplace.core.api import CONFLICT_RESPONSE, api_blueprint
from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError, NotFound, PermissionDenied, problem_response
from marketplace.invoices.services.common import visible_invoice
from marketplace.payments.models import STRIPE_ID_MAX, CardPayment, CardPaymentStatus
from marketplace.payments.permissions import can_pay_for, can_pay_invoice
from marketplace.payments.queries import card_payment_for, saved_card_for
from marketplace.payments.services import card_payments, gateway

blp = api_blueprint(
    "payments_api",
    __name__,
    "Card payments: the organisation's saved card (entered in Stripe's card form on the "
    "payment card page) and paying a validated invoice with it.",
)


class SavedCardSchema(ma.Schema):
    id = ma.fields.String(
        attribute="payment_method_id",
        metadata={"description": "The card's Stripe PaymentMethod id", "example": "pm_1Abc"},
    )
    brand = ma.fields.String(attribute="card_brand", metadata={"example": "visa"})
    last4 = ma.fields.String(attribute="card_last4", metadata={"example": "4242"})
    exp_month = ma.fields.Integer(attribute="card_exp_month")
    exp_year = ma.fields.Integer(attribute="card_exp_year")
    label = ma.fields.String(attribute="card_label")
    saved_at = ma.fields.AwareDateTime(attribute="card_saved_at")


class SavedCardListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(SavedCardSchema))


class PayByCardSchema(ma.Schema):
    card = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=STRIPE_ID_MAX),
        metadata={"description": "The id of one of the organisation's saved cards"},
    )


class CardPaymentSchema(ma.Schema):
    id = ma.fields.Integer()
    invoice_id = ma.fields.Integer()
    attempt = ma.fields.Integer()
    status = ma.fields.Enum(CardPaymentStatus, by_value=True)
    amount_pence = ma.fields.Integer()
    currency = ma.fields.String()
    payment_intent_id = ma.fields.String(allow_none=True)
    failure_message = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    succeeded_at = ma.fields.AwareDateTime(allow_none=True)
    client_secret = ma.fields.Method(
        "_client_secret",
        allow_none=True,
        metadata={
            "description": "Only while the status is requires_action: the card's issuer asks "
            "the payer to confirm it (3-D Secure). Pass it to Stripe.js confirmCardPayment in "
            "the payer's browser, then POST …/card-payment/check."
        },
    )
    invoice = ma.fields.Function(
        lambda p: url_for("invoices_api.InvoiceItem", invoice_id=p.invoice_id, _external=True)
    )

    def _client_secret(self, payment: CardPayment) -> str | None:
        if payment.status != CardPaymentStatus.REQUIRES_ACTION:
            return None
        return card_payments.authentication_secret(payment)


def _require_payer() -> None:
    # Checked in each view, after its body is parsed: a body that could never be accepted is
    # refused (422) whether or not card payments are configured.
    if not gateway.card_payments_enabled():
        abort(404, "Card payments are not configured")
    if not can_pay_for(g.api_user, g.organisation.id):
        raise PermissionDenied("Only your organisation's buyers and approvers can pay by card")


def _invoice(invoice_id: int):
    return visible_invoice(g.api_user, invoice_id, g.organisation.id)


@blp.route("/payment-cards")
class SavedCardCollection(MethodView):
    @blp.response(200, SavedCardListSchema)
    def get(self):
        """The token's organisation's saved cards (it keeps one at most)."""
        _require_payer()
        customer = saved_card_for(g.organisation.id)
        return {"items": [customer] if customer is not None and customer.has_card else []}


@blp.route("/invoices/<int:invoice_id>/card-payment", methods=["GET"])
@blp.response(200, CardPaymentSchema)
def card_payment(invoice_id):
    """The invoice's latest card payment attempt (404 when it has none)."""
    _require_payer()
    invoice = _invoice(invoice_id)
    if not can_pay_invoice(g.api_user, invoice):
        raise NotFound("Invoice not found")
    payment = card_payment_for(invoice.id)
    if payment is None:
        raise NotFound("This invoice has no card payment")
    return payment


@blp.route("/invoices/<int:invoice_id>/pay-by-card", methods=["POST"])
@blp.arguments(PayByCardSchema)
@blp.response(200, CardPaymentSchema)
@blp.alt_response(402, response=http.HTTPStatus.PAYMENT_REQUIRED.name)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def pay_by_card(args, invoice_id):
    """Pay a validated invoice with the organisation's saved card.

    Safe to repeat: while an attempt is under way, waiting for the payer's authentication
    (``requires_action``) or done, the same attempt is returned and nothing more is charged.
    A declined card answers 402 and a later request makes a new attempt.
    """
    _require_payer()
    invoice = _invoice(invoice_id)
    customer = saved_card_for(g.organisation.id)
    if customer is None or customer.payment_method_id != args["card"]:
        raise NotFound("Card not found")
    try:
        payment = card_payments.pay_invoice_by_card(g.api_user, invoice)
    except DomainError:
        rollback()
        raise
    commit(keep_loaded=True)
    if payment.status == CardPaymentStatus.FAILED:
        return problem_response(
            402,
            title="The card payment failed",
            detail=f"{payment.failure_message} The invoice has not been paid.",
            errors={"card": [payment.failure_message or gateway.DECLINED]},
        )
    return payment


@blp.route("/invoices/<int:invoice_id>/card-payment/check", methods=["POST"])
@blp.response(200, CardPaymentSchema)
def check_card_payment(invoice_id):
    """After the payer confirmed a payment in ``requires_action`` with Stripe.js: read its
    outcome from Stripe (succeeded: the invoice is paid; refused: the attempt failed)."""
    _require_payer()
    invoice = _invoice(invoice_id)
    try:
        payment = card_payments.check_card_payment(g.api_user, invoice)
    except DomainError:
        rollback()
        raise
    commit(keep_loaded=True)
    return payment
