"""Forms for the authority's administration pages: organisations and the audit log."""

from __future__ import annotations

from govuk_frontend_wtf.wtforms_widgets import GovRadioInput, GovSelect, GovTextInput
from wtforms import RadioField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError

from marketplace.accounts.forms.fields import (
    BaseForm,
    charity_number_field,
    company_number_field,
    enum_choices,
    submit_field,
)
from marketplace.accounts.models import (
    COMMISSIONER_TYPES,
    EMAIL_MAX,
    ORGANISATION_NAME_MAX,
    PROVIDER_TYPES,
    OrganisationType,
)
from marketplace.core.audit import ACTION_MAX
from marketplace.core.forms import parse_iso_date
from marketplace.core.validation import date_horizon_error

# Commissioning organisations the authority can create, in the order they are offered.
COMMISSIONER_TYPE_ORDER = [
    OrganisationType.PROBATION_REGION,
    OrganisationType.PCC,
    OrganisationType.PRISON,
    OrganisationType.OTHER_COMMISSIONER,
    OrganisationType.NPS,
    OrganisationType.CRC,
]
assert set(COMMISSIONER_TYPE_ORDER) == COMMISSIONER_TYPES
PROVIDER_TYPE_ORDER = [
    OrganisationType.PROVIDER_VCSE,
    OrganisationType.PROVIDER_PRIVATE,
    OrganisationType.PROVIDER_PUBLIC,
]
assert set(PROVIDER_TYPE_ORDER) == PROVIDER_TYPES
CREATABLE_TYPES = [*COMMISSIONER_TYPE_ORDER, OrganisationType.AUTHORITY]
ALL_TYPES = [*COMMISSIONER_TYPE_ORDER, *PROVIDER_TYPE_ORDER, OrganisationType.AUTHORITY]


def types_like(organisation_type: OrganisationType) -> list[OrganisationType]:
    """The types an organisation of this type may be changed to (within its group)."""
    if organisation_type in PROVIDER_TYPES:
        return PROVIDER_TYPE_ORDER
    if organisation_type in COMMISSIONER_TYPES:
        return COMMISSIONER_TYPE_ORDER
    return [OrganisationType.AUTHORITY]


def optional_int(value):
    if value in (None, "", "None"):
        return None
    return int(value)


class GetForm(BaseForm):
    """A filter form read from the query string: no CSRF token, since it changes nothing."""

    class Meta:
        csrf = False


class OrganisationForm(BaseForm):
    name = StringField(
        "Organisation name",
        widget=GovTextInput(),
        validators=[
            DataRequired(message="Enter the organisation's name"),
            Length(
                max=ORGANISATION_NAME_MAX,
                message=f"Organisation name must be {ORGANISATION_NAME_MAX} characters or fewer",
            ),
        ],
    )
    type = RadioField(
        "What kind of organisation is it?",
        widget=GovRadioInput(),
        choices=[],
        invalid_choice_message="Select what kind of organisation it is",
    )
    region_id = SelectField(
        "Probation region",
        description=(
            "Needed for a probation service region. For a PCC, leave it empty to take it "
            "from the PCC area."
        ),
        widget=GovSelect(),
        coerce=optional_int,
        choices=[],
        validators=[Optional()],
        invalid_value_message="Choose a probation region from the list",
        invalid_choice_message="Choose a probation region from the list",
    )
    pcc_area_id = SelectField(
        "Police and Crime Commissioner area",
        description="Needed for a Police and Crime Commissioner.",
        widget=GovSelect(),
        coerce=optional_int,
        choices=[],
        validators=[Optional()],
        invalid_value_message="Choose a PCC area from the list",
        invalid_choice_message="Choose a PCC area from the list",
    )
    charity_number = charity_number_field()
    companies_house_number = company_number_field()
    submit = submit_field("Save")

    def __init__(self, *args, types: list[OrganisationType], regions=(), pcc_areas=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.type.choices = enum_choices(types)
        self.region_id.choices = [SelectChoice("", "Choose a region")] + [
            SelectChoice(str(r.id), r.name) for r in regions
        ]
        self.pcc_area_id.choices = [SelectChoice("", "Choose a PCC area")] + [
            SelectChoice(str(a.id), a.name) for a in pcc_areas
        ]

    def validate(self, extra_validators=None) -> bool:
        valid = super().validate(extra_validators)
        # Which fields are required depends on the type chosen.
        if (
            self.type.data == OrganisationType.PCC
            and self.pcc_area_id.data is None
            and not self.pcc_area_id.errors
        ):
            self.pcc_area_id.errors = [*self.pcc_area_id.errors, "Choose the PCC area"]
            valid = False
        if (
            self.type.data == OrganisationType.PROBATION_REGION
            and self.region_id.data is None
            and not self.region_id.errors
        ):
            self.region_id.errors = [*self.region_id.errors, "Choose the probation region"]
            valid = False
        return valid


class OrganisationFilterForm(GetForm):
    name = StringField(
        "Name contains",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Length(
                max=ORGANISATION_NAME_MAX,
                message=f"Name must be {ORGANISATION_NAME_MAX} characters or fewer",
            ),
        ],
    )
    type = SelectField(
        "Type",
        widget=GovSelect(),
        choices=[SelectChoice("", "Any type")] + enum_choices(ALL_TYPES),
        default="",
        validators=[Optional()],
        invalid_choice_message="Choose a type from the list",
    )
    status = SelectField(
        "Status",
        widget=GovSelect(),
        choices=[
            SelectChoice("", "Active and inactive"),
            SelectChoice("active", "Active"),
            SelectChoice("inactive", "Inactive"),
        ],
        default="",
        validators=[Optional()],
        invalid_choice_message="Choose a status from the list",
    )
    submit = submit_field("Apply filters")


