"""Forms for the provider's listing pages: shape only, limits from the models.

Money is typed in pounds and pence ("45.00") and turned into whole pence exactly by
``core.money.parse_pounds``; the services decide the business rules (areas covered by a membership, dates, ranges).
"""

from __future__ import annotations

from collections.abc import Iterable

from govuk_frontend_wtf.wtforms_widgets import (
    GovCheckboxesInput,
    GovRadioInput,
    GovSelect,
    GovTextArea,
    GovTextInput,
)
from wtforms import StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from marketplace.accounts.forms.fields import (
    BaseForm,
    ChoiceCheckboxesField,
    ChoiceRadioField,
    ChoiceSelectField,
    submit_field,
)
from marketplace.catalogue.models import (
    CONTACT_EMAIL_MAX,
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    DESCRIPTION_MAX,
    OUTCOMES_MAX,
    REASON_MAX,
    SOCIAL_VALUE_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    ListingStatus,
    RiskLevel,
    Sex,
    Unit,
)
from marketplace.core.forms import (
    DATE_HINT,
    basis_points_from_percent,
    parse_day,
    parse_whole_number,
)
from marketplace.core.money import MoneyError, VatTreatment, parse_pounds

VAT_LABELS = {
    VatTreatment.STANDARD: "Standard rate (20%)",
    VatTreatment.REDUCED: "Reduced rate (5%)",
    VatTreatment.ZERO: "Zero rate (0%)",
    VatTreatment.EXEMPT: "Exempt from VAT",
    VatTreatment.OUTSIDE_SCOPE: "Outside the scope of VAT",
}
SETTING_LABELS = {
    DeliverySetting.COMMUNITY: "In the community",
    DeliverySetting.CUSTODY: "In custody (prisons)",
    DeliverySetting.REMOTE: "Remotely (phone or video)",
}
FORMAT_LABELS = {DeliveryFormat.ONE_TO_ONE: "One-to-one", DeliveryFormat.GROUP: "Group"}
RISK_LABELS = {
    RiskLevel.LOW: "Low",
    RiskLevel.MEDIUM: "Medium",
    RiskLevel.HIGH: "High",
    RiskLevel.VERY_HIGH: "Very high",
}
COMPLEXITY_LABELS = {
    Complexity.LOW: "Low",
    Complexity.MEDIUM: "Medium",
    Complexity.HIGH: "High",
}
UNIT_LABELS = {
    Unit.SESSION: "Session",
    Unit.HOUR: "Hour",
    Unit.DAY: "Day",
    Unit.WEEK: "Week",
    Unit.PLACE: "Place",
    Unit.PROGRAMME: "Programme",
    Unit.BED_NIGHT: "Bed-night",
    Unit.REFERRAL: "Referral",
}


def pence_to_text(pence: int | None) -> str:
    """Whole pence as the form shows them back: 4500 → "45.00"."""
    if pence is None:
        return ""
    pounds, rest = divmod(pence, 100)
    return f"{pounds}.{rest:02d}"


def _choices(labels: dict) -> list[SelectChoice]:
    return [SelectChoice(member.value, label) for member, label in labels.items()]


def _whole_validator(form, field) -> None:
    if (field.data or "").strip() and parse_whole_number(field.data, negative=True) is None:
        raise ValidationError(f"{field.label.text} must be a whole number, like 5")


def _money_validator(spoken: str):
    def validate(form, field) -> None:
        try:
            parse_pounds(field.data, spoken)
        except MoneyError as error:
            raise ValidationError(str(error)) from None

    return validate


def _whole_field(
    label: str, description: str | None = None, required: str | None = None, default=None
):
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        default=default,
        validators=[DataRequired(message=required) if required else Optional(), _whole_validator],
    )


def _money_field(label: str, spoken: str, description: str | None = None, required: str = ""):
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        validators=[
            DataRequired(message=required) if required else Optional(),
            _money_validator(spoken),
        ],
    )


def _date_field(label: str, required: str) -> StringField:
    return StringField(
        label,
        description=DATE_HINT,
        widget=GovTextInput(),
        render_kw={"autocomplete": "off"},
        validators=[DataRequired(message=required)],
    )


