"""The provider's forms: a clarification question, the bid (built for each competition: one
answer per question), and one-button actions. Shape only: word limits, the consortium and the
price schedule are the services' rules (``competitions.services.bids``)."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextArea, GovTextInput
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, ValidationError

from marketplace.accounts.forms.fields import (
    YES_NO,
    BaseForm,
    ChoiceSelectField,
    OptionalChoiceRadioField,
    required_text_area,
    submit_field,
)
from marketplace.competitions.models import (
    ANSWER_MAX,
    CLARIFICATION_MAX,
    COMMITMENT_MAX,
    NAME_MAX,
    Competition,
    ConsortiumRole,
    QuestionKind,
)
from marketplace.core.forms import DATE_HINT, basis_points_from_percent, parse_day
from marketplace.core.money import MoneyError, VatTreatment, parse_pounds

PRICE_LINE_ROWS = 5
COMMITMENT_ROWS = 3
CONSORTIUM_ROWS = 3


class QuestionForm(BaseForm):
    question = required_text_area(
        "Your question",
        "Enter your question",
        limit=CLARIFICATION_MAX,
        description="Do not include anything you would not want every invited provider to "
        "read: the answer is published to all of them with the question, without your name.",
    )
    submit = submit_field("Send question")


class AnswerForm(BaseForm):
    answer = required_text_area(
        "Your answer",
        "Enter your answer",
        limit=CLARIFICATION_MAX,
        description="The question and your answer are published to every invited provider, "
        "without the name of who asked.",
    )
    submit = submit_field("Publish answer")


class ActionForm(BaseForm):
    """A one-button action: only its CSRF token."""


def _pounds_check(label: str):
    def check(form, field):
        if not field.data:
            return
        try:
            parse_pounds(field.data, label)
        except MoneyError as error:
            raise ValidationError(str(error)) from None

    return check


def _date_check(label: str):
    def check(form, field):
        if field.data and parse_day(field.data) is None:
            raise ValidationError(f"{label} must be a real date, like 31 3 2027")

    return check


def _share_check(form, field):
    if field.data and basis_points_from_percent(field.data, max_whole_digits=3) is None:
        raise ValidationError("Enter the share as a percentage, like 30 or 12.5")


VAT_LABELS = {
    VatTreatment.STANDARD: "Standard rate VAT (20%)",
    VatTreatment.REDUCED: "Reduced rate VAT (5%)",
    VatTreatment.ZERO: "Zero-rated for VAT",
    VatTreatment.EXEMPT: "Exempt from VAT",
    VatTreatment.OUTSIDE_SCOPE: "Outside the scope of VAT",
}
VAT_CHOICES = [SelectChoice(t.value, label) for t, label in VAT_LABELS.items()]
ROLE_CHOICES = [SelectChoice("", "Choose")] + [
    SelectChoice(r.value, r.label) for r in ConsortiumRole
]


def bid_form_class(competition: Competition) -> type[BaseForm]:
    """The bid form of this competition: an answer field per question, then the price, the
    social value commitments, the consortium and the SME declaration."""

    class BidForm(BaseForm):
        pass

    for position, question in enumerate(competition.questions, start=1):
        limit = f" Up to {question.word_limit:,} words." if question.word_limit else ""
        if question.kind is QuestionKind.PASS_FAIL:
            setattr(
                BidForm,
                f"meets_{question.id}",
                OptionalChoiceRadioField(
                    f"Question {position}: {question.text}",
                    choices=YES_NO,
                    widget=GovRadioInput(),
                    description="Pass or fail: a bid that does not meet it is excluded.",
                    render_kw={"params": {"classes": "govuk-radios--inline"}},
                ),
            )
            setattr(
                BidForm,
                f"answer_{question.id}",
                TextAreaField(
                    f"How you meet question {position}",
                    widget=GovTextArea(),
                    description=f"For example, your certificate or policy.{limit}",
                    validators=[Length(max=ANSWER_MAX)],
                ),
            )
        else:
            setattr(
                BidForm,
                f"answer_{question.id}",
                TextAreaField(
                    f"Question {position}: {question.text}",
                    widget=GovTextArea(),
                    description=(f"{question.kind.label}, weighted {question.weight}%.{limit}"),
                    validators=[Length(max=ANSWER_MAX)],
                    render_kw={"params": {"rows": 8}},
                ),
            )
    BidForm.unit_price = StringField(
        "Unit price, before VAT",
        widget=GovTextInput(),
        description=f"In pounds for each {competition.unit.value.replace('_', ' ')}: your "
        f"total is this × {competition.quantity:,}.",
        validators=[_pounds_check("the unit price")],
        render_kw={"params": {"prefix": {"text": "£"}, "classes": "govuk-input--width-10"}},
    )
    BidForm.vat_treatment = OptionalChoiceRadioField(
        "VAT treatment of your price", choices=VAT_CHOICES, widget=GovRadioInput()
    )
    for row in range(PRICE_LINE_ROWS):
        setattr(
            BidForm,
            f"price_lines_{row}_description",
            StringField(
                f"Price schedule line {row + 1}: what it is for",
                widget=GovTextInput(),
                validators=[Length(max=COMMITMENT_MAX)],
            ),
        )
        setattr(
            BidForm,
            f"price_lines_{row}_amount",
            StringField(
                f"Price schedule line {row + 1}: amount before VAT",
                widget=GovTextInput(),
                validators=[_pounds_check(f"the amount of line {row + 1}")],
                render_kw={"params": {"prefix": {"text": "£"}, "classes": "govuk-input--width-10"}},
            ),
        )
    for row in range(COMMITMENT_ROWS):
        number = row + 1
        setattr(
            BidForm,
            f"commitments_{row}_what",
            StringField(
                f"Commitment {number}: what you will do",
                widget=GovTextInput(),
                validators=[Length(max=COMMITMENT_MAX)],
            ),
        )
        setattr(
            BidForm,
            f"commitments_{row}_how_much",
            StringField(
                f"Commitment {number}: how much",
                widget=GovTextInput(),
                validators=[Length(max=COMMITMENT_MAX)],
            ),
        )
        setattr(
            BidForm,
            f"commitments_{row}_by_when",
            StringField(
                f"Commitment {number}: by when",
                widget=GovTextInput(),
                description=DATE_HINT,
                validators=[_date_check(f"Commitment {number}'s date")],
                render_kw={"params": {"classes": "govuk-input--width-10"}},
            ),
        )
    for row in range(CONSORTIUM_ROWS):
        number = row + 1
        setattr(
            BidForm,
            f"consortium_{row}_name",
            StringField(
                f"Organisation {number}: name",
                widget=GovTextInput(),
                validators=[Length(max=NAME_MAX)],
            ),
        )
        setattr(
            BidForm,
            f"consortium_{row}_role",
            ChoiceSelectField(
                f"Organisation {number}: part it plays",
                choices=ROLE_CHOICES,
                widget=GovSelect(),
                validate_choice=False,
            ),
        )
        setattr(
            BidForm,
            f"consortium_{row}_share",
            StringField(
                f"Organisation {number}: share of the work",
                widget=GovTextInput(),
                validators=[_share_check],
                render_kw={"params": {"suffix": {"text": "%"}, "classes": "govuk-input--width-4"}},
            ),
        )
    BidForm.is_sme = OptionalChoiceRadioField(
        "Is your organisation a small or medium-sized enterprise (SME)?",
        choices=YES_NO,
        widget=GovRadioInput(),
        description="Fewer than 250 staff, and a turnover of £44 million or less or a balance "
        "sheet of £38 million or less. Recorded with your bid and counted in what is published.",
        render_kw={"params": {"classes": "govuk-radios--inline"}},
    )
    BidForm.save = submit_field("Save as draft")
    BidForm.check = submit_field("Save and check your bid")
    return BidForm
