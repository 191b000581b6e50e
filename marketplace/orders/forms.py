"""Forms for the call-off pages: shape only (limits from the models); the services decide the
rules. Percentages are typed with up to two decimals and become whole basis points exactly."""

from __future__ import annotations

from collections.abc import Sequence

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextArea, GovTextInput
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceRadioField,
    ChoiceSelectField,
    OptionalChoiceRadioField,
    date_field,
    enum_choices,
    required_text_area,
    submit_field,
)
from marketplace.core.forms import (
    DATE_HINT,
    basis_points_from_percent,
    parse_day,
    parse_whole_number,
)
from marketplace.orders.models import (
    NOTES_MAX,
    PDU_MAX,
    PO_NUMBER_MAX,
    PROGRESS_NOTE_MAX,
    REASON_DETAIL_MAX,
    SUMMARY_MAX,
    AbsenceReason,
    Attendance,
    CancellationReason,
    ChoiceReason,
    OutcomeResult,
)

CO_FUNDER_ROWS = 3


def _whole_number_field(
    label: str, message: str, invalid: str, description: str | None = None
) -> StringField:
    def check(form, field):
        if field.data and parse_whole_number(field.data) is None:
            raise ValidationError(invalid)

    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        validators=[DataRequired(message=message), check],
    )


class PlaceCallOffForm(BaseForm):
    quantity = _whole_number_field(
        "How many units?",
        "Enter the number of units",
        "Enter the number of units as a whole number, like 12",
    )
    start_date = date_field("Start date", "Enter the start date")
    end_date = date_field("Planned end date", "Enter the planned end date")
    crn = StringField(
        "The person's CRN",
        description="One capital letter and six digits, like X123456. No other personal details "
        "are stored.",
        widget=GovTextInput(),
        filters=[lambda value: (value or "").strip().upper()],
        validators=[DataRequired(message="Enter the person's CRN")],
    )
    pdu = StringField(
        "Probation delivery unit (PDU)",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the probation delivery unit (PDU)"),
            Length(max=PDU_MAX, message=f"The PDU must be {PDU_MAX} characters or fewer"),
        ],
    )
    po_number = StringField(
        "Purchase order number",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the purchase order number"),
            Length(
                max=PO_NUMBER_MAX,
                message=f"The purchase order number must be {PO_NUMBER_MAX} characters or fewer",
            ),
        ],
    )
    choice_reason = ChoiceRadioField(
        "Why did you choose this provider?",
        choices=enum_choices(list(ChoiceReason)),
        widget=GovRadioInput(),
        validators=[DataRequired(message="Choose the reason for choosing this provider")],
    )
    choice_reason_detail = TextAreaField(
        "Explain your choice",
        description="For example, the other providers in the area have no capacity next month.",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(
                max=REASON_DETAIL_MAX,
                message=f"The explanation must be {REASON_DETAIL_MAX} characters or fewer",
            ),
        ],
    )
    notes_for_provider = TextAreaField(
        "Notes for the provider (optional)",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=NOTES_MAX, message=f"Notes must be {NOTES_MAX} characters or fewer"),
        ],
    )
    co_funder_1 = ChoiceSelectField(
        "First co-funder", widget=GovSelect(), validators=[Optional()], validate_choice=False
    )
    share_1 = StringField("First co-funder's share", widget=GovTextInput(), validators=[Optional()])
    co_funder_2 = ChoiceSelectField(
        "Second co-funder", widget=GovSelect(), validators=[Optional()], validate_choice=False
    )
    share_2 = StringField(
        "Second co-funder's share", widget=GovTextInput(), validators=[Optional()]
    )
    co_funder_3 = ChoiceSelectField(
        "Third co-funder", widget=GovSelect(), validators=[Optional()], validate_choice=False
    )
    share_3 = StringField("Third co-funder's share", widget=GovTextInput(), validators=[Optional()])
    # Payment by results (optional): one outcome term; the API takes several.
    outcome = ChoiceSelectField(
        "Outcome paid for", widget=GovSelect(), validators=[Optional()], validate_choice=False
    )
    outcome_tariff = StringField(
        "Tariff per outcome, in pounds, excluding VAT",
        widget=GovTextInput(),
        validators=[Optional()],
    )
    outcome_earliest_claim_on = StringField(
        "Earliest claim date",
        description="For example, 13 weeks after the start. " + DATE_HINT,
        widget=GovTextInput(),
        validators=[Optional()],
    )
    outcome_evidence_required = TextAreaField(
        "Evidence required", widget=GovTextArea(), validators=[Optional()]
    )
    outcome_cap = StringField("Most claims allowed", widget=GovTextInput(), validators=[Optional()])
    submit = submit_field("Continue")

    def __init__(self, *args, co_funders=(), outcomes=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "None")] + [(str(org.id), org.name) for org in co_funders]
        for n in range(1, CO_FUNDER_ROWS + 1):
            getattr(self, f"co_funder_{n}").choices = choices
        self.outcome.choices = [("", "No payment by results")] + [(o, o) for o in outcomes]

    def co_funding(self) -> list[tuple[int, int, int]]:
        """(row number, organisation id, basis points) for each filled co-funder row. A row
        with a share but no funder, or a funder but no share, is an error on that row: nothing
        typed is dropped."""
        rows = []
        for n in range(1, CO_FUNDER_ROWS + 1):
            field = getattr(self, f"co_funder_{n}")
            organisation = field.data
            share = getattr(self, f"share_{n}")
            if not organisation and not (share.data or "").strip():
                continue
            if not organisation:
                field.errors = [*field.errors, "Choose the co-funder for this share, or clear it"]
                continue
            if organisation not in {value for value, _ in field.choices}:
                field.errors = [*field.errors, "Choose a co-funder from the list"]
                continue
            if not (share.data or "").strip():
                share.errors = [
                    *share.errors,
                    "Enter the co-funder's share as a percentage, like 40 or 33.33",
                ]
                continue
            points = basis_points_from_percent(share.data, max_whole_digits=3)
            if points is None or points <= 0 or points >= 10_000:
                share.errors = [
                    *share.errors,
                    "Enter the co-funder's share as a percentage above 0 and below 100, like 40 "
                    "or 33.33",
                ]
                continue
            rows.append((n, int(organisation), points))
        return rows