def _validate_day(form, field) -> None:
    if parse_day(field.data) is None:
        raise ValidationError("Enter a real date, like 31 3 2027")


def _text_area(label: str, limit: int, description: str | None = None, required: str = ""):
    return TextAreaField(
        label,
        description=description,
        widget=GovTextArea(),
        validators=[
            DataRequired(message=required) if required else Optional(),
            Length(max=limit, message=f"{label} must be {limit:,} characters or fewer"),
        ],
    )


def _text(label: str, limit: int, description: str | None = None, required: str = ""):
    return StringField(
        label,
        description=description,
        widget=GovTextInput(),
        validators=[
            DataRequired(message=required) if required else Optional(),
            Length(max=limit, message=f"{label} must be {limit:,} characters or fewer"),
        ],
    )


# Form field → the name the services use for it in a BusinessRuleViolation.
SERVICE_FIELD_NAMES = {
    "unit_price_pence": "unit_price",
    "cost_staff_pence": "cost_staff",
    "cost_overheads_pence": "cost_overheads",
    "cost_other_pence": "cost_other",
    "areas": "region_codes",
}


class ListingForm(BaseForm):
    """Everything in ``services.ListingDetails``; the first price only when creating."""

    title = _text("Title", TITLE_MAX, required="Enter a title")
    summary = _text_area(
        "Summary",
        SUMMARY_MAX,
        f"What the service does, in up to {SUMMARY_MAX} characters. Buyers see it in search results.",
        required="Enter a summary",
    )
    description = _text_area("Description (optional)", DESCRIPTION_MAX)
    lot_id = ChoiceRadioField(
        "Lot",
        description="The category of service. You can choose lots you are an active member of.",
        widget=GovRadioInput(),
        choices=[],
        invalid_message="Choose the lot this service belongs to",
    )
    region_codes = ChoiceCheckboxesField(
        "Probation regions",
        description="Regions where you hold an active membership of the lot.",
        widget=GovCheckboxesInput(),
        choices=[],
        invalid_message="Choose regions where you hold an active membership",
    )
    pcc_area_codes = ChoiceCheckboxesField(
        "Police and crime commissioner (PCC) areas",
        description="Or only some PCC areas, where you hold an active membership of the lot.",
        widget=GovCheckboxesInput(),
        choices=[],
        invalid_message="Choose PCC areas where you hold an active membership",
    )
    settings = ChoiceCheckboxesField(
        "Where is it delivered?",
        widget=GovCheckboxesInput(),
        choices=_choices(SETTING_LABELS),
        invalid_message="Choose a delivery setting from the list",
    )
    formats = ChoiceCheckboxesField(
        "How is it delivered?",
        widget=GovCheckboxesInput(),
        choices=_choices(FORMAT_LABELS),
        invalid_message="Choose one-to-one, group or both",
    )
    eligibility_sex = ChoiceRadioField(
        "Who is it for?",
        widget=GovRadioInput(),
        choices=[SelectChoice(s.value, s.label) for s in Sex],
        default=Sex.ANY.value,
        invalid_message="Choose who the service is for",
    )
    min_age = _whole_field("Minimum age (optional)")
    max_age = _whole_field("Maximum age (optional)")
    risk_levels = ChoiceCheckboxesField(
        "Risk of serious harm levels accepted",
        widget=GovCheckboxesInput(),
        choices=_choices(RISK_LABELS),
        invalid_message="Choose a risk level from the list",
    )
    complexities = ChoiceCheckboxesField(
        "Complexity levels offered",
        widget=GovCheckboxesInput(),
        choices=_choices(COMPLEXITY_LABELS),
        invalid_message="Choose a complexity level from the list",
    )
    outcomes = _text_area("Outcomes offered (optional)", OUTCOMES_MAX, "One outcome on each line.")
    lead_time_days = _whole_field(
        "Referral lead time",
        "In working days, from referral to the start of the service",
        required="Enter the referral lead time in working days",
    )
    unit = ChoiceSelectField(
        "Unit",
        description="What one unit of the service is, for pricing and capacity",
        widget=GovSelect(),
        choices=[SelectChoice("", "Choose a unit"), *_choices(UNIT_LABELS)],
        invalid_message="Choose a unit from the list",
        validators=[DataRequired(message="Choose a unit")],
    )
    unit_price = _money_field(
        "Unit price, excluding VAT",
        "the unit price",
        "In pounds and pence, like 45.00. To change it later, set a new price from a date.",
        required="Enter the unit price",
    )
    vat_treatment = ChoiceRadioField(
        "VAT treatment",
        widget=GovRadioInput(),
        choices=_choices(VAT_LABELS),
        invalid_message="Choose a VAT treatment: standard, reduced, zero, exempt or outside the scope",
    )
    min_units = _whole_field(
        "Minimum units per call-off", required="Enter the minimum units per call-off", default="1"
    )
    max_units = _whole_field(
        "Maximum units per call-off", required="Enter the maximum units per call-off"
    )
    monthly_capacity = _whole_field(
        "Monthly capacity",
        "How many units you can deliver each month",
        required="Enter the monthly capacity in units",
    )
    missed_sessions_chargeable = ChoiceRadioField(
        "Do you charge for a session the person does not attend?",
        description="If yes, a missed session is billed at the unit price. If no, you record it "
        "but it is not paid for. Buyers see your answer on the listing.",
        widget=GovRadioInput(),
        choices=[SelectChoice("yes", "Yes"), SelectChoice("no", "No")],
        invalid_message="Say whether you charge for a session the person does not attend",
    )
    cost_staff = _money_field("Staff (optional)", "the staff cost")
    cost_overheads = _money_field("Overheads (optional)", "the overheads")
    cost_other = _money_field("Other costs (optional)", "the other costs")
    social_value = _text_area("Social value statement (optional)", SOCIAL_VALUE_MAX)
    contact_name = _text("Contact name (optional)", CONTACT_NAME_MAX)
    contact_email = _text("Contact email (optional)", CONTACT_EMAIL_MAX)
    contact_phone = _text("Contact phone number (optional)", CONTACT_PHONE_MAX)
    submit = submit_field("Save and continue")

    def __init__(self, *args, lots: Iterable = (), regions=(), pcc_areas=(), editing=False, **kw):
        super().__init__(*args, **kw)
        self.lot_id.choices = [SelectChoice(str(lot.id), lot.category.name) for lot in lots]
        self.region_codes.choices = [SelectChoice(r.code, r.name) for r in regions]
        self.pcc_area_codes.choices = [SelectChoice(p.code, p.name) for p in pcc_areas]
        if editing:
            # The price changes from a date on its own page, so its history stays true.
            del self.unit_price

    def validate_region_codes(self, field) -> None:
        if not field.data and not self.pcc_area_codes.data:
            raise ValidationError(
                "Choose at least one region or PCC area where you deliver this service"
            )

    def details_kwargs(self) -> dict:
        """The fields as ``services.ListingDetails`` takes them (after ``validate``)."""
        return {
            "title": self.title.data,
            "summary": self.summary.data,
            "description": self.description.data or "",
            "lot_id": int(self.lot_id.data),
            "region_codes": list(self.region_codes.data or ()),
            "pcc_area_codes": list(self.pcc_area_codes.data or ()),
            "settings": list(self.settings.data or ()),
            "formats": list(self.formats.data or ()),
            "eligibility_sex": self.eligibility_sex.data,
            "min_age": parse_whole_number(self.min_age.data, negative=True),
            "max_age": parse_whole_number(self.max_age.data, negative=True),
            "risk_levels": list(self.risk_levels.data or ()),
            "complexities": list(self.complexities.data or ()),
            "outcomes": self.outcomes.data or "",
            "lead_time_days": parse_whole_number(self.lead_time_days.data, negative=True),
            "unit": self.unit.data,
            "vat_treatment": self.vat_treatment.data,
            "min_units": parse_whole_number(self.min_units.data, negative=True),
            "max_units": parse_whole_number(self.max_units.data, negative=True),
            "monthly_capacity": parse_whole_number(self.monthly_capacity.data, negative=True),
            "missed_sessions_chargeable": self.missed_sessions_chargeable.data == "yes",
            "cost_staff_pence": parse_pounds(self.cost_staff.data),
            "cost_overheads_pence": parse_pounds(self.cost_overheads.data),
            "cost_other_pence": parse_pounds(self.cost_other.data),
            "social_value": self.social_value.data or "",
            "contact_name": self.contact_name.data or "",
            "contact_email": self.contact_email.data or "",
            "contact_phone": self.contact_phone.data or "",
        }

    def unit_price_pence(self) -> int | None:
        return parse_pounds(self.unit_price.data)

    def fill_from(self, details) -> None:
        """Show an existing listing's details (``services.ListingDetails``) in the form."""
        for name in (
            "title",
            "summary",
            "description",
            "outcomes",
            "social_value",
            "contact_name",
            "contact_email",
            "contact_phone",
        ):
            getattr(self, name).data = getattr(details, name)
        self.lot_id.data = str(details.lot_id)
        self.region_codes.data = list(details.region_codes)
        self.pcc_area_codes.data = list(details.pcc_area_codes)
        self.settings.data = [str(s) for s in details.settings]
        self.formats.data = [str(f) for f in details.formats]
        self.risk_levels.data = [str(r) for r in details.risk_levels]
        self.complexities.data = [str(c) for c in details.complexities]
        self.eligibility_sex.data = str(details.eligibility_sex)
        self.unit.data = str(details.unit)
        self.vat_treatment.data = str(details.vat_treatment)
        for name in ("min_age", "max_age", "lead_time_days", "min_units", "max_units"):
            value = getattr(details, name)
            getattr(self, name).data = "" if value is None else str(value)
        self.monthly_capacity.data = str(details.monthly_capacity)
        self.missed_sessions_chargeable.data = "yes" if details.missed_sessions_chargeable else "no"
        self.cost_staff.data = pence_to_text(details.cost_staff_pence)
        self.cost_overheads.data = pence_to_text(details.cost_overheads_pence)
        self.cost_other.data = pence_to_text(details.cost_other_pence)


