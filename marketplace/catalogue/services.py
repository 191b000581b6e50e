"""Listing use cases: create, edit, publish, pause, withdraw, copy, price, uplift, confirm accurate.

Each takes the acting user, enforces the rules, audits, flushes and never commits. A listing may be
offered only where its provider holds an active membership of its lot; publishing checks that again.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from fractions import Fraction

import sqlalchemy as sa

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
from marketplace.accreditation.services.applications import email_provider
from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    CONTACT_EMAIL_MAX,
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    DESCRIPTION_MAX,
    FORMAT_COLUMNS,
    LISTING_TRANSITIONS,
    MAX_AGE,
    MAX_COST_PENCE,
    MAX_LEAD_TIME_DAYS,
    MAX_UNIT_PRICE_PENCE,
    MAX_UNITS,
    MIN_AGE,
    OUTCOMES_MAX,
    REASON_MAX,
    RISK_COLUMNS,
    SETTING_COLUMNS,
    SOCIAL_VALUE_MAX,
    STALE_AFTER_DAYS,
    SUMMARY_MAX,
    TITLE_MAX,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
    RiskLevel,
    Sex,
    Unit,
)
from marketplace.catalogue.permissions import can_manage_listings
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from marketplace.core.money import VatTreatment, round_half_up
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import date_horizon_error
from marketplace.reference.models import PccArea, ProbationRegion

MAX_UPLIFT_BASIS_POINTS = 10_000  # +100%
MIN_UPLIFT_BASIS_POINTS = -5_000  # −50%: a cut, for example after a typing error
LISTING_FIELDS = [
    "title",
    "summary",
    "description",
    "outcomes",
    "lot_id",
    *SETTING_COLUMNS.values(),
    *FORMAT_COLUMNS.values(),
    "eligibility_sex",
    "min_age",
    "max_age",
    *RISK_COLUMNS.values(),
    *COMPLEXITY_COLUMNS.values(),
    "lead_time_days",
    "unit",
    "vat_treatment",
    "min_units",
    "max_units",
    "monthly_capacity",
    "missed_sessions_chargeable",
    "cost_staff_pence",
    "cost_overheads_pence",
    "cost_other_pence",
    "social_value",
    "contact_name",
    "contact_email",
    "contact_phone",
    "status",
]


# The calendar date in England, as accreditation counts it (one definition for both features).
london_today = london_date


@dataclass
class ListingDetails:
    """Everything a provider says about a service, as forms, the API and imports give it."""

    title: str
    summary: str
    lot_id: int | None
    unit: Unit | str
    vat_treatment: VatTreatment | str
    max_units: int | None
    monthly_capacity: int | None
    description: str = ""
    outcomes: str = ""
    region_codes: Sequence[str] = ()
    pcc_area_codes: Sequence[str] = ()
    settings: Sequence[DeliverySetting | str] = ()
    formats: Sequence[DeliveryFormat | str] = ()
    eligibility_sex: Sex | str = Sex.ANY
    min_age: int | None = None
    max_age: int | None = None
    risk_levels: Sequence[RiskLevel | str] = ()
    complexities: Sequence[Complexity | str] = ()
    lead_time_days: int = 0
    min_units: int = 1
    cost_staff_pence: int | None = None
    cost_overheads_pence: int | None = None
    cost_other_pence: int | None = None
    social_value: str = ""
    contact_name: str = ""
    contact_email: str = ""
    contact_phone: str = ""
    # None: not given, so a new listing does not charge for missed sessions and an edit leaves
    # the listing's answer as it is.
    missed_sessions_chargeable: bool | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def of(cls, listing: Listing) -> ListingDetails:
        """The details of an existing listing, to edit or copy."""
        return cls(
            title=listing.title,
            summary=listing.summary,
            lot_id=listing.lot_id,
            unit=listing.unit,
            vat_treatment=listing.vat_treatment,
            max_units=listing.max_units,
            monthly_capacity=listing.monthly_capacity,
            description=listing.description,
            outcomes=listing.outcomes,
            region_codes=[a.region.code for a in listing.areas if a.region is not None],
            pcc_area_codes=[a.pcc_area.code for a in listing.areas if a.pcc_area is not None],
            settings=listing.settings,
            formats=listing.formats,
            eligibility_sex=listing.eligibility_sex,
            min_age=listing.min_age,
            max_age=listing.max_age,
            risk_levels=listing.risk_levels,
            complexities=listing.complexities,
            lead_time_days=listing.lead_time_days,
            min_units=listing.min_units,
            cost_staff_pence=listing.cost_staff_pence,
            cost_overheads_pence=listing.cost_overheads_pence,
            cost_other_pence=listing.cost_other_pence,
            social_value=listing.social_value,
            contact_name=listing.contact_name,
            contact_email=listing.contact_email,
            contact_phone=listing.contact_phone,
            missed_sessions_chargeable=listing.missed_sessions_chargeable,
        )


# ---------------------------------------------------------------------------------------------
# Checks


def require_editor(actor: User | None, organisation: Organisation) -> None:
    """Only the provider's administrators and editors act on its listings (others: 404)."""
    if not can_manage_listings(actor, organisation):
        raise NotFound("Listing not found")


