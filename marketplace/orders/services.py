"""Call-off rules: placing at the locked price on a lawful route, funding shares and budgets,
approval, the provider's response with capacity, delivery, cancellation and completion.

Every function takes the acting user, checks that they may act, enforces the rules, writes an
audit event and queues the emails, and flushes without committing. Rules that read and then
write shared totals (budget headroom, listing capacity, a buyer's running total towards the
direct-award limit, a co-funder's standing authorisation) are decided one request after another:
they lock the rows they read first (``lock_rows``), or, for a buyer's running total over many
call-offs, a lock named after the buyer and the service (``lock_name``). Placing a call-off
takes from each funder's budget in one conditional UPDATE per budget, its last statements, so
that a budget's row is held only from there to the commit, not while the call-off is written.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.queries import approvers_and_limits, people_with_roles
from marketplace.accounts.services import absolute_url
from marketplace.accreditation.models import ArrangementStatus, AwardLimitScope
from marketplace.catalogue.models import CapacityCommitment, Listing
from marketplace.catalogue.queries import (
    PriceInForce,
    committed_units,
    first_of_month,
    price_in_force,
    unit_price_of_version,
)
from marketplace.catalogue.search import buyable_listing
from marketplace.core import audit, store
from marketplace.core.clock import (
    add_working_days,
    financial_year,
    financial_year_label,
    london_date,
    utcnow,
)
from marketplace.core.db import MAX_ID, db, lock_name, lock_rows, parse_id
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.money import BASIS_POINTS_WHOLE, VatTreatment, allocate, split_by_basis_points
from marketplace.core.money import vat_pence as vat_on
from marketplace.core.notifications.services import email_people, queue_email
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.validation import add_years, date_horizon_error, horizon_years
from marketplace.orders import signals
from marketplace.orders.models import (
    CALL_OFF_TRANSITIONS,
    COUNTED_STATUSES,
    CRN_LENGTH,
    IDEMPOTENCY_KEY_MAX,
    MAX_VALUE_PENCE,
    NOTES_MAX,
    PDU_MAX,
    PO_NUMBER_MAX,
    PROGRESS_NOTE_MAX,
    REASON_DETAIL_MAX,
    SUMMARY_MAX,
    VARIATION_TRANSITIONS,
    AbsenceReason,
    Attendance,
    AwardRoute,
    Budget,
    CallOff,
    CallOffBudgetPart,
    CallOffFunder,
    CallOffStatus,
    CancellationReason,
    ChoiceReason,
    Delivery,
    FundingAuthorisation,
    IdempotencyRecord,
    OutcomeRecord,
    OutcomeResult,
    Side,
    Variation,
    VariationStatus,
)
from marketplace.orders.permissions import (
    BUYER_ROLES,
    FUNDING_OPEN,
    is_buyer,
    is_party,
    is_provider,
    parties,
    side_of,
)
from marketplace.reference.models import ServiceCategory

CRN_PATTERN = re.compile(r"[A-Z][0-9]{6}")
MAX_FUNDERS = 10
MAX_NAMED_CALL_OFFS = 10  # named in a refusal over the direct-award limit; the rest counted
CALL_OFF_FIELDS = [
    "status",
    "version",
    "quantity",
    "start_date",
    "end_date",
    "unit_price_pence",
    "vat_treatment",
    "net_pence",
    "vat_pence",
    "gross_pence",
    "delivered_units",
]


# ---------------------------------------------------------------------------------------------
# Small helpers


def call_off_reference(call_off_id: int, year: int) -> str:
    """``CO-YYYY-NNNNNN``: the year it was placed and its key, so references never clash."""
    return f"CO-{year}-{call_off_id:06d}"


def _email_buyer(call_off: CallOff, template: str, **context) -> None:
    """The person who placed the call-off, or (if they have gone) the lead buyer's buyers."""
    placed_by = call_off.placed_by
    if placed_by is not None and placed_by.active:
        queue_email(placed_by.email, template, user=placed_by, call_off=call_off, **context)
    else:
        email_people(call_off.lead_buyer_id, BUYER_ROLES, template, call_off=call_off, **context)


def _check(call_off: CallOff, new_status: CallOffStatus, **how) -> None:
    """Lock the call-off and refuse unless it may move to ``new_status`` now."""
    check_transition(call_off, new_status, CALL_OFF_TRANSITIONS, noun="call-off", **how)


def _transition(call_off: CallOff, new_status: CallOffStatus, **how) -> None:
    """Move the call-off on (``marketplace.core.state.transition``: its row locked first)."""
    transition(call_off, new_status, CALL_OFF_TRANSITIONS, noun="call-off", **how)


def _lock(call_off: CallOff, *also: str) -> None:
    """Lock the call-off's row and reload it with its funders (and ``also``): their shares,
    commitments and confirmations, and its variations, change only while it is locked."""
    lock(call_off, "funders", *also)


def _record(actor: User, action: str, call_off: CallOff, before: dict | None, **extra) -> None:
    after = audit.snapshot(call_off, CALL_OFF_FIELDS)
    after.update(extra)
    audit.record(actor, action, call_off, before=before, after=after)


# ---------------------------------------------------------------------------------------------
# Who may see and act


def _require_buyer(actor: User, call_off: CallOff) -> None:
    if not is_buyer(actor, call_off):
        if call_off.provider_id in {m.organisation_id for m in actor.memberships}:
            raise PermissionDenied("Only the buyer can do that")
        raise NotFound("Call-off not found")


def _require_provider(actor: User, call_off: CallOff, roles=frozenset({Role.PROVIDER_ADMIN})):
    if not is_provider(actor, call_off, roles):
        if is_party(actor, call_off):
            raise PermissionDenied("Only the provider can do that")
        raise NotFound("Call-off not found")


# ---------------------------------------------------------------------------------------------
# Placing


@dataclass(frozen=True)
class FundingShare:
    organisation_id: int
    basis_points: int


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
    # Optional payment by results: ``marketplace.outcomes.services.OutcomeTermDetails``.
    outcome_terms: Sequence = field(default_factory=tuple)


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