class PriceForm(BaseForm):
    unit_price = _money_field(
        "New unit price, excluding VAT",
        "the unit price",
        "In pounds and pence, like 45.00",
        required="Enter the new unit price",
    )
    effective_from = _date_field(
        "Date the new price takes effect", "Enter the date the new price takes effect"
    )
    reason = _text_area("Reason (optional)", REASON_MAX, "For example, a pay award for staff")
    submit = submit_field("Set the new price")

    validate_effective_from = _validate_day


class UpliftForm(BaseForm):
    listings = ChoiceCheckboxesField(
        "Listings to uplift",
        widget=GovCheckboxesInput(),
        coerce=int,
        choices=[],
        invalid_message="Choose listings from your own rate card that are not withdrawn",
    )
    percentage = StringField(
        "Uplift percentage",
        description="For example, 2.5 for a 2.5% increase. A minus sign makes it a cut.",
        widget=GovTextInput(),
        validators=[DataRequired(message="Enter the uplift as a percentage, like 2.5")],
    )
    effective_from = _date_field(
        "Date the new prices take effect", "Enter the date the new prices take effect"
    )
    submit = submit_field("Preview the new prices")

    validate_effective_from = _validate_day

    def __init__(self, *args, listings=(), **kw):
        super().__init__(*args, **kw)
        self.listings.choices = [SelectChoice(listing.id, listing.title) for listing in listings]

    def validate_listings(self, field) -> None:
        if not field.data:
            raise ValidationError("Choose at least one listing to uplift")

    def validate_percentage(self, field) -> None:
        if basis_points_from_percent(field.data, negative=True) is None:
            raise ValidationError(
                "Enter the uplift as a percentage with no more than 2 decimal places, like 2.5"
            )


class WithdrawForm(BaseForm):
    reason = _text_area(
        "Why are you withdrawing this listing? (optional)",
        REASON_MAX,
        "Kept in the listing's change history.",
    )
    submit = submit_field("Withdraw listing")


class ActionForm(BaseForm):
    """A one-button form (publish, pause, resume, confirm accurate, copy): CSRF only."""

    submit = submit_field("Continue")


STATUS_FILTER_CHOICES = [
    SelectChoice("", "All states"),
    *(SelectChoice(s.value, s.label) for s in ListingStatus),
]


class ListingFilterForm(BaseForm):
    class Meta:
        csrf = False

    status = ChoiceSelectField(
        "State", widget=GovSelect(), choices=STATUS_FILTER_CHOICES, validators=[Optional()]
    )
