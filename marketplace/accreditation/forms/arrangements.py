"""Forms for the authority's arrangement pages: shape only, limits from the models."""

from __future__ import annotations

import re

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovCheckboxInput,
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
    enum_choices,
    submit_field,
    upper_no_spaces,
)
from marketplace.accreditation.models import (
    ARRANGEMENT_NAME_MAX,
    QUESTION_MAX,
    REASON_MAX,
    REFERENCE_MAX,
    ArrangementStatus,
    AwardLimitScope,
    LegalRegime,
    QuestionType,
)
from marketplace.core.forms import parse_iso_date
from marketplace.core.money import pounds_or_none

DESCRIPTION_MAX = 10_000
GUIDANCE_MAX = 5_000
MAX_LIMIT_PENCE = 10**13  # £100bn: far beyond any real limit, well inside a BIGINT
QUESTION_TYPE_LABELS = {
    QuestionType.YES_NO: "Yes or no",
    QuestionType.TEXT: "Text",
    QuestionType.NUMBER: "Number",
    QuestionType.DATE: "Date",
    QuestionType.FILE: "File evidence (a document)",
}


def pence_to_pounds(pence: int) -> str:
    pounds, rest = divmod(pence, 100)
    return f"{pounds}.{rest:02d}" if rest else str(pounds)


def _date_field(label: str, message: str) -> StringField:
    return StringField(
        label,
        description="Use the format YYYY-MM-DD, like 2026-04-01",
        widget=GovTextInput(),
        validators=[DataRequired(message=message)],
    )


def _days_field(label: str, default: int) -> StringField:
    return StringField(
        label,
        description="In working days",
        widget=GovTextInput(),
        default=str(default),
        validators=[DataRequired(message=f"Enter the {label.lower()}")],
    )


