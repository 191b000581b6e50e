"""API shapes for payment by results (limits read from the models; rules live in services)."""

from __future__ import annotations

import marshmallow as ma
from flask import url_for

from marketplace.core.api import HorizonDate
from marketplace.outcomes.models import (
    NOTE_MAX,
    REASON_MAX,
    ClaimStatus,
    OutcomeTermStatus,
)

MAX_ID = 2**31 - 1


class ReasonSchema(ma.Schema):
    reason = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=REASON_MAX))


class NewClaimSchema(ma.Schema):
    """multipart/form-data: the fields and the ``evidence`` file."""

    term_id = ma.fields.Integer(required=True, validate=ma.validate.Range(min=1, max=MAX_ID))
    achieved_on = HorizonDate(required=True)
    note = ma.fields.String(load_default="", validate=ma.validate.Length(max=NOTE_MAX))
    evidence = ma.fields.Raw(
        load_default=None,
        metadata={
            "type": "string",
            "format": "binary",
            "description": "Required: a PDF, PNG, JPEG, DOCX, XLSX or ODT file up to 10 MB, "
            "checked by its content",
        },
    )


class OutcomeTermSchema(ma.Schema):
    id = ma.fields.Integer()
    call_off_id = ma.fields.Integer()
    outcome = ma.fields.String()
    tariff_pence = ma.fields.Integer()
    earliest_claim_on = ma.fields.Date()
    evidence_required = ma.fields.String()
    cap = ma.fields.Integer()
    claims_used = ma.fields.Integer()
    status = ma.fields.Enum(OutcomeTermStatus, by_value=True)
    proposed_at = ma.fields.AwareDateTime()
    agreed_at = ma.fields.AwareDateTime(allow_none=True)
    rejected_at = ma.fields.AwareDateTime(allow_none=True)
    rejection_reason = ma.fields.String(allow_none=True)


class EvidenceSchema(ma.Schema):
    original_name = ma.fields.String()
    content_type = ma.fields.String()
    size_bytes = ma.fields.Integer()
    sha256 = ma.fields.String()


class OutcomeClaimSchema(ma.Schema):
    id = ma.fields.Integer()
    reference = ma.fields.String(metadata={"example": "OC-2026-000001"})
    call_off_id = ma.fields.Integer()
    term_id = ma.fields.Integer()
    outcome = ma.fields.Function(lambda c: c.term.outcome)
    tariff_pence = ma.fields.Function(lambda c: c.term.tariff_pence)
    status = ma.fields.Enum(ClaimStatus, by_value=True)
    achieved_on = ma.fields.Date()
    note = ma.fields.String()
    evidence = ma.fields.Nested(EvidenceSchema)
    claimed_at = ma.fields.AwareDateTime()
    verified_at = ma.fields.AwareDateTime(allow_none=True)
    rejected_at = ma.fields.AwareDateTime(allow_none=True)
    rejection_reason = ma.fields.String(allow_none=True)
    url = ma.fields.Function(
        lambda c: url_for("outcomes_api.OutcomeClaimItem", claim_id=c.id, _external=True)
    )


class LiabilityLineSchema(ma.Schema):
    call_off_id = ma.fields.Integer()
    call_off_reference = ma.fields.String()
    term_id = ma.fields.Integer()
    outcome = ma.fields.String()
    claims_left = ma.fields.Integer()
    gross_pence = ma.fields.Integer()
    share_pence = ma.fields.Integer()


class LiabilitySchema(ma.Schema):
    organisation_id = ma.fields.Integer()
    total_pence = ma.fields.Integer()
    lines = ma.fields.List(ma.fields.Nested(LiabilityLineSchema))