def _price_changed(
    listing: Listing, seen: PriceSeen, price: PriceInForce, quantity: int
) -> PriceChanged:
    old = seen.unit_price_pence
    if old is None and seen.version_id:
        old = unit_price_of_version(listing.id, seen.version_id)
    gross = call_off_value(price.unit_price_pence, quantity, price.vat_treatment)[2]
    now = f"{_pounds(price.unit_price_pence)} per {listing.unit.label} excluding VAT"
    total = f"this call-off would come to {_pounds(gross)} including VAT"
    if old is not None and old != price.unit_price_pence:
        message = (
            f"The price of this service changed after you checked your answers: it is now "
            f"{now} (it was {_pounds(old)}), so {total}. Check the new price, then place the "
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


def _check_shares(
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
    # nothing (even Session.get of an object it holds costs more than the rest of this check).
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


def _funder_key(
    lead_id: int, given: Sequence[FundingShare], organisation_id: int, what: str
) -> str:
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


def spend_limit(actor: User, organisation_id: int) -> int:
    """What the actor may commit of their organisation's money on one call-off unapproved: the
    highest limit their buyer or approver memberships name; unnamed, a buyer's default or, for
    an approver (the budget holder), their approval limit (none: no limit)."""
    memberships = [
        m
        for m in actor.memberships
        if m.organisation_id == organisation_id and m.role in BUYER_ROLES
    ]
    named = [m.spend_limit_pence for m in memberships if m.spend_limit_pence is not None]
    if named:
        return max(named)
    approving = [m for m in memberships if m.role == Role.APPROVER]
    if approving:
        return max(_covers(m.approval_limit_pence) for m in approving)
    return current_app.config["BUYER_SPEND_LIMIT_PENCE"]


def _covers(approval_limit_pence: int | None) -> int:
    """The most an approval limit covers (None: no limit)."""
    return MAX_VALUE_PENCE if approval_limit_pence is None else approval_limit_pence


def approval_amount(call_off: CallOff) -> int:
    """What an approval is for: the lead buyer's share of the value (its own money; co-funders
    confirm theirs), as the placer's spend limit is compared with."""
    return next(f.share_pence for f in call_off.funders if f.is_lead)


def approvers_who_can_approve(
    organisation_id: int, amount: int, placed_by_id: int | None
) -> list[User]:
    """The organisation's active approvers, other than the person who placed it, whose approval
    limit covers ``amount`` (read in this transaction)."""
    return [
        user
        for user, limit in approvers_and_limits(organisation_id)
        if user.id != placed_by_id and amount <= _covers(limit)
    ]


def _names(people: Sequence[User]) -> str:
    names = [person.name for person in people]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _lead_part(gross: int, shares: Sequence[FundingShare]) -> int:
    """The lead buyer's part of ``gross`` (``_check_shares`` puts the lead first)."""
    return split_by_basis_points(gross, [s.basis_points for s in shares])[0]


def _add_errors(errors: dict[str, list[str]], more: dict[str, list[str]]) -> None:
    for key, messages in more.items():
        errors.setdefault(key, []).extend(messages)


def _nobody_can_approve(
    actor: User, organisation: Organisation, lead_share: int
) -> dict[str, list[str]]:
    """At placing: a call-off above the placer's spend limit waits for an approver; if nobody
    else in the organisation can approve it (no other active approver whose limit covers it), it
    would wait for ever, holding its budget, so it is refused before it is placed, saying who can
    fix it. (A buyer expects to hear at once that their purchase cannot go ahead, not to find a
    call-off stuck weeks later with its money held.)"""
    limit = spend_limit(actor, organisation.id)
    if lead_share <= limit or approvers_who_can_approve(organisation.id, lead_share, actor.id):
        return {}
    approvers = [user for user, _ in approvers_and_limits(organisation.id)]
    others = [user for user in approvers if user.id != actor.id]
    message = (
        f"This call-off would cost {organisation.name} {_pounds(lead_share)}, above your spend "
        f"limit of {_pounds(limit)}, so an approver must approve it, but nobody in "
        f"{organisation.name} other than you can approve that much"
    )
    if others:
        message += (
            f". {_names(others)} can raise your spend limit or an approver's approval limit "
            "on the Team page; ask them, or buy less"
        )
    elif approvers:
        message += (
            ". You are its only approver: raise your spend limit on the Team page, or invite "
            "another approver who can approve it"
        )
    else:
        message += (
            f". {organisation.name} has no approvers: ask the marketplace's authority "
            "administrators to invite one"
        )
    return {"quantity": [message]}


def call_off_value(unit_price_pence: int, quantity: int, treatment) -> tuple[int, int, int]:
    """Net, VAT (on the whole, rounded half up) and gross pence of ``quantity`` units."""
    net = unit_price_pence * quantity
    vat = vat_on(net, treatment)
    return net, vat, net + vat


def _counted_where(call_off: CallOff, since: datetime) -> list:
    """The buyer's call-offs that count together with ``call_off`` towards the direct-award
    limit (open or completed: not declined, expired or cancelled) placed since ``since``: with
    the same provider in the same lot (an arrangement's lot is its category), or, where the
    arrangement narrows the rule, for the same listing."""
    where = [
        CallOff.lead_buyer_id == call_off.lead_buyer_id,
        CallOff.provider_id == call_off.provider_id,
        CallOff.category_id == call_off.category_id,
        CallOff.arrangement_id == call_off.arrangement_id,
        CallOff.placed_at >= since,
        CallOff.status.in_(sorted(COUNTED_STATUSES)),
    ]
    if _scope(call_off) == AwardLimitScope.LISTING:
        where.append(CallOff.listing_id == call_off.listing_id)
    return where


def _counted_value_query(call_off: CallOff, since: datetime) -> sa.Select:
    return sa.select(
        sa.func.coalesce(sa.func.sum(CallOff.gross_pence + CallOff.outcome_max_pence), 0)
    ).where(*_counted_where(call_off, since))


def _scope(call_off: CallOff) -> AwardLimitScope:
    return call_off.arrangement.award_limit_scope or AwardLimitScope.PROVIDER_AND_LOT


def _counted_value(call_off: CallOff, since: datetime) -> int:
    """Gross value of the buyer's call-offs counted with this one towards the direct-award
    limit (``_counted_where``), with the most their outcome terms could add."""
    return int(db.session.scalar(_counted_value_query(call_off, since)))


def buyer_total_lock(call_off: CallOff) -> str:
    """The name locked while the buyer's total with the call-off's provider in its lot is
    checked and added to (held to the commit): the buyer's placements and variations with one
    provider in one lot, across all of the provider's listings there, are checked one after
    another, so two at once cannot both fit under the limit; other buyers, providers and lots go
    on in parallel. The narrower per-listing rule counts a subset of the same call-offs, so this
    lock covers it too."""
    return (
        f"direct-award-limit:{call_off.lead_buyer_id}:{call_off.provider_id}:"
        f"{call_off.arrangement_id}:{call_off.category_id}"
    )


def _lookback_start(now: datetime) -> datetime:
    return now - timedelta(days=current_app.config["DIRECT_AWARD_LOOKBACK_DAYS"])


def check_route(call_off: CallOff, extra_gross: int, now: datetime) -> None:
    """Direct award at the rate card only within the arrangement's limit, counting the buyer's
    call-offs with the same provider in the same lot (or for the same listing, if the
    arrangement says so) over the look-back period; above it, further competition. Locks the
    buyer's total first (``buyer_total_lock``)."""
    lock_name(buyer_total_lock(call_off))
    counted = _counted_value(call_off, _lookback_start(now))
    _check_within_limit(call_off, counted, extra_gross, now)


def _check_within_limit(call_off: CallOff, counted: int, extra_gross: int, now: datetime) -> None:
    """The route rule on the buyer's counted value (``_counted_value``, read under the lock on
    it): the call-off's whole-life value with ``extra_gross`` more must keep it within the
    arrangement's direct-award limit. Above it, the buyer is told why in plain words (what was
    counted, the limit, the call-offs counted) and what to do instead."""
    limit = call_off.arrangement.direct_award_limit_pence
    # Whole-life value: the fee and the most its outcome terms could add.
    own = call_off.gross_pence + (call_off.outcome_max_pence or 0)
    if call_off.id is not None and call_off.status in COUNTED_STATUSES:
        counted -= own  # a variation replaces the call-off's own value
    total = counted + own + extra_gross
    if extra_gross == 0 and call_off.id is None and own > limit:
        raise BusinessRuleViolation(
            {
                "quantity": [
                    f"This call-off is worth {_pounds(own)} including VAT, over "
                    f"the direct award limit of {_pounds(limit)}. Buying this much needs a further "
                    "competition among the lot's members, not a direct award from the rate card: "
                    "ask your commercial team to run one, or buy less"
                ]
            }
        )
    if total > limit:
        raise _over_limit_refusal(call_off, counted, total, now)


class AboveDirectAwardLimit(BusinessRuleViolation):
    """The direct-award limit refuses a call-off. ``errors`` says everything in one message (the
    API's); ``short`` and ``explanation`` say the same in parts, so that a page can put a short
    error on the quantity and the explanation beside it, not a paragraph in bold red."""

    def __init__(self, message: str, short: str, explanation: tuple[str, ...]):
        super().__init__({"quantity": [message]})
        self.short, self.explanation = short, explanation


def _over_limit_refusal(
    call_off: CallOff, counted: int, total: int, now: datetime
) -> AboveDirectAwardLimit:
    """Why the limit refuses the call-off, and what to do instead (read only when it does)."""
    limit = call_off.arrangement.direct_award_limit_pence
    since = _lookback_start(now)
    rows = db.session.execute(
        sa.select(
            CallOff.reference, CallOff.gross_pence + CallOff.outcome_max_pence, CallOff.placed_at
        )
        .where(*_counted_where(call_off, since))
        .order_by(CallOff.placed_at, CallOff.id)
    ).all()
    rows = [row for row in rows if row.reference != call_off.reference]
    shown = [f"{row.reference} ({_pounds(row[1])})" for row in rows[:MAX_NAMED_CALL_OFFS]]
    if len(rows) > MAX_NAMED_CALL_OFFS:
        shown.append(f"and {len(rows) - MAX_NAMED_CALL_OFFS} more")
    if _scope(call_off) == AwardLimitScope.LISTING:
        whose = "for this service"
        rule = "Call-offs for the same service count together"
    else:
        lot = db.session.get(ServiceCategory, call_off.category_id)
        whose = f"with {call_off.provider.name} in the {lot.name} lot"
        rule = (
            "Call-offs with the same provider in the same lot count together, whichever of its "
            "services they buy"
        )
    left = max(limit - counted, 0)
    instead = "Needs above the limit must go to further competition, not be split into smaller "
    instead += "call-offs: ask your commercial team to run a further competition among the lot's "
    instead += "members"
    if left:
        instead += f", or buy no more than {_pounds(left)} including VAT directly"
    oldest = ""
    if rows:
        freed = london_date(rows[0].placed_at + (now - since))
        oldest = f"The oldest of them stops counting after {freed.day} {freed:%B %Y}"
    counted_words = (
        f"Your organisation's call-offs {whose} in the last 12 months come to "
        f"{_pounds(counted)} including VAT"
    )
    message = (
        counted_words
        + (f" ({', '.join(shown)})" if shown else "")
        + f"; with this one they would be {_pounds(total)}, over the direct award limit of "
        f"{_pounds(limit)}. {rule}. {instead}" + (f". {oldest}" if oldest else "")
    )
    short = (
        f"With this call-off, your organisation's direct awards {whose} would come to "
        f"{_pounds(total)} in 12 months, over the direct award limit of {_pounds(limit)}: "
        + (f"buy no more than {_pounds(left)} directly, or " if left else "buy ")
        + "through a further competition"
    )
    explanation = (
        counted_words + (f": {', '.join(shown)}." if shown else "."),
        f"{rule}.",
        f"{instead}.",
        *((f"{oldest}.",) if oldest else ()),
    )
    return AboveDirectAwardLimit(message, short, explanation)


def _pounds(pence: int) -> str:
    pounds, rest = divmod(pence, 100)
    return f"£{pounds:,}.{rest:02d}"


def _authorisation(funder_id: int, lead_buyer_id: int, year: int) -> FundingAuthorisation | None:
    return db.session.scalar(
        sa.select(FundingAuthorisation).where(
            FundingAuthorisation.funder_id == funder_id,
            FundingAuthorisation.lead_buyer_id == lead_buyer_id,
            FundingAuthorisation.financial_year == year,
            FundingAuthorisation.revoked_at.is_(None),
        )
    )


@dataclass(frozen=True)
class _FundingBudget:
    """The budget a funder's part of a new call-off comes from, as read when placing it."""

    id: int
    available_pence: int


def year_weights(call_off: CallOff) -> dict[int, int]:
    """The call-off's planned units by financial year: its planned spread of units over its
    months (``capacity_plan``), added up by the year each month falls in."""
    weights: dict[int, int] = {}
    for month, units in capacity_plan(call_off).items():
        year = financial_year(month)
        weights[year] = weights.get(year, 0) + units
    return weights


def split_by_year(amount: int, weights: dict[int, int]) -> dict[int, int]:
    """``amount`` in exact pence by year, in proportion to ``weights`` (the parts sum to it);
    years whose part is nothing are left out, unless every part is (then the first year's)."""
    years = sorted(weights)
    parts = dict(zip(years, allocate(amount, [weights[y] for y in years]), strict=True))
    return {y: p for y, p in parts.items() if p} or {years[0]: 0}


def _funding_budgets_and_counted_value(
    call_off: CallOff, shares: Sequence[FundingShare], now: datetime
) -> tuple[dict[tuple[int, int], _FundingBudget], int]:
    """Each funder's budget for the call-off's category in each financial year its planned
    months fall in (else the funder's general budget for that year), by (funder, year) (one
    missing is left out: see ``_funding_errors``), and the buyer's counted value
    (``_counted_value``), read together in one statement. Placing reads them under the lock on
    the buyer's total, so that the value is current."""
    counted = _counted_value_query(call_off, _lookback_start(now))
    rows = db.session.execute(
        sa.select(
            Budget.id,
            Budget.organisation_id,
            Budget.category_id,
            Budget.financial_year,
            Budget.available_pence,
            counted.scalar_subquery().label("counted_value"),
        ).where(
            Budget.organisation_id.in_([share.organisation_id for share in shares]),
            Budget.financial_year.in_(sorted(year_weights(call_off))),
            sa.or_(Budget.category_id == call_off.category_id, Budget.category_id.is_(None)),
        )
    ).all()
    budgets: dict[tuple[int, int], _FundingBudget] = {}
    for row in rows:
        key = (row.organisation_id, row.financial_year)
        # The category's own budget wins over the general one.
        if key not in budgets or row.category_id == call_off.category_id:
            budgets[key] = _FundingBudget(row.id, int(row.available_pence))
    if rows:
        return budgets, int(rows[0].counted_value)
    return budgets, _counted_value(call_off, _lookback_start(now))  # no funder has a budget


def _funding_errors(
    call_off: CallOff,
    shares: Sequence[FundingShare],
    funders: dict[int, Organisation],
    budgets: dict[tuple[int, int], _FundingBudget],
    given: Sequence[FundingShare],
) -> dict[str, list[str]]:
    """Each funder must have a budget for each financial year the call-off's planned months
    fall in, with room for that year's part of its share; each refusal is keyed by the answer
    to change (``_funder_key``; a later year the lead lacks a budget for: the end date)."""
    errors: dict[str, list[str]] = {}
    start_year = financial_year(call_off.start_date)
    weights = year_weights(call_off)
    parts = split_by_basis_points(call_off.gross_pence, [s.basis_points for s in shares])
    for share, part in zip(shares, parts, strict=True):
        pk = share.organisation_id
        for year, year_part in split_by_year(part, weights).items():
            budget = budgets.get((pk, year))
            if budget is None:
                key = _funder_key(call_off.lead_buyer_id, given, pk, "organisation_id")
                if key == "start_date" and year != start_year:
                    key = "end_date"
                message = (
                    f"{funders[pk].name} has no budget for {financial_year_label(year)}, so it "
                    "cannot fund this call-off"
                )
            elif budget.available_pence < year_part:
                key = _funder_key(call_off.lead_buyer_id, given, pk, "basis_points")
                message = _short_of(funders[pk], year, budget.available_pence, year_part)
            else:
                continue
            errors.setdefault(key, []).append(message)
    return errors


def _short_of(funder: Organisation, year: int, available: int, part: int) -> str:
    return (
        f"{funder.name} has {_pounds(available)} left in its "
        f"{financial_year_label(year)} budget, less than its share of {_pounds(part)}"
    )


def _add_funders(
    call_off: CallOff,
    shares: Sequence[FundingShare],
    funders: dict[int, Organisation],
    budgets: dict[tuple[int, int], _FundingBudget],
    now: datetime,
    actor: User,
) -> None:
    """Split the value by the shares into the call-off's funders, and each share by financial
    year into its parts (``split_by_year``), each to be committed against that year's budget
    (``_take_from_budgets``); co-funders' standing authorisations confirm their shares
    at once, each year's part used from that year's authorisation (all or none). Budgets already
    too small were refused before (``_funding_errors``)."""
    parts = split_by_basis_points(call_off.gross_pence, [s.basis_points for s in shares])
    weights = year_weights(call_off)
    for share, part in zip(shares, parts, strict=True):
        pk = share.organisation_id
        is_lead = pk == call_off.lead_buyer_id
        by_year = split_by_year(part, weights)
        funder = CallOffFunder(
            organisation_id=pk,
            organisation=funders[pk],
            is_lead=is_lead,
            basis_points=share.basis_points,
            share_pence=part,
            committed_pence=part,
            budget_id=budgets[pk, min(by_year)].id,
            parts=[
                CallOffBudgetPart(
                    budget_id=budgets[pk, year].id,
                    financial_year=year,
                    share_pence=year_part,
                    committed_pence=year_part,
                )
                for year, year_part in by_year.items()
            ],
        )
        if is_lead:
            funder.confirmed_at, funder.confirmed_by_id = now, actor.id
        elif _use_authorisations(call_off, pk, part, by_year):
            funder.confirmed_at, funder.preauthorised = now, True
        call_off.funders.append(funder)


def _take_from_budgets(call_off: CallOff, now: datetime, given: Sequence[FundingShare]) -> None:
    """Write the new rows, then commit each funder's part against its budget, all or nothing:
    one UPDATE per budget (in key order, so two placements never wait on each other in a
    circle) that adds the part only if the budget still has it available. These UPDATEs come
    last, after everything else is written, so that each budget's row is locked against other
    writers only from there to the commit: concurrent placements against one budget queue only
    on them, not for their whole transaction (``benchmarks/place_call_offs.py`` places against
    shared budgets from 32 clients and checks no budget is overspent). A budget the session
    holds is given what its row now holds."""
    db.session.flush()
    parts = sorted(
        (part for f in call_off.funders for part in f.parts if part.committed_pence),
        key=lambda part: part.budget_id,
    )
    short: dict[str, list[str]] = {}
    for part in parts:
        committed = _take_from_budget(part.budget_id, part.committed_pence, now)
        if committed is None:
            # Used up since it was read: keyed as ``_funding_errors`` keys it.
            funder = part.funder
            left = db.session.scalar(
                sa.select(Budget.available_pence).where(Budget.id == part.budget_id)
            )
            key = _funder_key(call_off.lead_buyer_id, given, funder.organisation_id, "basis_points")
            message = _short_of(
                funder.organisation, part.financial_year, int(left), part.committed_pence
            )
            short.setdefault(key, []).append(message)
    if short:
        raise BusinessRuleViolation(short)


def _take_from_budget(budget_id: int, amount: int, now: datetime) -> int | None:
    """Add ``amount`` to the budget's committed pence if it still has that much available, in
    one conditional UPDATE; what is now committed, or None if it had not. A copy of the budget
    the session holds is given the row's new values without being marked changed."""
    committed = db.session.scalar(
        sa.update(Budget)
        .where(Budget.id == budget_id, Budget.available_pence >= amount)
        .values(committed_pence=Budget.committed_pence + amount, updated_at=now)
        .returning(Budget.committed_pence)
        .execution_options(synchronize_session=False)
    )
    held = db.session.identity_map.get(
        Budget.__mapper__.identity_key_from_primary_key((budget_id,))
    )
    if committed is not None and held is not None:
        set_committed_value(held, "committed_pence", committed)
        set_committed_value(held, "updated_at", now)
    return committed


def _require_placer(actor: User, organisation: Organisation) -> None:
    if not actor.roles_for(organisation.id) & {Role.BUYER}:
        raise PermissionDenied("Only a buyer can place a call-off for their organisation")
    if not organisation.type.is_commissioner:
        raise PermissionDenied("Only commissioning organisations can place call-offs")


def _check_answers(
    organisation: Organisation,
    listing: Listing,
    details: CallOffDetails,
    today: date,
    price,
) -> tuple[dict[str, list[str]], list[FundingShare], dict[int, Organisation], int]:
    """The rules on the buyer's answers that need no lock: their shape, the shares and funders,
    the arrangement being live, the listing's range of units and notice period, a price in
    force, the outcome terms and the most a call-off can be worth. Shared by placing and by the
    question page (``check_call_off``). Returns (errors, the shares with the lead first, the
    funders by id, the most the outcome terms could add)."""
    errors = check_details(details, today)
    shares, share_errors, funders = _check_shares(organisation, details.shares)
    errors.update(share_errors)
    arrangement = listing.lot.arrangement
    if arrangement.status != ArrangementStatus.LIVE:
        errors.setdefault("", []).append(
            f"{arrangement.name} is not live, so nothing can be bought through it"
        )
    if isinstance(details.quantity, int) and "quantity" not in errors:
        if details.quantity < listing.min_units:
            errors["quantity"] = [
                "This service is sold in call-offs of at least "
                f"{listing.unit.count(listing.min_units)}"
            ]
        elif details.quantity > listing.max_units:
            errors["quantity"] = [
                "This service is sold in call-offs of at most "
                f"{listing.unit.count(listing.max_units)}"
            ]
    earliest = add_working_days(today, listing.lead_time_days)
    if isinstance(details.start_date, date) and details.start_date < earliest:
        errors["start_date"] = [
            f"The provider needs {listing.lead_time_days} working days' notice: the earliest "
            f"start is {earliest.day} {earliest:%B %Y}"
        ]
    if price is None:
        errors.setdefault("", []).append("This service has no price in force today")
    outcome_max = 0
    if details.outcome_terms:
        # Payment by results builds on call-offs: it checks its own terms.
        for term_errors, most in _answers(
            signals.checking_outcome_terms,
            listing,
            start_date=details.start_date,
            vat_treatment=price.vat_treatment if price else listing.vat_treatment,
            terms=details.outcome_terms,
        ):
            errors.update(term_errors)
            outcome_max += most
    if not errors:
        *_, gross = call_off_value(price.unit_price_pence, details.quantity, price.vat_treatment)
        if gross > MAX_VALUE_PENCE:
            errors["quantity"] = ["That is more than a call-off can be worth"]
    return errors, shares, funders, outcome_max


def _answers(signal, sender, **values) -> list:
    """What the receivers of ``signal`` answer; refused if nothing receives it (terms nobody
    checks or keeps must not be placed as if they had been)."""
    if not signal.receivers:
        raise RuntimeError(f"nothing receives {signal.name}: is the outcomes feature loaded?")
    return [answer for _, answer in signal.send(sender, **values)]


def _read_and_check(
    actor: User, organisation: Organisation, listing_id: object, details: CallOffDetails, now
) -> tuple:
    """What checking and placing both begin with: the placer's right, the listing, the price in
    force and the rules on the answers that need no lock (``_check_answers``).
    Returns (listing, price, errors, shares, funders, outcome_max)."""
    _require_placer(actor, organisation)
    today = london_date(now)
    listing = buyable_listing(listing_id)
    if listing is None:
        raise NotFound("Service not found")
    # Money is read in this transaction, never from the worker's copy of the listing: the price
    # in force now, its version and the VAT treatment are what the call-off locks in.
    price = price_in_force(listing.id, today)
    errors, shares, funders, outcome_max = _check_answers(
        organisation, listing, details, today, price
    )
    return listing, price, errors, shares, funders, outcome_max


def check_call_off(
    actor: User,
    organisation: Organisation,
    listing_id: object,
    details: CallOffDetails,
    *,
    now: datetime | None = None,
    refusals: list | None = None,
) -> dict[str, list[str]]:
    """Every check ``place_call_off`` makes, by the same functions, without placing anything:
    the question page runs it so that the buyer hears of each mistake where they made it
    (quantity, start date, a year without a budget, a funder named twice, the direct-award
    limit). Budgets and the buyer's counted value are read without the locks, so placing
    checks them again. Returns the errors by field (none: placing should succeed); a refusal
    that says more than its errors (``AboveDirectAwardLimit``) is added to ``refusals``."""
    now = now or utcnow()
    listing, price, errors, shares, funders, outcome_max = _read_and_check(
        actor, organisation, listing_id, details, now
    )
    if errors:
        return errors
    *_, gross = call_off_value(price.unit_price_pence, details.quantity, price.vat_treatment)
    # What the budget and limit rules read of the call-off it would be; never added.
    call_off = CallOff(
        status=CallOffStatus.DRAFT,
        listing_id=listing.id,
        provider_id=listing.organisation_id,
        lead_buyer_id=organisation.id,
        arrangement_id=listing.lot.arrangement_id,
        category_id=listing.lot.category_id,
        # The objects too, read by the rules (names, the limit), so that they load nothing.
        listing=listing,
        provider=listing.organisation,
        lead_buyer=organisation,
        arrangement=listing.lot.arrangement,
        quantity=details.quantity,
        start_date=details.start_date,
        end_date=details.end_date,
        gross_pence=gross,
        outcome_max_pence=outcome_max,
    )
    budgets, counted = _funding_budgets_and_counted_value(call_off, shares, now)
    errors = _funding_errors(call_off, shares, funders, budgets, details.shares)
    _add_errors(errors, _nobody_can_approve(actor, organisation, _lead_part(gross, shares)))
    try:
        _check_within_limit(call_off, counted, 0, now)
    except BusinessRuleViolation as refusal:
        for key, messages in refusal.errors.items():
            errors.setdefault(key, []).extend(messages)
        if refusals is not None:
            refusals.append(refusal)
    return errors


def place_call_off(
    actor: User,
    organisation: Organisation,
    listing_id: object,
    details: CallOffDetails,
    *,
    now: datetime | None = None,
    price_seen: PriceSeen | None = None,
) -> CallOff:
    """Place a call-off for a listing at today's price, as ``organisation`` (the lead buyer).

    It goes to the co-funders for their shares, then (above the buyer's spend limit) to an
    approver, then to the provider; each step it can skip, it skips. With ``price_seen``, a
    price in force that is not the one the buyer was shown places nothing (``PriceChanged``).
    """
    now = now or utcnow()
    listing, price, errors, shares, funders, outcome_max = _read_and_check(
        actor, organisation, listing_id, details, now
    )
    if errors:
        raise BusinessRuleViolation(errors)
    if price_seen is not None and price_seen.differs_from(price):
        raise _price_changed(listing, price_seen, price, details.quantity)
    arrangement = listing.lot.arrangement
    net, vat, gross = call_off_value(price.unit_price_pence, details.quantity, price.vat_treatment)
    call_off = CallOff(
        status=CallOffStatus.DRAFT,
        listing_id=listing.id,
        provider_id=listing.organisation_id,
        lead_buyer_id=organisation.id,
        arrangement_id=arrangement.id,
        category_id=listing.lot.category_id,
        # The objects too, read by the rules (names, the limit) before the flush sets the keys.
        listing=listing,
        provider=listing.organisation,
        lead_buyer=organisation,
        arrangement=arrangement,
        award_route=AwardRoute.DIRECT_RATE_CARD,
        choice_reason=ChoiceReason(details.choice_reason),
        choice_reason_detail=(details.choice_reason_detail or "").strip(),
        quantity=details.quantity,
        start_date=details.start_date,
        end_date=details.end_date,
        crn=details.crn.strip(),
        pdu=details.pdu.strip(),
        po_number=details.po_number.strip(),
        notes_for_provider=(details.notes_for_provider or "").strip(),
        unit=listing.unit,
        unit_price_pence=price.unit_price_pence,
        vat_treatment=price.vat_treatment,
        price_version_id=price.version_id,
        net_pence=net,
        vat_pence=vat,
        gross_pence=gross,
        outcome_max_pence=outcome_max,
        placed_by_id=actor.id,
        placed_by=actor,
        placed_at=now,
        # A new call-off has none of these yet: known, so the answer does not read them back.
        deliveries=[],
        variations=[],
        outcomes=[],
    )
    # The buyer's total with the provider in the lot is locked before it is read, and held to
    # the commit: two placements cannot both fit under the direct-award limit.
    lock_name(buyer_total_lock(call_off))
    budgets, counted = _funding_budgets_and_counted_value(call_off, shares, now)
    errors = _funding_errors(call_off, shares, funders, budgets, details.shares)
    _add_errors(errors, _nobody_can_approve(actor, organisation, _lead_part(gross, shares)))
    if errors:
        raise BusinessRuleViolation(errors)
    _check_within_limit(call_off, counted, 0, now)
    _add_funders(call_off, shares, funders, budgets, now, actor)
    call_off.id = store.next_id(CallOff)
    call_off.reference = call_off_reference(call_off.id, london_date(now).year)
    db.session.add(call_off)
    audit.record(actor, "call_off.placed", call_off, after=_placed_snapshot(call_off))
    if details.outcome_terms:
        _answers(
            signals.call_off_placed_with_terms,
            call_off,
            actor=actor,
            terms=details.outcome_terms,
            now=now,
        )
    _advance(actor, call_off, now)
    _take_from_budgets(call_off, now, details.shares)
    return call_off


def _placed_snapshot(call_off: CallOff) -> dict:
    data = audit.snapshot(call_off, CALL_OFF_FIELDS)
    data.update(
        reference=call_off.reference,
        listing_id=call_off.listing_id,
        price_version_id=call_off.price_version_id,
        award_route=call_off.award_route.value,
        choice_reason=call_off.choice_reason.value,
        funders=[
            {
                "organisation_id": f.organisation_id,
                "basis_points": f.basis_points,
                "share_pence": f.share_pence,
                "preauthorised": f.preauthorised,
            }
            for f in call_off.funders
        ],
    )
    return data


def _needs_approval(call_off: CallOff) -> bool:
    lead = next(f for f in call_off.funders if f.is_lead)
    placed_by = call_off.placed_by
    if placed_by is None:
        return True
    return lead.share_pence > spend_limit(placed_by, call_off.lead_buyer_id)


def _advance(actor: User, call_off: CallOff, now: datetime) -> None:
    """Move a call-off on as far as it can go: funding, then approval, then to the provider."""
    if call_off.status == CallOffStatus.DRAFT:
        waiting = [f for f in call_off.funders if f.confirmed_at is None]
        if waiting:
            _transition(call_off, CallOffStatus.AWAITING_FUNDING)
            for funder in waiting:
                email_people(
                    funder.organisation_id,
                    [Role.APPROVER],
                    "orders_funding_requested",
                    call_off=call_off,
                    funder=funder,
                    # The year its budget was chosen for (``_funding_budgets_and_counted_value``).
                    budget_year=financial_year_label(financial_year(call_off.start_date)),
                )
            return
        call_off.funding_confirmed_at = now
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        if any(f.confirmed_at is None for f in call_off.funders):
            return
        call_off.funding_confirmed_at = now
    if _needs_approval(call_off):
        _transition(call_off, CallOffStatus.AWAITING_APPROVAL)
        approvers = approvers_who_can_approve(
            call_off.lead_buyer_id, approval_amount(call_off), call_off.placed_by_id
        )
        for approver in approvers:
            queue_email(
                approver.email, "orders_approval_requested", user=approver, call_off=call_off
            )
        return
    _send(call_off, now)


def _send(call_off: CallOff, now: datetime, **how) -> None:
    _transition(call_off, CallOffStatus.SENT, **how)
    call_off.sent_at = now
    call_off.respond_by = add_working_days(
        london_date(now), current_app.config["CALL_OFF_RESPONSE_DAYS"]
    )
    email_people(
        call_off.provider_id,
        [Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR],
        "orders_sent_to_provider",
        call_off=call_off,
    )


# ---------------------------------------------------------------------------------------------
# Funding and approval


def confirm_funding(
    actor: User, call_off: CallOff, organisation: Organisation, *, now: datetime | None = None
) -> CallOff:
    """A co-funder's approver confirms its share."""
    funder = next((f for f in call_off.funders if f.organisation_id == organisation.id), None)
    if funder is None or not actor.roles_for(organisation.id):
        raise NotFound("Call-off not found")
    if Role.APPROVER not in actor.roles_for(organisation.id):
        raise PermissionDenied("Only an approver can confirm your organisation's share")
    # Locked first: two co-funders confirming at once must both be seen by the second, which
    # then moves the call-off on (and the same approver's double click confirms once).
    _lock(call_off)
    if funder.confirmed_at is not None:
        raise TransitionConflict({"status": ["Your organisation has already confirmed its share"]})
    if funder.declined_at is not None:
        raise TransitionConflict({"status": ["Your organisation has already declined its share"]})
    # While the lead buyer decides after another co-funder's decline, a confirmation still
    # counts (a re-split keeps it unless the share grows); the call-off moves on only later.
    if call_off.status not in FUNDING_OPEN:
        raise TransitionConflict(
            {"status": [f"This call-off is {call_off.status.label.lower()}, not awaiting funding"]}
        )
    now = now or utcnow()
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    funder.confirmed_at, funder.confirmed_by_id = now, actor.id
    _record(
        actor,
        "call_off.funding_confirmed",
        call_off,
        before,
        funder_id=organisation.id,
        share_pence=funder.share_pence,
    )
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        _advance(actor, call_off, now)
    # The lead buyer learns of each confirmation, and what the call-off waits for now.
    _email_buyer(
        call_off,
        "orders_funding_confirmed",
        funder=funder,
        waiting=[f.organisation.name for f in call_off.funders if f.confirmed_at is None],
        link=absolute_url("orders.show", call_off_id=call_off.id),
    )
    return call_off


def approve(actor: User, call_off: CallOff, *, now: datetime | None = None) -> CallOff:
    """An approver of the lead buyer, who did not place it, approves the spend."""
    roles = actor.roles_for(call_off.lead_buyer_id)
    if not roles:
        _require_buyer(actor, call_off)
    if Role.APPROVER not in roles:
        raise PermissionDenied("Only an approver can approve a call-off")
    if actor.id == call_off.placed_by_id:
        raise PermissionDenied("You placed this call-off, so another approver must approve it")
    now = now or utcnow()
    approving = {"done": "approved", "only_from": {CallOffStatus.AWAITING_APPROVAL}}
    _check(call_off, CallOffStatus.SENT, **approving)
    # The limit read in this transaction, after the lock: one lowered meanwhile counts.
    amount = approval_amount(call_off)
    limits = dict((user.id, limit) for user, limit in approvers_and_limits(call_off.lead_buyer_id))
    if amount > _covers(limits.get(actor.id)):
        others = approvers_who_can_approve(call_off.lead_buyer_id, amount, call_off.placed_by_id)
        raise PermissionDenied(
            f"This call-off would cost {call_off.lead_buyer.name} {_pounds(amount)}, above your "
            f"approval limit of {_pounds(limits[actor.id])}: "
            + (
                f"{_names(others)} can approve it"
                if others
                else "nobody else can approve it yet; an approver can raise a limit on the Team "
                "page"
            )
        )
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    call_off.approved_at, call_off.approved_by_id = now, actor.id
    _send(call_off, now, **approving)
    _record(actor, "call_off.approved", call_off, before)
    _email_buyer(call_off, "orders_approved")
    return call_off


# ---------------------------------------------------------------------------------------------
# A co-funder declines its share; the lead buyer re-splits the shares (or cancels)


def _give_back(call_off: CallOff, funder: CallOffFunder) -> int:
    """Release what ``funder`` still commits, year by year: from each year's budget and, for a
    share its standing authorisations confirmed, from each year's authorisation. The budgets
    are locked by the caller. Returns the pence released."""
    released = 0
    for part in funder.parts:
        if part.committed_pence:
            part.budget.committed_pence -= part.committed_pence
            _release_authorisation(call_off, funder, part.financial_year, part.committed_pence)
            released += part.committed_pence
            part.committed_pence = 0
    funder.committed_pence = 0
    return released


def _release_authorisation(
    call_off: CallOff, funder: CallOffFunder, year: int, amount: int
) -> None:
    """Give back ``amount`` of the year's standing authorisation that confirmed ``funder``'s
    share (an authorisation's used total counts only what its call-offs still commit)."""
    if not funder.preauthorised or amount <= 0:
        return
    authorisation = _authorisation(funder.organisation_id, call_off.lead_buyer_id, year)
    if authorisation is not None:
        lock_rows(FundingAuthorisation, [authorisation.id])
        authorisation.used_pence -= min(amount, authorisation.used_pence)


def _use_authorisations(
    call_off: CallOff, organisation_id: int, share_pence: int, by_year: dict[int, int]
) -> bool:
    """Use the co-funder's standing authorisations of the lead buyer for each year's part of
    its share, all or none: each year needs one whose per-call-off value covers the share and
    whose yearly total has room for the part. True if they were used."""
    found = {
        year: _authorisation(organisation_id, call_off.lead_buyer_id, year) for year in by_year
    }
    if not all(found.values()):
        return False
    lock_rows(FundingAuthorisation, [a.id for a in found.values()])
    if not all(
        share_pence <= found[year].per_call_off_limit_pence
        and found[year].used_pence + part <= found[year].annual_limit_pence
        for year, part in by_year.items()
    ):
        return False
    for year, part in by_year.items():
        found[year].used_pence += part
    return True


def _preauthorise(call_off: CallOff, funder: CallOffFunder, now: datetime) -> None:
    """Confirm a co-funder's share by its standing authorisations of the lead buyer, as placing
    does (``_add_funders``), if they cover each year's part."""
    by_year = {part.financial_year: part.share_pence for part in funder.parts}
    if _use_authorisations(call_off, funder.organisation_id, funder.share_pence, by_year):
        funder.confirmed_at, funder.confirmed_by_id, funder.preauthorised = now, None, True


def _lead_buyer_people(call_off: CallOff) -> list[User]:
    """Whoever placed the call-off (if still active) and the lead buyer's approvers, once each."""
    people: dict[int, User] = {}
    placed_by = call_off.placed_by
    if placed_by is not None and placed_by.active:
        people[placed_by.id] = placed_by
    for user in people_with_roles(call_off.lead_buyer_id, [Role.APPROVER]):
        people.setdefault(user.id, user)
    return list(people.values())


def decline_funding(
    actor: User,
    call_off: CallOff,
    organisation: Organisation,
    reason: str,
    *,
    now: datetime | None = None,
) -> CallOff:
    """A co-funder's approver declines its share, with a reason: its commitment is released
    and the call-off waits for the lead buyer to re-split the shares or cancel."""
    funder = next((f for f in call_off.funders if f.organisation_id == organisation.id), None)
    if funder is None or funder.is_lead or not actor.roles_for(organisation.id):
        raise NotFound("Call-off not found")
    if Role.APPROVER not in actor.roles_for(organisation.id):
        raise PermissionDenied("Only an approver can decline your organisation's share")
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation(
            {"reason": ["Enter why your organisation is declining its share"]}
        )
    if len(reason) > REASON_DETAIL_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_DETAIL_MAX} characters or fewer"]}
        )
    now = now or utcnow()
    # Locked first (and the funders reloaded): of two declines, or a decline and a confirmation,
    # at once, the second sees what the first did and is refused.
    _lock(call_off)
    funder = next(f for f in call_off.funders if f.organisation_id == organisation.id)
    if funder.declined_at is not None:
        raise TransitionConflict({"status": ["Your organisation has already declined its share"]})
    if funder.confirmed_at is not None and not funder.preauthorised:
        raise TransitionConflict({"status": ["Your organisation has already confirmed its share"]})
    if call_off.status not in FUNDING_OPEN:
        raise TransitionConflict(
            {
                "status": [
                    f"This call-off is {call_off.status.label.lower()}, so its shares can no "
                    "longer be declined"
                ]
            }
        )
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    lock_rows(Budget, [part.budget_id for part in funder.parts])
    released = _give_back(call_off, funder)
    funder.confirmed_at = funder.confirmed_by_id = None
    funder.preauthorised = False
    funder.declined_at, funder.declined_by_id, funder.decline_reason = now, actor.id, reason
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        _transition(call_off, CallOffStatus.FUNDING_DECLINED)
    _record(
        actor,
        "call_off.funding_declined",
        call_off,
        before,
        funder_id=organisation.id,
        share_pence=funder.share_pence,
        released_pence=released,
        reason=reason,
    )
    link = absolute_url("orders.show", call_off_id=call_off.id)
    for person in _lead_buyer_people(call_off):
        queue_email(
            person.email,
            "orders_funding_declined",
            user=person,
            call_off=call_off,
            funder=funder,
            reason=reason,
            link=link,
        )
    return call_off