def iso_date(label: str):
    def check(form, field) -> None:
        if field.data and parse_iso_date(field.data) is None:
            raise ValidationError(f"{label} must be a real date written like 2026-04-01")
        if message := date_horizon_error(parse_iso_date(field.data), f"The {label.lower()}"):
            raise ValidationError(message)

    return check


class AuditFilterForm(GetForm):
    action = StringField(
        "Action starts with",
        description="For example organisation. or invitation.created",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Length(max=ACTION_MAX, message=f"Action must be {ACTION_MAX} characters or fewer"),
        ],
    )
    object_type = SelectField(
        "Object type",
        widget=GovSelect(),
        choices=[],
        default="",
        validators=[Optional()],
        invalid_choice_message="Choose an object type from the list",
    )
    object_id = StringField(
        "Object ID",
        widget=GovTextInput(),
        validators=[Optional(), Length(max=64, message="Object ID must be 64 characters or fewer")],
    )
    actor_email = StringField(
        "Email address of the person who did it",
        description="Part of an email address is enough",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Length(max=EMAIL_MAX, message=f"Email address must be {EMAIL_MAX} characters or fewer"),
        ],
    )
    organisation_id = SelectField(
        "Organisation",
        widget=GovSelect(),
        coerce=optional_int,
        choices=[],
        validators=[Optional()],
        invalid_value_message="Choose an organisation from the list",
        invalid_choice_message="Choose an organisation from the list",
    )
    date_from = StringField(
        "From (YYYY-MM-DD)",
        description="For example 2026-04-01",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Length(max=10, message="Enter the date like 2026-04-01"),
            iso_date("From date"),
        ],
    )
    date_to = StringField(
        "To (YYYY-MM-DD)",
        description="Includes the whole day",
        widget=GovTextInput(),
        validators=[
            Optional(),
            Length(max=10, message="Enter the date like 2026-04-30"),
            iso_date("To date"),
        ],
    )
    submit = submit_field("Search")

    def __init__(self, *args, object_types=(), organisations=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.object_type.choices = [SelectChoice("", "Any type")] + [
            SelectChoice(t, t.replace("_", " ").capitalize()) for t in object_types
        ]
        self.organisation_id.choices = [SelectChoice("", "Any organisation")] + [
            SelectChoice(str(o.id), o.name) for o in organisations
        ]

    def validate_date_to(self, field) -> None:
        start, end = parse_iso_date(self.date_from.data), parse_iso_date(field.data)
        if start and end and end < start:
            raise ValidationError("The to date must be the same as or after the from date")