def _enum(errors: dict, name: str, enum_class, value, message: str):
    try:
        return enum_class(value)
    except ValueError:
        errors[name] = [message]
        return None


def _enums(errors: dict, name: str, enum_class, values, message: str) -> list:
    chosen = []
    for value in values or ():
        try:
            member = enum_class(value)
        except ValueError:
            errors[name] = [message]
            return []
        if member not in chosen:
            chosen.append(member)
    return chosen


def _whole(
    errors: dict, name: str, value, label: str, *, low: int, high: int, required: bool = True
) -> int | None:
    if value is None or value == "":
        if required:
            errors[name] = [f"Enter {label}"]
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = [f"{label[0].upper()}{label[1:]} must be a whole number"]
        return None
    if value < low or value > high:
        errors[name] = [f"{label[0].upper()}{label[1:]} must be between {low:,} and {high:,}"]
        return None
    return value


def _text(errors: dict, name: str, value, label: str, limit: int, *, required: bool) -> str:
    text = (value or "").strip()
    if required and not text:
        errors[name] = [f"Enter {label}"]
    elif len(text) > limit:
        errors[name] = [f"{label[0].upper()}{label[1:]} must be {limit:,} characters or fewer"]
    return text


def check_price_pence(value, errors: dict, name: str = "unit_price_pence") -> int | None:
    """A unit price: a whole number of pence from 0 to the maximum."""
    if value is None or value == "":
        errors[name] = ["Enter the unit price"]
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        errors[name] = ["Enter the unit price in whole pence, like 4500 for £45.00"]
        return None
    if value < 0:
        errors[name] = ["The unit price cannot be negative"]
        return None
    if value > MAX_UNIT_PRICE_PENCE:
        errors[name] = [f"The unit price must be £{MAX_UNIT_PRICE_PENCE // 100:,} or less"]
        return None
    return value


def covered_area_ids(organisation_id: int, lot_id: int) -> tuple[set[int], set[int]]:
    """(region ids, PCC area ids) where the organisation holds an active membership of the lot.

    A region membership covers every PCC area in the region.
    """
    rows = db.session.execute(
        sa.select(LotMembership.region_id, LotMembership.pcc_area_id).where(
            LotMembership.organisation_id == organisation_id,
            LotMembership.lot_id == lot_id,
            LotMembership.status == MembershipStatus.ACTIVE,
        )
    ).all()
    regions = {r.region_id for r in rows if r.region_id is not None}
    pcc_areas = {r.pcc_area_id for r in rows if r.pcc_area_id is not None}
    if regions:
        pcc_areas |= set(
            db.session.scalars(sa.select(PccArea.id).where(PccArea.region_id.in_(regions)))
        )
    return regions, pcc_areas


def _listing_areas(
    errors: dict, organisation: Organisation, lot: ArrangementLot | None, details: ListingDetails
) -> list[ListingArea]:
    region_codes = sorted({(c or "").strip().upper() for c in details.region_codes} - {""})
    pcc_codes = sorted({(c or "").strip().lower() for c in details.pcc_area_codes} - {""})
    regions = (
        list(
            db.session.scalars(
                sa.select(ProbationRegion).where(ProbationRegion.code.in_(region_codes))
            )
        )
        if region_codes
        else []
    )
    pcc_areas = (
        list(db.session.scalars(sa.select(PccArea).where(PccArea.code.in_(pcc_codes))))
        if pcc_codes
        else []
    )
    unknown = (set(region_codes) - {r.code for r in regions}) | (
        set(pcc_codes) - {p.code for p in pcc_areas}
    )
    if unknown:
        errors["areas"] = [f"Unknown region or PCC area: {', '.join(sorted(unknown))}"]
        return []
    if not regions and not pcc_areas:
        errors["areas"] = ["Choose at least one region or PCC area where you deliver this service"]
        return []
    if lot is None:
        return []
    covered_regions, covered_pcc = covered_area_ids(organisation.id, lot.id)
    outside = [r.name for r in regions if r.id not in covered_regions] + [
        p.name for p in pcc_areas if p.id not in covered_pcc
    ]
    if outside:
        errors["areas"] = [
            f"You are not an active member of {lot.category.name} in {', '.join(outside)}. "
            "You can only offer a service where you hold an active membership of its lot."
        ]
        return []
    return [ListingArea(region=r) for r in regions] + [ListingArea(pcc_area=p) for p in pcc_areas]