def _require_lead_buyer(actor: User, call_off: CallOff) -> None:
    """Only the lead buyer's buyers and approvers; another party is refused (403), anyone else
    is not told the call-off exists (404)."""
    if is_buyer(actor, call_off):
        return
    if is_party(actor, call_off):
        raise PermissionDenied("Only the lead buyer can change the funders' shares")
    raise NotFound("Call-off not found")


def resplit_funding(
    actor: User,
    call_off: CallOff,
    shares: Sequence[FundingShare],
    *,
    now: datetime | None = None,
) -> CallOff:
    """After a co-funder declined, the lead buyer shares the call-off out again: between the
    remaining funders and others, or all to itself. The new shares pass the checks placing
    makes (``_check_shares``, ``_funding_errors``); a funder whose share is new or larger is
    asked to confirm it again (unless its standing authorisation covers it), the others stay
    confirmed, and funders left out are released."""
    _require_lead_buyer(actor, call_off)
    now = now or utcnow()
    _lock(call_off)
    if call_off.status != CallOffStatus.FUNDING_DECLINED:
        if call_off.is_open:
            message = (
                "No co-funder has declined its share of this call-off, so its shares cannot be "
                "changed"
            )
        else:
            message = (
                f"This call-off is {call_off.status.label.lower()}, so its shares cannot be changed"
            )
        raise TransitionConflict({"status": [message]})
    ordered, errors, funders = _check_shares(call_off.lead_buyer, shares)
    if errors:
        raise BusinessRuleViolation(errors)
    budgets, _ = _funding_budgets_and_counted_value(call_off, ordered, now)
    held = {f.organisation_id: f for f in call_off.funders}
    # Every budget the old and new shares touch, locked in key order and read as they are now.
    locked = {
        b.id: b
        for b in lock_rows(
            Budget,
            [b.id for b in budgets.values()]
            + [part.budget_id for f in held.values() for part in f.parts],
        )
    }
    # What a funder commits now in a year is available to its new share from the same budget.
    committed_here: dict[tuple[int, int], int] = {}
    for f in held.values():
        for part in f.parts:
            key = (f.organisation_id, part.budget_id)
            committed_here[key] = committed_here.get(key, 0) + part.committed_pence
    available = {
        (pk, year): _FundingBudget(
            b.id, locked[b.id].available_pence + committed_here.get((pk, b.id), 0)
        )
        for (pk, year), b in budgets.items()
    }
    errors = _funding_errors(call_off, ordered, funders, available, shares)
    if errors:
        # The lead buyer's budget is named by the placing answers (start date, quantity) that
        # a re-split cannot change: its refusal is about the shares.
        for key in ("start_date", "end_date", "quantity"):
            if key in errors:
                errors.setdefault("shares", []).extend(errors.pop(key))
        raise BusinessRuleViolation(errors)
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    before["funders"] = _shares_snapshot(call_off)
    parts = split_by_basis_points(call_off.gross_pence, [s.basis_points for s in ordered])
    weights = year_weights(call_off)
    asked: list[CallOffFunder] = []
    for share, part in zip(ordered, parts, strict=True):
        pk = share.organisation_id
        by_year = split_by_year(part, weights)
        funder = held.get(pk)
        if funder is None:
            funder = CallOffFunder(
                organisation_id=pk,
                organisation=funders[pk],
                is_lead=False,
                committed_pence=0,
                preauthorised=False,
            )
            call_off.funders.append(funder)
            ask = True
        else:
            ask = not funder.is_lead and (
                funder.declined_at is not None
                or share.basis_points > funder.basis_points
                or part > funder.share_pence
            )
            # Its old commitment is given back, and its new parts taken, below.
            kept_by_authorisation = funder.preauthorised and not ask
            _give_back(call_off, funder)
            if kept_by_authorisation:
                _retake_authorisation(call_off, funder, by_year)
        funder.basis_points, funder.share_pence = share.basis_points, part
        first = locked[budgets[pk, min(by_year)].id]
        funder.budget_id, funder.budget = first.id, first
        _set_parts(funder, by_year, {year: locked[budgets[pk, year].id] for year in by_year})
        if ask:
            funder.declined_at = funder.declined_by_id = funder.decline_reason = None
            funder.confirmed_at = funder.confirmed_by_id = None
            funder.preauthorised = False
            _preauthorise(call_off, funder, now)
            if funder.confirmed_at is None:
                asked.append(funder)
    kept = {share.organisation_id for share in ordered}
    released: list[tuple[Organisation, int]] = []
    for funder in [f for f in call_off.funders if f.organisation_id not in kept]:
        amount = _give_back(call_off, funder)
        if funder.declined_at is None:  # a funder that declined knows; the others are told
            released.append((funder.organisation, amount))
        call_off.funders.remove(funder)  # deleted with the flush (delete-orphan)
    _transition(call_off, CallOffStatus.AWAITING_FUNDING)
    _record(actor, "call_off.funding_resplit", call_off, before, funders=_shares_snapshot(call_off))
    # On at once if every share is confirmed (to approval above the placer's spend limit, or
    # to the provider); else it waits for the funders asked.
    _advance(actor, call_off, now)
    year = financial_year_label(financial_year(call_off.start_date))
    for funder in asked:
        email_people(
            funder.organisation_id,
            [Role.APPROVER],
            "orders_funding_resplit",
            call_off=call_off,
            funder=funder,
            budget_year=year,
        )
    for organisation, amount in released:
        email_people(
            organisation.id,
            [Role.APPROVER],
            "orders_funding_released",
            call_off=call_off,
            organisation=organisation,
            amount=amount,
        )
    return call_off


