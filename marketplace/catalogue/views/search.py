"""Finding services: search with filters, a listing's page and a comparison (no sign-in needed).

Everyone may search and read published listings; only signed-in buyers and approvers see the
contact for referrals. The filter state lives in the query string, so a search can be shared.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from flask import Blueprint, abort, render_template, request, session, url_for
from flask_login import current_user
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from marketplace.accounts.models import Role
from marketplace.accounts.queries import page_number
from marketplace.accounts.session import current_organisation
from marketplace.accreditation import queries as accreditation_queries
from marketplace.accreditation.models import MembershipStatus
from marketplace.catalogue import queries
from marketplace.catalogue.models import (
    MAX_AGE,
    MAX_UNITS,
    STALE_AFTER_DAYS,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    RiskLevel,
    Sex,
)
from marketplace.catalogue.search import queries as search_queries
from marketplace.catalogue.search.params import ProviderType, SearchParams, SortOrder
from marketplace.catalogue.search.queries import MAX_COMPARE
from marketplace.catalogue.search.schema import SEARCH_TOPIC
from marketplace.catalogue.search.terms import TextQuery
from marketplace.catalogue.services.areas import covered_area_ids
from marketplace.catalogue.services.stale import is_stale
from marketplace.core.cache import Topic, generation, page_cache
from marketplace.core.clock import london_date
from marketplace.core.db import db, parse_id
from marketplace.core.filters import pounds
from marketplace.core.money import VAT_RATES, gross_pence

bp = Blueprint("catalogue_search", __name__, template_folder="../templates")

MONTHS_OFFERED = 6
MAX_TEXT_CHARS = 10_000  # what the page keeps of the search box (the search cuts it further)
MAX_ARGS = 60  # query string arguments carried from the search to the comparison and back
_POUNDS = re.compile(r"^£?\s*(\d{1,7})(?:\.(\d{1,2}))?$")
CONTACT_ROLES = {Role.BUYER, Role.APPROVER}

SETTING_LABELS = {"community": "In the community", "custody": "In custody", "remote": "Remote"}
FORMAT_LABELS = {"one_to_one": "One-to-one", "group": "Group"}
RISK_LABELS = {"low": "Low", "medium": "Medium", "high": "High", "very_high": "Very high"}
COMPLEXITY_LABELS = {"low": "Low", "medium": "Medium", "high": "High"}
SEX_LABELS = {"female": "Women", "male": "Men"}
VAT_LABELS = {
    "standard": "Standard rate VAT (20%)",
    "reduced": "Reduced rate VAT (5%)",
    "zero": "Zero-rated for VAT",
    "exempt": "Exempt from VAT",
    "outside_scope": "Outside the scope of VAT",
}


def month_label(month: date) -> str:
    return f"{month:%B %Y}"


def parse_search_args(args: MultiDict) -> tuple[SearchParams, dict[str, str]]:
    """Search parameters from a query string, and a message for each value that makes no sense.

    A value in error is left out of the search, which still runs on the rest.
    """
    errors: dict[str, str] = {}

    def text(name: str, limit: int = 60) -> str | None:
        return (args.get(name) or "").strip()[:limit] or None

    def one(name: str, enum_class, message: str):
        value = text(name)
        if value is None:
            return None
        try:
            return enum_class(value)
        except ValueError:
            errors[name] = message
            return None

    def many(name: str, enum_class, message: str) -> tuple:
        chosen = []
        for value in args.getlist(name)[:20]:
            try:
                member = enum_class(value.strip())
            except ValueError:
                errors[name] = message
                continue
            if member not in chosen:
                chosen.append(member)
        return tuple(chosen)

    def whole_number(name: str, low: int, high: int, message: str) -> int | None:
        value = text(name, 20)
        if value is None:
            return None
        if not value.isdigit() or not low <= int(value) <= high:
            errors[name] = message
            return None
        return int(value)

    max_price_pence = None
    raw_price = text("max_price", 20)
    if raw_price is not None:
        match = _POUNDS.match(raw_price.replace(",", ""))
        if match:
            max_price_pence = int(match.group(1)) * 100 + int((match.group(2) or "0").ljust(2, "0"))
        else:
            errors["max_price"] = "Enter a maximum price in pounds, like 50 or 49.99"

    month = None
    raw_month = text("month", 20)
    if raw_month is not None:
        try:
            year, number = (int(part) for part in raw_month.split("-"))
            month = date(year, number, 1)
        except ValueError:
            errors["month"] = "Choose a month from the list"
    units = whole_number("units", 1, MAX_UNITS, "Enter the units needed as a whole number, like 5")

    sort = text("sort")
    params = SearchParams(
        text=(args.get("q") or "")[:MAX_TEXT_CHARS],
        lot=text("lot"),
        region=text("region"),
        pcc_area=text("pcc_area"),
        settings=many("setting", DeliverySetting, "Choose delivery settings from the list"),
        formats=many("format", DeliveryFormat, "Choose delivery formats from the list"),
        sex=one("sex", Sex, "Choose women or men"),
        age=whole_number("age", 0, MAX_AGE, f"Enter an age between 0 and {MAX_AGE}"),
        risk=one("risk", RiskLevel, "Choose a risk level from the list"),
        complexity=one("complexity", Complexity, "Choose a complexity from the list"),
        provider_types=many("provider_type", ProviderType, "Choose provider types from the list"),
        max_price_pence=max_price_pence,
        month=month,
        min_available=units or 1,
        sort=SortOrder(sort) if sort in SortOrder._value2member_map_ else None,
        page=page_number(args.get("page")),
    )
    return params, errors


@dataclass
class SelectedFilter:
    heading: str
    label: str
    remove_url: str


def _url_without(args: MultiDict, name: str, value: str | None = None) -> str:
    kept = MultiDict(
        (key, item)
        for key, item in args.items(multi=True)
        if key != "page" and not (key == name and (value is None or item == value))
    )
    return url_for("catalogue_search.search", **kept.to_dict(flat=False))


def _selected_filters(args: MultiDict, result) -> list[SelectedFilter]:
    reference = result.reference
    params = result.params
    selected: list[SelectedFilter] = []

    def add(heading: str, name: str, label: str, value: str | None = None) -> None:
        selected.append(SelectedFilter(heading, label, _url_without(args, name, value)))

    if params.lot:
        names = {code.upper(): name for _, code, name in reference.categories}
        add("Lot", "lot", names.get(params.lot.upper(), params.lot))
    if params.region:
        names = {code.upper(): name for _, code, name in reference.regions}
        add("Region", "region", names.get(params.region.upper(), params.region))
    if params.pcc_area:
        pcc = reference.pcc_area(params.pcc_area)
        add("Police and Crime Commissioner area", "pcc_area", pcc[2] if pcc else params.pcc_area)
    for value in params.settings:
        add("Delivery setting", "setting", SETTING_LABELS[value.value], value.value)
    for value in params.formats:
        add("Delivery format", "format", FORMAT_LABELS[value.value], value.value)
    if params.sex and params.sex != Sex.ANY:
        add("For", "sex", SEX_LABELS[params.sex.value])
    if params.age is not None:
        add("Age", "age", f"Aged {params.age}")
    if params.risk:
        add("Risk of serious harm", "risk", RISK_LABELS[params.risk.value])
    if params.complexity:
        add("Complexity", "complexity", COMPLEXITY_LABELS[params.complexity.value])
    for value in params.provider_types:
        add("Provider type", "provider_type", value.label, value.value)
    if params.max_price_pence is not None:
        add("Maximum unit price", "max_price", f"Up to {pounds(params.max_price_pence)}")
    if params.month is not None:
        add("Available", "month", f"{params.min_available}+ in {month_label(params.month)}")
    return selected


def _selection(args: MultiDict) -> list[int]:
    """The services chosen to compare (``id``), in order, each once; odd values left out."""
    chosen: list[int] = []
    for value in args.getlist("id")[:MAX_ARGS]:
        pk = parse_id(value)
        if pk is not None and pk not in chosen:
            chosen.append(pk)
    return chosen


def _search_args(args: MultiDict) -> MultiDict:
    """The search a page came from (its query and filters), without the compare selection."""
    return MultiDict(
        (key, value[:MAX_TEXT_CHARS])
        for key, value in list(args.items(multi=True))[:MAX_ARGS]
        if key != "id"
    )


@bp.get("/services")
def search():
    return _search_page(request.args)


def _search_page(args: MultiDict, compare_error: str | None = None, status: int = 200):
    """The search page for these arguments; with a compare error, not kept (it is one person's
    mistake), shown in the error summary with the selection as it was."""
    params, errors = parse_search_args(args)

    def url_for_page(number: int) -> str:
        kept = MultiDict((k, v) for k, v in args.items(multi=True) if k != "page")
        return url_for("catalogue_search.search", page=number, **kept.to_dict(flat=False))

    def build() -> Markup:
        return _render_search(params, errors, args, url_for_page, compare_error)

    if compare_error:
        content = build()
        return render_template(
            "catalogue/search/search.html", content=content, page_has_errors=True
        ), status

    # The results change only when listings, prices, capacity, memberships or providers do (each
    # such change moves the search topic's generation on), the day does (prices take effect) or
    # an arrangement or its lots do (the lots offered as filters: the register's topic).
    key = ("services", london_date(), generation(Topic.REGISTER), tuple(args.items(multi=True)))

    def whole_page() -> str:
        content = page_cache().fetch(SEARCH_TOPIC, key, build)
        return render_template(
            "catalogue/search/search.html", content=content, page_has_errors=bool(errors)
        )

    # Signed out, the page around the results is the same for everyone (no name, organisation or
    # CSRF token in the header), so the whole page is kept; not while a message waits to be shown.
    if not current_user.is_authenticated and "_flashes" not in session:
        return page_cache().fetch(SEARCH_TOPIC, ("services-signed-out", *key[1:]), whole_page)
    return whole_page()


def searched_for(query: TextQuery) -> Markup | None:
    """What a search looked for, in words: "Services that mention housing and either women or
    men"; None without words."""
    if not query.groups:
        return None
    parts = []
    for group in query.groups:
        words = [Markup("<strong>{}</strong>").format(word) for _, word in group]
        parts.append(words[0] if len(words) == 1 else "either " + Markup(" or ").join(words))
    listed = parts[0] if len(parts) == 1 else Markup(", ").join(parts[:-1]) + " and " + parts[-1]
    return Markup("Services that mention {}").format(listed)