def check_fields(details: ListingDetails, errors: dict[str, list[str]]) -> dict:
    """The listing's own fields, with no query: shared by the services and the rate card import.

    Returns the column values (not ``lot_id``); adds a message per bad field to ``errors``.
    """
    values: dict = {}
    values["title"] = _text(errors, "title", details.title, "a title", TITLE_MAX, required=True)
    values["summary"] = _text(
        errors, "summary", details.summary, "a summary", SUMMARY_MAX, required=True
    )
    values["description"] = _text(
        errors, "description", details.description, "a description", DESCRIPTION_MAX, required=False
    )
    values["outcomes"] = _text(
        errors, "outcomes", details.outcomes, "the outcomes", OUTCOMES_MAX, required=False
    )
    values["social_value"] = _text(
        errors,
        "social_value",
        details.social_value,
        "the social value statement",
        SOCIAL_VALUE_MAX,
        required=False,
    )
    values["contact_name"] = _text(
        errors,
        "contact_name",
        details.contact_name,
        "a contact name",
        CONTACT_NAME_MAX,
        required=False,
    )
    values["contact_email"] = _text(
        errors,
        "contact_email",
        details.contact_email,
        "a contact email",
        CONTACT_EMAIL_MAX,
        required=False,
    ).lower()
    if values["contact_email"] and "@" not in values["contact_email"]:
        errors["contact_email"] = [
            "Enter an email address in the correct format, like name@example.org"
        ]
    values["contact_phone"] = _text(
        errors,
        "contact_phone",
        details.contact_phone,
        "a contact phone number",
        CONTACT_PHONE_MAX,
        required=False,
    )

    unit = _enum(errors, "unit", Unit, details.unit, "Choose a unit from the list")
    vat = _enum(
        errors,
        "vat_treatment",
        VatTreatment,
        details.vat_treatment,
        "Choose a VAT treatment: standard, reduced, zero, exempt or outside the scope",
    )
    values["unit"], values["vat_treatment"] = unit, vat
    values["eligibility_sex"] = _enum(
        errors, "eligibility_sex", Sex, details.eligibility_sex, "Choose who the service is for"
    )

    settings = _enums(
        errors,
        "settings",
        DeliverySetting,
        details.settings,
        "Choose a delivery setting from the list",
    )
    if not settings and "settings" not in errors:
        errors["settings"] = ["Choose at least one delivery setting"]
    formats = _enums(
        errors, "formats", DeliveryFormat, details.formats, "Choose a format from the list"
    )
    if not formats and "formats" not in errors:
        errors["formats"] = ["Choose one-to-one, group or both"]
    risks = _enums(
        errors, "risk_levels", RiskLevel, details.risk_levels, "Choose a risk level from the list"
    )
    complexities = _enums(
        errors,
        "complexities",
        Complexity,
        details.complexities,
        "Choose a complexity level from the list",
    )
    if not complexities and "complexities" not in errors:
        errors["complexities"] = ["Choose at least one complexity level"]
    for member, column in SETTING_COLUMNS.items():
        values[column] = member in settings
    for member, column in FORMAT_COLUMNS.items():
        values[column] = member in formats
    for member, column in RISK_COLUMNS.items():
        values[column] = member in risks
    for member, column in COMPLEXITY_COLUMNS.items():
        values[column] = member in complexities

    values["min_age"] = _whole(
        errors,
        "min_age",
        details.min_age,
        "the minimum age",
        low=MIN_AGE,
        high=MAX_AGE,
        required=False,
    )
    values["max_age"] = _whole(
        errors,
        "max_age",
        details.max_age,
        "the maximum age",
        low=MIN_AGE,
        high=MAX_AGE,
        required=False,
    )
    if (
        values["min_age"] is not None
        and values["max_age"] is not None
        and values["min_age"] > values["max_age"]
    ):
        errors["max_age"] = ["The maximum age must be the same as or more than the minimum age"]
    values["lead_time_days"] = _whole(
        errors,
        "lead_time_days",
        details.lead_time_days,
        "the referral lead time in working days",
        low=0,
        high=MAX_LEAD_TIME_DAYS,
    )
    values["min_units"] = _whole(
        errors,
        "min_units",
        details.min_units,
        "the minimum units per call-off",
        low=1,
        high=MAX_UNITS,
    )
    values["max_units"] = _whole(
        errors,
        "max_units",
        details.max_units,
        "the maximum units per call-off",
        low=1,
        high=MAX_UNITS,
    )
    if (
        values["min_units"] is not None
        and values["max_units"] is not None
        and values["min_units"] > values["max_units"]
    ):
        errors["max_units"] = ["The maximum units must be the same as or more than the minimum"]
    values["monthly_capacity"] = _whole(
        errors,
        "monthly_capacity",
        details.monthly_capacity,
        "the monthly capacity in units",
        low=0,
        high=MAX_UNITS,
    )
    chargeable = details.missed_sessions_chargeable
    if chargeable is not None:
        if isinstance(chargeable, bool):
            values["missed_sessions_chargeable"] = chargeable
        else:
            errors["missed_sessions_chargeable"] = [
                "Say whether a session the person did not attend is paid for"
            ]
    for name, label in (
        ("cost_staff_pence", "the staff cost"),
        ("cost_overheads_pence", "the overheads"),
        ("cost_other_pence", "the other costs"),
    ):
        values[name] = _whole(
            errors, name, getattr(details, name), label, low=0, high=MAX_COST_PENCE, required=False
        )
    return values