def _retake_authorisation(
    call_off: CallOff, funder: CallOffFunder, by_year: dict[int, int]
) -> None:
    """A share its standing authorisations confirmed, now no larger: each year's authorisation
    counts the new part (it covered the larger one, so the share stays confirmed)."""
    for year, part in by_year.items():
        authorisation = _authorisation(funder.organisation_id, call_off.lead_buyer_id, year)
        if authorisation is not None:
            authorisation.used_pence += part


def _set_parts(funder: CallOffFunder, by_year: dict[int, int], budgets: dict[int, Budget]) -> None:
    """Commit ``funder``'s new share, each year's part against that year's (locked) budget. A
    year's row is changed in place, not replaced: one row per funder and year."""
    rows = {part.financial_year: part for part in funder.parts}
    for year, amount in by_year.items():
        row = rows.pop(year, None)
        if row is None:
            row = CallOffBudgetPart(financial_year=year)
            funder.parts.append(row)
        row.budget_id, row.budget = budgets[year].id, budgets[year]
        row.share_pence = row.committed_pence = amount
        budgets[year].committed_pence += amount
    for row in rows.values():  # a year the new share has no part in
        funder.parts.remove(row)
    funder.committed_pence = sum(by_year.values())


def _shares_snapshot(call_off: CallOff) -> list[dict]:
    return [
        {
            "organisation_id": f.organisation_id,
            "basis_points": f.basis_points,
            "share_pence": f.share_pence,
            "confirmed": f.confirmed_at is not None,
            "declined": f.declined_at is not None,
        }
        for f in call_off.funders
    ]


