"""Forms for the outcome pages: shape only (limits from the models); the services decide the
rules. Tariffs are typed in pounds (up to two decimals) and become whole pence exactly."""

from __future__ import annotations

from flask_wtf.file import FileField
from govuk_frontend_wtf.wtforms_widgets import GovFileInput, GovSelect, GovTextArea, GovTextInput
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceSelectField,
    date_field,
    required_text_area,
    submit_field,
)
from marketplace.core.forms import parse_whole_number
from marketplace.core.money import pounds_or_none
from marketplace.outcomes.models import EVIDENCE_REQUIRED_MAX, MAX_CAP, NOTE_MAX, REASON_MAX


def _tariff_check(form, field):
    if field.data and pounds_or_none(field.data) is None:
        raise ValidationError("Enter the tariff in pounds and pence, like 500.00")


def _cap_check(form, field):
    if field.data and parse_whole_number(field.data) is None:
        raise ValidationError(f"Enter the most claims as a whole number from 1 to {MAX_CAP}")


class OutcomeTermForm(BaseForm):
    """One outcome term; ``outcome`` choices are the listing's outcomes, set by the view."""

    outcome = ChoiceSelectField(
        "Outcome",
        choices=[],
        widget=GovSelect(),
        validators=[DataRequired(message="Choose an outcome the service offers")],
    )
    tariff = StringField(
        "Tariff per outcome, in pounds, excluding VAT",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the tariff per outcome"), _tariff_check],
    )
    earliest_claim_on = date_field(
        "Earliest claim date", "Enter the earliest date the outcome can be claimed"
    )
    evidence_required = required_text_area(
        "Evidence required",
        "Enter the evidence the provider must give",
        limit=EVIDENCE_REQUIRED_MAX,
    )
    cap = StringField(
        "Most claims allowed",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the most claims allowed"), _cap_check],
    )
    submit = submit_field("Propose outcome terms")


class ClaimForm(BaseForm):
    term_id = ChoiceSelectField(
        "Outcome",
        choices=[],
        widget=GovSelect(),
        validators=[DataRequired(message="Choose the outcome you are claiming")],
    )
    achieved_on = date_field(
        "Date the outcome was achieved", "Enter the date the outcome was achieved"
    )
    file = FileField(
        "Evidence",
        description="A PDF, PNG, JPEG, DOCX, XLSX or ODT file, up to 10 MB.",
        widget=GovFileInput(),
    )
    note = TextAreaField(
        "Note for the buyer (optional)",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=NOTE_MAX, message=f"Use {NOTE_MAX} characters or fewer"),
        ],
    )
    submit = submit_field("Claim outcome")


class RejectForm(BaseForm):
    reason = required_text_area("Reason", "Enter the reason", limit=REASON_MAX)
    submit = submit_field("Reject")
