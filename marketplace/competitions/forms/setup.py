"""Forms for setting up a further competition: shape only (the services decide the rules, and
their errors are shown on the fields they name). Amounts are typed in pounds, shares and
weights as percentages, deadlines as a London date and time."""

from __future__ import annotations

from flask_wtf.file import FileField
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovFileInput,
    GovRadioInput,
    GovSelect,
    GovTextArea,
    GovTextInput,
)
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import ValidationError

from marketplace.accounts.forms.fields import (
    YES_NO,
    BaseForm,
    ChoiceCheckboxesField,
    ChoiceSelectField,
    OptionalChoiceRadioField,
    enum_choices,
    submit_field,
)
from marketplace.catalogue.models import Unit
from marketplace.competitions.models import PriceFormula, QuestionKind, TieBreak
from marketplace.core.forms import DATE_HINT, parse_day, parse_time_of_day

FUNDER_ROWS = 4  # co-funder rows offered on the funding page, besides the lead buyer
TIME_HINT = "Use the 24-hour clock, London time, like 12:00 or 17:30"


def _text(
    label: str, description: str | None = None, width: str = "", validators=()
) -> StringField:
    params = {"classes": width} if width else {}
    return StringField(
        label,
        description=description,
        validators=list(validators),
        widget=GovTextInput(),
        render_kw={"params": params},
    )


# Shape only: a date or time typed but unreadable is named as such on its own field (blank is
# left to the service, which says what is missing).
def _real_date(what: str):
    def check(form, field):
        if (field.data or "").strip() and parse_day(field.data) is None:
            raise ValidationError(f"{what} must be a real date, like 31 3 2027")

    return check


def _time_of_day(what: str):
    def check(form, field):
        if (field.data or "").strip() and parse_time_of_day(field.data) is None:
            raise ValidationError(f"{what} must be a time of day, like 12:00, 17:30 or 5pm")

    return check


def _area(label: str, description: str | None = None, rows: int = 5) -> TextAreaField:
    return TextAreaField(
        label, description=description, widget=GovTextArea(), render_kw={"params": {"rows": rows}}
    )


def _pounds(label: str, description: str | None = None) -> StringField:
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        render_kw={"params": {"prefix": {"text": "£"}, "classes": "govuk-input--width-10"}},
    )


def _percent(label: str) -> StringField:
    return StringField(
        label,
        widget=GovTextInput(),
        render_kw={"params": {"suffix": {"text": "%"}, "classes": "govuk-input--width-5"}},
    )


class DetailsForm(BaseForm):
    title = _text("Title", "A short name bidders will recognise")
    need = _area("What do you need?", "In plain words: who it is for, what, where and why", 8)
    lot_id = ChoiceSelectField("Arrangement and lot", choices=[], widget=GovSelect())
    areas = ChoiceCheckboxesField(
        "Where?",
        description="Choose probation regions, or PCC areas if you need only part of a region",
        choices=[],
        widget=GovCheckboxesInput(),
        invalid_message="Choose the areas from the list",
    )
    estimated_value = _pounds(
        "Estimated whole-life value, including VAT",
        "The most you expect to pay over the whole contract. Bidders see it as a band",
    )
    contract_start = _text(
        "Contract start date",
        DATE_HINT,
        "govuk-input--width-10",
        [_real_date("The contract start date")],
    )
    contract_end = _text(
        "Contract end date",
        DATE_HINT,
        "govuk-input--width-10",
        [_real_date("The contract end date")],
    )
    quantity = _text("Number of units", None, "govuk-input--width-5")
    unit = ChoiceSelectField(
        "Unit",
        choices=[SelectChoice("", "Choose a unit")] + enum_choices(list(Unit)),
        widget=GovSelect(),
    )
    missed_sessions_chargeable = OptionalChoiceRadioField(
        "Can the provider charge for sessions the person misses?",
        choices=YES_NO,
        widget=GovRadioInput(),
        render_kw={"params": {"classes": "govuk-radios--inline"}},
    )
    submit = submit_field("Save and continue")


