"""Catalogue endpoints: search and read the services buyers may see; providers write their own.

Reading needs no token and uses the same search as the ``/services`` pages
(``marketplace.catalogue.search``): the same filters, sort orders and visibility rule; contact
details for referrals are not published there. Writing (create, change, publish, pause, resume,
withdraw, price) needs a token of the provider organisation, whose administrators and editors
act on its listings through ``marketplace.catalogue.services``; the answers show the owner the
whole listing, contacts included. Another organisation's listing is not found (404).
"""

from __future__ import annotations

import http
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from typing import TypeVar

import marshmallow as ma
from flask import abort, g, url_for
from flask.views import MethodView

from marketplace.catalogue import queries
from marketplace.catalogue.models import (
    MAX_AGE,
    MAX_UNIT_PRICE_PENCE,
    MAX_UNITS,
    STALE_AFTER_DAYS,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    ListingPrice,
    RiskLevel,
    Sex,
    Unit,
)
from marketplace.catalogue.permissions import can_edit_listing, can_manage_listings
from marketplace.catalogue.schemas import (
    CODE_MAX,
    AreaSchema,
    CodeNameSchema,
    ListingChangesSchema,
    NewListingSchema,
    NewPriceSchema,
    OwnListingSchema,
    PriceVersionSchema,
    WithdrawalSchema,
)
from marketplace.catalogue.search.params import (
    ProviderType,
    Reference,
    SearchParams,
    SortOrder,
    load_reference,
)
from marketplace.catalogue.search.queries import search
from marketplace.catalogue.services import listings as listing_services
from marketplace.catalogue.services import prices as price_services
from marketplace.catalogue.services.details import ListingDetails
from marketplace.catalogue.services.stale import is_stale
from marketplace.core.api import (
    CONFLICT_RESPONSE,
    PaginationSchema,
    api_blueprint,
)
from marketplace.core.clock import london_date
from marketplace.core.db import commit, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import VatTreatment, gross_pence

blp = api_blueprint(
    "catalogue_api",
    __name__,
    "Search the catalogue of services and read a service (no token needed); "
    "a provider's own services: create, change, publish, pause, resume, withdraw, price "
    "(token needed)",
    public="reads",
)

MAX_TEXT_CHARS = 10_000

# ---------------------------------------------------------------------------------------------
# Writes need a token (reads do not): enforced before anything else, and documented as such.

T = TypeVar("T")

NOT_FOUND = http.HTTPStatus.NOT_FOUND.name
FORBIDDEN = http.HTTPStatus.FORBIDDEN.name
UNPROCESSABLE = http.HTTPStatus.UNPROCESSABLE_ENTITY.name