# ---------------------------------------------------------------------------------------------
# Budgets: releasing and spending


def _release(call_off: CallOff) -> None:
    """Give back to each funder's budget for each year what the call-off still commits there
    (and to the standing authorisations that confirmed a share, that year's use)."""
    parts = [part for funder in call_off.funders for part in funder.parts]
    lock_rows(Budget, (part.budget_id for part in parts))
    for funder in call_off.funders:
        _give_back(call_off, funder)
    for funder in call_off.funders:
        funder.committed_pence = 0


def _spend_delivered(call_off: CallOff, new_delivered_units: int, day: date) -> None:
    """Move the value of newly delivered units from committed to spent, per funder, so that the
    parts spent always sum exactly to the value of the units delivered so far. It is spent from
    the budget of the year ``day`` falls in (the funder's part for that year; a delivery outside
    the planned years, from the nearest year's), and its commitment is released from that
    year's part first, then from the other years', latest first (delivered sooner than
    planned)."""
    parts = [part for funder in call_off.funders for part in funder.parts]
    lock_rows(Budget, (part.budget_id for part in parts))
    shares = [f.basis_points for f in call_off.funders]
    year = financial_year(day)

    def spent_parts(units: int) -> list[int]:
        *_, value = call_off_value(call_off.unit_price_pence, units, call_off.vat_treatment)
        return split_by_basis_points(min(value, call_off.gross_pence), shares)

    before = spent_parts(call_off.delivered_units)
    after = spent_parts(new_delivered_units)
    for funder, old, new in zip(call_off.funders, before, after, strict=True):
        delta = min(new - old, funder.committed_pence)
        if delta <= 0 or not funder.parts:
            continue
        target = min(funder.parts, key=lambda p: (abs(p.financial_year - year), p.financial_year))
        target.budget.spent_pence += delta
        others = sorted(
            (p for p in funder.parts if p is not target), key=lambda p: -p.financial_year
        )
        left = delta
        for part in (target, *others):
            taken = min(left, part.committed_pence)
            part.committed_pence -= taken
            part.budget.committed_pence -= taken
            left -= taken
        funder.committed_pence -= delta
    call_off.delivered_units = new_delivered_units