class ConfirmForm(BaseForm):
    """One button (and its CSRF token): placing from the check page, and one-click actions."""

    submit = submit_field("Place call-off")


class PlaceConfirmForm(ConfirmForm):
    """Check your answers' button, with the price the page showed (``PriceSeen.token``): a
    price that changed by the time it is pressed places nothing, and the page asks again."""

    price_seen = HiddenField()


class DeclineForm(BaseForm):
    reason = required_text_area(
        "Why are you declining this call-off?",
        "Enter why you are declining this call-off",
        description="The buyer sees this.",
        limit=REASON_DETAIL_MAX,
    )
    submit = submit_field("Decline call-off")


class DeclineFundingForm(BaseForm):
    reason = required_text_area(
        "Why is your organisation declining its share?",
        "Enter why your organisation is declining its share",
        description="The lead buyer sees this, and can share the call-off out again or cancel it.",
        limit=REASON_DETAIL_MAX,
    )
    submit = submit_field("Decline our share")


class ResplitForm(BaseForm):
    """The co-funders' shares after a decline, as on the question page (the lead buyer pays
    the rest): the same rows, read by the same method."""

    co_funder_1 = PlaceCallOffForm.co_funder_1
    share_1 = PlaceCallOffForm.share_1
    co_funder_2 = PlaceCallOffForm.co_funder_2
    share_2 = PlaceCallOffForm.share_2
    co_funder_3 = PlaceCallOffForm.co_funder_3
    share_3 = PlaceCallOffForm.share_3
    submit = submit_field("Save the new shares")

    def __init__(self, *args, co_funders=(), **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", "None")] + [(str(org.id), org.name) for org in co_funders]
        for n in range(1, CO_FUNDER_ROWS + 1):
            getattr(self, f"co_funder_{n}").choices = choices

    co_funding = PlaceCallOffForm.co_funding


class CancelForm(BaseForm):
    reason = ChoiceRadioField(
        "Why are you cancelling?",
        choices=enum_choices(list(CancellationReason)),
        widget=GovRadioInput(),
        validators=[DataRequired(message="Choose why you are cancelling")],
    )
    detail = TextAreaField(
        "More detail",
        description="Needed if you chose Other.",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=REASON_DETAIL_MAX, message=f"Use {REASON_DETAIL_MAX} characters or fewer"),
        ],
    )
    submit = submit_field("Cancel call-off")


