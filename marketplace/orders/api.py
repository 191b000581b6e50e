"""Call-off endpoints: place (once per ``Idempotency-Key``), list and read what the token's
organisation is party to, act on each transition, and record delivery (budgets: funding/api.py).

The token's organisation acts: a buyer's token places for its organisation (the lead buyer), a
co-funder's approver confirms its share, a provider's token accepts and records delivery. Every
rule is in ``marketplace.orders.services``; a call-off the organisation is not party to is not
found (404).
"""

from __future__ import annotations

import json
from http import HTTPStatus

import marshmallow as ma
from flask import g, request, url_for
from flask.views import MethodView
from sqlalchemy.exc import IntegrityError

from marketplace.core.api import (
    CONFLICT_RESPONSE,
    HorizonDate,
    api_blueprint,
    commit_write,
    paginate,
    paginated_schema,
)
from marketplace.core.db import db, rollback
from marketplace.core.errors import NotFound
from marketplace.core.money import VatTreatment
from marketplace.orders import permissions
from marketplace.orders.models import (
    IDEMPOTENCY_KEY_MAX,
    AwardRoute,
    CallOff,
    CallOffStatus,
    CancellationReason,
    ChoiceReason,
    OutcomeResult,
    Side,
    VariationStatus,
)
from marketplace.orders.queries import CallOffFilters, call_offs_query
from marketplace.orders.schemas import (
    CancellationSchema,
    CompletionSchema,
    DeclineSchema,
    DeliverySchema,
    NewCallOffSchema,
    NewDeliverySchema,
    NewVariationSchema,
    RejectionSchema,
    ResplitSchema,
)
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import details as order_details
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import placing, responses
from marketplace.orders.services import variations as order_variations
from marketplace.orders.services.details import OutcomeTermDetails

blp = api_blueprint(
    "orders_api",
    __name__,
    "Call-offs: place (honouring Idempotency-Key), list, read, confirm or decline funding, "
    "re-split shares after a decline, approve, accept, decline, record delivery, vary, cancel, "
    "complete",
)


# ---------------------------------------------------------------------------------------------
# Answers


class FunderSchema(ma.Schema):
    organisation_id = ma.fields.Integer()
    organisation_name = ma.fields.Function(lambda f: f.organisation.name)
    is_lead = ma.fields.Boolean()
    basis_points = ma.fields.Integer()
    share_pence = ma.fields.Integer()
    committed_pence = ma.fields.Integer()
    confirmed_at = ma.fields.AwareDateTime(allow_none=True)
    preauthorised = ma.fields.Boolean()
    declined_at = ma.fields.AwareDateTime(allow_none=True)
    decline_reason = ma.fields.String(allow_none=True)


class VariationSchema(ma.Schema):
    id = ma.fields.Integer()
    status = ma.fields.Enum(VariationStatus, by_value=True)
    proposed_by_side = ma.fields.Enum(Side, by_value=True)
    proposed_at = ma.fields.AwareDateTime()
    reason = ma.fields.String()
    extra_units = ma.fields.Integer()
    new_end_date = ma.fields.Date(allow_none=True)
    before = ma.fields.Dict()
    after = ma.fields.Dict()
    decided_at = ma.fields.AwareDateTime(allow_none=True)
    decision_reason = ma.fields.String()
    version = ma.fields.Integer(allow_none=True)
    awaiting_approval = ma.fields.Boolean(
        metadata={"description": "Waiting for an approver of the lead buyer (above a limit)"}
    )
    approved_at = ma.fields.AwareDateTime(allow_none=True)


class OutcomeRecordSchema(ma.Schema):
    outcome = ma.fields.String()
    result = ma.fields.Enum(OutcomeResult, by_value=True)
    comment = ma.fields.String()


