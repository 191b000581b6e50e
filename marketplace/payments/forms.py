"""Forms for the card pages: shape only; the services decide the rules."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovTextInput
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from marketplace.accounts.forms.fields import BaseForm, submit_field
from marketplace.payments.models import STRIPE_ID_MAX


class SaveCardForm(BaseForm):
    """The card as a Stripe PaymentMethod id: made by Stripe.js in the browser when a publishable
    key is configured, else typed (test mode: ``pm_card_visa``)."""

    payment_method_id = StringField(
        "Card payment method",
        description="The payment method Stripe gave for the card. It starts pm_.",
        widget=GovTextInput(),
        render_kw={"autocomplete": "off", "spellcheck": "false"},
        validators=[
            DataRequired(message="Enter the card's payment method"),
            Length(max=STRIPE_ID_MAX, message=f"Use {STRIPE_ID_MAX} characters or fewer"),
        ],
    )
    submit = submit_field("Save card")


class RemoveCardForm(BaseForm):
    submit = submit_field("Remove card")


class PayByCardForm(BaseForm):
    submit = submit_field("Pay now")
