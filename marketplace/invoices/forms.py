"""Forms for the invoice pages: shape only (limits from the models); the services decide the
rules."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovTextInput
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError

from marketplace.accounts.forms.fields import BaseForm, required_text_area, submit_field
from marketplace.core.forms import DATE_HINT, parse_day
from marketplace.core.money import MoneyError, parse_pounds
from marketplace.invoices.models import PAYMENT_REFERENCE_MAX, REASON_MAX


class ActionForm(BaseForm):
    """One button and its CSRF token: issue and validate."""

    submit = submit_field("Confirm")


class DisputeForm(BaseForm):
    reason = required_text_area(
        "Why do you dispute this invoice?",
        "Enter why you dispute the invoice",
        limit=REASON_MAX,
        description="The provider sees this at once. Say which lines are wrong and why.",
    )
    submit = submit_field("Dispute invoice")


class PaymentForm(BaseForm):
    payment_reference = StringField(
        "Remittance reference",
        description="The reference of the BACS payment, as on your remittance advice.",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the remittance reference of the payment"),
            Length(
                max=PAYMENT_REFERENCE_MAX,
                message=f"Use {PAYMENT_REFERENCE_MAX} characters or fewer",
            ),
        ],
    )
    paid_on = StringField(
        "Date paid",
        description=DATE_HINT,
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the date the payment was made")],
    )
    submit = submit_field("Record payment")

    def validate_paid_on(self, field):
        if field.data and parse_day(field.data) is None:
            raise ValidationError("Date paid must be a real date, like 31 3 2027")


class CreditNoteForm(BaseForm):
    amount = StringField(
        "Amount to credit, before VAT",
        description="In pounds and pence, like 125.50. The VAT is worked out at the invoice's "
        "rate.",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the amount to credit")],
    )
    reason = required_text_area(
        "Why are you crediting the invoice?",
        "Enter why you are crediting the invoice",
        limit=REASON_MAX,
        description="The buyer sees this on the credit note.",
    )
    submit = submit_field("Issue credit note")

    def validate_amount(self, field):
        try:
            pence = parse_pounds(field.data, "the amount to credit")
        except MoneyError as error:
            raise ValidationError(str(error)) from error
        if not pence:
            raise ValidationError("The amount to credit must be more than £0")

    @property
    def amount_pence(self) -> int | None:
        try:
            return parse_pounds(self.amount.data, "the amount to credit")
        except MoneyError:
            return None
