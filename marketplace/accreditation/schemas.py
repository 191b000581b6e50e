"""API shapes for the dynamic purchasing system."""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.models import OrganisationType
from marketplace.accreditation.models import (
    REASON_MAX,
    ApplicationStatus,
    ArrangementStatus,
    AwardLimitScope,
    LegalRegime,
    LotDecision,
    MembershipStatus,
    QuestionType,
    RenewalStatus,
)
from marketplace.core.api import PaginationQuerySchema


class RegionRefSchema(ma.Schema):
    code = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class ArrangementSummarySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True)
    name = ma.fields.String(required=True)
    legal_regime = ma.fields.Enum(LegalRegime, by_value=True, required=True)
    status = ma.fields.Enum(ArrangementStatus, by_value=True, required=True)
    valid_from = ma.fields.Date(required=True)
    valid_to = ma.fields.Date(required=True)
    direct_award_limit_pence = ma.fields.Integer(
        required=True, metadata={"description": "Whole-life value including VAT, in pence"}
    )
    award_limit_scope = ma.fields.Enum(
        AwardLimitScope,
        by_value=True,
        required=True,
        metadata={
            "description": "Which of a buyer organisation's call-offs over the last 12 months "
            "count together towards the limit: those with the same provider in the same lot, or "
            "only those for the same listing"
        },
    )


class CriterionSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    question = ma.fields.String(required=True)
    guidance = ma.fields.String(required=True)
    type = ma.fields.Enum(QuestionType, by_value=True, required=True)
    mandatory = ma.fields.Boolean(required=True)
    pass_fail = ma.fields.Boolean(required=True)
    pass_answer = ma.fields.Boolean(
        allow_none=True,
        metadata={"description": "For yes/no pass-fail questions: the answer that passes"},
    )
    evidence_expires = ma.fields.Boolean(required=True)
    version = ma.fields.Integer(required=True)


class LotSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    code = ma.fields.String(required=True, attribute="category.code")
    name = ma.fields.String(required=True, attribute="category.name")
    description = ma.fields.String(required=True)
    criteria = ma.fields.List(
        ma.fields.Nested(CriterionSchema),
        required=True,
        metadata={"description": "The questions in force"},
    )


class ArrangementSchema(ArrangementSummarySchema):
    description = ma.fields.String(required=True)
    decision_period_days = ma.fields.Integer(required=True)
    extended_period_days = ma.fields.Integer(required=True)
    criteria_version = ma.fields.Integer(required=True)
    regions = ma.fields.List(ma.fields.Nested(RegionRefSchema), required=True)
    lots = ma.fields.List(ma.fields.Nested(LotSchema), required=True)


class RegisterEntrySchema(ma.Schema):
    """A member of the register: organisation facts only, no personal data."""

    organisation = ma.fields.String(required=True)
    organisation_type = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf([t.value for t in OrganisationType]),
        metadata={"enum": [t.value for t in OrganisationType]},
    )
    charity_number = ma.fields.String(allow_none=True, required=True)
    companies_house_number = ma.fields.String(allow_none=True, required=True)
    lot_code = ma.fields.String(required=True)
    lot_name = ma.fields.String(required=True)
    region_code = ma.fields.String(allow_none=True, required=True)
    pcc_area_code = ma.fields.String(allow_none=True, required=True)
    area_name = ma.fields.String(required=True)
    admitted_on = ma.fields.Date(required=True)


class StrictPaginationQuerySchema(PaginationQuerySchema):
    """Pagination that refuses query parameters it does not know."""

    class Meta:
        unknown = ma.RAISE


class MembersQuerySchema(StrictPaginationQuerySchema):
    lot = ma.fields.String(
        validate=ma.validate.Length(max=40), metadata={"description": "A lot's category code"}
    )
    region = ma.fields.String(
        validate=ma.validate.Length(max=40), metadata={"description": "A probation region code"}
    )


class ArrangementRefSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True)
    name = ma.fields.String(required=True)


class LotMembershipSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    arrangement = ma.fields.Nested(ArrangementRefSchema, required=True)
    lot_code = ma.fields.String(required=True, attribute="lot.category.code")
    lot_name = ma.fields.String(required=True, attribute="lot.category.name")
    region_code = ma.fields.Function(
        lambda m: m.region.code if m.region else None, allow_none=True, required=True
    )
    pcc_area_code = ma.fields.Function(
        lambda m: m.pcc_area.code if m.pcc_area else None, allow_none=True, required=True
    )
    area_name = ma.fields.String(required=True)
    status = ma.fields.Enum(MembershipStatus, by_value=True, required=True)
    admitted_on = ma.fields.Date(required=True)
    declared_version = ma.fields.Integer(required=True)


class OrganisationRefSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class ApplicationLotSchema(ma.Schema):
    """A lot applied for and the decision on it."""

    lot_id = ma.fields.Integer(required=True)
    lot_code = ma.fields.String(required=True)
    lot_name = ma.fields.String(required=True)
    decision = ma.fields.Enum(LotDecision, by_value=True, required=True)
    feedback = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "The assessor's feedback; null until the lot is decided"},
    )
    decided_at = ma.fields.DateTime(allow_none=True, required=True)


class ApplicationAreaSchema(ma.Schema):
    """A probation region or a PCC area the application covers (one code is null)."""

    region_code = ma.fields.String(allow_none=True, required=True)
    pcc_area_code = ma.fields.String(allow_none=True, required=True)
    name = ma.fields.String(required=True)


class ApplicationSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True)
    arrangement = ma.fields.Nested(ArrangementRefSchema, required=True)
    organisation = ma.fields.Nested(OrganisationRefSchema, required=True)
    status = ma.fields.Enum(ApplicationStatus, by_value=True, required=True)
    lots = ma.fields.List(ma.fields.Nested(ApplicationLotSchema), required=True)
    areas = ma.fields.List(ma.fields.Nested(ApplicationAreaSchema), required=True)
    submitted_at = ma.fields.DateTime(allow_none=True, required=True)
    decision_due_on = ma.fields.Date(
        allow_none=True,
        required=True,
        metadata={"description": "The last day of the decision clock, once submitted"},
    )
    decided_at = ma.fields.DateTime(allow_none=True, required=True)


class EvidenceFileRefSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True, attribute="original_name")


class EvidenceRenewalSchema(ma.Schema):
    """Renewed evidence a member sent, what it replaces, and the assessor's decision."""

    id = ma.fields.Integer(required=True)
    status = ma.fields.Enum(RenewalStatus, by_value=True, required=True)
    answer_id = ma.fields.Integer(required=True)
    application_reference = ma.fields.String(
        required=True, attribute="answer.application.reference"
    )
    organisation = ma.fields.Nested(
        OrganisationRefSchema, required=True, attribute="answer.application.organisation"
    )
    arrangement = ma.fields.Nested(
        ArrangementRefSchema, required=True, attribute="answer.application.arrangement"
    )
    lot_code = ma.fields.String(required=True, attribute="answer.criterion.lot.category.code")
    question = ma.fields.String(required=True, attribute="answer.criterion.question")
    file = ma.fields.Nested(EvidenceFileRefSchema, required=True)
    expires_on = ma.fields.Date(required=True)
    replaces_file = ma.fields.Nested(EvidenceFileRefSchema, allow_none=True, required=True)
    replaces_expires_on = ma.fields.Date(
        allow_none=True,
        required=True,
        metadata={"description": "When the evidence in force when this was sent expires"},
    )
    submitted_at = ma.fields.DateTime(required=True)
    decided_at = ma.fields.DateTime(allow_none=True, required=True)
    decision_reason = ma.fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "Why it was rejected, or the assessor's comment on acceptance"},
    )


class RenewalsQuerySchema(StrictPaginationQuerySchema):
    status = ma.fields.Enum(
        RenewalStatus,
        by_value=True,
        load_default=RenewalStatus.PENDING,
        metadata={"description": "Which renewals to list (default: those waiting)"},
    )


class AcceptRenewalSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    comment = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(max=REASON_MAX),
        metadata={"description": "An optional comment the provider is told"},
    )


class RejectRenewalSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    reason = ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=REASON_MAX),
        metadata={"description": "Why it does not meet the criterion; the provider is told"},
    )