# ---------------------------------------------------------------------------------------------
# The provider's response, and capacity


def _months(start: date, end: date) -> list[date]:
    """The first days of the months from ``start``'s to ``end``'s (empty if end is earlier).

    Dates are checked against the horizon when entered, but a call-off placed before they were
    may end in 9999: its months are refused here, with a message, rather than counted until the
    date overflows (a 500 on every accept)."""
    if end > add_years(start, horizon_years()):
        raise BusinessRuleViolation(
            {
                "end_date": [
                    f"This call-off runs from {start.day} {start:%B %Y} to {end.day} "
                    f"{end:%B %Y}, more than {horizon_years()} years: its dates must be a "
                    "mistake. Cancel it and place it again with the right dates"
                ]
            }
        )
    months: list[date] = []
    month, last = first_of_month(start), first_of_month(end)
    while month <= last:
        months.append(month)
        month = first_of_month(month + timedelta(days=32))
    return months


def capacity_plan(call_off: CallOff, units: int | None = None) -> dict[date, int]:
    """The units spread evenly over the months from start to end (largest remainder: earlier
    months take the odd units)."""
    months = _months(call_off.start_date, call_off.end_date)
    parts = allocate(call_off.quantity if units is None else units, [1] * len(months))
    return {m: n for m, n in zip(months, parts, strict=True) if n}


def _check_capacity(
    call_off: CallOff, plan: dict[date, int], own: dict[date, int] | None = None
) -> None:
    """Refuse if ``plan`` would take a month past the listing's capacity (``own``: units this
    call-off already holds in those months, which the plan replaces). Locks the listing."""
    listing: Listing = call_off.listing
    lock_rows(Listing, [listing.id])
    taken = committed_units([listing.id], list(plan))
    own = own or {}
    full = [
        month
        for month, units in plan.items()
        if taken.get((listing.id, month), 0) - own.get(month, 0) + units > listing.monthly_capacity
    ]
    if full:
        names = ", ".join(f"{m:%B %Y}" for m in full)
        raise BusinessRuleViolation(
            {
                "capacity": [
                    f"This would take more than the service's monthly capacity of "
                    f"{listing.unit.count(listing.monthly_capacity)} in {names}. Decline it, or "
                    "raise the capacity on the listing first"
                ]
            }
        )


def _commit_capacity(call_off: CallOff, plan: dict[date, int], now: datetime) -> None:
    for month, units in plan.items():
        db.session.add(
            CapacityCommitment(
                listing_id=call_off.listing_id,
                month=month,
                units=units,
                source=call_off.reference,
                created_at=now,
            )
        )


def _free_capacity(call_off: CallOff, from_month: date | None = None) -> None:
    statement = sa.delete(CapacityCommitment).where(
        CapacityCommitment.listing_id == call_off.listing_id,
        CapacityCommitment.source == call_off.reference,
    )
    if from_month is not None:
        statement = statement.where(CapacityCommitment.month >= from_month)
    db.session.execute(statement)


def accept(actor: User, call_off: CallOff, *, now: datetime | None = None) -> CallOff:
    """The provider accepts within the response period; the units take its capacity."""
    _require_provider(actor, call_off)
    now = now or utcnow()
    # First, so that of two acceptances at once the second waits here and is then refused
    # ("already accepted") before it checks or takes any capacity.
    _check(call_off, CallOffStatus.ACCEPTED)
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    if call_off.respond_by is not None and london_date(now) > call_off.respond_by:
        raise BusinessRuleViolation(
            {
                "status": [
                    f"The time to respond ended on {call_off.respond_by.day} "
                    f"{call_off.respond_by:%B %Y}, so this call-off can no longer be accepted"
                ]
            }
        )
    plan = capacity_plan(call_off)
    _check_capacity(call_off, plan)
    _commit_capacity(call_off, plan, now)
    _transition(call_off, CallOffStatus.ACCEPTED)
    call_off.accepted_at, call_off.accepted_by_id = now, actor.id
    _record(actor, "call_off.accepted", call_off, before)
    _email_buyer(call_off, "orders_accepted")
    return call_off


def decline(actor: User, call_off: CallOff, reason: str, *, now: datetime | None = None) -> CallOff:
    _require_provider(actor, call_off)
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({"reason": ["Enter why you are declining this call-off"]})
    if len(reason) > REASON_DETAIL_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_DETAIL_MAX} characters or fewer"]}
        )
    now = now or utcnow()
    _lock(call_off)
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    _transition(call_off, CallOffStatus.DECLINED)
    call_off.declined_at, call_off.declined_by_id, call_off.decline_reason = now, actor.id, reason
    _release(call_off)
    _record(actor, "call_off.declined", call_off, before, reason=reason)
    _email_buyer(call_off, "orders_declined")
    return call_off


def expire_overdue(now: datetime | None = None) -> list[CallOff]:
    """Call-offs sent and not answered by the end of their response period become expired, and
    their budgets are released (safe to run again: only ``sent`` ones past their date)."""
    now = now or utcnow()
    today = london_date(now)
    overdue = list(
        db.session.scalars(
            sa.select(CallOff)
            .where(CallOff.status == CallOffStatus.SENT, CallOff.respond_by < today)
            .order_by(CallOff.id)
        )
    )
    for call_off in overdue:
        _lock(call_off)
        if call_off.status != CallOffStatus.SENT:
            continue  # answered meanwhile
        before = audit.snapshot(call_off, CALL_OFF_FIELDS)
        _transition(call_off, CallOffStatus.EXPIRED)
        call_off.expired_at = now
        _release(call_off)
        _record(None, "call_off.expired", call_off, before)
        _email_buyer(call_off, "orders_expired")
    return overdue


# ---------------------------------------------------------------------------------------------
# Cancelling and completing


