"""What the buyer gives to place a call-off, and the checks on it that need no lock: its shape,
the funders' shares, and the price they were shown.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date

from marketplace.accounts.models import Organisation
from marketplace.catalogue.models import Listing
from marketplace.catalogue.queries import PriceInForce, unit_price_of_version
from marketplace.core.db import MAX_ID, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.money import BASIS_POINTS_WHOLE, VatTreatment
from marketplace.core.validation import date_horizon_error
from marketplace.orders.models import (
    CRN_LENGTH,
    NOTES_MAX,
    PDU_MAX,
    PO_NUMBER_MAX,
    REASON_DETAIL_MAX,
    ChoiceReason,
)
from marketplace.orders.services.call_offs import call_off_value, in_pounds

CRN_PATTERN = re.compile(r"[A-Z][0-9]{6}")


MAX_FUNDERS = 10


@dataclass(frozen=True)
class FundingShare:
    organisation_id: int
    basis_points: int


@dataclass
class OutcomeTermDetails:
    """One payment-by-results term the lead buyer places a call-off with (after parsing: types,
    not strings). Outcomes checks and keeps it (``orders.signals.checking_outcome_terms``)."""

    outcome: str = ""
    tariff_pence: object = None
    earliest_claim_on: object = None
    evidence_required: str = ""
    cap: object = None


@dataclass
class CallOffDetails:
    """What the buyer enters to place a call-off (after parsing: types, not strings)."""

    quantity: object = None
    start_date: object = None
    end_date: object = None
    crn: str = ""
    pdu: str = ""
    po_number: str = ""
    choice_reason: object = None
    choice_reason_detail: str = ""
    notes_for_provider: str = ""
    shares: Sequence[FundingShare] = field(default_factory=tuple)
    # Optional payment by results, checked and kept by outcomes (see ``OutcomeTermDetails``).
    outcome_terms: Sequence[OutcomeTermDetails] = field(default_factory=tuple)


@dataclass(frozen=True)
class PriceSeen:
    """The price the buyer was shown before placing (check your answers, or an API client's
    expectation): each part that is given must still be the one in force when it is placed."""

    version_id: int | None = None
    unit_price_pence: int | None = None
    vat_treatment: VatTreatment | None = None

    def differs_from(self, price: PriceInForce) -> bool:
        return any(
            seen is not None and seen != now
            for seen, now in (
                (self.version_id, price.version_id),
                (self.unit_price_pence, price.unit_price_pence),
                (self.vat_treatment, price.vat_treatment),
            )
        )

    @property
    def token(self) -> str:
        """The form's hidden value: what check your answers showed."""
        return f"{self.version_id}:{self.unit_price_pence}:{self.vat_treatment}"

    @classmethod
    def from_token(cls, text: object) -> PriceSeen:
        """What a form said it showed; one that says nothing usable matches no price (the
        buyer is shown the price and asked again)."""
        parts = str(text or "").split(":")
        if len(parts) == 3 and parts[0].isdigit() and parts[1].isdigit():
            with contextlib.suppress(ValueError):
                return cls(int(parts[0]), int(parts[1]), VatTreatment(parts[2]))
        return cls(version_id=0)


class PriceChanged(BusinessRuleViolation):
    """The price in force is not the one the buyer was shown: nothing is placed, and the buyer
    is told the new price and asked again."""

    status = 409
    title = "The price has changed"

    def __init__(self, message: str, price: PriceInForce):
        super().__init__({"price": [message]})
        self.price = price


def price_changed(
    listing: Listing, seen: PriceSeen, price: PriceInForce, quantity: int
) -> PriceChanged:
    old = seen.unit_price_pence
    if old is None and seen.version_id:
        old = unit_price_of_version(listing.id, seen.version_id)
    gross = call_off_value(price.unit_price_pence, quantity, price.vat_treatment)[2]
    now = f"{in_pounds(price.unit_price_pence)} per {listing.unit.label} excluding VAT"
    total = f"this call-off would come to {in_pounds(gross)} including VAT"
    if old is not None and old != price.unit_price_pence:
        message = (
            f"The price of this service changed after you checked your answers: it is now "
            f"{now} (it was {in_pounds(old)}), so {total}. Check the new price, then place the "
            "call-off again"
        )
    elif seen.vat_treatment is not None and seen.vat_treatment != price.vat_treatment:
        message = (
            f"The VAT on this service changed after you checked your answers, so {total}. "
            "Check the new total, then place the call-off again"
        )
    else:
        message = (
            f"Check the price of this service: it is {now}, so {total}. Then place the "
            "call-off again"
        )
    return PriceChanged(message, price)