class ServicesQuerySchema(ma.Schema):
    q = ma.fields.String(
        load_default="",
        validate=ma.validate.Length(max=MAX_TEXT_CHARS),
        metadata={
            "description": "Words to find in the title, summary, description, outcomes, "
            "provider's name or the names of the places a service is offered in, in any of "
            "their forms (mentor finds mentoring); every word must match, OR between two "
            "words finds either, and common words (the, and, for …) are left out. Other "
            "operators are plain words."
        },
    )
    lot = ma.fields.String(
        validate=ma.validate.Length(max=CODE_MAX),
        metadata={"description": "Category code (an unknown code matches nothing)"},
    )
    region = ma.fields.String(
        validate=ma.validate.Length(max=CODE_MAX),
        metadata={"description": "Probation region code"},
    )
    pcc_area = ma.fields.String(
        validate=ma.validate.Length(max=CODE_MAX), metadata={"description": "PCC area code"}
    )
    setting = ma.fields.List(
        ma.fields.Enum(DeliverySetting, by_value=True),
        validate=ma.validate.Length(max=len(DeliverySetting)),
        metadata={"description": "Any of these delivery settings"},
    )
    format = ma.fields.List(
        ma.fields.Enum(DeliveryFormat, by_value=True),
        validate=ma.validate.Length(max=len(DeliveryFormat)),
        metadata={"description": "Any of these delivery formats"},
    )
    sex = ma.fields.Enum(
        Sex, by_value=True, metadata={"description": "The person's sex (any: no filter)"}
    )
    age = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=MAX_AGE),
        metadata={"description": "The person's age"},
    )
    risk = ma.fields.Enum(
        RiskLevel, by_value=True, metadata={"description": "Risk of serious harm to accept"}
    )
    complexity = ma.fields.Enum(Complexity, by_value=True)
    provider_type = ma.fields.List(
        ma.fields.Enum(ProviderType, by_value=True),
        validate=ma.validate.Length(max=len(ProviderType)),
        metadata={"description": "Any of these provider types"},
    )
    max_price_pence = ma.fields.Integer(
        validate=ma.validate.Range(min=0, max=MAX_UNIT_PRICE_PENCE),
        metadata={"description": "Highest unit price in force today, ex VAT, in pence"},
    )
    month = ma.fields.String(
        validate=ma.validate.Regexp(r"^(19|20|21)\d\d-(0[1-9]|1[0-2])$"),
        metadata={"description": "YYYY-MM: only services with capacity left that month"},
    )
    min_available = ma.fields.Integer(
        load_default=1,
        validate=ma.validate.Range(min=1, max=MAX_UNITS),
        metadata={"description": "Units needed in `month` (default 1)"},
    )
    sort = ma.fields.Enum(
        SortOrder,
        by_value=True,
        metadata={"description": "Default: relevance with `q`, otherwise price"},
    )
    page = ma.fields.Integer(load_default=1, validate=ma.validate.Range(min=1, max=100_000))
    page_size = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))


class ProviderSchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    name = ma.fields.String(required=True)
    type = ma.fields.Enum(ProviderType, by_value=True, required=True)


class ServiceSummarySchema(ma.Schema):
    id = ma.fields.Integer(required=True)
    reference = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    summary = ma.fields.String(required=True)
    lot = ma.fields.Nested(CodeNameSchema, required=True)
    provider = ma.fields.Nested(ProviderSchema, required=True)
    unit = ma.fields.Enum(Unit, by_value=True, required=True)
    unit_price_pence = ma.fields.Integer(
        required=True, allow_none=True, metadata={"description": "In force today, ex VAT"}
    )
    vat_treatment = ma.fields.Enum(VatTreatment, by_value=True, required=True)
    settings = ma.fields.List(ma.fields.Enum(DeliverySetting, by_value=True), required=True)
    formats = ma.fields.List(ma.fields.Enum(DeliveryFormat, by_value=True), required=True)
    eligibility_sex = ma.fields.Enum(Sex, by_value=True, required=True)
    min_age = ma.fields.Integer(required=True, allow_none=True)
    max_age = ma.fields.Integer(required=True, allow_none=True)
    url = ma.fields.String(required=True, metadata={"description": "The service's page"})


class FuturePriceSchema(ma.Schema):
    unit_price_pence = ma.fields.Integer(required=True)
    effective_from = ma.fields.Date(required=True)


class AvailabilitySchema(ma.Schema):
    month = ma.fields.String(required=True, metadata={"description": "YYYY-MM"})
    available = ma.fields.Integer(required=True, metadata={"description": "Units left"})


class ServiceSchema(ServiceSummarySchema):
    description = ma.fields.String(required=True)
    outcomes = ma.fields.List(ma.fields.String(), required=True)
    social_value = ma.fields.String(required=True)
    areas = ma.fields.List(
        ma.fields.Nested(AreaSchema),
        required=True,
        metadata={"description": "Areas served that an active membership covers"},
    )
    risk_levels = ma.fields.List(ma.fields.Enum(RiskLevel, by_value=True), required=True)
    complexities = ma.fields.List(ma.fields.Enum(Complexity, by_value=True), required=True)
    min_units = ma.fields.Integer(required=True)
    max_units = ma.fields.Integer(required=True)
    monthly_capacity = ma.fields.Integer(required=True)
    lead_time_days = ma.fields.Integer(required=True)
    missed_sessions_chargeable = ma.fields.Boolean(
        required=True,
        metadata={"description": "Whether a session the person does not attend is paid for"},
    )
    unit_price_including_vat_pence = ma.fields.Integer(required=True, allow_none=True)
    future_prices = ma.fields.List(ma.fields.Nested(FuturePriceSchema), required=True)
    availability = ma.fields.List(
        ma.fields.Nested(AvailabilitySchema),
        required=True,
        metadata={"description": "This month and the next two"},
    )
    confirmed_at = ma.fields.AwareDateTime(
        required=True, allow_none=True, metadata={"description": "Last confirmed accurate"}
    )
    stale = ma.fields.Boolean(
        required=True,
        metadata={"description": f"Not confirmed for more than {STALE_AFTER_DAYS} days"},
    )


class ServiceSearchPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(ServiceSummarySchema), required=True)
    pagination = ma.fields.Nested(PaginationSchema, required=True)
    facets = ma.fields.Dict(
        keys=ma.fields.String(),
        values=ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer()),
        required=True,
        metadata={"description": "Matches per filter value: {filter: {value: count}}"},
    )


def _summary(listing: Listing, price_pence: int | None) -> dict:
    return {
        "id": listing.id,
        "reference": listing.reference,
        "title": listing.title,
        "summary": listing.summary,
        "lot": listing.lot.category,
        "provider": {
            "id": listing.organisation.id,
            "name": listing.organisation.name,
            "type": ProviderType(listing.organisation.type.value.removeprefix("provider_")),
        },
        "unit": listing.unit,
        "unit_price_pence": price_pence,
        "vat_treatment": listing.vat_treatment,
        "settings": listing.settings,
        "formats": listing.formats,
        "eligibility_sex": listing.eligibility_sex,
        "min_age": listing.min_age,
        "max_age": listing.max_age,
        "url": url_for("catalogue_search.listing", listing_id=listing.id, _external=True),
    }


def _params(args: dict) -> tuple[SearchParams, Reference]:
    """Search parameters from checked arguments. An unknown code matches nothing."""
    reference = load_reference()
    month = None
    if args.get("month"):
        year, number = (int(part) for part in args["month"].split("-"))
        month = date(year, number, 1)
    return SearchParams(
        text=args["q"],
        lot=args.get("lot"),
        region=args.get("region"),
        pcc_area=args.get("pcc_area"),
        settings=tuple(dict.fromkeys(args.get("setting", ()))),
        formats=tuple(dict.fromkeys(args.get("format", ()))),
        sex=args.get("sex"),
        age=args.get("age"),
        risk=args.get("risk"),
        complexity=args.get("complexity"),
        provider_types=tuple(dict.fromkeys(args.get("provider_type", ()))),
        max_price_pence=args.get("max_price_pence"),
        month=month,
        min_available=args["min_available"],
        sort=args.get("sort"),
        page=args["page"],
        per_page=args["page_size"],
    ), reference


@blp.route("/services")
class ServiceCollection(MethodView):
    @blp.arguments(ServicesQuerySchema, location="query", unknown=ma.RAISE)
    @blp.response(200, ServiceSearchPageSchema)
    def get(self, args):
        """Search the services buyers can see, with filters, sorting and counts per filter value.

        A page past the end answers with the last page.
        """
        params, reference = _params(args)
        result = search(params, reference=reference)
        page = result.page
        return {
            "items": [_summary(hit.listing, hit.unit_price_pence) for hit in page.items],
            "pagination": {
                "page": page.page,
                "page_size": page.per_page,
                "total": page.total,
                "pages": page.pages,
            },
            "facets": result.facets,
        }

    @blp.arguments(NewListingSchema)
    @blp.response(
        201,
        OwnListingSchema,
        headers={
            "Location": {
                "description": "The new service's URL in this API",
                "schema": {"type": "string"},
            }
        },
    )
    @blp.alt_response(403, response=FORBIDDEN)
    def post(self, args):
        """Add a draft service to the rate card of the token's provider organisation.

        For its administrators and editors. The first price is in force from today; the areas
        must be covered by active memberships of the lot. Publish it to show it to buyers.
        """
        user, organisation = g.api_user, g.organisation
        if not can_manage_listings(user, organisation):
            abort(
                403,
                description="Only a provider's administrators and editors can add services, "
                "with a token of that provider.",
            )
        wanted = args.pop("organisation_id", None)
        if wanted is not None and wanted != organisation.id:
            raise BusinessRuleViolation(
                {
                    "organisation_id": [
                        f"This token acts for {organisation.name} (id {organisation.id}) only. "
                        "Use a token of the organisation the service is for."
                    ]
                }
            )
        price = args.pop("unit_price_pence")
        listing = _write(
            lambda: listing_services.create_listing(
                user, organisation, ListingDetails(**args), unit_price_pence=price
            )
        )
        location = url_for("catalogue_api.ServiceItem", service_id=listing.id, _external=True)
        return _own_record(listing), 201, {"Location": location}


