"""Card payment pages: the organisation's payment card, paying an invoice by card (confirmation,
then the payment's progress), and Stripe's webhook. Views are thin: the rules are in
``marketplace.payments.services``. Without Stripe keys configured every page here is a 404."""

from __future__ import annotations

import logging

import stripe
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy.exc import IntegrityError

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.config import card_payments_enabled
from marketplace.db import commit, rollback
from marketplace.errors import DomainError, NotFound, problem_response
from marketplace.extensions import csrf
from marketplace.invoices.models import Invoice
from marketplace.invoices.services import visible_invoice
from marketplace.payments import services
from marketplace.payments.forms import PayByCardForm, RemoveCardForm, SaveCardForm
from marketplace.payments.models import CardPaymentStatus
from marketplace.payments.queries import card_payment_for, saved_card_for
from marketplace.views_helpers import apply_errors

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__, template_folder="templates")

PAYERS = (Role.BUYER, Role.APPROVER)


@bp.app_template_global()
def card_payments_on() -> bool:
    """For templates: whether card payments are offered at all."""
    return card_payments_enabled()


@bp.app_template_global("card_payment_for")
def _card_payment_for(invoice_id: int):
    return card_payment_for(invoice_id)


@bp.app_template_global()
def can_pay_by_card(invoice: Invoice) -> bool:
    return current_user.is_authenticated and services.can_pay_by_card(current_user, invoice)


@bp.before_request
def _only_when_enabled():
    if not card_payments_enabled():
        if request.endpoint == "payments.stripe_webhook":
            return problem_response(404, detail="Card payments are not configured")
        abort(404)
    return None


def _organisation():
    organisation = current_organisation()
    if organisation is None:
        abort(403)
    return organisation


def _invoice(invoice_id: int) -> Invoice:
    organisation = current_organisation()
    try:
        return visible_invoice(
            current_user, invoice_id, organisation.id if organisation is not None else -1
        )
    except NotFound:
        abort(404)


# ---------------------------------------------------------------------------------------------
# The organisation's card


@bp.route("/organisation/payment-card", methods=["GET", "POST"])
@roles_required(*PAYERS)
def card():
    organisation = _organisation()
    form = SaveCardForm()
    if form.validate_on_submit():
        try:
            services.save_card(current_user, organisation, form.payment_method_id.data)
            commit()
        except services.CardDeclined as error:
            commit()  # keep the Stripe customer that was made; the card itself was refused
            apply_errors(form, error)
        except DomainError as error:
            rollback()
            if isinstance(error, NotFound):
                abort(404)
            if error.status >= 500:
                flash(error.detail, "error")
            apply_errors(form, error)
        else:
            flash("Card saved. You can now pay your organisation's invoices with it.", "success")
            return redirect(url_for("payments.card"))
    return render_template(
        "payments/card.html",
        form=form,
        remove_form=RemoveCardForm(),
        organisation=organisation,
        customer=saved_card_for(organisation.id),
    )


@bp.post("/organisation/payment-card/remove")
@roles_required(*PAYERS)
def remove_card():
    organisation = _organisation()
    if not RemoveCardForm().validate_on_submit():
        abort(400)
    try:
        services.remove_card(current_user, organisation)
        commit()
    except DomainError as error:
        rollback()
        flash(error.detail, "error")
    else:
        flash("Card removed.", "success")
    return redirect(url_for("payments.card"))


# ---------------------------------------------------------------------------------------------
# Paying an invoice


@bp.route("/invoices/<int:invoice_id>/pay-by-card", methods=["GET", "POST"])
@roles_required(*PAYERS)
def pay_invoice(invoice_id: int):
    invoice = _invoice(invoice_id)
    if not current_user.roles_for(invoice.lead_buyer_id) & set(PAYERS):
        abort(403)
    latest = card_payment_for(invoice.id)
    if latest is not None and latest.status != CardPaymentStatus.FAILED:
        return redirect(url_for("invoices.show", invoice_id=invoice.id))
    form = PayByCardForm()
    errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            payment = services.pay_invoice_by_card(current_user, invoice)
            commit()
        except DomainError as error:
            rollback()
            if isinstance(error, NotFound):
                abort(404)
            if error.status == 403:
                abort(403)
            errors = error.errors or {"": [error.detail]}
        else:
            if payment.status != CardPaymentStatus.FAILED:
                return redirect(url_for("invoices.show", invoice_id=invoice.id))
            errors = {"": [f"The payment did not go through. {payment.failure_message}"]}
        invoice = _invoice(invoice_id)
    status = 200
    if errors:
        status = 422
    return render_template(
        "payments/pay.html",
        form=form,
        invoice=invoice,
        customer=saved_card_for(invoice.lead_buyer_id),
        page_errors=errors,
    ), status


@bp.get("/invoices/<int:invoice_id>/card-payment")
@roles_required(*PAYERS, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def invoice_payment(invoice_id: int):
    invoice = _invoice(invoice_id)
    return render_template(
        "payments/invoice_payment.html", invoice=invoice, payment=card_payment_for(invoice.id)
    )


# ---------------------------------------------------------------------------------------------
# Stripe's webhook


@bp.post("/webhooks/stripe")
@csrf.exempt
def stripe_webhook():
    payload = request.get_data(cache=False)
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event = stripe.Webhook.construct_event(
            payload, signature, current_app.config["STRIPE_WEBHOOK_SECRET"]
        )
        event_id, event_type = event.id, event.type
        if not (isinstance(event_id, str) and isinstance(event_type, str) and event_id):
            raise ValueError("an event needs an id and a type")
        if event_type.startswith("payment_intent.") and not isinstance(
            getattr(event.data.object, "id", None), str
        ):
            raise ValueError("a payment_intent event needs its payment intent")
    except stripe.SignatureVerificationError:
        return problem_response(400, detail="The Stripe-Signature header does not match")
    except (ValueError, TypeError, AttributeError, KeyError):
        return problem_response(400, detail="The event is not a Stripe event")
    try:
        outcome = services.handle_event(event)
        commit()
    except IntegrityError:  # the same event delivered twice at once: the other one acts
        rollback()
        outcome = "duplicate"
    log.info("stripe event %s (%s): %s", event_id, event_type, outcome)
    return jsonify({"received": True, "outcome": outcome})
