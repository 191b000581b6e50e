"""Card payment pages: the organisation's payment card (entered in Stripe's own card form),
paying an invoice by card (confirmation, the card issuer's 3-D Secure check in the page, then the
payment's progress), and Stripe's webhook. Only the pages that load Stripe.js open the
Content-Security-Policy to it (``uses_stripe_js``). Views are thin: the rules are in
``marketplace.payments.services``. Without Stripe keys configured every page here is a 404."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlsplit

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
from marketplace.core.csp import content_security_policy
from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError, NotFound, problem_response
from marketplace.core.extensions import csrf
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.invoices.services.common import visible_invoice
from marketplace.payments.forms import (
    CancelPaymentForm,
    ConfirmPaymentForm,
    EnterCardForm,
    PayByCardForm,
    RemoveCardForm,
)
from marketplace.payments.models import CardPaymentStatus
from marketplace.payments.permissions import PAYERS, can_pay_invoice
from marketplace.payments.queries import card_payment_for, saved_card_for
from marketplace.payments.services import card_payments, gateway, saved_cards, webhooks

log = logging.getLogger(__name__)

bp = Blueprint("payments", __name__, template_folder="templates")


@bp.app_template_global()
def card_payments_on() -> bool:
    """For templates: whether card payments are offered at all."""
    return gateway.card_payments_enabled()


@bp.app_template_global("card_payment_for")
def _card_payment_for(invoice_id: int):
    return card_payment_for(invoice_id)


@bp.app_template_global()
def can_pay_by_card(invoice: Invoice) -> bool:
    return current_user.is_authenticated and card_payments.can_pay_by_card(current_user, invoice)


@bp.before_request
def _only_when_enabled():
    if not gateway.card_payments_enabled():
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
# Stripe.js on the card pages


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def stripe_js_policy() -> str:
    """The Content-Security-Policy of a page that loads Stripe.js: every page's policy, plus the
    hosts Stripe documents for Stripe.js (docs.stripe.com/security/guide, "Content Security
    Policy") and no other: its script and frames from js.stripe.com (and *.js.stripe.com), 3-D
    Secure frames from hooks.stripe.com, and its calls to the API. In tests both addresses are
    localstripe's (STRIPE_JS_URL, STRIPE_API_BASE)."""
    config = current_app.config
    script = _origin(config["STRIPE_JS_URL"])
    api = _origin(config.get("STRIPE_API_BASE") or "https://api.stripe.com")
    scripts = [script]
    frames = [script]
    if script == "https://js.stripe.com":
        scripts.append("https://*.js.stripe.com")
        frames += ["https://*.js.stripe.com", "https://hooks.stripe.com"]
    return content_security_policy(
        {"script-src": scripts, "frame-src": frames, "connect-src": [api]}
    )


def uses_stripe_js(view: Callable) -> Callable:
    """The view's page may load Stripe.js: its response opens the policy for it (the app's own
    header hook leaves a policy the view set alone). Only the card pages are so marked."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response = current_app.make_response(view(*args, **kwargs))
        if saved_cards.card_form_available():
            response.headers["Content-Security-Policy"] = stripe_js_policy()
        return response

    return wrapped


def _stripe_js() -> dict:
    """What a card page's template needs to load Stripe.js (nothing when it is not set up)."""
    if not saved_cards.card_form_available():
        return {"stripe_js_url": None, "publishable_key": None}
    config = current_app.config
    return {
        "stripe_js_url": config["STRIPE_JS_URL"],
        "publishable_key": config["STRIPE_PUBLISHABLE_KEY"],
    }


# ---------------------------------------------------------------------------------------------
# The organisation's card


@bp.get("/organisation/payment-card")
@roles_required(*PAYERS)
def card():
    organisation = _organisation()
    return render_template(
        "payments/card.html",
        remove_form=RemoveCardForm(),
        organisation=organisation,
        customer=saved_card_for(organisation.id),
    )


@bp.route("/organisation/payment-card/new", methods=["GET", "POST"])
@roles_required(*PAYERS)
@uses_stripe_js
def enter_card():
    """Enter a card in Stripe's own form. GET makes a SetupIntent for the page to confirm with
    Stripe.js; POST names the confirmed intent, and the server reads the card from Stripe."""
    organisation = _organisation()
    form = EnterCardForm()
    errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            saved_cards.save_card_from_setup(current_user, organisation, form.setup_intent.data)
            commit()
        except DomainError as error:
            rollback()
            if isinstance(error, NotFound):
                abort(404)
            if error.status == 403:
                abort(403)
            errors = {"card-element": [m for ms in error.errors.values() for m in ms]}
        else:
            flash("Card saved. You can now pay your organisation's invoices with it.", "success")
            return redirect(url_for("payments.card"))
    elif "csrf_token" in form.errors:
        errors = {"": ["The form has expired. Enter the card again."]}
    elif form.errors:
        errors = {"card-element": ["Enter the card again"]}
    client_secret = None
    if saved_cards.card_form_available():
        try:
            _, intent = saved_cards.start_card_setup(current_user, organisation)
            commit()  # the organisation's Stripe customer, made the first time
            client_secret = intent.client_secret
        except DomainError as error:
            rollback()
            errors.setdefault("", []).append(error.detail)
    return render_template(
        "payments/enter_card.html",
        form=EnterCardForm(formdata=None),
        organisation=organisation,
        customer=saved_card_for(organisation.id),
        client_secret=client_secret,
        page_errors=errors,
        **_stripe_js(),
    ), 422 if errors else 200


@bp.post("/organisation/payment-card/remove")
@roles_required(*PAYERS)
def remove_card():
    organisation = _organisation()
    if not RemoveCardForm().validate_on_submit():
        abort(400)
    try:
        saved_cards.remove_card(current_user, organisation)
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
    if not can_pay_invoice(current_user, invoice):
        abort(403)
    latest = card_payment_for(invoice.id)
    if latest is not None and latest.status == CardPaymentStatus.REQUIRES_ACTION:
        return redirect(url_for("payments.confirm_payment", invoice_id=invoice.id))
    if latest is not None and latest.status != CardPaymentStatus.FAILED:
        return redirect(url_for("invoices.show", invoice_id=invoice.id))
    form = PayByCardForm()
    errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            payment = card_payments.pay_invoice_by_card(current_user, invoice)
            commit()
        except DomainError as error:
            rollback()
            if isinstance(error, NotFound):
                abort(404)
            if error.status == 403:
                abort(403)
            errors = error.errors or {"": [error.detail]}
        else:
            if payment.status == CardPaymentStatus.REQUIRES_ACTION:
                return redirect(url_for("payments.confirm_payment", invoice_id=invoice.id))
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


@bp.route("/invoices/<int:invoice_id>/pay-by-card/confirm", methods=["GET", "POST"])
@roles_required(*PAYERS)
@uses_stripe_js
def confirm_payment(invoice_id: int):
    """The card's issuer asked for authentication (3-D Secure): Stripe.js shows its check in the
    page, then the form is sent and the server reads the PaymentIntent's outcome from Stripe."""
    invoice = _invoice(invoice_id)
    if not can_pay_invoice(current_user, invoice):
        abort(403)
    form = ConfirmPaymentForm()
    errors: dict[str, list[str]] = {}
    if form.validate_on_submit():
        try:
            payment = card_payments.check_card_payment(current_user, invoice)
            commit()
        except DomainError as error:
            rollback()
            if isinstance(error, NotFound):
                abort(404)
            errors = {"": [error.detail]}
        else:
            if payment.status == CardPaymentStatus.SUCCEEDED:
                flash("Payment made. The invoice is paid.", "success")
                return redirect(url_for("invoices.show", invoice_id=invoice.id))
            if payment.status == CardPaymentStatus.PROCESSING:
                return redirect(url_for("invoices.show", invoice_id=invoice.id))
            if payment.status == CardPaymentStatus.FAILED:
                return render_template(
                    "payments/pay.html",
                    form=PayByCardForm(formdata=None),
                    invoice=_invoice(invoice_id),
                    customer=saved_card_for(invoice.lead_buyer_id),
                    page_errors={
                        "": [f"The payment did not go through. {payment.failure_message}"]
                    },
                ), 422
            errors = {
                "": [
                    "Your card issuer has not confirmed the payment yet. Confirm it again, or "
                    "cancel this card payment and pay another way."
                ]
            }
        invoice = _invoice(invoice_id)
    payment = card_payment_for(invoice.id)
    if payment is None or payment.status != CardPaymentStatus.REQUIRES_ACTION:
        return redirect(url_for("invoices.show", invoice_id=invoice.id))
    if invoice.status != InvoiceStatus.VALIDATED:
        # Paid another way (BACS) while the card payment waited: confirming it now would take
        # the money twice, so the waiting PaymentIntent is cancelled instead of offered.
        try:
            card_payments.cancel_card_payment(current_user, invoice)
            commit()
        except DomainError as error:
            rollback()
            flash(error.detail, "error")
        else:
            flash(
                f"The invoice is {invoice.status.label.lower()}, so the card payment waiting "
                "for you was cancelled. Nothing was charged.",
                "success",
            )
        return redirect(url_for("invoices.show", invoice_id=invoice.id))
    client_secret = None
    if saved_cards.card_form_available():
        try:
            client_secret = card_payments.authentication_secret(payment)
        except DomainError as error:
            errors.setdefault("", []).append(error.detail)
    return render_template(
        "payments/confirm_payment.html",
        form=ConfirmPaymentForm(formdata=None),
        cancel_form=CancelPaymentForm(),
        invoice=invoice,
        payment=payment,
        client_secret=client_secret,
        page_errors=errors,
        **_stripe_js(),
    ), 422 if errors else 200


@bp.post("/invoices/<int:invoice_id>/pay-by-card/cancel")
@roles_required(*PAYERS)
def cancel_payment(invoice_id: int):
    invoice = _invoice(invoice_id)
    if not can_pay_invoice(current_user, invoice):
        abort(403)
    if not CancelPaymentForm().validate_on_submit():
        abort(400)
    try:
        card_payments.cancel_card_payment(current_user, invoice)
        commit()
    except DomainError as error:
        rollback()
        if isinstance(error, NotFound):
            abort(404)
        flash(error.detail, "error")
    else:
        flash("Card payment cancelled. Nothing was charged.", "success")
    return redirect(url_for("invoices.show", invoice_id=invoice.id))


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
        outcome = webhooks.handle_event(event)
        commit()
    except IntegrityError:  # the same event delivered twice at once: the other one acts
        rollback()
        outcome = "duplicate"
    log.info("stripe event %s (%s): %s", event_id, event_type, outcome)
    return jsonify({"received": True, "outcome": outcome})