class DocumentForm(BaseForm):
    file = FileField(
        "Upload a document",
        description="A PDF, PNG, JPEG, DOCX, XLSX or ODT file, smaller than 10 MB",
        widget=GovFileInput(),
    )
    submit = submit_field("Upload")


def _funding_form():
    fields = {"lead_share": _percent("Your organisation's share")}
    for n in range(1, FUNDER_ROWS + 1):
        # Any value: the service says which funders are allowed, on this row.
        fields[f"funder_{n}"] = ChoiceSelectField(
            f"Co-funder {n}", choices=[], widget=GovSelect(), validate_choice=False
        )
        fields[f"share_{n}"] = _percent(f"Co-funder {n}'s share")
    fields["submit"] = submit_field("Save and continue")
    return type("FundingForm", (BaseForm,), fields)


FundingForm = _funding_form()


class PriceForm(BaseForm):
    price_weight = _percent("Price weight")
    price_formula = OptionalChoiceRadioField(
        "How is price scored?", choices=enum_choices(list(PriceFormula)), widget=GovRadioInput()
    )
    tie_break = OptionalChoiceRadioField(
        "If two bids score the same, which ranks higher?",
        choices=enum_choices(list(TieBreak)),
        widget=GovRadioInput(),
    )
    submit = submit_field("Save price and tie-break")


class QuestionForm(BaseForm):
    kind = OptionalChoiceRadioField(
        "Kind of question", choices=enum_choices(list(QuestionKind)), widget=GovRadioInput()
    )
    text = _area("Question", None, 3)
    word_limit = _text("Word limit for answers", None, "govuk-input--width-5")
    scoring_scheme = _area(
        "Scoring scheme", "What earns each score, from 0 to the top score (not for pass or fail)", 4
    )
    max_score = _text("Top score", "From 1 to 10, like 4", "govuk-input--width-3")
    weight = _percent("Weight")
    submit = submit_field("Add question")


class DeadlinesForm(BaseForm):
    clarification_date = _text(
        "Questions close: date",
        DATE_HINT,
        "govuk-input--width-10",
        [_real_date("The date questions close")],
    )
    clarification_time = _text(
        "Questions close: time",
        TIME_HINT,
        "govuk-input--width-5",
        [_time_of_day("The time questions close")],
    )
    bid_date = _text(
        "Bids close: date", DATE_HINT, "govuk-input--width-10", [_real_date("The date bids close")]
    )
    bid_time = _text(
        "Bids close: time", TIME_HINT, "govuk-input--width-5", [_time_of_day("The time bids close")]
    )
    standstill_working_days = _text(
        "Standstill (working days)",
        "Between the award decision and the contract. 0 only for light-touch services, with a "
        "reason",
        "govuk-input--width-3",
    )
    standstill_reason = _area("Reason for no standstill (only if 0)", None, 3)
    submit = submit_field("Save and continue")


class PanelForm(BaseForm):
    user_ids = ChoiceCheckboxesField(
        "Who will evaluate the bids?",
        description="At least two people, from your organisation or the co-funders",
        choices=[],
        coerce=int,
        widget=GovCheckboxesInput(),
        invalid_message="Choose evaluators from the list",
    )
    single_evaluator_reason = _area("Reason one evaluator is enough (only if one)", None, 3)
    submit = submit_field("Save and continue")


class CancelForm(BaseForm):
    reason = _area("Why are you cancelling it?", "Everyone invited and every bidder is told", 4)
    submit = submit_field("Cancel competition")


class ClickForm(BaseForm):
    """A button alone: its CSRF token."""


class PublishForm(BaseForm):
    """Check your answers' button; a refusal to publish is shown on ``confirm``."""

    confirm = HiddenField(default="yes")