class CallOffSchema(ma.Schema):
    id = ma.fields.Integer()
    reference = ma.fields.String(metadata={"example": "CO-2026-000123"})
    status = ma.fields.Enum(CallOffStatus, by_value=True)
    version = ma.fields.Integer()
    listing_id = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The rate-card listing bought; null if awarded by competition"},
    )
    service_title = ma.fields.String(metadata={"description": "What the call-off buys"})
    provider_id = ma.fields.Integer()
    provider_name = ma.fields.Function(lambda c: c.provider.name)
    lead_buyer_id = ma.fields.Integer()
    lead_buyer_name = ma.fields.Function(lambda c: c.lead_buyer.name)
    award_route = ma.fields.Enum(AwardRoute, by_value=True)
    choice_reason = ma.fields.Enum(
        ChoiceReason,
        by_value=True,
        allow_none=True,
        metadata={"description": "A direct award's reason; null for further competition"},
    )
    choice_reason_detail = ma.fields.String()
    competition_id = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The further competition that awarded it, if one did"},
    )
    for_one_person = ma.fields.Boolean(
        metadata={"description": "False for a contract for a service (crn and pdu empty)"}
    )
    quantity = ma.fields.Integer()
    delivered_units = ma.fields.Integer()
    start_date = ma.fields.Date()
    end_date = ma.fields.Date()
    crn = ma.fields.String()
    pdu = ma.fields.String()
    po_number = ma.fields.String()
    notes_for_provider = ma.fields.String()
    unit = ma.fields.Function(lambda c: c.unit.value)
    unit_price_pence = ma.fields.Integer()
    price_version_id = ma.fields.Integer(
        allow_none=True,
        metadata={"description": "The listing's price version it was placed at"},
    )
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True)
    net_pence = ma.fields.Integer()
    vat_pence = ma.fields.Integer()
    gross_pence = ma.fields.Integer()
    outcome_max_pence = ma.fields.Integer(
        metadata={"description": "The most its agreed outcome terms could add, VAT included"}
    )
    placed_at = ma.fields.AwareDateTime()
    respond_by = ma.fields.Date(allow_none=True)
    accepted_at = ma.fields.AwareDateTime(allow_none=True)
    declined_at = ma.fields.AwareDateTime(allow_none=True)
    decline_reason = ma.fields.String(allow_none=True)
    cancelled_at = ma.fields.AwareDateTime(allow_none=True)
    cancellation_reason = ma.fields.Enum(CancellationReason, by_value=True, allow_none=True)
    cancellation_detail = ma.fields.String(
        metadata={"description": "The buyer's explanation, if they gave one"}
    )
    completed_at = ma.fields.AwareDateTime(allow_none=True)
    completion_summary = ma.fields.String(
        metadata={"description": "The provider's end-of-service summary (empty until completed)"}
    )
    outcomes = ma.fields.List(
        ma.fields.Nested(OutcomeRecordSchema),
        metadata={"description": "On completion: how far the person achieved each outcome"},
    )
    funders = ma.fields.List(ma.fields.Nested(FunderSchema))
    variations = ma.fields.List(ma.fields.Nested(VariationSchema))
    url = ma.fields.Function(
        lambda c: url_for("orders_api.CallOffItem", call_off_id=c.id, _external=True)
    )


class CallOffQuerySchema(ma.Schema):
    status = ma.fields.Enum(CallOffStatus, by_value=True)
    provider_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=2**31 - 1))
    listing_id = ma.fields.Integer(validate=ma.validate.Range(min=1, max=2**31 - 1))
    crn = ma.fields.String(validate=ma.validate.Regexp(r"^[A-Za-z][0-9]{6}$"))
    placed_from = HorizonDate()
    placed_to = HorizonDate()
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=25, validate=ma.validate.Range(min=1, max=100))


CallOffPageSchema = paginated_schema(CallOffSchema, "CallOffPage")


def _call_off(call_off_id: int) -> CallOff:
    """The call-off if the token's organisation is party to it (else 404)."""
    call_off = db.session.get(CallOff, call_off_id)
    if call_off is None or g.organisation.id not in permissions.parties(call_off):
        raise NotFound("There is no call-off with that id that your organisation is party to.")
    return call_off


# ---------------------------------------------------------------------------------------------
# Collection and item


