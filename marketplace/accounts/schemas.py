"""API shapes for accounts."""

from __future__ import annotations

import marshmallow as ma

from marketplace.accounts.models import OrganisationType, Role


class OrganisationSummarySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    type = ma.fields.Enum(OrganisationType, by_value=True, required=True)


class MembershipSchema(ma.Schema):
    organisation = ma.fields.Nested(OrganisationSummarySchema, required=True)
    role = ma.fields.Enum(Role, by_value=True, required=True)


class MeSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    email = ma.fields.Email(required=True)
    name = ma.fields.String(required=True)
    two_factor_enabled = ma.fields.Boolean(required=True)
    organisation = ma.fields.Nested(
        OrganisationSummarySchema,
        required=True,
        metadata={"description": "The organisation this token acts for"},
    )
    roles = ma.fields.List(
        ma.fields.Enum(Role, by_value=True),
        required=True,
        metadata={"description": "Roles in that organisation"},
    )
    memberships = ma.fields.List(ma.fields.Nested(MembershipSchema), required=True)


class TeamMemberSchema(ma.Schema):
    user_id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    email = ma.fields.Email(required=True)
    roles = ma.fields.List(ma.fields.Enum(Role, by_value=True), required=True)
    spend_limit_pence = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "A buyer's spend limit; null: the service's default"},
    )
    approval_limit_pence = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "An approver's approval limit; null: no limit"},
    )


class SpendLimitSchema(ma.Schema):
    spend_limit_pence = ma.fields.Integer(
        strict=True,
        allow_none=True,
        required=True,
        metadata={"description": "Pence; null: the service's default"},
    )


class ApprovalLimitSchema(ma.Schema):
    approval_limit_pence = ma.fields.Integer(
        strict=True,
        allow_none=True,
        required=True,
        metadata={"description": "Pence; null: no limit"},
    )