def check_details(details: CallOffDetails, today: date | None = None) -> dict[str, list[str]]:
    """Shape checks that need no database, shared by the form, the API and the service."""
    errors: dict[str, list[str]] = {}
    quantity = details.quantity
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        errors["quantity"] = ["Enter the number of units as a whole number, like 12"]
    elif quantity < 1:
        errors["quantity"] = ["The number of units must be 1 or more"]
    if not isinstance(details.start_date, date):
        errors["start_date"] = ["Enter the start date"]
    elif message := date_horizon_error(details.start_date, "The start date", today=today):
        errors["start_date"] = [message]
    if not isinstance(details.end_date, date):
        errors["end_date"] = ["Enter the planned end date"]
    elif isinstance(details.start_date, date) and details.end_date < details.start_date:
        errors["end_date"] = ["The planned end date must be the same as or after the start date"]
    elif message := date_horizon_error(
        details.end_date, "The planned end date", start=details.start_date, today=today
    ):
        # Capacity, budgets and invoices count the months from start to end: 9999-12-31 is a
        # typing mistake that would make them count eight thousand years.
        errors["end_date"] = [message]
    crn = (details.crn or "").strip()
    if not crn:
        errors["crn"] = ["Enter the person's CRN"]
    elif len(crn) != CRN_LENGTH or not CRN_PATTERN.fullmatch(crn):
        errors["crn"] = ["Enter a CRN as one capital letter and six digits, like X123456"]
    pdu = (details.pdu or "").strip()
    if not pdu:
        errors["pdu"] = ["Enter the probation delivery unit (PDU)"]
    elif len(pdu) > PDU_MAX:
        errors["pdu"] = [f"The PDU must be {PDU_MAX} characters or fewer"]
    po_number = (details.po_number or "").strip()
    if not po_number:
        errors["po_number"] = ["Enter the purchase order number"]
    elif len(po_number) > PO_NUMBER_MAX:
        errors["po_number"] = [
            f"The purchase order number must be {PO_NUMBER_MAX} characters or fewer"
        ]
    try:
        ChoiceReason(details.choice_reason)
    except ValueError:
        errors["choice_reason"] = ["Choose the reason for choosing this provider"]
    if len(details.choice_reason_detail or "") > REASON_DETAIL_MAX:
        errors["choice_reason_detail"] = [
            f"The explanation must be {REASON_DETAIL_MAX} characters or fewer"
        ]
    if len(details.notes_for_provider or "") > NOTES_MAX:
        errors["notes_for_provider"] = [f"Notes must be {NOTES_MAX} characters or fewer"]
    return errors


def check_shares(
    organisation: Organisation, shares: Sequence[FundingShare]
) -> tuple[list[FundingShare], dict[str, list[str]], dict[int, Organisation]]:
    """The shares with the lead first, errors, and the funders by id.

    A problem with one funder is keyed by its entry in ``shares`` as given
    (``shares-<n>-organisation_id``), so that a page can show it on that funder's row and the
    API names the entry; a problem with the shares as a whole is under ``shares``."""
    given = list(shares)
    if not shares:
        shares = [FundingShare(organisation.id, BASIS_POINTS_WHOLE)]
    errors: dict[str, list[str]] = {}

    def refuse(key: str, message: str) -> None:
        if message not in errors.setdefault(key, []):
            errors[key].append(message)

    ids = [share.organisation_id for share in shares]
    if len(shares) > MAX_FUNDERS:
        refuse("shares", f"A call-off can have at most {MAX_FUNDERS} funders")
    seen: set = set()
    for index, pk in enumerate(ids if given else ()):
        if pk in seen:
            refuse(f"shares-{index}-organisation_id", "Name each funder once")
        seen.add(pk)
    if organisation.id not in ids:
        refuse("shares", "Your organisation places the call-off, so it must fund a share of it")
    for share in shares:
        points = share.basis_points
        if isinstance(points, bool) or not isinstance(points, int) or points < 1:
            refuse("shares", "Each share must be a whole number of basis points, at least 0.01%")
            break
    # By key; the lead buyer is the organisation given, so a call-off it funds alone reads
    # nothing more (``benchmarks/place_call_offs.py``).
    funders = {organisation.id: organisation} if organisation.id in ids else {}
    funders.update(
        (pk, org)
        for pk in dict.fromkeys(ids)
        if isinstance(pk, int)
        and pk not in funders
        and 1 <= pk <= MAX_ID
        and (org := db.session.get(Organisation, pk)) is not None
    )
    for index, pk in enumerate(ids):
        key = f"shares-{index}-organisation_id" if given else "shares"
        funder = funders.get(pk)
        if funder is None or not funder.active:
            refuse(key, "Choose funders from the commissioning organisations listed")
        elif not funder.type.is_commissioner:
            refuse(key, f"{funder.name} is not a commissioning organisation, so it cannot fund")
    if not errors and sum(share.basis_points for share in shares) != BASIS_POINTS_WHOLE:
        total = sum(share.basis_points for share in shares)
        refuse(
            "shares", f"The shares must add up to exactly 100% (they add up to {total / 100:g}%)"
        )
    ordered = sorted(
        shares, key=lambda s: (s.organisation_id != organisation.id, s.organisation_id)
    )
    return ordered, errors, funders


def funder_key(lead_id: int, given: Sequence[FundingShare], organisation_id: int, what: str) -> str:
    """The answer to change when a funder's budget cannot take its part: the lead buyer's
    budget is the one for the year the start date falls in, and its part follows from the
    quantity; a co-funder's is its entry in the shares given (``what``: ``organisation_id`` for
    a funder without a budget, ``basis_points`` for a part too large)."""
    if organisation_id == lead_id:
        return "start_date" if what == "organisation_id" else "quantity"
    index = next(
        (n for n, share in enumerate(given) if share.organisation_id == organisation_id), None
    )
    return "shares" if index is None else f"shares-{index}-{what}"