@blp.route("/orders")
class CallOffCollection(MethodView):
    @blp.arguments(CallOffQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, CallOffPageSchema)
    def get(self, args):
        """The call-offs the token's organisation is party to, newest first."""
        page, page_size = args.pop("page"), args.pop("page_size")
        query = call_offs_query(g.organisation.id, CallOffFilters(**args))
        return paginate(query, page, page_size)

    @blp.arguments(NewCallOffSchema)
    @blp.response(201, CallOffSchema)
    # The price in force is not the one expected (expected_price_version_id or
    # expected_unit_price_pence): nothing placed; the detail says the new price.
    @blp.alt_response(409, response=HTTPStatus.CONFLICT.name)
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": IDEMPOTENCY_KEY_MAX},
                "description": "Repeat a request with the same key and body to get the same "
                "call-off instead of a second one; the same key with another body answers 422.",
            }
        ]
    )
    def post(self, args):
        """Place a call-off for the token's organisation as lead buyer, at today's price."""
        user, organisation = g.api_user, g.organisation
        listing_id = args.pop("listing_id")
        shares = [
            order_details.FundingShare(s["organisation_id"], s["basis_points"])
            for s in args.pop("shares", [])
        ]
        terms = tuple(OutcomeTermDetails(**t) for t in args.pop("outcome_terms", []))
        seen = order_details.PriceSeen(
            version_id=args.pop("expected_price_version_id", None),
            unit_price_pence=args.pop("expected_unit_price_pence", None),
        )
        details = order_details.CallOffDetails(**args, shares=tuple(shares), outcome_terms=terms)
        key = request.headers.get("Idempotency-Key")
        if key is None:
            call_off = commit_write(
                lambda: placing.place_call_off(
                    user, organisation, listing_id, details, price_seen=seen
                )
            )
            created = True
        else:
            fingerprint = json.dumps(request.get_json(silent=True), sort_keys=True, default=str)
            call_off, created = _place_once(
                user, organisation, listing_id, details, key, fingerprint, seen
            )
        location = url_for("orders_api.CallOffItem", call_off_id=call_off.id, _external=True)
        return call_off, 201 if created else 200, {"Location": location}


def _place_once(user, organisation, listing_id, details, key, fingerprint, seen):
    try:
        return commit_write(
            lambda: placing.place_call_off_once(
                user,
                organisation,
                listing_id,
                details,
                key=key,
                request_fingerprint=fingerprint,
                price_seen=seen,
            )
        )
    except IntegrityError:
        # The same key raced in from another request, which won: answer with its call-off.
        rollback()
        existing = placing.placed_with_key(user, key, fingerprint)
        if existing is None:
            raise
        return existing, False


@blp.route("/orders/<int:call_off_id>")
class CallOffItem(MethodView):
    @blp.response(200, CallOffSchema)
    def get(self, call_off_id):
        """One call-off the token's organisation is party to."""
        return _call_off(call_off_id)


# ---------------------------------------------------------------------------------------------
# Transitions


def _action(name: str, schema=None):
    """Register ``POST /orders/{id}/<name>`` running ``handler(user, call_off, args)``."""

    def register(handler):
        def post(*args, call_off_id):
            call_off = _call_off(call_off_id)
            body = args[0] if args else {}
            commit_write(lambda: handler(g.api_user, call_off, body))
            return call_off

        post.__name__ = f"post_{name.replace('-', '_')}"
        post.__doc__ = handler.__doc__
        view = blp.alt_response(409, response=CONFLICT_RESPONSE)(post)
        view = blp.response(200, CallOffSchema)(view)
        if schema is not None:
            view = blp.arguments(schema)(view)
        blp.route(f"/orders/<int:call_off_id>/{name}", methods=["POST"])(view)
        return handler

    return register


@_action("confirm-funding")
def _confirm_funding(user, call_off, body):
    """A co-funder's approver confirms the token organisation's share."""
    order_funding.confirm_funding(user, call_off, g.organisation)


@_action("decline-funding", DeclineSchema)
def _decline_funding(user, call_off, body):
    """A co-funder's approver declines the token organisation's share, with a reason; the
    call-off waits for the lead buyer to re-split the shares or cancel."""
    order_funding.decline_funding(user, call_off, g.organisation, body["reason"])