def _lot_choices(result) -> list[tuple[str, str]]:
    """The lots a buyer may filter by: those of live arrangements, any other that has matches,
    and the one chosen."""
    chosen = (result.params.lot or "").upper()
    counts = result.facets["lot"]
    return [
        (code, name)
        for pk, code, name in result.reference.categories
        if pk in result.reference.lot_category_ids or counts.get(code) or code.upper() == chosen
    ]


def _render_search(
    params: SearchParams,
    errors: dict,
    args: MultiDict,
    url_for_page,
    compare_error: str | None = None,
) -> Markup:
    result = search_queries.search(params, url_for_page=url_for_page)
    months = queries.next_months(london_date(), MONTHS_OFFERED)
    selection = _selection(args)
    on_page = {hit.listing.id for hit in result.page.items}
    error_items = [{"text": message, "href": f"#{name}"} for name, message in errors.items()]
    if compare_error:
        first = next(
            (pk for pk in selection if pk in on_page),
            result.page.items[0].listing.id if result.page.items else None,
        )
        error_items.insert(
            0, {"text": compare_error, "href": f"#compare-{first}" if first else "#q"}
        )
    content = render_template(
        "catalogue/search/_search_content.html",
        result=result,
        params=params,
        errors=errors,
        selected_filters=_selected_filters(args, result),
        clear_url=url_for("catalogue_search.search", **({"q": params.text} if params.text else {})),
        months=[(f"{m:%Y-%m}", month_label(m)) for m in months],
        sort_orders=list(SortOrder),
        labels={
            "setting": SETTING_LABELS,
            "format": FORMAT_LABELS,
            "risk": RISK_LABELS,
            "complexity": COMPLEXITY_LABELS,
            "sex": SEX_LABELS,
            "provider_type": {t.value: t.label for t in ProviderType},
        },
        max_compare=MAX_COMPARE,
        lot_choices=_lot_choices(result),
        region_choices=[(code, name) for _, code, name in result.reference.regions],
        pcc_choices=[(code, name) for _, code, name, _ in result.reference.pcc_areas],
        error_items=error_items,
        request_args=args,
        searched_for=searched_for(params.query),
        ignored_words=params.query.ignored,
        past_the_end=result.total > 0 and params.page > result.page.pages,
        last_page_url=url_for_page(result.page.pages),
        selection=selection,
        selection_elsewhere=[pk for pk in selection if pk not in on_page],
        search_args=_search_args(args),
        compare_error=compare_error,
    )
    return Markup(content)  # noqa: S704 - rendered by Jinja with autoescape


