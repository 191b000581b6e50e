"""The provider's listing pages: "Your listings", create and edit, check (preview), publish,
pause, resume, withdraw, confirm accurate, copy, change price, change history and bulk uplift.

Provider administrators and editors use them (anyone else: 403); another organisation's listing
answers 404. The services enforce every rule and write the audit; each view commits once.
"""

from __future__ import annotations

from datetime import date, timedelta

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy.orm import selectinload

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Organisation, Role
from marketplace.accounts.queries import page_number, paginate
from marketplace.accounts.session import current_organisation
from marketplace.accounts.signals import organisation_settings_warnings
from marketplace.accreditation import queries as accreditation_queries
from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
from marketplace.catalogue import queries
from marketplace.catalogue.forms import (
    COMPLEXITY_LABELS,
    FORMAT_LABELS,
    RISK_LABELS,
    SERVICE_FIELD_NAMES,
    SETTING_LABELS,
    UNIT_LABELS,
    VAT_LABELS,
    ActionForm,
    ListingFilterForm,
    ListingForm,
    PriceForm,
    UpliftForm,
    WithdrawForm,
)
from marketplace.catalogue.models import (
    STALE_AFTER_DAYS,
    Listing,
    ListingPrice,
    ListingStatus,
    Sex,
)
from marketplace.catalogue.permissions import can_edit_listing, can_view_listing_history
from marketplace.catalogue.services import listings as listing_services
from marketplace.catalogue.services import prices as price_services
from marketplace.catalogue.services.areas import uncovered_areas
from marketplace.catalogue.services.details import ListingDetails
from marketplace.catalogue.services.stale import is_stale
from marketplace.catalogue.services.vat import listings_needing_vat_registration
from marketplace.catalogue.views import bp
from marketplace.catalogue.views.search import listing_views
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db, rollback
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.filters import govuk_date, pounds
from marketplace.core.forms import basis_points_from_percent, parse_day
from marketplace.core.money import gross_pence, parse_pounds
from marketplace.core.views_helpers import apply_errors
from marketplace.reference.models import PccArea, ProbationRegion

LISTINGS_PER_PAGE = 25
CHANGES_PER_PAGE = 25
AVAILABILITY_MONTHS = 3
EDITORS = (Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)

ACTION_LABELS = {
    "listing.created": "Created",
    "listing.updated": "Details changed",
    "listing.copied": "Created as a copy",
    "listing.published": "Published",
    "listing.resumed": "Resumed",
    "listing.paused": "Paused",
    "listing.withdrawn": "Withdrawn",
    "listing.confirmed": "Confirmed accurate",
    "listing.stale_notified": "Reminder sent: not confirmed for 180 days",
    "listing.price_set": "Price changed",
}
FIELD_LABELS = {
    "lot_id": "lot",
    "eligibility_sex": "who it is for",
    "min_age": "minimum age",
    "max_age": "maximum age",
    "lead_time_days": "referral lead time",
    "vat_treatment": "VAT treatment",
    "min_units": "minimum units",
    "max_units": "maximum units",
    "monthly_capacity": "monthly capacity",
    "missed_sessions_chargeable": "missed sessions chargeable",
    "cost_staff_pence": "staff cost",
    "cost_overheads_pence": "overheads",
    "cost_other_pence": "other costs",
    "social_value": "social value statement",
    "contact_name": "contact name",
    "contact_email": "contact email",
    "contact_phone": "contact phone",
    "areas": "areas",
}


# ---------------------------------------------------------------------------------------------
# Loading


def _organisation() -> Organisation:
    organisation = current_organisation()
    if organisation is None or not organisation.is_provider:
        abort(403)
    return organisation


def _listing_or_404(listing_id: int) -> Listing:
    """The current organisation's listing; another organisation's is not found (404)."""
    organisation = _organisation()
    listing = queries.get_listing(listing_id)
    if (
        listing is None
        or listing.organisation_id != organisation.id
        or not can_edit_listing(current_user, listing)
    ):
        abort(404)
    return listing


def _active_memberships(organisation: Organisation) -> sa.Select:
    return sa.select(LotMembership).where(
        LotMembership.organisation_id == organisation.id,
        LotMembership.status == MembershipStatus.ACTIVE,
    )