@_action("funding", ResplitSchema)
def _resplit_funding(user, call_off, body):
    """After a co-funder declined, the lead buyer sets every funder's new share; new or larger
    shares are asked again. 409 if no share was declined."""
    shares = [
        order_details.FundingShare(s["organisation_id"], s["basis_points"]) for s in body["shares"]
    ]
    order_funding.resplit_funding(user, call_off, shares)


@_action("approve")
def _approve(user, call_off, body):
    """An approver of the lead buyer (not the person who placed it) approves the spend."""
    order_funding.approve(user, call_off)


@_action("accept")
def _accept(user, call_off, body):
    """The provider accepts within the response period; its units take monthly capacity."""
    responses.accept(user, call_off)


@_action("decline", DeclineSchema)
def _decline(user, call_off, body):
    """The provider declines, with a reason the buyer sees."""
    responses.decline(user, call_off, body["reason"])


@_action("cancel", CancellationSchema)
def _cancel(user, call_off, body):
    """The buyer cancels an open call-off; delivered units remain payable."""
    responses.cancel(user, call_off, body["reason"], body.get("detail", ""))


@_action("complete", CompletionSchema)
def _complete(user, call_off, body):
    """The provider completes it with an end-of-service summary and each outcome's result."""
    outcomes = [
        order_delivery.OutcomeDetails(o["outcome"], o["result"], o.get("comment", ""))
        for o in body.get("outcomes", [])
    ]
    order_delivery.complete(user, call_off, body["summary"], outcomes)


@_action("variations", NewVariationSchema)
def _propose(user, call_off, body):
    """Either side proposes more units and/or a later end date."""
    order_variations.propose_variation(
        user,
        call_off,
        extra_units=body.get("extra_units", 0),
        new_end_date=body.get("new_end_date"),
        reason=body["reason"],
    )


def _variation_action(name: str, schema=None):
    def register(handler):
        def post(*args, call_off_id, variation_id):
            call_off = _call_off(call_off_id)
            body = args[0] if args else {}
            commit_write(lambda: handler(g.api_user, call_off, variation_id, body))
            return call_off

        post.__name__ = f"post_variation_{name}"
        post.__doc__ = handler.__doc__
        view = blp.alt_response(409, response=CONFLICT_RESPONSE)(post)
        view = blp.response(200, CallOffSchema)(view)
        if schema is not None:
            view = blp.arguments(schema)(view)
        blp.route(
            f"/orders/<int:call_off_id>/variations/<int:variation_id>/{name}", methods=["POST"]
        )(view)
        return handler

    return register


@_variation_action("agree")
def _agree(user, call_off, variation_id, body):
    """The other side agrees; the route, budget and capacity checks run on the new terms."""
    order_variations.agree_variation(user, call_off, variation_id)


@_variation_action("approve")
def _approve_variation(user, call_off, variation_id, body):
    """An approver of the lead buyer approves a change above the spend limit of the person who
    agreed (or proposed) it."""
    order_variations.approve_variation(user, call_off, variation_id)


@_variation_action("reject", RejectionSchema)
def _reject(user, call_off, variation_id, body):
    """The other side rejects it, with a reason."""
    order_variations.reject_variation(user, call_off, variation_id, body["reason"])


@_variation_action("withdraw")
def _withdraw(user, call_off, variation_id, body):
    """The side that proposed it withdraws it."""
    order_variations.withdraw_variation(user, call_off, variation_id)


@blp.route("/orders/<int:call_off_id>/deliveries", methods=["POST"])
@blp.arguments(NewDeliverySchema)
@blp.response(201, DeliverySchema)
def record_delivery(args, call_off_id):
    """The provider records a session: date, units, attendance, a short progress note."""
    call_off = _call_off(call_off_id)
    return commit_write(
        lambda: order_delivery.record_delivery(
            g.api_user, call_off, order_delivery.DeliveryDetails(**args)
        )
    )