def can_see_contact() -> bool:
    """Referral contacts are for signed-in buyers and approvers only."""
    return bool(
        current_user.is_authenticated
        and current_user.roles_in(current_organisation()) & CONTACT_ROLES
    )


@dataclass
class ListingView:
    """What a listing's page and the comparison show about one listing."""

    listing: Listing
    price: object  # ListingPrice in force today, or None
    future_prices: list
    gross_pence: int | None
    vat_rate_percent: str
    vat_label: str
    availability: list[tuple[str, int]]
    stale: bool
    areas: list[str]

    def gross_of(self, price) -> int:
        """A price version (one to come, say) with the listing's VAT: buyers budget with VAT."""
        return gross_pence(price.unit_price_pence, self.listing.vat_treatment)


def listing_views(
    listings: list[Listing], today: date | None = None, *, as_published: bool = False
) -> list[ListingView]:
    """What buyers read about these listings. ``as_published``: the areas buyers will see once
    a listing is published (those its provider's active memberships of the lot cover), for the
    provider's check page; a draft has no index rows to read them from."""
    today = today or london_date()
    months = queries.next_months(today, 3)
    available = queries.availability(listings, months)
    covered = {} if as_published else queries.covered_areas([li.id for li in listings])
    views = []
    for listing in listings:
        price = listing.price_on(today)
        rate = VAT_RATES[listing.vat_treatment]
        if as_published:
            # The rule the index applies (a region membership covers its PCC areas).
            regions, pcc_areas = covered_area_ids(listing.organisation_id, listing.lot_id)
            areas = [
                area.name
                for area in listing.areas
                if (area.region_id is not None and area.region_id in regions)
                or (area.pcc_area_id is not None and area.pcc_area_id in pcc_areas)
            ]
        else:
            # A PCC area is covered in its own right or as part of a region covered as a whole.
            cover = covered[listing.id]
            areas = [
                area.name
                for area in listing.areas
                if (area.region_id, None) in cover
                or (
                    area.pcc_area_id is not None
                    and (
                        (area.pcc_area.region_id, area.pcc_area_id) in cover
                        or (area.pcc_area.region_id, None) in cover
                    )
                )
            ]
        views.append(
            ListingView(
                listing=listing,
                price=price,
                future_prices=[p for p in listing.prices if p.effective_from > today],
                gross_pence=(
                    gross_pence(price.unit_price_pence, listing.vat_treatment) if price else None
                ),
                vat_rate_percent=f"{float(rate * 100):g}%",
                vat_label=VAT_LABELS[listing.vat_treatment.value],
                availability=[(month_label(m.month), m.available) for m in available[listing.id]],
                stale=is_stale(listing),
                areas=areas,
            )
        )
    return views


