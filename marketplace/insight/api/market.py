"""The market map and forward plans over the API.

Public (``insight_public_api``): the market map's grid and one cell (the same numbers as the
page and its CSV: ``insight.queries.market.market_map``) and every published forward-plan entry.
With a token (``insight_api``): a commissioner's own forward plan, added, read, changed (drafts),
published and withdrawn by the same services as the pages. A region or lot that does not exist,
and another organisation's entry, are 404 problem+json."""

from __future__ import annotations

import http

import marshmallow as ma
from flask import g
from flask.views import MethodView

from marketplace.core.api import CONFLICT_RESPONSE, commit_write, paginate, paginated_schema
from marketplace.core.clock import london_date
from marketplace.core.db import MAX_ID
from marketplace.core.errors import NotFound
from marketplace.insight.api import blp, public_blp
from marketplace.insight.models import PlannedProcurement, PlannedRoute, PlanStatus, ValueBand
from marketplace.insight.queries import forward_plan as plan_queries
from marketplace.insight.queries import market as queries
from marketplace.insight.services import forward_plan as plans

_CODE = ma.validate.Length(min=1, max=20)


# ---------------------------------------------------------------------------------------------
# The market map


class MarketQuerySchema(ma.Schema):
    region = ma.fields.String(load_default=None, validate=_CODE)
    lot = ma.fields.String(load_default=None, validate=_CODE)


class MarketCellSchema(ma.Schema):
    region_code = ma.fields.String(required=True)
    region = ma.fields.String(required=True)
    lot_code = ma.fields.String(required=True)
    lot = ma.fields.String(required=True)
    active_members = ma.fields.Integer(required=True)
    published_listings = ma.fields.Integer(required=True)
    capacity_free = ma.fields.Integer(
        required=True,
        metadata={
            "description": "Units free over the capacity months, each listing in its own unit"
        },
    )
    paid_pence = ma.fields.Integer(
        required=True, metadata={"description": "Paid over the spend months, VAT included"}
    )
    gaps = ma.fields.List(ma.fields.String(), required=True)


class MarketMapSchema(ma.Schema):
    capacity_months = ma.fields.List(ma.fields.Date(), required=True)
    spend_from = ma.fields.Date(required=True)
    spend_to = ma.fields.Date(required=True)
    cells = ma.fields.List(ma.fields.Nested(MarketCellSchema), required=True)


def _region(code: str | None):
    if code is None:
        return None
    region = queries.region_by_code(code)
    if region is None:
        raise NotFound("No probation region has that code")
    return region


def _category(code: str | None):
    if code is None:
        return None
    category = queries.category_by_code(code)
    if category is None:
        raise NotFound("No lot has that code")
    return category


def _grid(region, category) -> dict:
    grid = queries.market_map(london_date(), region=region, category=category)
    return {
        "capacity_months": grid.capacity_months,
        "spend_from": grid.spend_from,
        "spend_to": grid.today,
        "cells": [cell.record() for cell in grid.rows()],
    }


@public_blp.route("/insight/market")
@public_blp.arguments(MarketQuerySchema, location="query")
@public_blp.response(200, MarketMapSchema)
@public_blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
def market_map(args):
    """The market map: for each probation region and lot, active members, published listings,
    capacity free in the three months from this one and paid spend in the twelve months to this
    one, with the gaps; optionally one region and/or one lot (by code)."""
    return _grid(_region(args["region"]), _category(args["lot"]))


@public_blp.route("/insight/market/<region_code>/<lot_code>")
@public_blp.response(200, MarketMapSchema)
@public_blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
def market_cell(region_code, lot_code):
    """One cell of the market map (a region's code and a lot's code)."""
    return _grid(_region(region_code), _category(lot_code))


# ---------------------------------------------------------------------------------------------
# Forward plans


class PlanSchema(ma.Schema):
    id = ma.fields.Integer()
    organisation_id = ma.fields.Integer()
    organisation = ma.fields.Function(lambda p: p.organisation.name)
    title = ma.fields.String()
    description = ma.fields.String()
    lot_code = ma.fields.Function(lambda p: p.category.code)
    lot = ma.fields.Function(lambda p: p.category.name)
    region_code = ma.fields.Function(lambda p: p.region.code if p.region else None)
    pcc_area_code = ma.fields.Function(lambda p: p.pcc_area.code if p.pcc_area else None)
    area = ma.fields.Function(lambda p: p.region.name if p.region else p.pcc_area.name)
    route = ma.fields.Enum(PlannedRoute, by_value=True)
    value_band = ma.fields.Enum(ValueBand, by_value=True)
    financial_year = ma.fields.Integer()
    quarter = ma.fields.Integer()
    status = ma.fields.Enum(PlanStatus, by_value=True)
    published_at = ma.fields.DateTime(allow_none=True)


PlanPageSchema = paginated_schema(PlanSchema, "PlannedProcurementPage")