def _member_lots(organisation: Organisation) -> list[ArrangementLot]:
    """Lots the organisation holds an active membership of, by name."""
    lot_ids = _active_memberships(organisation).with_only_columns(LotMembership.lot_id)
    return sorted(
        db.session.scalars(
            sa.select(ArrangementLot)
            .where(ArrangementLot.id.in_(lot_ids))
            .options(selectinload(ArrangementLot.category))
        ),
        key=lambda lot: (lot.category.name, lot.id),
    )


def _covered_areas(
    organisation: Organisation, listing: Listing | None = None
) -> tuple[list[ProbationRegion], list[PccArea]]:
    """Regions and PCC areas of any active membership, plus (when editing) the listing's own.

    The listing's own areas stay on the form even when no longer covered, so that saving says why
    instead of dropping them without a word; the service checks each against the chosen lot.
    """
    memberships = _active_memberships(organisation)
    region_ids = memberships.with_only_columns(LotMembership.region_id).where(
        LotMembership.region_id.is_not(None)
    )
    pcc_ids = memberships.with_only_columns(LotMembership.pcc_area_id).where(
        LotMembership.pcc_area_id.is_not(None)
    )
    own_regions = {a.region_id for a in listing.areas if a.region_id} if listing else set()
    own_pcc = {a.pcc_area_id for a in listing.areas if a.pcc_area_id} if listing else set()
    regions = list(
        db.session.scalars(
            sa.select(ProbationRegion)
            .where(sa.or_(ProbationRegion.id.in_(region_ids), ProbationRegion.id.in_(own_regions)))
            .order_by(ProbationRegion.name)
        )
    )
    pcc_areas = list(
        db.session.scalars(
            sa.select(PccArea)
            .where(
                sa.or_(
                    PccArea.id.in_(pcc_ids),
                    PccArea.region_id.in_(region_ids),
                    PccArea.id.in_(own_pcc),
                )
            )
            .order_by(PccArea.name)
        )
    )
    return regions, pcc_areas


def _today() -> date:
    return london_date()


def _apply(form, error: BusinessRuleViolation) -> None:
    """Roll back the refused change and show the service's messages on the form's fields."""
    rollback()
    apply_errors(
        form,
        BusinessRuleViolation({SERVICE_FIELD_NAMES.get(k, k): v for k, v in error.errors.items()}),
    )


def _messages(error: BusinessRuleViolation) -> dict:
    """A violation as page-level messages for the error summary (for one-button forms)."""
    return {"": [m for messages in error.errors.values() for m in messages]}


# ---------------------------------------------------------------------------------------------
# Your listings


def your_listings():
    """The provider's listings, filtered by state, a page at a time (catalogue.index shows it)."""
    organisation = _organisation()
    filter_form = ListingFilterForm(formdata=request.args)
    status_value = filter_form.status.data or ""
    if status_value not in {s.value for s in ListingStatus}:
        status_value = filter_form.status.data = ""
    status = ListingStatus(status_value) if status_value else None
    counts = dict(
        db.session.execute(
            sa.select(Listing.status, sa.func.count())
            .where(Listing.organisation_id == organisation.id)
            .group_by(Listing.status)
        ).all()
    )
    filters = {"status": status_value} if status_value else {}

    def url_for_page(number: int) -> str:
        return url_for("catalogue.index", page=number, **filters)

    page = paginate(
        queries.organisation_listings_query(organisation, status),
        page_number(request.args.get("page")),
        LISTINGS_PER_PAGE,
        url_for_page=url_for_page,
        total=counts.get(status, 0) if status else sum(counts.values()),
    )
    today = _today()
    return render_template(
        "catalogue/listings/index.html",
        organisation=organisation,
        filter_form=filter_form,
        page_obj=page,
        url_for_page=url_for_page,
        counts=counts,
        total=sum(counts.values()),
        filtered=bool(filters),
        today=today,
        rows=[_row(listing, today) for listing in page.items],
        has_member_lots=bool(counts) or bool(_member_lots(organisation)),
        vat_labels=VAT_LABELS,
        unit_labels=UNIT_LABELS,
    )


def _row(listing: Listing, today: date) -> dict:
    current = listing.price_on(today)
    upcoming = [p for p in listing.prices if p.effective_from > today]
    return {
        "listing": listing,
        "price": current,
        "next_price": upcoming[0] if upcoming else None,
        "stale": listing.status != ListingStatus.WITHDRAWN and is_stale(listing),
    }


# ---------------------------------------------------------------------------------------------
# Create and edit