class DeliveryForm(BaseForm):
    delivered_on = date_field("Date of the session", "Enter the date of the session")
    units = _whole_number_field(
        "Units delivered",
        "Enter the units delivered",
        "Enter the units as a whole number, like 1",
        description="0 if the person did not attend and nothing was delivered.",
    )
    attendance = ChoiceRadioField(
        "Attendance",
        choices=enum_choices(list(Attendance)),
        widget=GovRadioInput(),
        validators=[DataRequired(message="Choose whether the person attended")],
    )
    # Answered only for "Did not attend" (revealed under it on the page): left empty otherwise,
    # and the service says when it is needed. A value not in the list is still refused.
    absence_reason = OptionalChoiceRadioField(
        "Why did they not attend?",
        choices=enum_choices(list(AbsenceReason)),
        widget=GovRadioInput(),
        validators=[Optional()],
        invalid_message="Choose the reason the person did not attend",
    )
    progress_note = TextAreaField(
        "Progress note (optional)",
        widget=GovTextArea(),
        validators=[
            Optional(),
            Length(max=PROGRESS_NOTE_MAX, message=f"Use {PROGRESS_NOTE_MAX} characters or fewer"),
        ],
    )
    submit = submit_field("Record delivery")


class CompleteForm(BaseForm):
    summary = required_text_area(
        "End-of-service summary", "Enter an end-of-service summary", limit=SUMMARY_MAX
    )
    submit = submit_field("Complete call-off")

    def outcome_fields(self) -> list:
        return [field for name, field in self._fields.items() if name.startswith("outcome_")]


def complete_form(outcomes: Sequence[str]) -> CompleteForm:
    """The completion form with a question for each outcome the service offers: how far the
    person achieved it (``outcome_<n>``, in the order of ``outcomes``)."""

    class _CompleteForm(CompleteForm):
        pass

    for n, outcome in enumerate(outcomes):
        setattr(
            _CompleteForm,
            f"outcome_{n}",
            ChoiceRadioField(
                outcome,
                choices=enum_choices(list(OutcomeResult)),
                widget=GovRadioInput(),
                validators=[
                    DataRequired(message=f"Choose how far \u201c{outcome}\u201d was achieved")
                ],
                invalid_message=f"Choose how far \u201c{outcome}\u201d was achieved",
            ),
        )
    return _CompleteForm()


class VariationForm(BaseForm):
    extra_units = _whole_number_field(
        "Extra units",
        "Enter the extra units, or 0",
        "Enter the extra units as a whole number, like 4",
        description="0 if you only need a later end date.",
    )
    new_end_date = StringField(
        "New end date (optional)",
        description=DATE_HINT,
        widget=GovTextInput(),
        validators=[Optional()],
    )
    reason = required_text_area(
        "Why does the call-off need to change?",
        "Explain why the call-off needs to change",
        limit=REASON_DETAIL_MAX,
    )
    submit = submit_field("Propose change")

    def validate_new_end_date(self, field):
        if field.data and parse_day(field.data) is None:
            raise ValidationError("The new end date must be a real date, like 31 3 2027")


class RejectVariationForm(BaseForm):
    reason = required_text_area(
        "Why are you rejecting the change?",
        "Explain why you are rejecting the change",
        limit=REASON_DETAIL_MAX,
    )
    submit = submit_field("Reject change")