# Treatments that charge VAT (at 20%, 5% or 0%): taxable supplies, which only a VAT-registered
# provider makes, and which an e-invoice must show with the seller's VAT number (BR-S-02,
# BR-Z-02). Exempt and outside-the-scope services are open to every provider.
VAT_REGISTRATION_TREATMENTS = frozenset(
    {VatTreatment.STANDARD, VatTreatment.REDUCED, VatTreatment.ZERO}
)
VAT_REGISTRATION_MESSAGE = (
    "Your organisation is not registered for VAT, so it cannot charge VAT: choose exempt or "
    "outside the scope of VAT, or record your VAT registration on your organisation settings page"
)


def check_vat_registration(organisation: Organisation, values: dict, errors: dict) -> None:
    """An unregistered provider cannot list at a treatment that charges VAT."""
    if values.get("vat_treatment") in VAT_REGISTRATION_TREATMENTS and not (
        organisation.vat_registered
    ):
        errors.setdefault("vat_treatment", []).append(VAT_REGISTRATION_MESSAGE)


def listings_needing_vat_registration(organisation: Organisation) -> list[Listing]:
    """The provider's listings (not withdrawn) at a treatment that charges VAT, which it cannot
    keep while it is not registered for VAT."""
    return list(
        db.session.scalars(
            sa.select(Listing)
            .where(
                Listing.organisation_id == organisation.id,
                Listing.status != ListingStatus.WITHDRAWN,
                Listing.vat_treatment.in_(VAT_REGISTRATION_TREATMENTS),
            )
            .order_by(Listing.title, Listing.id)
        )
    )


def _check_details(
    organisation: Organisation, details: ListingDetails
) -> tuple[dict, ArrangementLot | None, list[ListingArea]]:
    """Validate ``details``; return (column values, lot, areas) or raise with every error."""
    errors: dict[str, list[str]] = {}
    values = check_fields(details, errors)
    check_vat_registration(organisation, values, errors)
    lot = None
    if details.lot_id is None:
        errors["lot_id"] = ["Choose the lot this service belongs to"]
    else:
        lot = (
            db.session.get(ArrangementLot, details.lot_id)
            if isinstance(details.lot_id, int)
            else None
        )
        if lot is None:
            errors["lot_id"] = ["Choose a lot from the list"]
    if lot is not None:
        values["lot_id"] = lot.id
    areas = _listing_areas(errors, organisation, lot, details)
    if errors:
        raise BusinessRuleViolation(errors)
    return values, lot, areas


