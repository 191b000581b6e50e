"""API shapes for a provider's own listings: what a write takes and what it answers.

Shape only (types, required fields, lengths, choices, bounds), with the limits of ``models.py``;
the rules (a lot the provider is a member of, areas covered by an active membership, a price
from today or later, a legal transition) are the services' and come back as 422 problems.
"""

from __future__ import annotations

import marshmallow as ma

from marketplace.catalogue.models import (
    CONTACT_EMAIL_MAX,
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    DESCRIPTION_MAX,
    MAX_AGE,
    MAX_COST_PENCE,
    MAX_LEAD_TIME_DAYS,
    MAX_UNIT_PRICE_PENCE,
    MAX_UNITS,
    MIN_AGE,
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
from marketplace.core.api import TEXT_PATTERN, HorizonDate
from marketplace.core.db import MAX_ID
from marketplace.core.money import VatTreatment

CODE_MAX = 40
MAX_AREAS = 100  # 12 regions and 42 PCC areas exist: more is a mistake, not a wish


class StrictBoolean(ma.fields.Boolean):
    """JSON true or false only: marshmallow's own also takes 1, "yes", "on" and the like."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class CodeNameSchema(ma.Schema):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class AreaSchema(ma.Schema):
    region_code = ma.fields.String(required=True, allow_none=True)
    pcc_area_code = ma.fields.String(required=True, allow_none=True)
    name = ma.fields.String(required=True)


# ---------------------------------------------------------------------------------------------
# Input


# Text the database can keep: no NUL or other control characters (marketplace.core.validation, which
# the API's parser checks first), said as the API's pattern so the OpenAPI spec says so too; and
# no lone UTF-16 surrogates (neither database can encode them), which only JSON can send.
NO_NUL = ma.validate.Regexp(TEXT_PATTERN, error="Remove the NUL and other control characters.")


def _encodable(value: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ma.ValidationError("Send valid Unicode text (no lone surrogates).") from None


STORABLE_TEXT = [NO_NUL, _encodable]


def _text(limit: int, description: str, **kwargs) -> ma.fields.String:
    return ma.fields.String(
        validate=[ma.validate.Length(max=limit), *STORABLE_TEXT],
        metadata={"description": f"{description} (at most {limit:,} characters)"},
        **kwargs,
    )


def _whole(low: int, high: int, description: str, **kwargs) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=low, max=high),
        metadata={"description": description},
        **kwargs,
    )


def _codes(description: str) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.String(validate=[ma.validate.Length(min=1, max=CODE_MAX), *STORABLE_TEXT]),
        validate=ma.validate.Length(max=MAX_AREAS),
        metadata={"description": description},
    )


def _choices(enum_class, description: str) -> ma.fields.List:
    return ma.fields.List(
        ma.fields.Enum(enum_class, by_value=True),
        validate=ma.validate.Length(max=len(enum_class)),
        metadata={"description": description},
    )


class ListingChangesSchema(ma.Schema):
    """The listing's details, each optional: what a partial update may change."""

    class Meta:
        unknown = ma.RAISE

    title = _text(TITLE_MAX, "What the service is called")
    summary = _text(SUMMARY_MAX, "One or two sentences for search results")
    description = _text(DESCRIPTION_MAX, "The full description")
    outcomes = _text(OUTCOMES_MAX, "The outcomes offered, one a line")
    lot_id = _whole(1, MAX_ID, "The arrangement lot (category) the service belongs to")
    region_codes = _codes(
        "Probation regions served (codes, like `B`): an active membership of the lot must "
        "cover each"
    )
    pcc_area_codes = _codes("PCC areas served (codes, like `lancashire`), likewise")
    settings = _choices(DeliverySetting, "Delivery settings (at least one)")
    formats = _choices(DeliveryFormat, "One-to-one, group or both")
    eligibility_sex = ma.fields.Enum(Sex, by_value=True, metadata={"description": "Who for"})
    min_age = _whole(MIN_AGE, MAX_AGE, "Youngest age accepted", allow_none=True)
    max_age = _whole(MIN_AGE, MAX_AGE, "Oldest age accepted", allow_none=True)
    risk_levels = _choices(RiskLevel, "Risk of serious harm levels accepted")
    complexities = _choices(Complexity, "Complexity levels offered (at least one)")
    lead_time_days = _whole(0, MAX_LEAD_TIME_DAYS, "Referral lead time in working days")
    unit = ma.fields.Enum(Unit, by_value=True, metadata={"description": "What one unit is"})
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True)
    min_units = _whole(1, MAX_UNITS, "Fewest units per call-off")
    max_units = _whole(1, MAX_UNITS, "Most units per call-off")
    monthly_capacity = _whole(0, MAX_UNITS, "Units the provider can deliver a month")
    missed_sessions_chargeable = StrictBoolean(
        metadata={
            "description": "Whether a session the person does not attend is paid for at the "
            "unit price (default false)"
        },
    )
    cost_staff_pence = _whole(0, MAX_COST_PENCE, "Staff cost of one unit", allow_none=True)
    cost_overheads_pence = _whole(0, MAX_COST_PENCE, "Overheads of one unit", allow_none=True)
    cost_other_pence = _whole(0, MAX_COST_PENCE, "Other costs of one unit", allow_none=True)
    social_value = _text(SOCIAL_VALUE_MAX, "Social value statement")
    contact_name = _text(CONTACT_NAME_MAX, "Contact for referrals (shown to buyers only)")
    contact_email = _text(CONTACT_EMAIL_MAX, "Email for referrals")
    contact_phone = _text(CONTACT_PHONE_MAX, "Phone for referrals")


