"""Placing a call-off at the price in force on a lawful route: the checks the question page runs
too (``check_call_off``), placing (``place_call_off``) and placing once per idempotency key
(the API's ``place_call_off_once``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date, datetime

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accreditation.models import ArrangementStatus
from marketplace.catalogue.models import Listing
from marketplace.catalogue.queries import PriceInForce, buyable_listing, price_in_force
from marketplace.core import audit, store
from marketplace.core.clock import add_working_days, london_date, utcnow
from marketplace.core.db import db, lock_name
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.money import VatTreatment, split_by_basis_points
from marketplace.orders import signals
from marketplace.orders.models import (
    IDEMPOTENCY_KEY_MAX,
    MAX_VALUE_PENCE,
    AwardRoute,
    Budget,
    CallOff,
    CallOffBudgetPart,
    CallOffFunder,
    CallOffStatus,
    ChoiceReason,
    IdempotencyRecord,
)
from marketplace.orders.services.approval import lead_part, nobody_can_approve
from marketplace.orders.services.budgets import (
    FundingBudget,
    funding_budgets,
    funding_budgets_and_counted_value,
    funding_errors,
    short_of,
    split_by_year,
    use_authorisations,
    year_weights,
)
from marketplace.orders.services.call_offs import (
    CALL_OFF_FIELDS,
    add_errors,
    call_off_reference,
    call_off_value,
)
from marketplace.orders.services.details import (
    CallOffDetails,
    FundingShare,
    PriceSeen,
    check_details,
    check_shares,
    funder_key,
    price_changed,
)
from marketplace.orders.services.funding import advance
from marketplace.orders.services.route import buyer_total_lock, check_within_limit


def _add_funders(
    call_off: CallOff,
    shares: Sequence[FundingShare],
    funders: dict[int, Organisation],
    budgets: dict[tuple[int, int], FundingBudget],
    now: datetime,
    actor: User,
) -> None:
    """Split the value by the shares into the call-off's funders, and each share by financial
    year into its parts (``split_by_year``), each to be committed against that year's budget
    (``_take_from_budgets``); co-funders' standing authorisations confirm their shares
    at once, each year's part used from that year's authorisation (all or none). Budgets already
    too small were refused before (``funding_errors``)."""
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
        elif use_authorisations(call_off, pk, part, by_year):
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
            # Used up since it was read: keyed as ``funding_errors`` keys it.
            funder = part.funder
            left = db.session.scalar(
                sa.select(Budget.available_pence).where(Budget.id == part.budget_id)
            )
            key = funder_key(call_off.lead_buyer_id, given, funder.organisation_id, "basis_points")
            message = short_of(
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


def require_placer(actor: User, organisation: Organisation) -> None:
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
    shares, share_errors, funders = check_shares(organisation, details.shares)
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
        term_errors, outcome_max = check_outcome_terms(
            listing,
            details.start_date,
            price.vat_treatment if price else listing.vat_treatment,
            details.outcome_terms,
        )
        errors.update(term_errors)
    if not errors:
        *_, gross = call_off_value(price.unit_price_pence, details.quantity, price.vat_treatment)
        if gross > MAX_VALUE_PENCE:
            errors["quantity"] = ["That is more than a call-off can be worth"]
    return errors, shares, funders, outcome_max


def check_outcome_terms(
    listing: Listing, start_date: object, vat_treatment: VatTreatment, terms: Sequence
) -> tuple[dict[str, list[str]], int]:
    """Errors in a call-off's payment-by-results terms (keyed ``outcome_terms-N-field``) and the
    most they could add. Payment by results builds on call-offs, so it checks its own terms
    (``signals.checking_outcome_terms``); the question page asks here before placing does."""
    errors: dict[str, list[str]] = {}
    most_of_all = 0
    for term_errors, most in _answers(
        signals.checking_outcome_terms,
        listing,
        start_date=start_date,
        vat_treatment=vat_treatment,
        terms=terms,
    ):
        errors.update(term_errors)
        most_of_all += most
    return errors, most_of_all


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
    require_placer(actor, organisation)
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
    budgets, counted = funding_budgets_and_counted_value(call_off, shares, now)
    errors = funding_errors(call_off, shares, funders, budgets, details.shares)
    add_errors(errors, nobody_can_approve(actor, organisation, lead_part(gross, shares)))
    try:
        check_within_limit(call_off, counted, 0, now)
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
        raise price_changed(listing, price_seen, price, details.quantity)
    call_off = _new_call_off(actor, organisation, listing, price, details, outcome_max, now)
    return place_funded(
        actor,
        organisation,
        call_off,
        shares,
        funders,
        details.shares,
        now,
        within_direct_award_limit=True,
        outcome_terms=details.outcome_terms,
    )


def place_funded(
    actor: User,
    organisation: Organisation,
    call_off: CallOff,
    shares: Sequence[FundingShare],
    funders: dict[int, Organisation],
    given: Sequence[FundingShare],
    now: datetime,
    *,
    within_direct_award_limit: bool,
    outcome_terms: Sequence = (),
) -> CallOff:
    """What placing any new call-off does once its answers are checked: the funders' budgets
    (and, for a direct award, the buyer's total towards the limit) read and checked, the shares
    split into funders (standing authorisations confirming what they cover), the call-off added
    and audited, moved on as far as it can go (``advance``: co-funders asked, an approver above
    the placer's spend limit, the provider), and each funder's part taken from its budget last.
    Refused before anything is added when a budget lacks a funder's part or nobody could
    approve it; ``shares`` have the lead first (``check_shares``), ``given`` as the buyer gave
    them (the keys of the errors). ``within_direct_award_limit``: a direct award from the rate
    card, held to the arrangement's limit; an award by further competition is not (the
    competition is the lawful route above it)."""
    if within_direct_award_limit:
        # The buyer's total with the provider in the lot is locked before it is read, and held
        # to the commit: two placements cannot both fit under the direct-award limit.
        lock_name(buyer_total_lock(call_off))
        budgets, counted = funding_budgets_and_counted_value(call_off, shares, now)
    else:
        budgets, counted = funding_budgets(call_off, shares), 0
    errors = funding_errors(call_off, shares, funders, budgets, given)
    lead_share = lead_part(call_off.gross_pence, shares)
    add_errors(errors, nobody_can_approve(actor, organisation, lead_share))
    if errors:
        raise BusinessRuleViolation(errors)
    if within_direct_award_limit:
        check_within_limit(call_off, counted, 0, now)
    _add_funders(call_off, shares, funders, budgets, now, actor)
    call_off.id = store.next_id(CallOff)
    call_off.reference = call_off_reference(call_off.id, london_date(now).year)
    db.session.add(call_off)
    audit.record(actor, "call_off.placed", call_off, after=_placed_snapshot(call_off))
    if outcome_terms:
        _answers(
            signals.call_off_placed_with_terms,
            call_off,
            actor=actor,
            terms=outcome_terms,
            now=now,
        )
    advance(actor, call_off, now)
    _take_from_budgets(call_off, now, given)
    return call_off


def _new_call_off(
    actor: User,
    organisation: Organisation,
    listing: Listing,
    price: PriceInForce,
    details: CallOffDetails,
    outcome_max: int,
    now: datetime,
) -> CallOff:
    """The draft call-off the answers describe, at the price in force (not yet added)."""
    arrangement = listing.lot.arrangement
    net, vat, gross = call_off_value(price.unit_price_pence, details.quantity, price.vat_treatment)
    return CallOff(
        status=CallOffStatus.DRAFT,
        listing_id=listing.id,
        service_title=listing.title,
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


def _placed_snapshot(call_off: CallOff) -> dict:
    data = audit.snapshot(call_off, CALL_OFF_FIELDS)
    data.update(
        reference=call_off.reference,
        listing_id=call_off.listing_id,
        price_version_id=call_off.price_version_id,
        award_route=call_off.award_route.value,
        choice_reason=call_off.choice_reason.value if call_off.choice_reason else None,
        competition_id=call_off.competition_id,
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