def listing_reference(listing_id: int) -> str:
    """The readable reference of a listing, made from its key so that it can never clash."""
    return f"SL-{listing_id:06d}"


def _provisional_reference() -> str:
    # Unique until the flush gives the listing its key and ``listing_reference`` replaces it.
    return f"NEW-{secrets.token_hex(8)}"


def _snapshot(listing: Listing) -> dict:
    data = audit.snapshot(listing, LISTING_FIELDS)
    data["areas"] = sorted(
        (a.region.code if a.region is not None else a.pcc_area.code) for a in listing.areas
    )
    return data


def _set_areas(listing: Listing, areas: list[ListingArea]) -> None:
    wanted = {
        (a.region.id if a.region else None, a.pcc_area.id if a.pcc_area else None): a for a in areas
    }
    for existing in list(listing.areas):
        key = (existing.region_id, existing.pcc_area_id)
        if key in wanted:
            wanted.pop(key)
        else:
            listing.areas.remove(existing)
    listing.areas.extend(wanted.values())


# ---------------------------------------------------------------------------------------------
# Create and edit


def create_listing(
    actor: User,
    organisation: Organisation,
    details: ListingDetails,
    *,
    unit_price_pence: int,
    at: datetime | None = None,
) -> Listing:
    """Start a draft listing with its first price, in force from today."""
    require_editor(actor, organisation)
    errors: dict[str, list[str]] = {}
    price = check_price_pence(unit_price_pence, errors)
    try:
        values, lot, areas = _check_details(organisation, details)
    except BusinessRuleViolation as error:
        raise BusinessRuleViolation({**error.errors, **errors}) from None
    if errors:
        raise BusinessRuleViolation(errors)
    now = at or utcnow()
    listing = Listing(
        reference=_provisional_reference(),
        organisation=organisation,
        status=ListingStatus.DRAFT,
        created_by_id=actor.id,
        confirmed_at=now,
        **values,
    )
    listing.areas = areas
    listing.prices = [
        ListingPrice(
            unit_price_pence=price,
            effective_from=london_date(now),
            created_at=now,
            created_by_id=actor.id,
            reason="First price",
        )
    ]
    db.session.add(listing)
    db.session.flush()
    listing.reference = listing_reference(listing.id)
    db.session.flush()
    audit.record(
        actor, "listing.created", listing, after={**_snapshot(listing), "unit_price_pence": price}
    )
    return listing


def update_listing(actor: User, listing: Listing, details: ListingDetails, *, at=None) -> Listing:
    """Change a listing's details (not its price: see ``set_price``); confirms it accurate."""
    require_editor(actor, listing.organisation)
    _require_not_withdrawn(listing)
    values, lot, areas = _check_details(listing.organisation, details)
    before = _snapshot(listing)
    for name, value in values.items():
        setattr(listing, name, value)
    _set_areas(listing, areas)
    listing.confirmed_at = at or utcnow()
    listing.stale_notified_at = None
    db.session.flush()
    after = _snapshot(listing)
    if after != before:
        audit.record(actor, "listing.updated", listing, before=before, after=after)
    return listing


def copy_listing(actor: User, listing: Listing, *, at: datetime | None = None) -> Listing:
    """Start a new draft from an existing listing (its details and today's price)."""
    require_editor(actor, listing.organisation)
    now = at or utcnow()
    current = listing.price_on(london_date(now)) or (listing.prices[-1] if listing.prices else None)
    details = ListingDetails.of(listing)
    details.title = f"Copy of {listing.title}"[:TITLE_MAX]
    copy = create_listing(
        actor,
        listing.organisation,
        details,
        unit_price_pence=current.unit_price_pence if current else 0,
        at=now,
    )
    copy.copied_from_id = listing.id
    db.session.flush()
    audit.record(actor, "listing.copied", copy, after={"copied_from": listing.reference})
    return copy


# ---------------------------------------------------------------------------------------------
# States


def _require_not_withdrawn(listing: Listing) -> None:
    if listing.status == ListingStatus.WITHDRAWN:
        raise BusinessRuleViolation(
            {
                "status": [
                    "This listing has been withdrawn, so it can no longer be changed. Copy it to start a new one."
                ]
            }
        )


