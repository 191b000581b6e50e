"""Forms for the card pages: shape only; the services decide the rules."""

from __future__ import annotations

from wtforms import HiddenField
from wtforms.validators import Length

from marketplace.accounts.forms.fields import BaseForm, submit_field
from marketplace.payments.models import STRIPE_ID_MAX


class EnterCardForm(BaseForm):
    """The card itself is entered in Stripe's own form (Stripe.js), which confirms a SetupIntent;
    the page then sends only that intent's id, which the server reads back from Stripe."""

    setup_intent = HiddenField(
        validators=[Length(max=STRIPE_ID_MAX, message="Enter the card again")]
    )
    submit = submit_field("Save card")


class RemoveCardForm(BaseForm):
    submit = submit_field("Remove card")


class PayByCardForm(BaseForm):
    submit = submit_field("Pay now")


class ConfirmPaymentForm(BaseForm):
    """Sent once Stripe.js has shown the card issuer's check: the server reads the outcome."""

    submit = submit_field("Confirm the payment with your card issuer")


class CancelPaymentForm(BaseForm):
    submit = submit_field("Cancel this card payment")
