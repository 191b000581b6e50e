"""Variations: a change of quantity or end date proposed by one side, agreed by the other (and
approved above the agreeing buyer's spend limit), then applied to the call-off, its budgets and
capacity; or rejected or withdrawn.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.accounts.queries import approvers_and_limits
from marketplace.accounts.services.common import email_people
from marketplace.catalogue.models import MAX_UNITS, CapacityCommitment
from marketplace.catalogue.queries import first_of_month
from marketplace.core import audit
from marketplace.core.clock import financial_year, financial_year_label, london_date, utcnow
from marketplace.core.db import db, lock_rows, parse_id
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.money import allocate, split_by_basis_points
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.urls import absolute_url
from marketplace.core.validation import date_horizon_error
from marketplace.orders.models import (
    REASON_DETAIL_MAX,
    VARIATION_TRANSITIONS,
    Budget,
    CallOff,
    CallOffBudgetPart,
    CallOffFunder,
    CallOffStatus,
    Side,
    Variation,
    VariationStatus,
)
from marketplace.orders.permissions import BUYER_ROLES, is_party, side_of
from marketplace.orders.services.approval import (
    approval_covers,
    approvers_who_can_approve,
    nobody_can_approve,
    spend_limit,
)
from marketplace.orders.services.budgets import budget_for, split_by_year
from marketplace.orders.services.call_offs import (
    CALL_OFF_FIELDS,
    call_off_value,
    in_pounds,
    record_change,
    require_buyer,
)
from marketplace.orders.services.capacity import check_capacity, commit_capacity, months_of
from marketplace.orders.services.route import check_route


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
        if is_party(actor, call_off):
            raise PermissionDenied("Only the lead buyer or the provider can propose a variation")
        raise NotFound("Call-off not found")
    # One proposal at a time: of two made at once, the second sees the first.
    lock(call_off, "funders", "variations")
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
    errors = _variation_errors(call_off, extra_units, new_end_date, reason, now)
    reason = (reason or "").strip()
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


def _variation_errors(
    call_off: CallOff,
    extra_units: object,
    new_end_date: object,
    reason: str,
    now: datetime | None,
) -> dict[str, list[str]]:
    """The proposal's answers checked by field: units within the listing's range, a later end
    date within the horizon, something changed, and a reason."""
    errors: dict[str, list[str]] = {}
    if isinstance(extra_units, bool) or not isinstance(extra_units, int) or extra_units < 0:
        errors["extra_units"] = ["Enter the extra units as a whole number, 0 or more"]
    elif call_off.listing_id is not None and (
        call_off.quantity + extra_units > call_off.listing.max_units
    ):
        # A listing's range; a call-off without one is bounded only by the most a call-off
        # can hold (``MAX_UNITS``, below).
        errors["extra_units"] = [
            "This service is sold in call-offs of at most "
            f"{call_off.unit.count(call_off.listing.max_units)}"
        ]
    elif call_off.quantity + extra_units > MAX_UNITS:
        errors["extra_units"] = [f"A call-off can have at most {call_off.unit.count(MAX_UNITS)}"]
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
    return errors


def _open_variation(actor: User, call_off: CallOff, variation_id: object) -> Variation:
    """The call-off's variation, the call-off locked: a variation is decided while its call-off
    is, as agreeing one changes the call-off's terms."""
    lock(call_off, "funders", "variations")
    pk = parse_id(variation_id)
    variation = next((v for v in call_off.variations if v.id == pk), None)
    if variation is None:
        raise NotFound("Variation not found")
    return variation


def _decide(variation: Variation, new_status: VariationStatus, *, check_only: bool = False) -> None:
    move = check_transition if check_only else transition
    move(variation, new_status, VARIATION_TRANSITIONS, noun="variation")


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
        else budget_for(funder.organisation_id, year, call_off.category_id)
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
                f"{funder.organisation.name} has {in_pounds(budget.available_pence)} left in its "
                f"{label} budget, less than the {in_pounds(part)} more this variation needs there"
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
    errors = nobody_can_approve(actor, call_off.lead_buyer, share)
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
        require_buyer(actor, call_off)
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
    if share > approval_covers(limits.get(actor.id)):
        raise PermissionDenied(
            f"With this change the call-off would cost {call_off.lead_buyer.name} "
            f"{in_pounds(share)}, above your approval limit of {in_pounds(limits[actor.id])}"
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
    old_rows = (
        list(
            db.session.scalars(
                sa.select(CapacityCommitment).where(
                    CapacityCommitment.listing_id == call_off.listing_id,
                    CapacityCommitment.source == call_off.reference,
                )
            )
        )
        if call_off.listing_id is not None
        else []  # no listing, no capacity held (``capacity``)
    )
    kept = sum(row.units for row in old_rows if row.month < this_month)
    own: dict[date, int] = {}
    for row in old_rows:
        if row.month >= this_month:
            own[row.month] = own.get(row.month, 0) + row.units
    months = months_of(max(first_of_month(call_off.start_date), this_month), end) or [this_month]
    parts = allocate(max(quantity - kept, 0), [1] * len(months))
    plan = {month: units for month, units in zip(months, parts, strict=True) if units}
    new_shares, more = _variation_budget_parts(call_off, terms["gross_pence"], plan)
    check_capacity(call_off, plan, own)
    if check_only:
        return variation

    # Every check has passed: from here on the call-off takes its new terms.
    for row in old_rows:
        if row.month >= this_month:
            db.session.delete(row)
    db.session.flush()
    commit_capacity(call_off, plan, now)
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
    record_change(actor, "call_off.variation_agreed", call_off, before, variation_id=variation.id)
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


def close_open_variations(actor: User, call_off: CallOff, ended: str, now: datetime) -> None:
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
