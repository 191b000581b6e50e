"""What a listing says and the checks of its own fields (no query): the one set of field rules
that the single edit (``services.listings``) and the rate card import (``imports``) both apply."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    CONTACT_EMAIL_MAX,
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    DESCRIPTION_MAX,
    FORMAT_COLUMNS,
    MAX_AGE,
    MAX_COST_PENCE,
    MAX_LEAD_TIME_DAYS,
    MAX_UNIT_PRICE_PENCE,
    MAX_UNITS,
    MIN_AGE,
    OUTCOMES_MAX,
    RISK_COLUMNS,
    SETTING_COLUMNS,
    SOCIAL_VALUE_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    RiskLevel,
    Sex,
    Unit,
)
from marketplace.core.money import VatTreatment

# The columns a listing's audit events record (``services.listings.listing_snapshot``).
LISTING_FIELDS = [
    "title",
    "summary",
    "description",
    "outcomes",
    "lot_id",
    *SETTING_COLUMNS.values(),
    *FORMAT_COLUMNS.values(),
    "eligibility_sex",
    "min_age",
    "max_age",
    *RISK_COLUMNS.values(),
    *COMPLEXITY_COLUMNS.values(),
    "lead_time_days",
    "unit",
    "vat_treatment",
    "min_units",
    "max_units",
    "monthly_capacity",
    "missed_sessions_chargeable",
    "cost_staff_pence",
    "cost_overheads_pence",
    "cost_other_pence",
    "social_value",
    "contact_name",
    "contact_email",
    "contact_phone",
    "status",
]


@dataclass
class ListingDetails:
    """Everything a provider says about a service, as forms, the API and imports give it."""

    title: str
    summary: str
    lot_id: int | None
    unit: Unit | str
    vat_treatment: VatTreatment | str
    max_units: int | None
    monthly_capacity: int | None
    description: str = ""
    outcomes: str = ""
    region_codes: Sequence[str] = ()
    pcc_area_codes: Sequence[str] = ()
    settings: Sequence[DeliverySetting | str] = ()
    formats: Sequence[DeliveryFormat | str] = ()
    eligibility_sex: Sex | str = Sex.ANY
    min_age: int | None = None
    max_age: int | None = None
    risk_levels: Sequence[RiskLevel | str] = ()
    complexities: Sequence[Complexity | str] = ()
    lead_time_days: int = 0
    min_units: int = 1
    cost_staff_pence: int | None = None
    cost_overheads_pence: int | None = None
    cost_other_pence: int | None = None
    social_value: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    # None: not given, so a new listing does not charge for missed sessions and an edit leaves
    # the listing's answer as it is.
    missed_sessions_chargeable: bool | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, listing: Listing, *, areas: bool = True) -> ListingDetails:
        """The details of an existing listing, to edit or copy (without its areas when not
        ``areas``: a bulk check has them by key and loads no region per listing)."""
        return cls(
            title=listing.title,
            summary=listing.summary,
            lot_id=listing.lot_id,
            unit=listing.unit,
            vat_treatment=listing.vat_treatment,
            max_units=listing.max_units,
            monthly_capacity=listing.monthly_capacity,
            description=listing.description,
            outcomes=listing.outcomes,
            region_codes=(
                [a.region.code for a in listing.areas if a.region is not None] if areas else []
            ),
            pcc_area_codes=(
                [a.pcc_area.code for a in listing.areas if a.pcc_area is not None] if areas else []
            ),
            settings=listing.settings,
            formats=listing.formats,
            eligibility_sex=listing.eligibility_sex,
            min_age=listing.min_age,
            max_age=listing.max_age,
            risk_levels=listing.risk_levels,
            complexities=listing.complexities,
            lead_time_days=listing.lead_time_days,
            min_units=listing.min_units,
            cost_staff_pence=listing.cost_staff_pence,
            cost_overheads_pence=listing.cost_overheads_pence,
            cost_other_pence=listing.cost_other_pence,
            social_value=listing.social_value,
            contact_name=listing.contact_name,
            contact_email=listing.contact_email,
            contact_phone=listing.contact_phone,
            missed_sessions_chargeable=listing.missed_sessions_chargeable,
        )


def _enum(errors: dict, name: str, enum_class, value, message: str):
    try:
        return enum_class(value)
    except ValueError:
        errors[name] = [message]
        return None


def _enums(errors: dict, name: str, enum_class, values, message: str) -> list:
    chosen = []
    for value in values or ():
        try:
            member = enum_class(value)
        except ValueError:
            errors[name] = [message]
            return []
        if member not in chosen:
            chosen.append(member)
    return chosen


def _whole(
    errors: dict, name: str, value, label: str, *, low: int, high: int, required: bool = True
) -> int | None:
    if value is None or value == "":
        if required:
            errors[name] = [f"Enter {label}"]
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = [f"{label[0].upper()}{label[1:]} must be a whole number"]
        return None
    if value < low or value > high:
        errors[name] = [f"{label[0].upper()}{label[1:]} must be between {low:,} and {high:,}"]
        return None
    return value


def check_text(errors: dict, name: str, value, label: str, limit: int, *, required: bool) -> str:
    """Text stripped of its outer spaces, required or not, within ``limit`` characters."""
    text = (value or "").strip()
    if required and not text:
        errors[name] = [f"Enter {label}"]
    elif len(text) > limit:
        errors[name] = [f"{label[0].upper()}{label[1:]} must be {limit:,} characters or fewer"]
    return text


def check_price_pence(value, errors: dict, name: str = "unit_price_pence") -> int | None:
    """A unit price: a whole number of pence from 0 to the maximum."""
    if value is None or value == "":
        errors[name] = ["Enter the unit price"]
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = ["Enter the unit price in whole pence, like 4500 for £45.00"]
        return None
    if value < 0:
        errors[name] = ["The unit price cannot be negative"]
        return None
    if value > MAX_UNIT_PRICE_PENCE:
        errors[name] = [f"The unit price must be £{MAX_UNIT_PRICE_PENCE // 100:,} or less"]
        return None
    return value


def check_fields(details: ListingDetails, errors: dict[str, list[str]]) -> dict:
    """The listing's own fields, with no query: shared by the services and the rate card import.

    Returns the column values (not ``lot_id``); adds a message per bad field to ``errors``, in
    the order the pages list the fields.
    """
    values: dict = {}
    _check_texts(details, values, errors)
    _check_choices(details, values, errors)
    _check_numbers(details, values, errors)
    return values


def _check_texts(details: ListingDetails, values: dict, errors: dict) -> None:
    values["title"] = check_text(
        errors, "title", details.title, "a title", TITLE_MAX, required=True
    )
    values["summary"] = check_text(
        errors, "summary", details.summary, "a summary", SUMMARY_MAX, required=True
    )
    values["description"] = check_text(
        errors, "description", details.description, "a description", DESCRIPTION_MAX, required=False
    )
    values["outcomes"] = check_text(
        errors, "outcomes", details.outcomes, "the outcomes", OUTCOMES_MAX, required=False
    )
    values["social_value"] = check_text(
        errors,
        "social_value",
        details.social_value,
        "the social value statement",
        SOCIAL_VALUE_MAX,
        required=False,
    )
    values["contact_name"] = check_text(
        errors,
        "contact_name",
        details.contact_name,
        "a contact name",
        CONTACT_NAME_MAX,
        required=False,
    )
    values["contact_email"] = check_text(
        errors,
        "contact_email",
        details.contact_email,
        "a contact email",
        CONTACT_EMAIL_MAX,
        required=False,
    ).lower()
    if values["contact_email"] and "@" not in values["contact_email"]:
        errors["contact_email"] = [
            "Enter an email address in the correct format, like name@example.org"
        ]
    values["contact_phone"] = check_text(
        errors,
        "contact_phone",
        details.contact_phone,
        "a contact phone number",
        CONTACT_PHONE_MAX,
        required=False,
    )


def _check_choices(details: ListingDetails, values: dict, errors: dict) -> None:
    unit = _enum(errors, "unit", Unit, details.unit, "Choose a unit from the list")
    vat = _enum(
        errors,
        "vat_treatment",
        VatTreatment,
        details.vat_treatment,
        "Choose a VAT treatment: standard, reduced, zero, exempt or outside the scope",
    )
    values["unit"], values["vat_treatment"] = unit, vat
    values["eligibility_sex"] = _enum(
        errors, "eligibility_sex", Sex, details.eligibility_sex, "Choose who the service is for"
    )

    settings = _enums(
        errors,
        "settings",
        DeliverySetting,
        details.settings,
        "Choose a delivery setting from the list",
    )
    if not settings and "settings" not in errors:
        errors["settings"] = ["Choose at least one delivery setting"]
    formats = _enums(
        errors, "formats", DeliveryFormat, details.formats, "Choose a format from the list"
    )
    if not formats and "formats" not in errors:
        errors["formats"] = ["Choose one-to-one, group or both"]
    risks = _enums(
        errors, "risk_levels", RiskLevel, details.risk_levels, "Choose a risk level from the list"
    )
    complexities = _enums(
        errors,
        "complexities",
        Complexity,
        details.complexities,
        "Choose a complexity level from the list",
    )
    if not complexities and "complexities" not in errors:
        errors["complexities"] = ["Choose at least one complexity level"]
    for member, column in SETTING_COLUMNS.items():
        values[column] = member in settings
    for member, column in FORMAT_COLUMNS.items():
        values[column] = member in formats
    for member, column in RISK_COLUMNS.items():
        values[column] = member in risks
    for member, column in COMPLEXITY_COLUMNS.items():
        values[column] = member in complexities


def _check_numbers(details: ListingDetails, values: dict, errors: dict) -> None:
    values["min_age"] = _whole(
        errors,
        "min_age",
        details.min_age,
        "the minimum age",
        low=MIN_AGE,
        high=MAX_AGE,
        required=False,
    )
    values["max_age"] = _whole(
        errors,
        "max_age",
        details.max_age,
        "the maximum age",
        low=MIN_AGE,
        high=MAX_AGE,
        required=False,
    )
    if (
        values["min_age"] is not None
        and values["max_age"] is not None
        and values["min_age"] > values["max_age"]
    ):
        errors["max_age"] = ["The maximum age must be the same as or more than the minimum age"]
    values["lead_time_days"] = _whole(
        errors,
        "lead_time_days",
        details.lead_time_days,
        "the referral lead time in working days",
        low=0,
        high=MAX_LEAD_TIME_DAYS,
    )
    values["min_units"] = _whole(
        errors,
        "min_units",
        details.min_units,
        "the minimum units per call-off",
        low=1,
        high=MAX_UNITS,
    )
    values["max_units"] = _whole(
        errors,
        "max_units",
        details.max_units,
        "the maximum units per call-off",
        low=1,
        high=MAX_UNITS,
    )
    if (
        values["min_units"] is not None
        and values["max_units"] is not None
        and values["min_units"] > values["max_units"]
    ):
        errors["max_units"] = ["The maximum units must be the same as or more than the minimum"]
    values["monthly_capacity"] = _whole(
        errors,
        "monthly_capacity",
        details.monthly_capacity,
        "the monthly capacity in units",
        low=0,
        high=MAX_UNITS,
    )
    chargeable = details.missed_sessions_chargeable
    if chargeable is not None:
        if isinstance(chargeable, bool):
            values["missed_sessions_chargeable"] = chargeable
        else:
            errors["missed_sessions_chargeable"] = [
                "Say whether a session the person did not attend is paid for"
            ]
    for name, label in (
        ("cost_staff_pence", "the staff cost"),
        ("cost_overheads_pence", "the overheads"),
        ("cost_other_pence", "the other costs"),
    ):
        values[name] = _whole(
            errors, name, getattr(details, name), label, low=0, high=MAX_COST_PENCE, required=False
        )