@blp.route("/services/<int:service_id>")
class ServiceItem(MethodView):
    @blp.response(200, ServiceSchema)
    def get(self, service_id):
        """Describe a service buyers can see: price in force, VAT, availability, freshness."""
        listing = queries.visible_listing(service_id)
        if listing is None:
            abort(404, description="There is no published service with that id.")
        today = london_date()
        price = listing.price_on(today)
        months = queries.next_months(today, 3)
        available = queries.availability([listing], months)[listing.id]
        cover = queries.covered_areas([listing.id])[listing.id]
        areas = [
            {
                "region_code": area.region.code if area.region else None,
                "pcc_area_code": area.pcc_area.code if area.pcc_area else None,
                "name": area.name,
            }
            for area in listing.areas
            if (area.region_id, None) in cover
            or (area.pcc_area_id is not None and any(p == area.pcc_area_id for _, p in cover))
        ]
        confirmed = listing.confirmed_at
        return {
            **_summary(listing, price.unit_price_pence if price else None),
            "description": listing.description,
            "outcomes": listing.outcome_list,
            "social_value": listing.social_value,
            "areas": areas,
            "risk_levels": listing.risk_levels,
            "complexities": listing.complexities,
            "min_units": listing.min_units,
            "max_units": listing.max_units,
            "monthly_capacity": listing.monthly_capacity,
            "lead_time_days": listing.lead_time_days,
            "missed_sessions_chargeable": listing.missed_sessions_chargeable,
            "unit_price_including_vat_pence": (
                gross_pence(price.unit_price_pence, listing.vat_treatment) if price else None
            ),
            "future_prices": [p for p in listing.prices if p.effective_from > today],
            "availability": [
                {"month": f"{m.month:%Y-%m}", "available": m.available} for m in available
            ],
            "confirmed_at": confirmed,
            "stale": is_stale(listing),
        }

    @blp.arguments(ListingChangesSchema)
    @blp.response(200, OwnListingSchema)
    @blp.alt_response(404, response=NOT_FOUND)
    def patch(self, args, service_id):
        """Change some of the details of one of your services (not its price: see prices).

        Fields left out keep their values; a list given replaces the list. Saving confirms the
        service accurate. A withdrawn service cannot be changed.
        """
        listing = _own_listing_or_404(service_id)
        details = replace(ListingDetails.of(listing), **args)
        _write(lambda: listing_services.update_listing(g.api_user, listing, details))
        return _own_record(listing)


# ---------------------------------------------------------------------------------------------
# A provider's own services: states and prices