def uncovered_areas(listing: Listing) -> list[ListingArea]:
    """The listing's areas where the provider no longer holds an active membership of the lot."""
    regions, pcc_areas = covered_area_ids(listing.organisation_id, listing.lot_id)
    return [
        a
        for a in listing.areas
        if (a.region_id is not None and a.region_id not in regions)
        or (a.pcc_area_id is not None and a.pcc_area_id not in pcc_areas)
    ]


def publish_listing(
    actor: User, listing: Listing, *, at: datetime | None = None, resume: bool = False
) -> Listing:
    """Publish a draft, or resume a paused listing, while every area's membership is active
    (``resume``: only a paused one)."""
    require_editor(actor, listing.organisation)
    publishing = {"noun": "listing", "done": "published"}
    if resume:
        publishing = {
            "noun": "listing",
            "done": "resumed",
            "only_from": {ListingStatus.PAUSED},
            "already": "This listing is already published",
        }
    check_transition(listing, ListingStatus.PUBLISHED, LISTING_TRANSITIONS, **publishing)
    uncovered = uncovered_areas(listing)
    if uncovered:
        names = ", ".join(a.name for a in uncovered)
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This listing cannot be published: your membership of "
                    f"{listing.lot.category.name} is not active in {names}. Remove those areas, "
                    "or publish once the membership is active again."
                ]
            }
        )
    vat_errors: dict[str, list[str]] = {}
    check_vat_registration(
        listing.organisation, {"vat_treatment": listing.vat_treatment}, vat_errors
    )
    if vat_errors:
        raise BusinessRuleViolation({"status": vat_errors["vat_treatment"]})
    now = at or utcnow()
    if listing.price_on(london_date(now)) is None:
        raise BusinessRuleViolation({"status": ["Set a price in force today before publishing"]})
    before = _snapshot(listing)
    was = listing.status
    transition(listing, ListingStatus.PUBLISHED, LISTING_TRANSITIONS, **publishing)
    if was == ListingStatus.DRAFT:
        listing.published_at = now
    listing.paused_at = None
    listing.confirmed_at = now
    listing.stale_notified_at = None
    db.session.flush()
    audit.record(
        actor,
        "listing.published" if was == ListingStatus.DRAFT else "listing.resumed",
        listing,
        before=before,
        after=_snapshot(listing),
    )
    return listing


def pause_listing(actor: User, listing: Listing, *, at: datetime | None = None) -> Listing:
    """Stop taking new call-offs for a while; the listing leaves search until resumed."""
    require_editor(actor, listing.organisation)
    lock(listing)
    before = _snapshot(listing)
    transition(listing, ListingStatus.PAUSED, LISTING_TRANSITIONS, noun="listing")
    listing.paused_at = at or utcnow()
    db.session.flush()
    audit.record(actor, "listing.paused", listing, before=before, after=_snapshot(listing))
    return listing


def withdraw_listing(
    actor: User, listing: Listing, reason: str = "", *, at: datetime | None = None
) -> Listing:
    """Take a listing off the rate card for good (call-offs already placed are not affected)."""
    require_editor(actor, listing.organisation)
    errors: dict = {}
    reason = _text(errors, "reason", reason, "a reason", REASON_MAX, required=False)
    if errors:
        raise BusinessRuleViolation(errors)
    lock(listing)
    before = _snapshot(listing)
    transition(listing, ListingStatus.WITHDRAWN, LISTING_TRANSITIONS, noun="listing")
    listing.withdrawn_at = at or utcnow()
    db.session.flush()
    audit.record(
        actor,
        "listing.withdrawn",
        listing,
        before=before,
        after={**_snapshot(listing), "reason": reason},
    )
    return listing


def confirm_accurate(actor: User, listing: Listing, *, at: datetime | None = None) -> Listing:
    """One click: the provider confirms the listing is still accurate."""
    require_editor(actor, listing.organisation)
    _require_not_withdrawn(listing)
    listing.confirmed_at = at or utcnow()
    listing.stale_notified_at = None
    db.session.flush()
    audit.record(actor, "listing.confirmed", listing, after={"confirmed_at": listing.confirmed_at})
    return listing


def is_stale(listing: Listing, now: datetime | None = None) -> bool:
    now = now or utcnow()
    return listing.confirmed_at is None or listing.confirmed_at < now - timedelta(
        days=STALE_AFTER_DAYS
    )