def _listing_form(organisation: Organisation, listing: Listing | None = None, **kwargs):
    regions, pcc_areas = _covered_areas(organisation, listing)
    lots = _member_lots(organisation)
    if listing is not None and listing.lot_id not in {lot.id for lot in lots}:
        lots.append(listing.lot)
    return ListingForm(
        lots=lots, regions=regions, pcc_areas=pcc_areas, editing=listing is not None, **kwargs
    )


@bp.route("/listings/new", methods=["GET", "POST"])
@roles_required(*EDITORS)
def new_listing():
    organisation = _organisation()
    form = _listing_form(organisation)
    if not form.lot_id.choices:
        return render_template("catalogue/listings/no_lots.html", organisation=organisation)
    if request.method == "GET" and len(form.lot_id.choices) == 1:
        form.lot_id.data = form.lot_id.choices[0].value
    if form.validate_on_submit():
        try:
            listing = listing_services.create_listing(
                current_user,
                organisation,
                ListingDetails(**form.details_kwargs()),
                unit_price_pence=form.unit_price_pence(),
            )
        except BusinessRuleViolation as error:
            _apply(form, error)
        else:
            commit()
            flash(
                f"{listing.title} has been saved as a draft. Check it, then publish it.", "success"
            )
            return redirect(url_for("catalogue.check_listing", listing_id=listing.id))
    return render_template("catalogue/listings/form.html", form=form, listing=None)


@bp.route("/listings/<int:listing_id>/edit", methods=["GET", "POST"])
@roles_required(*EDITORS)
def edit_listing(listing_id: int):
    listing = _listing_or_404(listing_id)
    if listing.status == ListingStatus.WITHDRAWN:
        flash("This listing has been withdrawn, so it can no longer be changed.", "info")
        return redirect(url_for("catalogue.your_listing", listing_id=listing.id))
    form = _listing_form(listing.organisation, listing)
    if request.method == "GET":
        form.fill_from(ListingDetails.of(listing))
    if form.validate_on_submit():
        try:
            listing_services.update_listing(
                current_user, listing, ListingDetails(**form.details_kwargs())
            )
        except BusinessRuleViolation as error:
            _apply(form, error)
            listing = _listing_or_404(listing_id)
        else:
            commit()
            flash("Your changes have been saved and the listing confirmed accurate.", "success")
            return redirect(url_for("catalogue.check_listing", listing_id=listing.id))
    return render_template("catalogue/listings/form.html", form=form, listing=listing)


# ---------------------------------------------------------------------------------------------
# The provider's listing page and the preview


def _facts(listing: Listing, price: ListingPrice | None, upcoming: list[ListingPrice]) -> list:
    """The summary-list rows buyers see for a listing, in words."""
    vat = VAT_LABELS[listing.vat_treatment]
    if price is not None:
        gross = gross_pence(price.unit_price_pence, listing.vat_treatment)
        if gross != price.unit_price_pence:
            vat += f": {pounds(gross)} {listing.unit.per} including VAT"
    # Worded as buyers read it on the listing page (search/_facts.html): never "18 to any age".
    if listing.min_age is None and listing.max_age is None:
        ages = "any age"
    elif listing.max_age is None:
        ages = f"aged {listing.min_age} and over"
    elif listing.min_age is None:
        ages = f"aged up to {listing.max_age}"
    else:
        ages = f"aged {listing.min_age} to {listing.max_age}"
    costs = [
        (label, pence)
        for label, pence in (
            ("staff", listing.cost_staff_pence),
            ("overheads", listing.cost_overheads_pence),
            ("other", listing.cost_other_pence),
        )
        if pence is not None
    ]
    return [
        {
            "key": "Unit price",
            "value": f"{pounds(price.unit_price_pence)} {listing.unit.per}, excluding VAT"
            if price
            else "No price in force today",
        },
        {"key": "VAT", "value": vat},
        {
            "key": "Price changes",
            "value": "; ".join(
                f"{pounds(p.unit_price_pence)} from {govuk_date(p.effective_from)}"
                for p in upcoming
            ),
        }
        if upcoming
        else None,
        {"key": "Lot", "value": listing.lot.category.name},
        {"key": "Where", "value": ", ".join(a.name for a in listing.areas)},
        {"key": "Setting", "value": ", ".join(SETTING_LABELS[s] for s in listing.settings)},
        {"key": "Format", "value": ", ".join(FORMAT_LABELS[f] for f in listing.formats)},
        {
            "key": "Who it is for",
            "value": (
                "Anyone" if listing.eligibility_sex == Sex.ANY else listing.eligibility_sex.label
            )
            + f", {ages}",
        },
        {
            "key": "Risk of serious harm accepted",
            "value": ", ".join(RISK_LABELS[r] for r in listing.risk_levels) or "Not stated",
        },
        {
            "key": "Complexity",
            "value": ", ".join(COMPLEXITY_LABELS[c] for c in listing.complexities),
        },
        {
            "key": "Referral lead time",
            "value": f"{listing.lead_time_days} working day"
            + ("" if listing.lead_time_days == 1 else "s"),
        },
        {
            "key": "Units per call-off",
            "value": f"{listing.min_units:,} to {listing.unit.count(listing.max_units)}",
        },
        {"key": "Monthly capacity", "value": listing.unit.count(listing.monthly_capacity)},
        {"key": "Missed sessions", "value": listing.missed_sessions_text},
        {
            "key": "What one unit costs the provider",
            "value": ", ".join(f"{pounds(pence)} {label}" for label, pence in costs),
        }
        if costs
        else None,
        {"key": "Last confirmed accurate", "value": govuk_date(listing.confirmed_at) or "Never"},
    ]