@blp.route("/services/<int:service_id>/publish")
class ServicePublication(MethodView):
    @blp.response(200, OwnListingSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    @blp.alt_response(404, response=NOT_FOUND)
    @blp.alt_response(422, response=UNPROCESSABLE)
    def post(self, service_id):
        """Publish a draft service, while active memberships cover all its areas."""
        listing = _own_listing_or_404(service_id)
        _write(lambda: listing_services.publish_listing(g.api_user, listing))
        return _own_record(listing)


@blp.route("/services/<int:service_id>/pause")
class ServicePause(MethodView):
    @blp.response(200, OwnListingSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    @blp.alt_response(404, response=NOT_FOUND)
    @blp.alt_response(422, response=UNPROCESSABLE)
    def post(self, service_id):
        """Pause a published service: buyers cannot find it until it is resumed."""
        listing = _own_listing_or_404(service_id)
        _write(lambda: listing_services.pause_listing(g.api_user, listing))
        return _own_record(listing)


@blp.route("/services/<int:service_id>/resume")
class ServiceResumption(MethodView):
    @blp.response(200, OwnListingSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    @blp.alt_response(404, response=NOT_FOUND)
    @blp.alt_response(422, response=UNPROCESSABLE)
    def post(self, service_id):
        """Publish a paused service again, while active memberships cover all its areas."""
        listing = _own_listing_or_404(service_id)
        _write(lambda: listing_services.publish_listing(g.api_user, listing, resume=True))
        return _own_record(listing)


@blp.route("/services/<int:service_id>/withdraw")
class ServiceWithdrawal(MethodView):
    @blp.arguments(WithdrawalSchema, required=False)
    @blp.response(200, OwnListingSchema)
    @blp.alt_response(409, response=CONFLICT_RESPONSE)
    @blp.alt_response(404, response=NOT_FOUND)
    def post(self, args, service_id):
        """Take one of your services off the rate card for good (call-offs already placed stay)."""
        listing = _own_listing_or_404(service_id)
        _write(
            lambda: listing_services.withdraw_listing(g.api_user, listing, args.get("reason", ""))
        )
        return _own_record(listing)


@blp.route("/services/<int:service_id>/prices")
class ServicePriceCollection(MethodView):
    @blp.arguments(NewPriceSchema)
    @blp.response(201, PriceVersionSchema)
    @blp.alt_response(404, response=NOT_FOUND)
    def post(self, args, service_id):
        """Set a new unit price from a date, today or later; the history is kept.

        A second price for the same date replaces the first.
        """
        listing = _own_listing_or_404(service_id)
        version = _write(
            lambda: price_services.set_price(
                g.api_user,
                listing,
                args["unit_price_pence"],
                args["effective_from"],
                args["reason"],
            )
        )
        return _price_record(version)


def _own_listing_or_404(service_id: int) -> Listing:
    """A listing of the token's organisation that its user may change; any other is not found."""
    listing = queries.get_listing(service_id)
    organisation = g.organisation
    if (
        listing is None
        or organisation is None
        or listing.organisation_id != organisation.id
        or not can_edit_listing(g.api_user, listing)
    ):
        abort(404, description="There is no service with that id that you can change.")
    return listing


def _write(action: Callable[[], T]) -> T:
    """Run one service call and commit; a refusal rolls back and answers 422 (errors.py)."""
    try:
        result = action()
    except BusinessRuleViolation:
        rollback()
        raise
    commit()
    return result


def _price_record(price: ListingPrice) -> dict:
    return {
        "id": price.id,
        "unit_price_pence": price.unit_price_pence,
        "effective_from": price.effective_from,
        "effective_to": price.effective_to,
        "reason": price.reason,
    }


def _own_record(listing: Listing) -> dict:
    """The whole listing, as its provider sees it."""
    details = ListingDetails.of(listing)
    price = listing.price_on(london_date())
    return {
        **{
            name: getattr(details, name)
            for name in ListingChangesSchema().fields
            if name not in ("region_codes", "pcc_area_codes")
        },
        "id": listing.id,
        "reference": listing.reference,
        "status": listing.status,
        "organisation_id": listing.organisation_id,
        "lot": listing.lot.category,
        "region_codes": sorted(details.region_codes),
        "pcc_area_codes": sorted(details.pcc_area_codes),
        "areas": [
            {
                "region_code": area.region.code if area.region else None,
                "pcc_area_code": area.pcc_area.code if area.pcc_area else None,
                "name": area.name,
            }
            for area in listing.areas
        ],
        "unit_price_pence": price.unit_price_pence if price else None,
        "prices": [_price_record(p) for p in listing.prices],
        "published_at": listing.published_at,
        "paused_at": listing.paused_at,
        "withdrawn_at": listing.withdrawn_at,
        "confirmed_at": listing.confirmed_at,
    }
