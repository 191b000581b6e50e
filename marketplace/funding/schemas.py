"""API shapes for budgets and standing authorisations (limits read from the models; the
services decide the rules, such as which financial years are open)."""

from __future__ import annotations

import marshmallow as ma

from marketplace.core.clock import financial_year_label
from marketplace.funding.models import MAX_AMOUNT_PENCE, REASON_MAX

MAX_ID = 2**31 - 1
# The years the database can hold; which of them are open is the services' rule (this year and
# the next two), answered as a 422 naming the field.
YEAR = ma.validate.Range(min=2000, max=2200)


def _amount(description: str, **kwargs) -> ma.fields.Integer:
    return ma.fields.Integer(
        strict=True,
        validate=ma.validate.Range(min=0, max=MAX_AMOUNT_PENCE),
        metadata={"description": description},
        **kwargs,
    )


def _reason(description: str) -> ma.fields.String:
    return ma.fields.String(
        required=True,
        validate=ma.validate.Length(min=1, max=REASON_MAX),
        metadata={"description": description},
    )


class BudgetChangeSchema(ma.Schema):
    changed_at = ma.fields.AwareDateTime()
    changed_by_name = ma.fields.Function(
        lambda c: c.changed_by.name if c.changed_by else None, allow_none=True
    )
    old_allocated_pence = ma.fields.Integer(
        allow_none=True, metadata={"description": "None when the budget was first set"}
    )
    new_allocated_pence = ma.fields.Integer()
    reason = ma.fields.String()


class BudgetSchema(ma.Schema):
    id = ma.fields.Integer()
    organisation_id = ma.fields.Integer()
    organisation_name = ma.fields.Function(lambda b: b.organisation.name)
    financial_year = ma.fields.Integer(
        metadata={
            "description": "The calendar year it starts in: 2026 is 1 April 2026 to 31 March 2027"
        }
    )
    financial_year_label = ma.fields.Function(lambda b: financial_year_label(b.financial_year))
    category_id = ma.fields.Integer(allow_none=True)
    category_name = ma.fields.Function(
        lambda b: b.category.name if b.category else None, allow_none=True
    )
    allocated_pence = ma.fields.Integer()
    committed_pence = ma.fields.Integer()
    spent_pence = ma.fields.Integer()
    available_pence = ma.fields.Integer()


class BudgetWithHistorySchema(BudgetSchema):
    history = ma.fields.List(
        ma.fields.Nested(BudgetChangeSchema),
        metadata={"description": "Each change of the allocation, most recent first"},
    )


class BudgetQuerySchema(ma.Schema):
    organisation_id = ma.fields.Integer(
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={"description": "The authority only: one organisation's budgets"},
    )
    financial_year = ma.fields.Integer(validate=YEAR)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=100))


class NewBudgetSchema(ma.Schema):
    financial_year = ma.fields.Integer(
        required=True,
        strict=True,
        validate=YEAR,
        metadata={
            "description": "This financial year or one of the next two (the year it starts in)"
        },
    )
    category_id = ma.fields.Integer(
        strict=True,
        allow_none=True,
        load_default=None,
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={"description": "A service category; none for a budget for all services"},
    )
    allocated_pence = _amount("The budget, in whole pence", required=True)
    reason = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(max=REASON_MAX),
        metadata={"description": "A note for the budget's history"},
    )


class BudgetChangeRequestSchema(ma.Schema):
    allocated_pence = _amount(
        "The new budget, in whole pence: not less than committed + spent", required=True
    )
    reason = _reason("Why it changes: kept in its history and sent to the other approvers")
    expected_allocated_pence = _amount(
        "The allocation you read: if someone has changed it since, the change is refused (409)",
        allow_none=True,
        load_default=None,
    )


class AuthorisationSchema(ma.Schema):
    id = ma.fields.Integer()
    funder_id = ma.fields.Integer()
    funder_name = ma.fields.Function(lambda a: a.funder.name)
    lead_buyer_id = ma.fields.Integer()
    lead_buyer_name = ma.fields.Function(lambda a: a.lead_buyer.name)
    financial_year = ma.fields.Integer()
    financial_year_label = ma.fields.Function(lambda a: financial_year_label(a.financial_year))
    per_call_off_limit_pence = ma.fields.Integer()
    annual_limit_pence = ma.fields.Integer()
    used_pence = ma.fields.Integer(metadata={"description": "Shares it has funded this year"})
    revoked_at = ma.fields.AwareDateTime(allow_none=True)


class AuthorisationQuerySchema(ma.Schema):
    direction = ma.fields.String(
        validate=ma.validate.OneOf(["given", "held"]),
        metadata={
            "description": "given: by your organisation as co-funder; held: by it as "
            "lead buyer; both if left out"
        },
    )
    financial_year = ma.fields.Integer(validate=YEAR)
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=100))


class NewAuthorisationSchema(ma.Schema):
    lead_buyer_id = ma.fields.Integer(
        required=True,
        strict=True,
        validate=ma.validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Another commissioning organisation"},
    )
    financial_year = ma.fields.Integer(required=True, strict=True, validate=YEAR)
    per_call_off_limit_pence = _amount(
        "The most the funder's share of one call-off may be, in whole pence", required=True
    )
    annual_limit_pence = _amount(
        "The most its shares may come to in the year, in whole pence", required=True
    )


class AuthorisationChangeSchema(ma.Schema):
    per_call_off_limit_pence = _amount("The new limit per call-off", required=True)
    annual_limit_pence = _amount(
        "The new total for the year: not less than what it has used", required=True
    )
    reason = _reason("Why it changes: sent to the lead buyer's approvers")


class RevokeSchema(ma.Schema):
    reason = _reason("Why it is revoked: sent to the lead buyer's approvers")