def _view_context(listing: Listing) -> dict:
    today = _today()
    months = queries.next_months(today, AVAILABILITY_MONTHS)
    price = listing.price_on(today)
    upcoming = [p for p in listing.prices if p.effective_from > today]
    return {
        "listing": listing,
        "today": today,
        "price": price,
        "upcoming": upcoming,
        "facts": _facts(listing, price, upcoming),
        "availability": queries.availability([listing], months).get(listing.id, []),
        "stale": is_stale(listing),
        "uncovered": uncovered_areas(listing),
        "unit": listing.unit,
    }


def _render_listing(listing: Listing, *, errors=None, template="catalogue/listings/show.html"):
    extra = _buyer_view(listing) if template == "catalogue/listings/check.html" else {}
    return render_template(
        template,
        action_form=ActionForm(formdata=None),
        errors=errors,
        **_view_context(listing),
        **extra,
    )


@bp.get("/listings/<int:listing_id>")
@roles_required(*EDITORS)
def your_listing(listing_id: int):
    return _render_listing(_listing_or_404(listing_id))


def _buyer_view(listing: Listing) -> dict:
    """What the public listing page (views/search.py) shows, for the check page's preview."""
    [view] = listing_views([listing], _today(), as_published=True)
    memberships = [
        m
        for m in db.session.scalars(
            accreditation_queries.organisation_memberships_query(listing.organisation)
        ).unique()
        if m.status == MembershipStatus.ACTIVE
    ]
    return {
        "view": view,
        "memberships": memberships,
        "show_contact": True,
        "stale_after_days": STALE_AFTER_DAYS,
    }


@bp.get("/listings/<int:listing_id>/check")
@roles_required(*EDITORS)
def check_listing(listing_id: int):
    """The listing exactly as buyers will see it, with publish for a draft."""
    return _render_listing(_listing_or_404(listing_id), template="catalogue/listings/check.html")


def _one_click(listing_id: int, action, success: str, *, back_to_check: bool = False):
    listing = _listing_or_404(listing_id)
    form = ActionForm()
    errors = None
    if form.validate_on_submit():
        try:
            result = action(current_user, listing)
        except BusinessRuleViolation as error:
            rollback()
            errors = _messages(error)
        else:
            commit()
            target = result if isinstance(result, Listing) else listing
            flash(success.format(title=target.title), "success")
            return redirect(url_for("catalogue.your_listing", listing_id=target.id))
    else:
        errors = form.errors
    return _render_listing(
        _listing_or_404(listing_id),
        errors=errors,
        template="catalogue/listings/check.html"
        if back_to_check
        else "catalogue/listings/show.html",
    )


@bp.post("/listings/<int:listing_id>/publish")
@roles_required(*EDITORS)
def publish_listing(listing_id: int):
    return _one_click(
        listing_id,
        listing_services.publish_listing,
        "{title} is published. Buyers can now find it.",
        back_to_check=request.form.get("from") == "check",
    )


@bp.post("/listings/<int:listing_id>/pause")
@roles_required(*EDITORS)
def pause_listing(listing_id: int):
    return _one_click(
        listing_id,
        listing_services.pause_listing,
        "{title} is paused. Buyers cannot find it until you resume it.",
    )