class PublishedPlanQuerySchema(ma.Schema):
    lot = ma.fields.String(load_default=None, validate=_CODE)
    region = ma.fields.String(load_default=None, validate=_CODE)
    year = ma.fields.Integer(load_default=None, validate=ma.validate.Range(min=2000, max=2100))
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class PlanInSchema(ma.Schema):
    """A planned procurement: ``area`` is ``region:<id>`` or ``pcc:<id>``; the quarter (1 is
    April to June) must not have ended."""

    title = ma.fields.String(required=True, validate=ma.validate.Length(max=plans.TITLE_MAX))
    description = ma.fields.String(
        load_default="", validate=ma.validate.Length(max=plans.DESCRIPTION_MAX)
    )
    category_id = ma.fields.Integer(
        required=True, validate=ma.validate.Range(min=1, max=MAX_ID), strict=True
    )
    area = ma.fields.String(required=True, validate=ma.validate.Length(max=30))
    route = ma.fields.Enum(PlannedRoute, by_value=True, required=True)
    value_band = ma.fields.Enum(ValueBand, by_value=True, required=True)
    financial_year = ma.fields.Integer(
        required=True, validate=ma.validate.Range(min=2000, max=2100), strict=True
    )
    quarter = ma.fields.Integer(
        required=True, validate=ma.validate.Range(min=1, max=4), strict=True
    )


class WithdrawPlanSchema(ma.Schema):
    reason = ma.fields.String(
        required=True, validate=ma.validate.Length(min=1, max=plans.REASON_MAX)
    )


def _details(args: dict) -> plans.PlanDetails:
    return plans.PlanDetails(**args)


def _open_lot(category_id: int) -> None:
    if category_id not in {c.id for c in plans.plannable_categories()}:
        raise NotFound("No lot of a live arrangement has that category id")


def _own(plan_id: int) -> PlannedProcurement:
    return plans.owned_plan(g.api_user, g.organisation, plan_id)


@public_blp.route("/insight/forward-plans")
@public_blp.arguments(PublishedPlanQuerySchema, location="query")
@public_blp.response(200, PlanPageSchema)
@public_blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
def published_plans(args):
    """Every published forward-plan entry, soonest quarter first, by lot, region (with its PCC
    areas) and financial year (the year it starts: 2026 is 2026-27)."""
    region, category = _region(args["region"]), _category(args["lot"])
    query = plan_queries.published_query(
        category_id=category.id if category else None,
        region_id=region.id if region else None,
        year=args["year"],
    )
    return paginate(query, args["page"], args["page_size"])


class OwnPlanQuerySchema(ma.Schema):
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


@blp.route("/insight/forward-plans/yours")
class PlanCollection(MethodView):
    @blp.arguments(OwnPlanQuerySchema, location="query")
    @blp.response(200, PlanPageSchema)
    @blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
    def get(self, args):
        """The token's organisation's forward plan (its buyers and approvers), every state."""
        if not plans.can_plan(g.api_user, g.organisation):
            raise NotFound("Not found")
        return paginate(plan_queries.own_query(g.organisation.id), args["page"], args["page_size"])

    @blp.arguments(PlanInSchema)
    @blp.response(201, PlanSchema)
    @blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
    def post(self, args):
        """Add a draft entry to the organisation's forward plan. A lot (service category) that
        no live arrangement has is not found, as a competition's lot is."""
        _open_lot(args["category_id"])
        return commit_write(lambda: plans.add_plan(g.api_user, g.organisation, _details(args)))


@blp.route("/insight/forward-plans/yours/<int:plan_id>")
class PlanItem(MethodView):
    @blp.response(200, PlanSchema)
    @blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
    def get(self, plan_id):
        """One entry of the organisation's forward plan."""
        return _own(plan_id)

    @blp.arguments(PlanInSchema)
    @blp.response(200, PlanSchema)
    @blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
    def put(self, args, plan_id):
        """Change a draft entry (all its details)."""
        plan = _own(plan_id)
        _open_lot(args["category_id"])
        return commit_write(lambda: plans.edit_plan(g.api_user, plan, _details(args)))


@blp.route("/insight/forward-plans/yours/<int:plan_id>/publish", methods=["POST"])
@blp.response(200, PlanSchema)
@blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def publish_plan(plan_id):
    """Publish a draft: the lot's members in its area are emailed. Published already: 409."""
    plan = _own(plan_id)
    return commit_write(lambda: plans.publish_plan(g.api_user, plan))


@blp.route("/insight/forward-plans/yours/<int:plan_id>/withdraw", methods=["POST"])
@blp.arguments(WithdrawPlanSchema)
@blp.response(200, PlanSchema)
@blp.alt_response(404, response=http.HTTPStatus.NOT_FOUND.name)
@blp.alt_response(409, response=CONFLICT_RESPONSE)
def withdraw_plan(args, plan_id):
    """Withdraw an entry with a reason; if it was published, its providers are told."""
    plan = _own(plan_id)
    return commit_write(lambda: plans.withdraw_plan(g.api_user, plan, args["reason"]))