class NewListingSchema(ListingChangesSchema):
    """A new draft listing and its first price, in force from today."""

    title = _text(TITLE_MAX, "What the service is called", required=True)
    summary = _text(SUMMARY_MAX, "One or two sentences for search results", required=True)
    lot_id = _whole(
        1, MAX_ID, "The arrangement lot (category) the service belongs to", required=True
    )
    unit = ma.fields.Enum(
        Unit, by_value=True, required=True, metadata={"description": "What one unit is"}
    )
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True, required=True)
    max_units = _whole(1, MAX_UNITS, "Most units per call-off", required=True)
    monthly_capacity = _whole(0, MAX_UNITS, "Units the provider can deliver a month", required=True)
    unit_price_pence = _whole(
        0,
        MAX_UNIT_PRICE_PENCE,
        "The unit price ex VAT in whole pence (4500 for £45.00), in force from today",
        required=True,
    )
    organisation_id = _whole(
        1,
        MAX_ID,
        "The provider organisation: the one the token acts for (optional; if given, it must "
        "be that one)",
    )


class NewPriceSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    unit_price_pence = _whole(
        0, MAX_UNIT_PRICE_PENCE, "The unit price ex VAT in whole pence", required=True
    )
    effective_from = HorizonDate(
        required=True, metadata={"description": "YYYY-MM-DD: today or later (UK time)"}
    )
    reason = _text(REASON_MAX, "Why the price changes", load_default="")


class WithdrawalSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    reason = _text(REASON_MAX, "Why the listing is withdrawn", load_default="")


# ---------------------------------------------------------------------------------------------
# Output


class PriceVersionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    unit_price_pence = ma.fields.Integer(required=True, metadata={"description": "Ex VAT"})
    effective_from = ma.fields.Date(required=True)
    effective_to = ma.fields.Date(
        required=True,
        allow_none=True,
        metadata={"description": "The next version's start (exclusive); null: open-ended"},
    )
    reason = ma.fields.String(required=True)


class OwnListingSchema(ma.Schema):
    """A listing as its provider sees it: every detail, the state and the whole price history."""

    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True)
    status = ma.fields.Enum(ListingStatus, by_value=True, required=True)
    organisation_id = ma.fields.Integer(required=True)
    title = ma.fields.String(required=True)
    summary = ma.fields.String(required=True)
    description = ma.fields.String(required=True)
    outcomes = ma.fields.String(required=True, metadata={"description": "One a line"})
    lot_id = ma.fields.Integer(required=True)
    lot = ma.fields.Nested(CodeNameSchema, required=True)
    region_codes = ma.fields.List(ma.fields.String(), required=True)
    pcc_area_codes = ma.fields.List(ma.fields.String(), required=True)
    areas = ma.fields.List(ma.fields.Nested(AreaSchema), required=True)
    settings = ma.fields.List(ma.fields.Enum(DeliverySetting, by_value=True), required=True)
    formats = ma.fields.List(ma.fields.Enum(DeliveryFormat, by_value=True), required=True)
    eligibility_sex = ma.fields.Enum(Sex, by_value=True, required=True)
    min_age = ma.fields.Integer(required=True, allow_none=True)
    max_age = ma.fields.Integer(required=True, allow_none=True)
    risk_levels = ma.fields.List(ma.fields.Enum(RiskLevel, by_value=True), required=True)
    complexities = ma.fields.List(ma.fields.Enum(Complexity, by_value=True), required=True)
    lead_time_days = ma.fields.Integer(required=True)
    unit = ma.fields.Enum(Unit, by_value=True, required=True)
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True, required=True)
    min_units = ma.fields.Integer(required=True)
    max_units = ma.fields.Integer(required=True)
    monthly_capacity = ma.fields.Integer(required=True)
    missed_sessions_chargeable = ma.fields.Boolean(required=True)
    cost_staff_pence = ma.fields.Integer(required=True, allow_none=True)
    cost_overheads_pence = ma.fields.Integer(required=True, allow_none=True)
    cost_other_pence = ma.fields.Integer(required=True, allow_none=True)
    social_value = ma.fields.String(required=True)
    contact_name = ma.fields.String(required=True)
    contact_email = ma.fields.String(required=True)
    contact_phone = ma.fields.String(required=True)
    unit_price_pence = ma.fields.Integer(
        required=True, allow_none=True, metadata={"description": "In force today, ex VAT"}
    )
    prices = ma.fields.List(
        ma.fields.Nested(PriceVersionSchema),
        required=True,
        metadata={"description": "Every price version, oldest first"},
    )
    published_at = ma.fields.AwareDateTime(required=True, allow_none=True)
    paused_at = ma.fields.AwareDateTime(required=True, allow_none=True)
    withdrawn_at = ma.fields.AwareDateTime(required=True, allow_none=True)
    confirmed_at = ma.fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "Last confirmed accurate"}
    )