@bp.post("/listings/<int:listing_id>/resume")
@roles_required(*EDITORS)
def resume_listing(listing_id: int):
    return _one_click(
        listing_id,
        lambda actor, listing: listing_services.publish_listing(actor, listing, resume=True),
        "{title} is published again. Buyers can find it.",
    )


@bp.post("/listings/<int:listing_id>/confirm")
@roles_required(*EDITORS)
def confirm_listing(listing_id: int):
    return _one_click(
        listing_id,
        listing_services.confirm_accurate,
        "Thank you. {title} is confirmed accurate today.",
    )


@bp.post("/listings/<int:listing_id>/copy")
@roles_required(*EDITORS)
def copy_listing(listing_id: int):
    listing = _listing_or_404(listing_id)
    form = ActionForm()
    if not form.validate_on_submit():
        return _render_listing(listing, errors=form.errors)
    try:
        copy = listing_services.copy_listing(current_user, listing)
    except BusinessRuleViolation as error:
        rollback()
        return _render_listing(_listing_or_404(listing_id), errors=_messages(error))
    commit()
    flash(
        f"{copy.title} has been created as a draft. Change what differs, then publish it.",
        "success",
    )
    return redirect(url_for("catalogue.edit_listing", listing_id=copy.id))


@bp.route("/listings/<int:listing_id>/withdraw", methods=["GET", "POST"])
@roles_required(*EDITORS)
def withdraw_listing(listing_id: int):
    listing = _listing_or_404(listing_id)
    if listing.status == ListingStatus.WITHDRAWN:
        return redirect(url_for("catalogue.your_listing", listing_id=listing.id))
    form = WithdrawForm()
    if form.validate_on_submit():
        try:
            listing_services.withdraw_listing(current_user, listing, form.reason.data or "")
        except BusinessRuleViolation as error:
            _apply(form, error)
            listing = _listing_or_404(listing_id)
        else:
            commit()
            flash(f"{listing.title} has been withdrawn. Buyers can no longer find it.", "success")
            return redirect(url_for("catalogue.your_listing", listing_id=listing.id))
    return render_template("catalogue/listings/withdraw.html", form=form, listing=listing)


# ---------------------------------------------------------------------------------------------
# Prices


def _price_history(listing: Listing) -> list[ListingPrice]:
    """The listing's price versions, newest first, with who set each (one statement)."""
    return list(
        db.session.scalars(
            sa.select(ListingPrice)
            .where(ListingPrice.listing_id == listing.id)
            .options(selectinload(ListingPrice.created_by))
            .order_by(ListingPrice.effective_from.desc())
        )
    )


@bp.route("/listings/<int:listing_id>/price", methods=["GET", "POST"])
@roles_required(*EDITORS)
def change_price(listing_id: int):
    listing = _listing_or_404(listing_id)
    if listing.status == ListingStatus.WITHDRAWN:
        flash("This listing has been withdrawn, so its price can no longer change.", "info")
        return redirect(url_for("catalogue.your_listing", listing_id=listing.id))
    form = PriceForm()
    if form.validate_on_submit():
        try:
            version = price_services.set_price(
                current_user,
                listing,
                parse_pounds(form.unit_price.data),
                parse_day(form.effective_from.data),
                form.reason.data or "",
            )
        except BusinessRuleViolation as error:
            _apply(form, error)
            listing = _listing_or_404(listing_id)
        else:
            commit()
            flash(
                f"The price of {listing.title} will be {pounds(version.unit_price_pence)} "
                f"from {govuk_date(version.effective_from)}.",
                "success",
            )
            return redirect(url_for("catalogue.change_price", listing_id=listing.id))
    return render_template(
        "catalogue/listings/price.html",
        form=form,
        listing=listing,
        history=_price_history(listing),
        today=_today(),
        one_day=timedelta(days=1),
        unit_labels=UNIT_LABELS,
    )


# ---------------------------------------------------------------------------------------------
# Change history


def _describe(event) -> list[str]:
    """What an audit event changed, in words, for the change history."""
    before, after = event.before or {}, event.after or {}
    if event.action == "listing.price_set":
        price = after.get("unit_price_pence")
        day = after.get("effective_from")
        when = govuk_date(date.fromisoformat(day)) if isinstance(day, str) else ""
        text = f"{pounds(price)} from {when}" if isinstance(price, int) else ""
        return [text + (f": {after['reason']}" if after.get("reason") else "")]
    if event.action == "listing.withdrawn" and after.get("reason"):
        return [f"Reason: {after['reason']}"]
    if event.action == "listing.copied":
        return [f"Copied from {after.get('copied_from', '')}"]
    if event.action == "listing.updated":
        changed = [k for k in after if k != "status" and before.get(k) != after.get(k)]
        return (
            [
                "Changed: "
                + ", ".join(FIELD_LABELS.get(k, k.replace("_", " ")) for k in sorted(changed))
            ]
            if changed
            else []
        )
    return []