def notify_stale_listings(now: datetime | None = None) -> int:
    """Email providers once about each published listing not confirmed for 180 days (idempotent)."""
    now = now or utcnow()
    cutoff = now - timedelta(days=STALE_AFTER_DAYS)
    stale = list(
        db.session.scalars(
            sa.select(Listing)
            .where(
                Listing.status.in_((ListingStatus.PUBLISHED, ListingStatus.PAUSED)),
                Listing.confirmed_at < cutoff,
                Listing.stale_notified_at.is_(None),
            )
            .order_by(Listing.organisation_id, Listing.id)
        )
    )
    by_organisation: dict[int, list[Listing]] = {}
    for listing in stale:
        by_organisation.setdefault(listing.organisation_id, []).append(listing)
    for listings in by_organisation.values():
        organisation = listings[0].organisation
        email_provider(
            organisation, "catalogue_listings_stale", listings=listings, days=STALE_AFTER_DAYS
        )
        for listing in listings:
            listing.stale_notified_at = now
            audit.record(
                None,
                "listing.stale_notified",
                listing,
                after={"confirmed_at": listing.confirmed_at},
            )
    db.session.flush()
    return len(stale)


# ---------------------------------------------------------------------------------------------
# Prices


def set_price(
    actor: User,
    listing: Listing,
    unit_price_pence: int,
    effective_from: date | None,
    reason: str = "",
    *,
    at: datetime | None = None,
) -> ListingPrice:
    """A new unit price from a date (today or later); the history is kept.

    A second change for the same date replaces the first (it never took effect on any other day).
    """
    require_editor(actor, listing.organisation)
    _require_not_withdrawn(listing)
    now = at or utcnow()
    today = london_date(now)
    errors: dict[str, list[str]] = {}
    price = check_price_pence(unit_price_pence, errors)
    reason = _text(errors, "reason", reason, "a reason", REASON_MAX, required=False)
    if not isinstance(effective_from, date):
        errors["effective_from"] = ["Enter the date the new price takes effect"]
    elif message := date_horizon_error(
        effective_from, "The date the new price takes effect", today=today
    ):
        errors["effective_from"] = [message]
    elif effective_from < today:
        errors["effective_from"] = [
            "The new price must take effect today or later, not in the past"
        ]
    if errors:
        raise BusinessRuleViolation(errors)
    return _put_price(actor, listing, price, effective_from, reason, now)


@dataclass(frozen=True)
class PriceVersionPlan:
    """Where a new price from a date goes in a listing's history (the one versioning rule).

    ``replaces``: the version that starts on the same date, whose price is replaced (it never
    took effect on any other day); otherwise a new version runs from the date up to ``effective_to``
    (the next version's start, or open-ended), and ``closes`` (the version before it) now ends on
    the date. Earlier versions are never rewritten.
    """

    replaces: ListingPrice | None
    effective_to: date | None
    closes: ListingPrice | None


def plan_price_version(versions: Iterable[ListingPrice], effective_from: date) -> PriceVersionPlan:
    """Where a price from ``effective_from`` goes among ``versions`` (see ``PriceVersionPlan``).

    Pure: the rate card import applies the same plan with bulk statements."""
    ordered = sorted(versions, key=lambda p: p.effective_from)
    same_day = next((p for p in ordered if p.effective_from == effective_from), None)
    if same_day is not None:
        return PriceVersionPlan(replaces=same_day, effective_to=None, closes=None)
    earlier = [p for p in ordered if p.effective_from < effective_from]
    later = [p for p in ordered if p.effective_from > effective_from]
    return PriceVersionPlan(
        replaces=None,
        effective_to=later[0].effective_from if later else None,
        closes=earlier[-1] if earlier else None,
    )


def _put_price(
    actor: User, listing: Listing, price: int, effective_from: date, reason: str, now: datetime
) -> ListingPrice:
    plan = plan_price_version(listing.prices, effective_from)
    if plan.replaces is not None:
        same_day = plan.replaces
        before = {"unit_price_pence": same_day.unit_price_pence, "effective_from": effective_from}
        same_day.unit_price_pence = price
        same_day.reason = reason or same_day.reason
        same_day.created_at = now
        same_day.created_by_id = actor.id if actor else None
        version = same_day
    else:
        before = None
        version = ListingPrice(
            unit_price_pence=price,
            effective_from=effective_from,
            effective_to=plan.effective_to,
            created_at=now,
            created_by_id=actor.id if actor else None,
            reason=reason,
        )
        if plan.closes is not None:
            plan.closes.effective_to = effective_from
        listing.prices.append(version)
        # Keep the loaded history in date order, as it loads from the database.
        listing.prices.sort(key=lambda p: p.effective_from)
    db.session.flush()
    audit.record(
        actor,
        "listing.price_set",
        listing,
        before=before,
        after={"unit_price_pence": price, "effective_from": effective_from, "reason": reason},
    )
    return version


