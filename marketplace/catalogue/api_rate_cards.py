"""Rate card API: a provider's published listings with the prices in force, today or on a past date.

Public (no token), like the register: a rate card shows no referral contacts. JSON by default;
CSV when the client sends ``Accept: text/csv``.
"""

from __future__ import annotations

import marshmallow as ma
from flask import Response, abort, request
from flask.views import MethodView

from marketplace.catalogue import rate_cards
from marketplace.core.api import api_blueprint

blp = api_blueprint(
    "catalogue_rate_cards_api",
    __name__,
    "Providers' rate cards: published services and prices, today or on a past date (no token)",
    public=True,
)


class RateCardProviderSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)


class RateCardLineSchema(ma.Schema):
    reference = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    lot = ma.fields.String(required=True)
    lot_code = ma.fields.String(required=True)
    summary = ma.fields.String(required=True)
    unit = ma.fields.String(required=True)
    unit_price_pence = ma.fields.Integer(required=True, metadata={"description": "Ex VAT"})
    unit_price = ma.fields.String(required=True, metadata={"description": "Pounds, like 45.00"})
    vat_treatment = ma.fields.String(required=True)
    price_effective_from = ma.fields.Date(required=True)
    next_unit_price_pence = ma.fields.Integer(allow_none=True, required=True)
    next_price_effective_from = ma.fields.Date(allow_none=True, required=True)
    regions = ma.fields.List(ma.fields.String(), required=True)
    pcc_areas = ma.fields.List(ma.fields.String(), required=True)
    settings = ma.fields.List(ma.fields.String(), required=True)
    formats = ma.fields.List(ma.fields.String(), required=True)
    eligibility_sex = ma.fields.String(required=True)
    min_age = ma.fields.Integer(allow_none=True, required=True)
    max_age = ma.fields.Integer(allow_none=True, required=True)
    risk_levels = ma.fields.List(ma.fields.String(), required=True)
    complexities = ma.fields.List(ma.fields.String(), required=True)
    lead_time_days = ma.fields.Integer(required=True)
    min_units = ma.fields.Integer(required=True)
    max_units = ma.fields.Integer(required=True)
    monthly_capacity = ma.fields.Integer(required=True)
    last_confirmed_on = ma.fields.Date(allow_none=True, required=True)
    stale = ma.fields.Boolean(
        required=True, metadata={"description": "Not confirmed accurate for over 180 days"}
    )


class RateCardSchema(ma.Schema):
    provider = ma.fields.Nested(RateCardProviderSchema, required=True)
    on = ma.fields.Date(required=True, metadata={"description": "The day the rate card is for"})
    historical = ma.fields.Boolean(required=True)
    listings = ma.fields.List(ma.fields.Nested(RateCardLineSchema), required=True)


ON_PARAMETER = {
    "name": "on",
    "in": "query",
    "required": False,
    "description": "A past date (YYYY-MM-DD): the rate card as it stood at the end of that day. "
    "Today's when absent.",
    "schema": {"type": "string", "format": "date"},
}


@blp.route("/providers/<int:provider_id>/rate-card")
class RateCardItem(MethodView):
    # CSV is offered by content negotiation (Accept: text/csv) and described in words: the spec
    # documents every successful response as JSON only.
    @blp.doc(parameters=[ON_PARAMETER])
    @blp.response(200, RateCardSchema)
    @blp.alt_response(400, response="BAD_REQUEST")
    @blp.alt_response(404, response="NOT_FOUND")
    def get(self, provider_id):
        """A provider's rate card: published listings with the price in force.

        JSON by default; send `Accept: text/csv` for the same columns as CSV (cells that a
        spreadsheet would run as formulas start with an apostrophe). With `on`, the rate card as
        it stood at the end of that past day: the listings published then and their prices then.
        """
        organisation = rate_cards.get_provider(provider_id)
        if organisation is None:
            abort(404, description="There is no provider with that id.")
        try:
            on = rate_cards.parse_on(request.args.get("on"))
        except rate_cards.BadRateCardDate as error:
            abort(400, description=str(error))
        card = rate_cards.rate_card(organisation, on)
        best = request.accept_mimetypes.best_match(["application/json", "text/csv"])
        if (
            best == "text/csv"
            and request.accept_mimetypes["text/csv"] > request.accept_mimetypes["application/json"]
        ):
            return Response(
                rate_cards.to_csv(card),
                mimetype="text/csv",
                headers={
                    "Content-Disposition": f'attachment; filename="{rate_cards.file_stem(card)}.csv"'
                },
            )
        return rate_cards.rate_card_record(card)
