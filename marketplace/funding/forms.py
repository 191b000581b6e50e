"""Forms for budgets and standing authorisations: shape only (the services decide the rules).
Amounts are typed in pounds, up to two decimals, and become whole pence exactly."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextArea, GovTextInput
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from marketplace.accounts.forms.admin import GetForm
from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceRadioField,
    ChoiceSelectField,
    required_text_area,
    submit_field,
)
from marketplace.core.money import MoneyError, parse_pounds
from marketplace.funding.models import MAX_AMOUNT_PENCE, REASON_MAX

_MAX_POUNDS = f"£{MAX_AMOUNT_PENCE // 100:,}"


def _amount_field(label: str, message: str, description: str | None = None) -> StringField:
    def check(form, field):
        if not field.data:
            return
        try:
            pence = parse_pounds(field.data, label)
        except MoneyError as error:
            if error.reason == MoneyError.NEGATIVE:
                raise ValidationError(str(error)) from None
            raise ValidationError(
                f"Enter {label[0].lower()}{label[1:]} in pounds and pence, like 25000 or 25000.50"
            ) from None
        if pence > MAX_AMOUNT_PENCE:
            raise ValidationError(f"{label} must be {_MAX_POUNDS} or less")

    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        validators=[DataRequired(message=message), check],
        render_kw={"params": {"prefix": {"text": "£"}, "classes": "govuk-input--width-10"}},
    )


def year_choices(years: list[int], label) -> list[SelectChoice]:
    return [SelectChoice(str(year), label(year)) for year in years]


class BudgetForm(BaseForm):
    """A new budget; the view sets the years and categories offered."""

    financial_year = ChoiceRadioField(
        "Financial year",
        choices=[],
        widget=GovRadioInput(),
        validators=[DataRequired(message="Choose the financial year")],
        invalid_message="Choose one of the financial years listed",
    )
    category_id = ChoiceSelectField(
        "What the budget is for",
        description="A category budget is used for that category's call-offs before the "
        "budget for all services.",
        choices=[],
        default="",  # left out of a post: for all services
        widget=GovSelect(),
        validators=[Optional()],
        invalid_message="Choose a service category from the list",
    )
    allocated = _amount_field("Amount", "Enter the amount of the budget")
    reason = TextAreaField(
        "Note for the budget's history (optional)",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=REASON_MAX, message=f"Use {REASON_MAX} characters or fewer"),
        ],
    )
    submit = submit_field("Set budget")


class ChangeBudgetForm(BaseForm):
    allocated = _amount_field(
        "New amount",
        "Enter the new amount of the budget",
        description="It cannot be less than what open call-offs commit and what has been spent.",
    )
    reason = required_text_area(
        "Reason for the change",
        "Enter the reason for the change",
        description="It is kept in the budget's history and sent to your other approvers.",
        limit=REASON_MAX,
    )
    # The allocation the person saw: a change made meanwhile by someone else is not undone.
    expected = HiddenField()
    submit = submit_field("Change budget")


class BudgetFilterForm(GetForm):
    """The authority's filters; the view sets the choices (each with an "all" choice first)."""

    organisation = ChoiceSelectField(
        "Organisation",
        widget=GovSelect(),
        choices=[],
        default="",
        validators=[Optional()],
        invalid_message="Choose an organisation from the list",
    )
    year = ChoiceSelectField(
        "Financial year",
        widget=GovSelect(),
        choices=[],
        default="",
        validators=[Optional()],
        invalid_message="Choose a financial year from the list",
    )


class AuthorisationForm(BaseForm):
    lead_buyer_id = ChoiceSelectField(
        "Lead buyer",
        description="The organisation whose call-offs may take your share without asking you.",
        choices=[],
        widget=GovSelect(),
        validators=[DataRequired(message="Choose the organisation to authorise")],
        invalid_message="Choose an organisation from the list",
    )
    financial_year = ChoiceRadioField(
        "Financial year",
        choices=[],
        widget=GovRadioInput(),
        validators=[DataRequired(message="Choose the financial year")],
        invalid_message="Choose one of the financial years listed",
    )
    per_call_off = _amount_field(
        "Limit per call-off",
        "Enter the most your share of one call-off may be",
        description="Your share of one call-off, including VAT. A larger share waits for you "
        "to confirm it.",
    )
    annual = _amount_field(
        "Total for the year",
        "Enter the most your shares may come to in the year",
        description="Your shares of all their call-offs starting in the year, added up.",
    )
    submit = submit_field("Set up authorisation")


class ChangeAuthorisationForm(BaseForm):
    per_call_off = _amount_field("Limit per call-off", "Enter the limit per call-off")
    annual = _amount_field(
        "Total for the year",
        "Enter the total for the year",
        description="It cannot be less than what the authorisation has already used.",
    )
    reason = required_text_area(
        "Reason for the change",
        "Enter the reason for the change",
        description="The lead buyer's approvers are sent it.",
        limit=REASON_MAX,
    )
    submit = submit_field("Change authorisation")


class RevokeAuthorisationForm(BaseForm):
    reason = required_text_area(
        "Reason for revoking",
        "Enter the reason for revoking the authorisation",
        description="The lead buyer's approvers are sent it.",
        limit=REASON_MAX,
    )
    submit = submit_field("Revoke authorisation")