def cancel(
    actor: User,
    call_off: CallOff,
    reason: object,
    detail: str = "",
    *,
    now: datetime | None = None,
) -> CallOff:
    """The buyer cancels an open call-off; delivered units stay payable, the rest is released."""
    _require_buyer(actor, call_off)
    errors: dict[str, list[str]] = {}
    try:
        reason = CancellationReason(reason)
    except ValueError:
        errors["reason"] = ["Choose why you are cancelling"]
    detail = (detail or "").strip()
    if reason == CancellationReason.OTHER and not detail:
        errors["detail"] = ["Explain why you are cancelling"]
    if len(detail) > REASON_DETAIL_MAX:
        errors["detail"] = [f"The explanation must be {REASON_DETAIL_MAX} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    now = now or utcnow()
    _lock(call_off, "variations")
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    was_with_provider = call_off.status in (
        CallOffStatus.SENT,
        CallOffStatus.ACCEPTED,
        CallOffStatus.IN_DELIVERY,
    )
    _transition(call_off, CallOffStatus.CANCELLED)
    call_off.cancelled_at, call_off.cancelled_by_id = now, actor.id
    call_off.cancellation_reason, call_off.cancellation_detail = reason, detail
    _release(call_off)
    _free_capacity(call_off)
    _close_open_variations(actor, call_off, "cancelled", now)
    _record(actor, "call_off.cancelled", call_off, before, reason=reason.value, detail=detail)
    if was_with_provider:
        email_people(
            call_off.provider_id,
            [Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR],
            "orders_cancelled",
            call_off=call_off,
        )
    return call_off


# ---------------------------------------------------------------------------------------------
# Delivery


@dataclass
class DeliveryDetails:
    delivered_on: object = None
    units: object = None
    attendance: object = None
    absence_reason: object = None
    progress_note: str = ""


def record_delivery(
    actor: User, call_off: CallOff, details: DeliveryDetails, *, now: datetime | None = None
) -> Delivery:
    """The provider records a session (or other unit group); the first starts delivery."""
    _require_provider(actor, call_off, frozenset({Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}))
    now = now or utcnow()
    today = london_date(now)
    errors: dict[str, list[str]] = {}
    if call_off.status not in (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY):
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This call-off is {call_off.status.label.lower()}: delivery can be recorded "
                    "only once it is accepted and until it is completed or cancelled"
                ]
            }
        )
    day = details.delivered_on
    if not isinstance(day, date):
        errors["delivered_on"] = ["Enter the date of the session"]
    elif message := date_horizon_error(day, "The date of the session", today=today):
        errors["delivered_on"] = [message]
    elif day > today:
        errors["delivered_on"] = ["The date of the session must be today or in the past"]
    elif day < call_off.start_date:
        errors["delivered_on"] = [
            f"The date must be on or after the call-off's start, {call_off.start_date.day} "
            f"{call_off.start_date:%B %Y}"
        ]
    try:
        attendance = Attendance(details.attendance)
    except ValueError:
        errors["attendance"] = ["Choose whether the person attended"]
        attendance = None
    # A missed session is paid for only where the listing charges for missed sessions; unpaid,
    # it is recorded but neither billed nor taken from the quantity bought.
    payable = attendance != Attendance.DID_NOT_ATTEND or call_off.listing.missed_sessions_chargeable
    units = details.units
    if isinstance(units, bool) or not isinstance(units, int):
        errors["units"] = ["Enter the number of units as a whole number"]
    elif units < 0:
        errors["units"] = ["The number of units cannot be negative"]
    elif units > (call_off.remaining_units if payable else call_off.quantity):
        errors["units"] = [
            f"Only {call_off.remaining_units} of the {call_off.unit.count(call_off.quantity)} "
            "are left to deliver; ask the buyer for a variation to add more"
        ]
    absence = None
    if attendance == Attendance.DID_NOT_ATTEND:
        try:
            absence = AbsenceReason(details.absence_reason)
        except ValueError:
            errors["absence_reason"] = ["Choose the reason the person did not attend"]
    elif isinstance(units, int) and units == 0 and "units" not in errors:
        errors["units"] = ["A session the person attended delivers at least 1 unit"]
    note = (details.progress_note or "").strip()
    if len(note) > PROGRESS_NOTE_MAX:
        errors["progress_note"] = [f"The note must be {PROGRESS_NOTE_MAX} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    # Two people recording at once must not deliver more than the quantity between them, nor
    # record on a call-off cancelled or completed meanwhile.
    _lock(call_off)
    if call_off.status not in (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY):
        raise TransitionConflict(
            {"status": [f"This call-off has been {call_off.status.label.lower()} meanwhile"]}
        )
    if payable and units > call_off.remaining_units:
        raise BusinessRuleViolation(
            {"units": [f"Only {call_off.remaining_units} units are left to deliver"]}
        )
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    delivery = Delivery(
        delivered_on=day,
        units=units,
        attendance=attendance,
        absence_reason=absence,
        progress_note=note,
        payable=payable,
        recorded_by=actor,
        recorded_at=now,
    )
    call_off.deliveries.append(delivery)
    if delivery.payable_units:
        _spend_delivered(call_off, call_off.delivered_units + delivery.payable_units, day)
    if call_off.status == CallOffStatus.ACCEPTED:
        _transition(call_off, CallOffStatus.IN_DELIVERY)
        call_off.delivery_started_at = now
    db.session.flush()
    _record(
        actor,
        "call_off.delivery_recorded",
        call_off,
        before,
        delivery_id=delivery.id,
        delivered_on=day.isoformat(),
        units=units,
        attendance=attendance.value,
        payable=payable,
    )
    return delivery


@dataclass
class OutcomeDetails:
    outcome: str
    result: object
    comment: str = ""


def complete(
    actor: User,
    call_off: CallOff,
    summary: str,
    outcomes: Sequence[OutcomeDetails] = (),
    *,
    now: datetime | None = None,
) -> CallOff:
    """The provider completes the call-off with an end-of-service summary and each outcome's
    result; what was not delivered is released from the funders' budgets and capacity."""
    _require_provider(actor, call_off)
    errors: dict[str, list[str]] = {}
    summary = (summary or "").strip()
    if not summary:
        errors["summary"] = ["Enter an end-of-service summary"]
    elif len(summary) > SUMMARY_MAX:
        errors["summary"] = [f"The summary must be {SUMMARY_MAX} characters or fewer"]
    offered = [
        line.strip() for line in (call_off.listing.outcomes or "").splitlines() if line.strip()
    ]
    records = []
    for index, item in enumerate(outcomes):
        if item.outcome not in offered:
            errors[f"outcomes-{index}"] = ["Choose an outcome the service offers"]
            continue
        try:
            result = OutcomeResult(item.result)
        except ValueError:
            errors[f"outcomes-{index}"] = [
                f"Choose how far \u201c{item.outcome}\u201d was achieved"
            ]
            continue
        comment = (item.comment or "").strip()
        if len(comment) > REASON_DETAIL_MAX:
            errors[f"outcomes-{index}"] = [
                f"Comments must be {REASON_DETAIL_MAX} characters or fewer"
            ]
            continue
        records.append(OutcomeRecord(outcome=item.outcome, result=result, comment=comment))
    if len({r.outcome for r in records}) != len(records):
        errors["outcomes"] = ["Give each outcome once"]
    if errors:
        raise BusinessRuleViolation(errors)
    now = now or utcnow()
    _lock(call_off, "variations")
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    _transition(call_off, CallOffStatus.COMPLETED)
    call_off.completed_at, call_off.completed_by_id = now, actor.id
    call_off.completion_summary = summary
    call_off.outcomes.extend(records)
    _release(call_off)
    next_month = first_of_month(first_of_month(london_date(now)) + timedelta(days=32))
    _free_capacity(call_off, from_month=next_month)
    _close_open_variations(actor, call_off, "completed", now)
    _record(
        actor,
        "call_off.completed",
        call_off,
        before,
        outcomes=[{"outcome": r.outcome, "result": r.result.value} for r in records],
    )
    _email_buyer(call_off, "orders_completed")
    # Invoices drafts what is left unbilled now, not at the next monthly run.
    signals.call_off_completed.send(call_off, now=now)
    return call_off


# ---------------------------------------------------------------------------------------------
# Variations


def _terms(call_off: CallOff, quantity: int, end_date: date) -> dict:
    net, vat, gross = call_off_value(call_off.unit_price_pence, quantity, call_off.vat_treatment)
    return {
        "quantity": quantity,
        "end_date": end_date.isoformat(),
        "net_pence": net,
        "vat_pence": vat,
        "gross_pence": gross,
    }


def propose_variation(
    actor: User,
    call_off: CallOff,
    *,
    extra_units: object = 0,
    new_end_date: object = None,
    reason: str = "",
    now: datetime | None = None,
) -> Variation:
    """Either side proposes more units and/or a later end date; the other side decides."""
    side = side_of(actor, call_off)
    if side is None:
        if any(actor.roles_for(org) for org in parties(call_off)):
            raise PermissionDenied("Only the lead buyer or the provider can propose a variation")
        raise NotFound("Call-off not found")
    # One proposal at a time: of two made at once, the second sees the first.
    _lock(call_off, "variations")
    if call_off.status not in (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY):
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This call-off is {call_off.status.label.lower()}: only an accepted call-off "
                    "can be varied"
                ]
            }
        )
    if any(v.status == VariationStatus.PROPOSED for v in call_off.variations):
        raise TransitionConflict(
            {
                "status": [
                    "A variation is already waiting for a decision: decide or withdraw it first"
                ]
            }
        )
    errors: dict[str, list[str]] = {}
    if isinstance(extra_units, bool) or not isinstance(extra_units, int) or extra_units < 0:
        errors["extra_units"] = ["Enter the extra units as a whole number, 0 or more"]
    elif call_off.quantity + extra_units > call_off.listing.max_units:
        errors["extra_units"] = [
            "This service is sold in call-offs of at most "
            f"{call_off.unit.count(call_off.listing.max_units)}"
        ]
    if new_end_date is not None and not isinstance(new_end_date, date):
        errors["new_end_date"] = ["Enter the new end date"]
    elif isinstance(new_end_date, date) and new_end_date <= call_off.end_date:
        errors["new_end_date"] = [
            f"The new end date must be after the current one, {call_off.end_date.day} "
            f"{call_off.end_date:%B %Y}"
        ]
    elif message := date_horizon_error(
        new_end_date,
        "The new end date",
        start=call_off.start_date,
        start_label="the call-off's start",
        today=london_date(now or utcnow()),
    ):
        errors["new_end_date"] = [message]
    if not errors and not extra_units and new_end_date is None:
        errors["extra_units"] = ["Add units, a later end date, or both"]
    reason = (reason or "").strip()
    if not reason:
        errors["reason"] = ["Explain why the call-off needs to change"]
    elif len(reason) > REASON_DETAIL_MAX:
        errors["reason"] = [f"The reason must be {REASON_DETAIL_MAX} characters or fewer"]
    if errors:
        raise BusinessRuleViolation(errors)
    now = now or utcnow()
    end = new_end_date or call_off.end_date
    variation = Variation(
        proposed_by_side=side,
        proposed_by=actor,
        proposed_at=now,
        reason=reason,
        extra_units=extra_units,
        new_end_date=new_end_date,
        before=_terms(call_off, call_off.quantity, call_off.end_date),
        after=_terms(call_off, call_off.quantity + extra_units, end),
    )
    call_off.variations.append(variation)
    waits = side == Side.BUYER and _variation_needs_approval(actor, call_off, variation)
    db.session.flush()
    audit.record(
        actor,
        "call_off.variation_proposed",
        call_off,
        after={"variation_id": variation.id, **variation.after, "reason": reason},
    )
    if waits:
        # The provider is asked once an approver has approved it (approve_variation).
        _apply_variation(actor, call_off, variation, now, check_only=True)
        _request_variation_approval(actor, call_off, variation, now)
    elif side == Side.BUYER:
        email_people(
            call_off.provider_id,
            [Role.PROVIDER_ADMIN],
            "orders_variation_proposed",
            call_off=call_off,
            variation=variation,
        )
    else:
        email_people(
            call_off.lead_buyer_id,
            BUYER_ROLES,
            "orders_variation_proposed",
            call_off=call_off,
            variation=variation,
        )
    return variation


def _open_variation(actor: User, call_off: CallOff, variation_id: object) -> Variation:
    """The call-off's variation, the call-off locked: a variation is decided while its call-off
    is, as agreeing one changes the call-off's terms."""
    _lock(call_off, "variations")
    pk = parse_id(variation_id)
    variation = next((v for v in call_off.variations if v.id == pk), None)
    if variation is None:
        raise NotFound("Variation not found")
    return variation


def _decide(variation: Variation, new_status: VariationStatus, *, check_only: bool = False) -> None:
    move = check_transition if check_only else transition
    move(variation, new_status, VARIATION_TRANSITIONS, noun="variation")


def _budget_for(organisation_id: int, year: int, category_id: int) -> Budget | None:
    """The organisation's budget for the category in the year, else its general one."""
    return db.session.scalar(
        sa.select(Budget)
        .where(
            Budget.organisation_id == organisation_id,
            Budget.financial_year == year,
            sa.or_(Budget.category_id == category_id, Budget.category_id.is_(None)),
        )
        .order_by(Budget.category_id.is_(None))
    )


def _variation_budget_parts(
    call_off: CallOff, new_gross: int, plan: dict[date, int]
) -> tuple[list[int], list[tuple[CallOffFunder, int, Budget, int]]]:
    """Each funder's share of the new value, and what more each must commit in each financial
    year: its increase split by the years of the new plan's units (``plan``: the months from now
    to the new end), from that year's budget (its part's, or its budget for a year the call-off
    did not reach before). Refused, naming the funder and the year, where a year has no budget
    or too little. Locks the budgets it reads."""
    new_shares = split_by_basis_points(new_gross, [f.basis_points for f in call_off.funders])
    weights: dict[int, int] = {}
    for month, units in plan.items():
        weights[financial_year(month)] = weights.get(financial_year(month), 0) + units
    wanted = []
    for funder, new in zip(call_off.funders, new_shares, strict=True):
        if new > funder.share_pence and weights:
            for year, part in split_by_year(new - funder.share_pence, weights).items():
                if part:
                    held = next((p for p in funder.parts if p.financial_year == year), None)
                    wanted.append((funder, year, held, part))
    budgets = {
        (funder.id, year): held.budget
        if held is not None
        else _budget_for(funder.organisation_id, year, call_off.category_id)
        for funder, year, held, _ in wanted
    }
    lock_rows(Budget, (b.id for b in budgets.values() if b is not None))
    short: list[str] = []
    more = []
    for funder, year, _, part in wanted:
        budget = budgets[funder.id, year]
        label = financial_year_label(year)
        if budget is None:
            short.append(
                f"{funder.organisation.name} has no budget for {label}, which this variation "
                "reaches into"
            )
        elif part > budget.available_pence:
            short.append(
                f"{funder.organisation.name} has {_pounds(budget.available_pence)} left in its "
                f"{label} budget, less than the {_pounds(part)} more this variation needs there"
            )
        else:
            more.append((funder, year, budget, part))
    if short:
        raise BusinessRuleViolation({"shares": short})
    return new_shares, more


def agree_variation(
    actor: User, call_off: CallOff, variation_id: object, *, now: datetime | None = None
) -> Variation:
    """The other side agrees: the route, budget and capacity checks run again on the new terms,
    and the call-off takes them as a new version."""
    variation = _open_variation(actor, call_off, variation_id)
    side = side_of(actor, call_off)
    if side is None or side == variation.proposed_by_side:
        raise PermissionDenied("The other side of the call-off must agree this variation")
    _decide(variation, VariationStatus.AGREED, check_only=True)
    if call_off.status not in (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY):
        raise BusinessRuleViolation(
            {"status": [f"This call-off is {call_off.status.label.lower()}, so it cannot change"]}
        )
    now = now or utcnow()
    if variation.awaiting_approval:
        raise TransitionConflict(
            {
                "status": [
                    f"This change is waiting for an approver of {call_off.lead_buyer.name} to "
                    "approve it"
                ]
            }
        )
    if (
        side == Side.BUYER
        and variation.approved_at is None
        and _variation_needs_approval(actor, call_off, variation)
    ):
        _apply_variation(actor, call_off, variation, now, check_only=True)
        _request_variation_approval(actor, call_off, variation, now)
        return variation
    return _apply_variation(actor, call_off, variation, now)


def _variation_lead_share(call_off: CallOff, variation: Variation) -> int:
    """The lead buyer's share of the value the variation would make."""
    shares = split_by_basis_points(
        variation.after["gross_pence"], [f.basis_points for f in call_off.funders]
    )
    return next(s for f, s in zip(call_off.funders, shares, strict=True) if f.is_lead)