@bp.get("/listings/<int:listing_id>/history")
@roles_required(*EDITORS, Role.AUTHORITY_ADMIN)
def listing_history(listing_id: int):
    listing = queries.get_listing(listing_id)
    if listing is None or not can_view_listing_history(current_user, listing):
        abort(404)
    if can_edit_listing(current_user, listing) and listing.organisation_id != getattr(
        current_organisation(), "id", None
    ):
        abort(404)

    def url_for_page(number: int) -> str:
        return url_for("catalogue.listing_history", listing_id=listing.id, page=number)

    page = paginate(
        queries.listing_changes_query(listing),
        page_number(request.args.get("page")),
        CHANGES_PER_PAGE,
        url_for_page=url_for_page,
    )
    return render_template(
        "catalogue/listings/history.html",
        listing=listing,
        page_obj=page,
        url_for_page=url_for_page,
        rows=[
            {"event": e, "label": ACTION_LABELS.get(e.action, e.action), "details": _describe(e)}
            for e in page.items
        ],
        can_edit=can_edit_listing(current_user, listing),
    )


# ---------------------------------------------------------------------------------------------
# Bulk uplift


def _upliftable(organisation: Organisation) -> list[Listing]:
    return list(
        db.session.scalars(
            sa.select(Listing)
            .where(
                Listing.organisation_id == organisation.id,
                Listing.status != ListingStatus.WITHDRAWN,
            )
            .order_by(Listing.title, Listing.id)
        )
    )


def _uplift_args(form: UpliftForm) -> tuple[list[int], int | None, date | None]:
    return (
        list(form.listings.data or ()),
        basis_points_from_percent(form.percentage.data, negative=True),
        parse_day(form.effective_from.data),
    )


@bp.route("/listings/uplift", methods=["GET", "POST"])
@roles_required(*EDITORS)
def uplift():
    """Choose listings, a percentage and a date; POST shows the new prices before anything changes."""
    organisation = _organisation()
    listings = _upliftable(organisation)
    form = UpliftForm(listings=listings)
    if request.method == "GET" and request.args.get("listing"):
        form.listings.data = [int(v) for v in request.args.getlist("listing") if v.isdigit()]
    if form.validate_on_submit():
        try:
            lines = price_services.preview_uplift(current_user, organisation, *_uplift_args(form))
        except BusinessRuleViolation as error:
            _apply(form, error)
        else:
            return render_template(
                "catalogue/listings/uplift_preview.html",
                form=form,
                lines=lines,
                effective_from=parse_day(form.effective_from.data),
                unit_labels=UNIT_LABELS,
            )
    return render_template("catalogue/listings/uplift.html", form=form, has_listings=bool(listings))


@bp.post("/listings/uplift/apply")
@roles_required(*EDITORS)
def apply_uplift():
    organisation = _organisation()
    listings = _upliftable(organisation)
    form = UpliftForm(listings=listings)
    if form.validate_on_submit():
        try:
            lines = price_services.apply_uplift(current_user, organisation, *_uplift_args(form))
        except BusinessRuleViolation as error:
            _apply(form, error)
        else:
            commit()
            count = len(lines)
            flash(
                f"New prices set for {count} listing{'' if count == 1 else 's'} from "
                f"{govuk_date(parse_day(form.effective_from.data))}.",
                "success",
            )
            return redirect(url_for("catalogue.index"))
    return render_template("catalogue/listings/uplift.html", form=form, has_listings=bool(listings))


@organisation_settings_warnings.connect
def vat_registration_warning(organisation: Organisation) -> Markup | None:
    """On a provider's settings page while it is not registered for VAT: its listings that
    charge VAT, which it cannot keep so (accounts asks through its signal: it does not import
    the catalogue)."""
    if not organisation.is_provider or organisation.vat_registered:
        return None
    vat_bearing = listings_needing_vat_registration(organisation)
    if not vat_bearing:
        return None
    # Rendered by Jinja with autoescaping: the text is already safe.
    return Markup(  # noqa: S704
        render_template(
            "catalogue/listings/_vat_registration_warning.html", vat_bearing=vat_bearing
        )
    )
