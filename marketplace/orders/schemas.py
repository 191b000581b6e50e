"""API request shapes for call-offs (limits read from the models; rules live in services)."""

from __future__ import annotations

import marshmallow as ma

from marketplace.catalogue.models import MAX_UNITS
from marketplace.core.api import HorizonDate
from marketplace.orders.models import (
    EVIDENCE_REQUIRED_MAX,
    MAX_CAP,
    MAX_TARIFF_PENCE,
    NOTES_MAX,
    OUTCOME_MAX,
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
from marketplace.orders.services.details import MAX_FUNDERS

MAX_ID = 2**31 - 1
MAX_OUTCOME_TERMS = 10


class NewOutcomeTermSchema(ma.Schema):
    """A payment-by-results term, placed with a call-off or proposed on one (outcomes keeps it)."""

    outcome = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=OUTCOME_MAX),
        metadata={"description": "One of the listing's outcomes, exactly as it offers it"},
    )
    tariff_pence = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_TARIFF_PENCE),
        metadata={"description": "Paid per outcome, in whole pence, excluding VAT"},
    )
    earliest_claim_on = HorizonDate(
        required=True,
        ends_later=True,
        metadata={"description": "On or after the call-off's start date"},
    )
    evidence_required = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=EVIDENCE_REQUIRED_MAX)
    )
    cap = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_CAP),
        metadata={"description": "The most claims that can be made for this outcome"},
    )


class ShareSchema(ma.Schema):
    organisation_id = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID)
    )
    basis_points = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=10_000),
        metadata={"description": "Whole basis points: 6000 is 60%; all shares sum to 10000"},
    )


class NewCallOffSchema(ma.Schema):
    listing_id = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_ID)
    )
    quantity = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=1, max=MAX_UNITS)
    )
    start_date = HorizonDate(required=True)
    end_date = HorizonDate(required=True, ends_later=True)
    crn = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(
            r"^[A-Z][0-9]{6}$", error="A CRN is one capital letter and six digits, like X123456"
        ),
    )
    pdu = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=PDU_MAX))
    po_number = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=PO_NUMBER_MAX)
    )
    choice_reason = ma.fields.Enum(ChoiceReason, by_value=True, required=True)
    choice_reason_detail = ma.fields.String(
        load_default="", validate=ma.validate.Length(max=REASON_DETAIL_MAX)
    )
    notes_for_provider = ma.fields.String(
        load_default="", validate=ma.validate.Length(max=NOTES_MAX)
    )
    shares = ma.fields.List(
        ma.fields.Nested(ShareSchema),
        validate=ma.validate.Length(max=MAX_FUNDERS),
        metadata={"description": "Funders and their shares; default: all from your organisation"},
    )
    outcome_terms = ma.fields.List(
        ma.fields.Nested(NewOutcomeTermSchema),
        validate=ma.validate.Length(max=MAX_OUTCOME_TERMS),
        metadata={"description": "Payment by results (optional): agreed with the call-off"},
    )
    expected_price_version_id = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={
            "description": "The price version (a listing's price id) you expect to pay: if "
            "another is in force when the call-off is placed, nothing is placed and the answer "
            "is 409, saying the new price"
        },
    )
    expected_unit_price_pence = ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=0, max=2**53),
        metadata={
            "description": "The unit price ex VAT you expect to pay, in pence: as "
            "expected_price_version_id, compared with the price in force when it is placed"
        },
    )


class DeclineSchema(ma.Schema):
    reason = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=REASON_DETAIL_MAX)
    )


class ResplitSchema(ma.Schema):
    shares = ma.fields.List(
        ma.fields.Nested(ShareSchema),
        required=True,
        validate=ma.validate.Length(min=1, max=MAX_FUNDERS),
        metadata={
            "description": "Every funder's new share, yours (the lead buyer's) included: whole "
            "basis points summing to 10000"
        },
    )


class RejectionSchema(DeclineSchema):
    pass


class CancellationSchema(ma.Schema):
    reason = ma.fields.Enum(CancellationReason, by_value=True, required=True)
    detail = ma.fields.String(load_default="", validate=ma.validate.Length(max=REASON_DETAIL_MAX))


class OutcomeSchema(ma.Schema):
    outcome = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=300))
    result = ma.fields.Enum(OutcomeResult, by_value=True, required=True)
    comment = ma.fields.String(load_default="", validate=ma.validate.Length(max=REASON_DETAIL_MAX))


class CompletionSchema(ma.Schema):
    summary = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=SUMMARY_MAX))
    outcomes = ma.fields.List(ma.fields.Nested(OutcomeSchema), validate=ma.validate.Length(max=50))


class NewVariationSchema(ma.Schema):
    extra_units = ma.fields.Integer(
        load_default=0, strict=True, validate=ma.validate.Range(min=0, max=MAX_UNITS)
    )
    new_end_date = HorizonDate(load_default=None, allow_none=True, ends_later=True)
    reason = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=REASON_DETAIL_MAX)
    )


class NewDeliverySchema(ma.Schema):
    delivered_on = HorizonDate(required=True)
    units = ma.fields.Integer(
        required=True, strict=True, validate=ma.validate.Range(min=0, max=MAX_UNITS)
    )
    attendance = ma.fields.Enum(Attendance, by_value=True, required=True)
    absence_reason = ma.fields.Enum(
        AbsenceReason, by_value=True, load_default=None, allow_none=True
    )
    progress_note = ma.fields.String(
        load_default="", validate=ma.validate.Length(max=PROGRESS_NOTE_MAX)
    )


class DeliverySchema(ma.Schema):
    id = ma.fields.Integer()
    delivered_on = ma.fields.Date()
    units = ma.fields.Integer()
    attendance = ma.fields.Enum(Attendance, by_value=True)
    absence_reason = ma.fields.Enum(AbsenceReason, by_value=True, allow_none=True)
    progress_note = ma.fields.String()
    payable = ma.fields.Boolean(
        metadata={
            "description": "Whether its units are billed: always if attended or late; if not "
            "attended, only where the listing says missed sessions are chargeable"
        }
    )
    payable_units = ma.fields.Integer(metadata={"description": "The units billed: 0 if unpaid"})
    recorded_at = ma.fields.AwareDateTime()