class ArrangementForm(BaseForm):
    name = StringField(
        "Name",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the arrangement's name"),
            Length(
                max=ARRANGEMENT_NAME_MAX,
                message=f"Name must be {ARRANGEMENT_NAME_MAX} characters or fewer",
            ),
        ],
    )
    reference = StringField(
        "Reference",
        description="3 to 40 capital letters, digits and hyphens, like DPS-2026-01",
        widget=GovTextInput(),
        filters=[upper_no_spaces],
        validators=[DataRequired(message="Enter a reference")],
    )
    description = TextAreaField(
        "What it buys",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(
                max=DESCRIPTION_MAX,
                message=f"The description must be {DESCRIPTION_MAX} characters or fewer",
            ),
        ],
    )
    legal_regime = ChoiceRadioField(
        "Legal regime",
        widget=GovRadioInput(),
        choices=enum_choices(list(LegalRegime)),
        invalid_message="Choose the legal regime",
    )
    valid_from = _date_field("Start date", "Enter the start date")
    valid_to = _date_field("End date", "Enter the end date")
    direct_award_limit = StringField(
        "Direct-award limit, including VAT",
        description="In pounds, like 30000 or 30000.50. Call-offs above it need a further competition.",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the direct-award limit")],
    )
    award_limit_scope = ChoiceRadioField(
        "Which call-offs count together towards the limit?",
        description="A buyer organisation's call-offs over the last 12 months count together, "
        "so that a need is not split into smaller call-offs to stay under the limit.",
        widget=GovRadioInput(),
        choices=enum_choices(list(AwardLimitScope)),
        default=AwardLimitScope.PROVIDER_AND_LOT.value,
        invalid_message="Choose which call-offs count together towards the direct-award limit",
    )
    decision_period_days = _days_field("Decision period", 10)
    extended_period_days = _days_field("Extended decision period", 15)
    region_ids = ChoiceCheckboxesField(
        "Regions covered",
        widget=GovCheckboxesInput(),
        coerce=int,
        choices=[],
        invalid_message="Choose regions from the list",
    )
    category_ids = ChoiceCheckboxesField(
        "Lots",
        description="Each lot is a service category with its own selection criteria.",
        widget=GovCheckboxesInput(),
        coerce=int,
        choices=[],
        invalid_message="Choose lots from the list",
    )
    submit = submit_field("Save")

    def __init__(self, *args, regions=(), categories=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.region_ids.choices = [SelectChoice(r.id, r.name) for r in regions]
        self.category_ids.choices = [SelectChoice(c.id, c.name) for c in categories]

    def validate_reference(self, field) -> None:
        if not re.fullmatch(rf"[A-Z0-9-]{{3,{REFERENCE_MAX}}}", field.data or ""):
            raise ValidationError(
                "Enter a reference of 3 to 40 capital letters, digits and hyphens, like DPS-2026-01"
            )

    def validate_valid_from(self, field) -> None:
        if parse_iso_date(field.data) is None:
            raise ValidationError("Enter the start date as a real date, like 2026-04-01")

    def validate_valid_to(self, field) -> None:
        end = parse_iso_date(field.data)
        if end is None:
            raise ValidationError("Enter the end date as a real date, like 2027-03-31")
        start = parse_iso_date(self.valid_from.data)
        if start is not None and end <= start:
            raise ValidationError("The end date must be after the start date")

    def validate_direct_award_limit(self, field) -> None:
        pence = pounds_or_none(field.data)
        if pence is None:
            raise ValidationError(
                "Enter the limit as an amount in pounds of 0 or more, with at most 2 decimal "
                "places, like 30000 or 30000.50"
            )
        if pence > MAX_LIMIT_PENCE:
            raise ValidationError("The limit is too large")

    def _days(self, field) -> None:
        text = (field.data or "").strip()
        if not text.isdigit() or not (1 <= int(text) <= 100):
            raise ValidationError(f"The {field.label.text.lower()} must be 1 to 100 working days")

    validate_decision_period_days = _days
    validate_extended_period_days = _days

    def details(self) -> dict:
        """The fields as the service takes them."""
        return {
            "name": self.name.data,
            "reference": self.reference.data,
            "description": self.description.data or "",
            "legal_regime": LegalRegime(self.legal_regime.data),
            "valid_from": parse_iso_date(self.valid_from.data),
            "valid_to": parse_iso_date(self.valid_to.data),
            "direct_award_limit_pence": pounds_or_none(self.direct_award_limit.data),
            "award_limit_scope": AwardLimitScope(self.award_limit_scope.data),
            "decision_period_days": int(self.decision_period_days.data),
            "extended_period_days": int(self.extended_period_days.data),
        }


class CriterionForm(BaseForm):
    question = TextAreaField(
        "Question",
        widget=GovTextArea(),
        validators=[
            DataRequired(message="Enter the question"),
            Length(
                max=QUESTION_MAX, message=f"The question must be {QUESTION_MAX} characters or fewer"
            ),
        ],
    )
    guidance = TextAreaField(
        "Guidance for providers (optional)",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(
                max=GUIDANCE_MAX, message=f"Guidance must be {GUIDANCE_MAX} characters or fewer"
            ),
        ],
    )
    type = ChoiceRadioField(
        "Type of answer",
        widget=GovRadioInput(),
        choices=[SelectChoice(t.value, label) for t, label in QUESTION_TYPE_LABELS.items()],
        invalid_message="Choose the type of answer",
    )
    mandatory = ChoiceRadioField(
        "Must providers answer it?",
        widget=GovRadioInput(),
        choices=YES_NO,
        invalid_message="Choose whether the question is mandatory",
    )
    pass_fail = ChoiceRadioField(
        "Does the answer decide admission (pass or fail)?",
        description="Choose no if the answer is for information only.",
        widget=GovRadioInput(),
        choices=YES_NO,
        invalid_message="Choose whether the question is pass or fail",
    )
    pass_answer = OptionalChoiceRadioField(
        "For a yes or no question: which answer passes?",
        widget=GovRadioInput(),
        choices=YES_NO,
        validators=[Optional()],
        invalid_message="Choose the answer that passes",
    )
    evidence_expires = BooleanField(
        "The evidence expires (ask for its expiry date)",
        widget=GovCheckboxInput(),
    )
    submit = submit_field("Save question")

    def values(self) -> dict:
        return {
            "question": self.question.data,
            "guidance": self.guidance.data or "",
            "type": QuestionType(self.type.data),
            "mandatory": self.mandatory.data == "yes",
            "pass_fail": self.pass_fail.data == "yes",
            "pass_answer": {"yes": True, "no": False}.get(self.pass_answer.data or ""),
            "evidence_expires": bool(self.evidence_expires.data),
        }


class TransitionForm(BaseForm):
    status = ChoiceRadioField(
        "New status",
        widget=GovRadioInput(),
        choices=[],
        invalid_message="Choose the new status",
    )
    reason = TextAreaField(
        "Reason",
        description="Needed to suspend or close. Providers and the audit log will see it.",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=REASON_MAX, message=f"The reason must be {REASON_MAX} characters or fewer"),
        ],
    )
    submit = submit_field("Change status")

    def __init__(self, *args, allowed=(), **kwargs):
        super().__init__(*args, **kwargs)
        labels = {
            ArrangementStatus.LIVE: "Live: open to applications",
            ArrangementStatus.SUSPENDED: "Suspended: closed to applications for now",
            ArrangementStatus.CLOSED: "Closed: for good",
        }
        self.status.choices = [SelectChoice(s.value, labels[s]) for s in allowed]


LOT_DESCRIPTION_MAX = 5000


class LotForm(BaseForm):
    description = TextAreaField(
        "What this lot buys",
        description="Shown to providers and buyers on the arrangement's public page.",
        widget=GovTextArea(),
        validators=[
            Length(max=LOT_DESCRIPTION_MAX, message="Description must be 5,000 characters or fewer")
        ],
    )
    submit = submit_field("Save")