def _variation_needs_approval(actor: User, call_off: CallOff, variation: Variation) -> bool:
    """A change the buyer side consents to that raises the lead buyer's share above the
    consenting person's spend limit goes to an approver again; refused at once (with who can
    fix it) if nobody else could approve it, as at placing."""
    share = _variation_lead_share(call_off, variation)
    own = next(f.share_pence for f in call_off.funders if f.is_lead)
    if share <= own or share <= spend_limit(actor, call_off.lead_buyer_id):
        return False
    errors = _nobody_can_approve(actor, call_off.lead_buyer, share)
    if errors:
        message = errors["quantity"][0].replace("This call-off would cost", "With this change")
        raise BusinessRuleViolation({"extra_units": [message.replace(" would cost", "")]})
    return True


def _request_variation_approval(
    actor: User, call_off: CallOff, variation: Variation, now: datetime
) -> None:
    """Mark the change as waiting for an approver (the call-off is locked) and ask those who
    can approve it."""
    variation.approval_requested_at, variation.approval_requested_by_id = now, actor.id
    share = _variation_lead_share(call_off, variation)
    audit.record(
        actor,
        "call_off.variation_approval_requested",
        call_off,
        after={"variation_id": variation.id, "lead_share_pence": share},
    )
    for approver in approvers_who_can_approve(call_off.lead_buyer_id, share, actor.id):
        queue_email(
            approver.email,
            "orders_variation_approval_requested",
            user=approver,
            call_off=call_off,
            variation=variation,
            link=absolute_url("orders.show", call_off_id=call_off.id),
        )


def approve_variation(
    actor: User, call_off: CallOff, variation_id: object, *, now: datetime | None = None
) -> Variation:
    """An approver of the lead buyer (not the person who asked) approves a change above that
    person's spend limit: a change the provider proposed then takes effect; one the buyer
    proposed goes to the provider to agree."""
    roles = actor.roles_for(call_off.lead_buyer_id)
    if not roles:
        _require_buyer(actor, call_off)
    if Role.APPROVER not in roles:
        raise PermissionDenied("Only an approver can approve a change")
    variation = _open_variation(actor, call_off, variation_id)
    if not variation.awaiting_approval:
        raise TransitionConflict(
            {
                "status": [
                    "This change has already been approved"
                    if variation.approved_at is not None
                    else "This change is not waiting for approval"
                ]
            }
        )
    if actor.id == variation.approval_requested_by_id:
        raise PermissionDenied("You asked for this change, so another approver must approve it")
    share = _variation_lead_share(call_off, variation)
    limits = {user.id: limit for user, limit in approvers_and_limits(call_off.lead_buyer_id)}
    if share > _covers(limits.get(actor.id)):
        raise PermissionDenied(
            f"With this change the call-off would cost {call_off.lead_buyer.name} "
            f"{_pounds(share)}, above your approval limit of {_pounds(limits[actor.id])}"
        )
    now = now or utcnow()
    variation.approved_at, variation.approved_by_id = now, actor.id
    audit.record(
        actor, "call_off.variation_approved", call_off, after={"variation_id": variation.id}
    )
    if variation.proposed_by_side == Side.PROVIDER:
        return _apply_variation(actor, call_off, variation, now)
    email_people(
        call_off.provider_id,
        [Role.PROVIDER_ADMIN],
        "orders_variation_proposed",
        call_off=call_off,
        variation=variation,
    )
    return variation


def _apply_variation(
    actor: User, call_off: CallOff, variation: Variation, now: datetime, *, check_only=False
) -> Variation:
    """The change agreed (and approved, where it had to be): the route, budget and capacity
    checks run again on the new terms, and the call-off takes them as a new version
    (``check_only``: only the checks, before an approver is asked, so that a change that could
    never be made is refused at once with its reason)."""
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    quantity = call_off.quantity + variation.extra_units
    end = variation.new_end_date or call_off.end_date
    terms = _terms(call_off, quantity, end)
    extra_gross = terms["gross_pence"] - call_off.gross_pence
    check_route(call_off, extra_gross, now)

    # Capacity: months already past keep what they had; what is left is spread over the months
    # from this one (or the start, if later) to the new end, in place of what it held there.
    this_month = first_of_month(london_date(now))
    old_rows = list(
        db.session.scalars(
            sa.select(CapacityCommitment).where(
                CapacityCommitment.listing_id == call_off.listing_id,
                CapacityCommitment.source == call_off.reference,
            )
        )
    )
    kept = sum(row.units for row in old_rows if row.month < this_month)
    own: dict[date, int] = {}
    for row in old_rows:
        if row.month >= this_month:
            own[row.month] = own.get(row.month, 0) + row.units
    months = _months(max(first_of_month(call_off.start_date), this_month), end) or [this_month]
    parts = allocate(max(quantity - kept, 0), [1] * len(months))
    plan = {month: units for month, units in zip(months, parts, strict=True) if units}
    new_shares, more = _variation_budget_parts(call_off, terms["gross_pence"], plan)
    _check_capacity(call_off, plan, own)
    if check_only:
        return variation

    # Every check has passed: from here on the call-off takes its new terms.
    for row in old_rows:
        if row.month >= this_month:
            db.session.delete(row)
    db.session.flush()
    _commit_capacity(call_off, plan, now)
    call_off.quantity, call_off.end_date = quantity, end
    for funder, new in zip(call_off.funders, new_shares, strict=True):
        funder.committed_pence += new - funder.share_pence
        funder.share_pence = new
    for funder, year, budget, part in more:
        budget.committed_pence += part
        held = next((p for p in funder.parts if p.financial_year == year), None)
        if held is None:
            funder.parts.append(
                CallOffBudgetPart(
                    budget=budget, financial_year=year, share_pence=part, committed_pence=part
                )
            )
        else:
            held.share_pence += part
            held.committed_pence += part
    call_off.net_pence, call_off.vat_pence = terms["net_pence"], terms["vat_pence"]
    call_off.gross_pence = terms["gross_pence"]
    call_off.version += 1
    _decide(variation, VariationStatus.AGREED)
    variation.decided_by_id, variation.decided_at = actor.id, now
    variation.version = call_off.version
    _record(actor, "call_off.variation_agreed", call_off, before, variation_id=variation.id)
    proposer = variation.proposed_by
    if proposer is not None and proposer.active:
        queue_email(
            proposer.email,
            "orders_variation_decided",
            user=proposer,
            call_off=call_off,
            variation=variation,
        )
    return variation


def reject_variation(
    actor: User,
    call_off: CallOff,
    variation_id: object,
    reason: str,
    *,
    now: datetime | None = None,
) -> Variation:
    variation = _open_variation(actor, call_off, variation_id)
    side = side_of(actor, call_off)
    approving = variation.awaiting_approval and Role.APPROVER in actor.roles_for(
        call_off.lead_buyer_id
    )
    if side is None or (side == variation.proposed_by_side and not approving):
        raise PermissionDenied("The other side of the call-off must decide this variation")
    if side == Side.PROVIDER and variation.awaiting_approval:
        raise TransitionConflict(
            {
                "status": [
                    f"This change is waiting for an approver of {call_off.lead_buyer.name} to "
                    "approve it"
                ]
            }
        )
    reason = (reason or "").strip()
    if not reason or len(reason) > REASON_DETAIL_MAX:
        raise BusinessRuleViolation(
            {
                "reason": [
                    f"Explain why you are rejecting it, in {REASON_DETAIL_MAX} characters or fewer"
                ]
            }
        )
    now = now or utcnow()
    _decide(variation, VariationStatus.REJECTED)
    variation.decided_by_id, variation.decided_at = actor.id, now
    variation.decision_reason = reason
    audit.record(
        actor,
        "call_off.variation_rejected",
        call_off,
        after={"variation_id": variation.id, "reason": reason},
    )
    proposer = variation.proposed_by
    if proposer is not None and proposer.active:
        queue_email(
            proposer.email,
            "orders_variation_decided",
            user=proposer,
            call_off=call_off,
            variation=variation,
        )
    return variation


def _close_open_variations(actor: User, call_off: CallOff, ended: str, now: datetime) -> None:
    """A change still waiting for a decision when the call-off ends (completed, cancelled) is
    closed as withdrawn, with why: nobody can be asked to agree a change to a call-off that is
    over. The call-off is locked by the caller, with its variations."""
    for variation in call_off.variations:
        if variation.status != VariationStatus.PROPOSED:
            continue
        _decide(variation, VariationStatus.WITHDRAWN)
        variation.decided_by_id, variation.decided_at = actor.id, now
        variation.decision_reason = f"The call-off was {ended} before the change was decided"
        audit.record(
            actor,
            "call_off.variation_withdrawn",
            call_off,
            after={"variation_id": variation.id, "reason": variation.decision_reason},
        )


def withdraw_variation(
    actor: User, call_off: CallOff, variation_id: object, *, now: datetime | None = None
) -> Variation:
    variation = _open_variation(actor, call_off, variation_id)
    if side_of(actor, call_off) != variation.proposed_by_side:
        raise PermissionDenied("Only the side that proposed a variation can withdraw it")
    _decide(variation, VariationStatus.WITHDRAWN)
    variation.decided_by_id, variation.decided_at = actor.id, now or utcnow()
    audit.record(
        actor, "call_off.variation_withdrawn", call_off, after={"variation_id": variation.id}
    )
    return variation


# ---------------------------------------------------------------------------------------------
# Placing once: a repeated request (a double click, a retry) answers with the first call-off


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def placed_with_key(actor: User, key: str, request_fingerprint: str) -> CallOff | None:
    """The call-off this person already placed with ``key``, if any. The same key with a
    different request is refused (the client has confused two requests)."""
    record = db.session.scalar(
        sa.select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == actor.id, IdempotencyRecord.key_hash == _digest(key)
        )
    )
    if record is None:
        return None
    if record.request_hash != _digest(request_fingerprint):
        raise BusinessRuleViolation(
            {
                "idempotency_key": [
                    "This Idempotency-Key was already used for a different request. Use a new "
                    "key for a new call-off"
                ]
            }
        )
    return db.session.get(CallOff, record.call_off_id)


def place_call_off_once(
    actor: User,
    organisation: Organisation,
    listing_id: object,
    details: CallOffDetails,
    *,
    key: str,
    request_fingerprint: str,
    now: datetime | None = None,
    price_seen: PriceSeen | None = None,
) -> tuple[CallOff, bool]:
    """Place a call-off unless this key already placed one; (call-off, whether it is new).

    The key's record is written first: a concurrent request with the same key waits on its
    unique index and then fails with an IntegrityError, after which the caller rolls back and
    asks ``placed_with_key`` for the winner's call-off.
    """
    if not key or len(key) > IDEMPOTENCY_KEY_MAX:
        raise BusinessRuleViolation(
            {"idempotency_key": [f"The key must be 1 to {IDEMPOTENCY_KEY_MAX} characters"]}
        )
    existing = placed_with_key(actor, key, request_fingerprint)
    if existing is not None:
        return existing, False
    now = now or utcnow()
    record = IdempotencyRecord(
        user_id=actor.id,
        key_hash=_digest(key),
        request_hash=_digest(request_fingerprint),
        created_at=now,
    )
    db.session.add(record)
    db.session.flush()
    call_off = place_call_off(
        actor, organisation, listing_id, details, now=now, price_seen=price_seen
    )
    record.call_off_id = call_off.id
    return call_off, True
