"""A call-off awarded by further competition: placed at the winning price with the winning
provider, funded by the shares agreed for the competition (``place_awarded_call_off``). Set-up
checks the funders' budgets read-only with the same public rules
(``competitions.services.funding``).

The competitions feature builds on orders and calls these with plain values; orders never reads
a competition. An awarded call-off has route ``further_competition``: it is not held to the
direct-award limit (the competition is the lawful route above it) and does not count towards a
buyer's direct awards. It need not match a rate-card listing (``listing_id`` None), so it commits
no listing capacity, has no listing's range of units or outcomes, and pays for a missed session
only if the award says so. It is for a service, not one person (no CRN or PDU). Otherwise it is
placed as any call-off is (``placing.place_funded``): each funder's budget by financial year,
standing authorisations, co-funders asked to confirm, an approver above the placer's spend
limit, the provider asked to accept; then accepted, delivered, varied, invoiced and completed
like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import Arrangement, ArrangementStatus
from marketplace.catalogue.models import MAX_UNITS, TITLE_MAX, Unit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import MAX_ID, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import VatTreatment
from marketplace.core.validation import date_horizon_error
from marketplace.orders.models import (
    MAX_VALUE_PENCE,
    NOTES_MAX,
    PO_NUMBER_MAX,
    AwardRoute,
    CallOff,
    CallOffStatus,
)
from marketplace.orders.services.call_offs import call_off_value
from marketplace.orders.services.details import FundingShare, check_shares
from marketplace.orders.services.placing import place_funded, require_placer
from marketplace.reference.models import ServiceCategory


@dataclass(frozen=True)
class AwardedCallOff:
    """What a further competition's award fixes, as plain values: the winner, the arrangement
    and lot (category) it was run under, what it buys, the winning price (ex VAT, pence) and its
    VAT treatment, the contract dates and the funders' shares (lead included, basis points
    summing to 10,000)."""

    provider_id: int
    arrangement_id: int
    category_id: int
    service_title: str
    quantity: int
    unit: Unit | str
    unit_price_pence: int
    vat_treatment: VatTreatment | str
    start_date: date
    end_date: date
    shares: Sequence[FundingShare] = field(default_factory=tuple)
    missed_sessions_chargeable: bool = False
    competition_id: int | None = None
    po_number: str = ""
    notes_for_provider: str = ""


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_dates(start: object, end: object, today: date, errors: dict) -> None:
    if not isinstance(start, date):
        errors["start_date"] = ["Enter the contract's start date"]
    elif message := date_horizon_error(start, "The start date", today=today):
        errors["start_date"] = [message]
    if not isinstance(end, date):
        errors["end_date"] = ["Enter the contract's end date"]
    elif isinstance(start, date) and end < start:
        errors["end_date"] = ["The end date must be the same as or after the start date"]
    elif message := date_horizon_error(end, "The end date", start=start, today=today):
        errors["end_date"] = [message]


def _check_award(details: AwardedCallOff, today: date) -> tuple[dict[str, list[str]], tuple]:
    """The award's own values checked (nothing locked): errors by field, and (provider,
    arrangement, category, unit, VAT treatment) as read."""
    errors: dict[str, list[str]] = {}
    provider = (
        db.session.get(Organisation, details.provider_id)
        if _whole(details.provider_id) and 1 <= details.provider_id <= MAX_ID
        else None
    )
    if provider is None or not provider.active or not provider.type.is_provider:
        errors["provider_id"] = ["The winner must be an active provider organisation"]
    arrangement = (
        db.session.get(Arrangement, details.arrangement_id)
        if _whole(details.arrangement_id) and 1 <= details.arrangement_id <= MAX_ID
        else None
    )
    if arrangement is None:
        errors["arrangement_id"] = ["There is no such arrangement"]
    elif arrangement.status != ArrangementStatus.LIVE:
        errors["arrangement_id"] = [
            f"{arrangement.name} is not live, so nothing can be bought through it"
        ]
    category = (
        db.session.get(ServiceCategory, details.category_id)
        if _whole(details.category_id) and 1 <= details.category_id <= MAX_ID
        else None
    )
    if category is None:
        errors["category_id"] = ["There is no such lot"]
    elif arrangement is not None and category.id not in {
        lot.category_id for lot in arrangement.lots
    }:
        errors["category_id"] = [f"{arrangement.name} has no {category.name} lot"]
    title = (details.service_title or "").strip()
    if not title:
        errors["service_title"] = ["Enter what the call-off buys"]
    elif len(title) > TITLE_MAX:
        errors["service_title"] = [f"The title must be {TITLE_MAX} characters or fewer"]
    if not _whole(details.quantity) or not 1 <= details.quantity <= MAX_UNITS:
        errors["quantity"] = [f"The number of units must be a whole number from 1 to {MAX_UNITS}"]
    try:
        unit = Unit(details.unit)
    except ValueError:
        unit = None
        errors["unit"] = ["Choose the unit the price is for"]
    if not _whole(details.unit_price_pence) or details.unit_price_pence < 0:
        errors["unit_price_pence"] = ["The unit price must be a whole number of pence, 0 or more"]
    try:
        treatment = VatTreatment(details.vat_treatment)
    except ValueError:
        treatment = None
        errors["vat_treatment"] = ["Choose the VAT treatment of the price"]
    _check_dates(details.start_date, details.end_date, today, errors)
    if len(details.po_number or "") > PO_NUMBER_MAX:
        errors["po_number"] = [
            f"The purchase order number must be {PO_NUMBER_MAX} characters or fewer"
        ]
    if len(details.notes_for_provider or "") > NOTES_MAX:
        errors["notes_for_provider"] = [f"Notes must be {NOTES_MAX} characters or fewer"]
    if not errors:
        *_, gross = call_off_value(details.unit_price_pence, details.quantity, treatment)
        if gross > MAX_VALUE_PENCE:
            errors["unit_price_pence"] = ["That is more than a call-off can be worth"]
    return errors, (provider, arrangement, category, unit, treatment)


def place_awarded_call_off(
    actor: User,
    organisation: Organisation,
    details: AwardedCallOff,
    *,
    now: datetime | None = None,
) -> CallOff:
    """Place the call-off a further competition awarded, as ``organisation`` (the lead buyer),
    at the winning price: route ``further_competition``, funded by the shares given. Refused
    (``BusinessRuleViolation``, errors by field, nothing written) if a value is wrong, a
    funder's budget for a financial year no longer covers its part, or nobody could approve it
    above the placer's spend limit."""
    now = now or utcnow()
    require_placer(actor, organisation)
    errors, (provider, arrangement, _, unit, treatment) = _check_award(details, london_date(now))
    shares, share_errors, funders = check_shares(organisation, details.shares)
    errors.update(share_errors)
    if errors:
        raise BusinessRuleViolation(errors)
    net, vat, gross = call_off_value(details.unit_price_pence, details.quantity, treatment)
    call_off = CallOff(
        status=CallOffStatus.DRAFT,
        listing_id=None,
        service_title=details.service_title.strip(),
        provider_id=provider.id,
        lead_buyer_id=organisation.id,
        arrangement_id=arrangement.id,
        category_id=details.category_id,
        provider=provider,
        lead_buyer=organisation,
        arrangement=arrangement,
        award_route=AwardRoute.FURTHER_COMPETITION,
        # The competition chose the provider: there is no direct-award reason.
        choice_reason=None,
        choice_reason_detail="",
        competition_id=details.competition_id,
        quantity=details.quantity,
        start_date=details.start_date,
        end_date=details.end_date,
        # A contract for a service, not for one person on probation.
        crn="",
        pdu="",
        po_number=(details.po_number or "").strip(),
        notes_for_provider=(details.notes_for_provider or "").strip(),
        unit=unit,
        unit_price_pence=details.unit_price_pence,
        vat_treatment=treatment,
        price_version_id=None,
        net_pence=net,
        vat_pence=vat,
        gross_pence=gross,
        outcome_max_pence=0,
        missed_sessions_chargeable=bool(details.missed_sessions_chargeable),
        placed_by_id=actor.id,
        placed_by=actor,
        placed_at=now,
        deliveries=[],
        variations=[],
        outcomes=[],
    )
    return place_funded(
        actor,
        organisation,
        call_off,
        shares,
        funders,
        details.shares,
        now,
        within_direct_award_limit=False,
    )
