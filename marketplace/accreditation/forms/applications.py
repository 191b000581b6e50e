"""Forms for a provider's application pages and "Our accreditation": shape only."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf.file import FileField
from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovCheckboxInput,
    GovFileInput,
    GovRadioInput,
    GovTextArea,
    GovTextInput,
)
from wtforms import BooleanField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from marketplace.accounts.forms.fields import (
    YES_NO,
    BaseForm,
    ChoiceCheckboxesField,
    ChoiceRadioField,
    OptionalChoiceRadioField,
    submit_field,
)
from marketplace.accreditation.models import ANSWER_TEXT_MAX, Criterion, QuestionType
from marketplace.core.forms import DATE_HINT, parse_day, parse_whole_number


def _date_field(label: str, description: str = DATE_HINT, validators=None) -> StringField:
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        validators=validators or [Optional()],
        render_kw={"autocomplete": "off"},
    )


class StartApplicationForm(BaseForm):
    arrangement_id = ChoiceRadioField(
        "Which arrangement do you want to join?",
        widget=GovRadioInput(),
        coerce=int,
        choices=[],
        invalid_message="Select the arrangement you want to join",
    )
    submit = submit_field("Start application")

    def __init__(self, *args, arrangements: Iterable = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.arrangement_id.choices = [SelectChoice(a.id, a.name) for a in arrangements]


class ScopeForm(BaseForm):
    lot_ids = ChoiceCheckboxesField(
        "Which lots are you applying for?",
        description="Select all that apply. Each lot has its own questions.",
        widget=GovCheckboxesInput(),
        coerce=int,
        choices=[],
        invalid_message="Choose only lots of this arrangement",
    )
    region_ids = ChoiceCheckboxesField(
        "Which probation regions will you cover?",
        description="Select all that apply.",
        widget=GovCheckboxesInput(),
        coerce=int,
        choices=[],
        invalid_message="Choose only regions that this arrangement covers",
    )
    pcc_area_ids = ChoiceCheckboxesField(
        "Or which Police and Crime Commissioner areas? (optional)",
        description="If you cover only part of a region, choose its PCC areas instead.",
        widget=GovCheckboxesInput(),
        coerce=int,
        choices=[],
        invalid_message="Choose only PCC areas within the regions this arrangement covers",
    )
    submit = submit_field("Save and continue")

    def __init__(self, *args, lots: Iterable = (), regions: Iterable = (), pcc_areas=(), **kw):
        super().__init__(*args, **kw)
        self.lot_ids.choices = [SelectChoice(lot.id, lot.category.name) for lot in lots]
        self.region_ids.choices = [SelectChoice(r.id, r.name) for r in regions]
        self.pcc_area_ids.choices = [
            SelectChoice(a.id, f"{a.name} ({a.region.name})") for a in pcc_areas
        ]

    def validate_lot_ids(self, field) -> None:
        if not field.data:
            raise ValidationError("Select at least one lot")

    def validate_region_ids(self, field) -> None:
        if not field.data and not self.pcc_area_ids.data:
            raise ValidationError("Select at least one region or PCC area")


class LotAnswersForm(BaseForm):
    """One field per question of a lot, built by :func:`lot_answers_form`."""

    submit = submit_field("Save and continue")
    criteria: list[Criterion]

    def answer_field(self, criterion: Criterion):
        return self[field_name(criterion)]

    def expiry_field(self, criterion: Criterion):
        return self._fields.get(expiry_field_name(criterion))


def field_name(criterion: Criterion) -> str:
    return f"criterion-{criterion.id}"


def expiry_field_name(criterion: Criterion) -> str:
    return f"criterion-{criterion.id}-expires"


def _validate_number(form, field) -> None:
    if field.data and parse_whole_number(field.data, max_digits=15, negative=True) is None:
        raise ValidationError("Enter a whole number, like 12")


def _validate_day(form, field) -> None:
    if field.data and parse_day(field.data) is None:
        raise ValidationError("Enter a real date, like 31 3 2027")


def _question_field(criterion: Criterion):
    label = criterion.question + ("" if criterion.mandatory else " (optional)")
    description = criterion.guidance or None
    if criterion.type == QuestionType.YES_NO:
        return OptionalChoiceRadioField(
            label,
            description=description,
            widget=GovRadioInput(),
            choices=YES_NO,
            validators=[Optional()],
            invalid_message="Select yes or no",
        )
    if criterion.type == QuestionType.TEXT:
        return TextAreaField(
            label,
            description=description,
            widget=GovTextArea(),
            validators=[
                Optional(),
                Length(
                    max=ANSWER_TEXT_MAX,
                    message=f"Your answer must be {ANSWER_TEXT_MAX:,} characters or fewer",
                ),
            ],
        )
    if criterion.type == QuestionType.NUMBER:
        return StringField(
            label,
            description=description,
            widget=GovTextInput(),
            validators=[Optional(), _validate_number],
            render_kw={"inputmode": "numeric"},
        )
    if criterion.type == QuestionType.DATE:
        hint = (description + " " if description else "") + DATE_HINT
        return _date_field(label, hint, [Optional(), _validate_day])
    return FileField(
        label,
        description=(description + " " if description else "")
        + "A PDF, PNG, JPEG, DOCX, XLSX or ODT file, up to 10 MB.",
        widget=GovFileInput(),
    )


def lot_answers_form(criteria: list[Criterion], **kwargs) -> LotAnswersForm:
    """A form with a field for each of ``criteria`` (and an expiry date for expiring evidence)."""
    fields = {}
    for criterion in criteria:
        fields[field_name(criterion)] = _question_field(criterion)
        if criterion.type == QuestionType.FILE and criterion.evidence_expires:
            fields[expiry_field_name(criterion)] = _date_field(
                "When does this evidence expire?", DATE_HINT, [Optional(), _validate_day]
            )
    form_class = type("LotAnswersForm", (LotAnswersForm,), fields)
    form = form_class(**kwargs)
    form.criteria = criteria
    return form


class PartnersForm(BaseForm):
    partners = TextAreaField(
        "Subcontractors and consortium partners (optional)",
        description="Name each organisation that will deliver part of the service, one a line. "
        "Leave this empty if you will deliver everything yourselves.",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(
                max=ANSWER_TEXT_MAX,
                message=f"Partners must be {ANSWER_TEXT_MAX:,} characters or fewer",
            ),
        ],
    )
    submit = submit_field("Save and continue")


class SubmitApplicationForm(BaseForm):
    declaration = BooleanField(
        "I confirm that the information in this application is true and complete, and that "
        "I will tell the contracting authority if anything changes",
        widget=GovCheckboxInput(),
    )
    submit = submit_field("Accept and submit")


class ConfirmForm(BaseForm):
    submit = submit_field("Confirm")


class RenewEvidenceForm(BaseForm):
    file = FileField(
        "Upload the renewed evidence",
        description="A PDF, PNG, JPEG, DOCX, XLSX or ODT file, up to 10 MB.",
        widget=GovFileInput(),
    )
    expires_on = _date_field("When does the renewed evidence expire?")
    submit = submit_field("Send renewed evidence")

    def validate_file(self, field) -> None:
        if not getattr(field.data, "filename", None):
            raise ValidationError("Select the renewed evidence to upload")

    def validate_expires_on(self, field) -> None:
        if not field.data:
            raise ValidationError("Enter the date the renewed evidence expires")
        if parse_day(field.data) is None:
            raise ValidationError("Enter a real date, like 31 3 2027")


class ClarificationAnswerForm(BaseForm):
    answer = TextAreaField(
        "Your answer",
        widget=GovTextArea(),
        validators=[
            DataRequired(message="Enter your answer"),
            Length(
                max=ANSWER_TEXT_MAX,
                message=f"Your answer must be {ANSWER_TEXT_MAX:,} characters or fewer",
            ),
        ],
    )
    submit = submit_field("Send answer")