@dataclass(frozen=True)
class UpliftLine:
    listing: Listing
    current_pence: int
    new_pence: int


def uplift_lines(
    listings: Iterable[Listing], basis_points: int, effective_from: date
) -> list[UpliftLine]:
    """What a percentage uplift (in basis points, 250 = 2.5%) would make each price, rounded half up."""
    lines = []
    for listing in listings:
        base = listing.price_on(effective_from) or (listing.prices[-1] if listing.prices else None)
        if base is None:
            continue
        new = round_half_up(Fraction(base.unit_price_pence * (10_000 + basis_points), 10_000))
        lines.append(UpliftLine(listing, base.unit_price_pence, new))
    return lines


def _check_uplift(
    actor: User,
    organisation: Organisation,
    listing_ids: Sequence[int],
    basis_points,
    effective_from,
    today: date,
) -> list[Listing]:
    require_editor(actor, organisation)
    errors: dict[str, list[str]] = {}
    if isinstance(basis_points, bool) or not isinstance(basis_points, int):
        errors["percentage"] = ["Enter the uplift as a percentage, like 2.5"]
    elif (
        not MIN_UPLIFT_BASIS_POINTS <= basis_points <= MAX_UPLIFT_BASIS_POINTS or basis_points == 0
    ):
        errors["percentage"] = ["Enter an uplift between -50% and 100%, other than 0"]
    if not isinstance(effective_from, date):
        errors["effective_from"] = ["Enter the date the new prices take effect"]
    elif message := date_horizon_error(
        effective_from, "The date the new prices take effect", today=today
    ):
        errors["effective_from"] = [message]
    elif effective_from < today:
        errors["effective_from"] = [
            "The new prices must take effect today or later, not in the past"
        ]
    ids = sorted({i for i in listing_ids if isinstance(i, int)})
    listings = (
        list(
            db.session.scalars(
                sa.select(Listing)
                .where(
                    Listing.id.in_(ids),
                    Listing.organisation_id == organisation.id,
                    Listing.status != ListingStatus.WITHDRAWN,
                )
                .order_by(Listing.title, Listing.id)
            )
        )
        if ids
        else []
    )
    if not ids:
        errors["listings"] = ["Choose at least one listing to uplift"]
    elif len(listings) != len(ids):
        errors["listings"] = ["Choose listings from your own rate card that are not withdrawn"]
    if errors:
        raise BusinessRuleViolation(errors)
    return listings


def preview_uplift(
    actor: User,
    organisation: Organisation,
    listing_ids: Sequence[int],
    basis_points: int,
    effective_from: date,
    *,
    at: datetime | None = None,
) -> list[UpliftLine]:
    """Each chosen listing's current and new price, without changing anything."""
    today = london_date(at)
    listings = _check_uplift(actor, organisation, listing_ids, basis_points, effective_from, today)
    return uplift_lines(listings, basis_points, effective_from)


def apply_uplift(
    actor: User,
    organisation: Organisation,
    listing_ids: Sequence[int],
    basis_points: int,
    effective_from: date,
    *,
    at: datetime | None = None,
) -> list[UpliftLine]:
    """Set the uplifted prices from ``effective_from`` on every chosen listing, all or nothing."""
    now = at or utcnow()
    lines = preview_uplift(actor, organisation, listing_ids, basis_points, effective_from, at=now)
    reason = f"Uplift of {Fraction(basis_points, 100)}%"
    for line in lines:
        check_errors: dict = {}
        if check_price_pence(line.new_pence, check_errors) is None:
            raise BusinessRuleViolation(
                {
                    "percentage": [
                        f"The uplift would take {line.listing.title} above the maximum price"
                    ]
                }
            )
        _put_price(actor, line.listing, line.new_pence, effective_from, reason, now)
    audit.record(
        actor,
        "rate_card.uplifted",
        organisation=organisation,
        object_type="organisation",
        object_id=organisation.id,
        after={
            "basis_points": basis_points,
            "effective_from": effective_from,
            "listings": [line.listing.reference for line in lines],
        },
    )
    return lines