@bp.get("/services/<int:listing_id>")
def listing(listing_id: int):
    found = queries.visible_listing(listing_id)
    if found is None:
        abort(404)
    [view] = listing_views([found])
    memberships = _active_memberships(found)
    return render_template(
        "catalogue/search/listing.html",
        view=view,
        listing=found,
        memberships=memberships,
        show_contact=can_see_contact(),
        stale_after_days=STALE_AFTER_DAYS,
    )


def _active_memberships(listing: Listing) -> list:
    query = accreditation_queries.organisation_memberships_query(listing.organisation)
    return [m for m in db.session.scalars(query).unique() if m.status == MembershipStatus.ACTIVE]


MIN_COMPARE = 2


def _count_error(chosen: int) -> str | None:
    if chosen == 0:
        return f"Select {MIN_COMPARE} to {MAX_COMPARE} services to compare"
    if chosen < MIN_COMPARE:
        return f"Select at least {MIN_COMPARE} services to compare: you selected {chosen}"
    if chosen > MAX_COMPARE:
        return f"Select no more than {MAX_COMPARE} services to compare: you selected {chosen}"
    return None


@bp.get("/services/compare")
def compare():
    """2 to 4 services side by side, with a way back to the search they were chosen from.

    A selection that cannot be compared is answered on the search page, where it was made:
    the same results, the selection as it was and the error linked to it.
    """
    args = request.args
    search_args = _search_args(args)
    ids = _selection(args)

    def back_to_search(message: str, status: int, kept: list[int]):
        selection = [("id", str(pk)) for pk in kept]
        return _search_page(
            MultiDict([*search_args.items(multi=True), *selection]), message, status
        )

    odd = next((value for value in args.getlist("id") if parse_id(value) is None), None)
    if odd is not None:
        return back_to_search(
            f"‘{odd[:40]}’ is not a service number: choose services from the results", 400, ids
        )
    message = _count_error(len(ids))
    if message:
        return back_to_search(message, 400, ids)
    found = queries.visible_listings(ids)
    missing = [pk for pk in ids if pk not in found]
    if missing:
        names = " and ".join(str(pk) for pk in missing)
        service = "Service" if len(missing) == 1 else "Services"
        return back_to_search(
            f"{service} {names} cannot be found: it may have been withdrawn"
            if len(missing) == 1
            else f"{service} {names} cannot be found: they may have been withdrawn",
            404,
            [pk for pk in ids if pk in found],
        )
    views = listing_views([found[pk] for pk in ids])
    return render_template(
        "catalogue/search/compare.html",
        views=views,
        show_contact=can_see_contact(),
        back_url=url_for(
            "catalogue_search.search", **search_args.to_dict(flat=False), id=[str(pk) for pk in ids]
        ),
    )
