"""After placing: co-funders confirm or decline their shares, the lead buyer re-splits a declined
share, an approver approves above the placer's spend limit, and the call-off goes to the
provider.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from flask import current_app

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.queries import approvers_and_limits, people_with_roles
from marketplace.accounts.services.common import email_people
from marketplace.core import audit
from marketplace.core.clock import (
    add_working_days,
    financial_year,
    financial_year_label,
    london_date,
    utcnow,
)
from marketplace.core.db import lock_rows
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.money import split_by_basis_points
from marketplace.core.notifications.services import queue_email
from marketplace.core.state import check_transition, lock, transition
from marketplace.core.urls import absolute_url
from marketplace.orders.models import (
    CALL_OFF_TRANSITIONS,
    REASON_DETAIL_MAX,
    Budget,
    CallOff,
    CallOffFunder,
    CallOffStatus,
)
from marketplace.orders.permissions import FUNDING_OPEN
from marketplace.orders.services.approval import (
    approval_amount,
    approval_covers,
    approvers_who_can_approve,
    needs_approval,
)
from marketplace.orders.services.budgets import (
    FundingBudget,
    funding_budgets_and_counted_value,
    funding_errors,
    give_back,
    preauthorise,
    retake_authorisation,
    set_parts,
    split_by_year,
    year_weights,
)
from marketplace.orders.services.call_offs import (
    CALL_OFF_FIELDS,
    email_buyer,
    in_pounds,
    names_of,
    record_change,
    require_buyer,
    require_lead_buyer,
)
from marketplace.orders.services.details import FundingShare, check_shares


def advance(actor: User, call_off: CallOff, now: datetime) -> None:
    """Move a call-off on as far as it can go: funding, then approval, then to the provider."""
    if call_off.status == CallOffStatus.DRAFT:
        waiting = [f for f in call_off.funders if f.confirmed_at is None]
        if waiting:
            transition(
                call_off, CallOffStatus.AWAITING_FUNDING, CALL_OFF_TRANSITIONS, noun="call-off"
            )
            for funder in waiting:
                email_people(
                    funder.organisation_id,
                    [Role.APPROVER],
                    "orders_funding_requested",
                    call_off=call_off,
                    funder=funder,
                    # The year its budget was chosen for (``funding_budgets_and_counted_value``).
                    budget_year=financial_year_label(financial_year(call_off.start_date)),
                )
            return
        call_off.funding_confirmed_at = now
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        if any(f.confirmed_at is None for f in call_off.funders):
            return
        call_off.funding_confirmed_at = now
    if needs_approval(call_off):
        transition(call_off, CallOffStatus.AWAITING_APPROVAL, CALL_OFF_TRANSITIONS, noun="call-off")
        approvers = approvers_who_can_approve(
            call_off.lead_buyer_id, approval_amount(call_off), call_off.placed_by_id
        )
        for approver in approvers:
            queue_email(
                approver.email, "orders_approval_requested", user=approver, call_off=call_off
            )
        return
    send_to_provider(call_off, now)


def send_to_provider(call_off: CallOff, now: datetime, **how) -> None:
    transition(call_off, CallOffStatus.SENT, CALL_OFF_TRANSITIONS, noun="call-off", **how)
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
    lock(call_off, "funders")
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
    record_change(
        actor,
        "call_off.funding_confirmed",
        call_off,
        before,
        funder_id=organisation.id,
        share_pence=funder.share_pence,
    )
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        advance(actor, call_off, now)
    # The lead buyer learns of each confirmation, and what the call-off waits for now.
    email_buyer(
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
        require_buyer(actor, call_off)
    if Role.APPROVER not in roles:
        raise PermissionDenied("Only an approver can approve a call-off")
    if actor.id == call_off.placed_by_id:
        raise PermissionDenied("You placed this call-off, so another approver must approve it")
    now = now or utcnow()
    approving = {"done": "approved", "only_from": {CallOffStatus.AWAITING_APPROVAL}}
    check_transition(
        call_off, CallOffStatus.SENT, CALL_OFF_TRANSITIONS, noun="call-off", **approving
    )
    # The limit read in this transaction, after the lock: one lowered meanwhile counts.
    amount = approval_amount(call_off)
    limits = dict((user.id, limit) for user, limit in approvers_and_limits(call_off.lead_buyer_id))
    if amount > approval_covers(limits.get(actor.id)):
        others = approvers_who_can_approve(call_off.lead_buyer_id, amount, call_off.placed_by_id)
        raise PermissionDenied(
            f"This call-off would cost {call_off.lead_buyer.name} {in_pounds(amount)}, above your "
            f"approval limit of {in_pounds(limits[actor.id])}: "
            + (
                f"{names_of(others)} can approve it"
                if others
                else "nobody else can approve it yet; an approver can raise a limit on the Team "
                "page"
            )
        )
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    call_off.approved_at, call_off.approved_by_id = now, actor.id
    send_to_provider(call_off, now, **approving)
    record_change(actor, "call_off.approved", call_off, before)
    email_buyer(call_off, "orders_approved")
    return call_off


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
    lock(call_off, "funders")
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
    released = give_back(call_off, funder)
    funder.confirmed_at = funder.confirmed_by_id = None
    funder.preauthorised = False
    funder.declined_at, funder.declined_by_id, funder.decline_reason = now, actor.id, reason
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        transition(call_off, CallOffStatus.FUNDING_DECLINED, CALL_OFF_TRANSITIONS, noun="call-off")
    record_change(
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


def resplit_funding(
    actor: User,
    call_off: CallOff,
    shares: Sequence[FundingShare],
    *,
    now: datetime | None = None,
) -> CallOff:
    """After a co-funder declined, the lead buyer shares the call-off out again: between the
    remaining funders and others, or all to itself. The new shares pass the checks placing
    makes (``check_shares``, ``funding_errors``); a funder whose share is new or larger is
    asked to confirm it again (unless its standing authorisation covers it), the others stay
    confirmed, and funders left out are released."""
    require_lead_buyer(actor, call_off)
    now = now or utcnow()
    lock(call_off, "funders")
    _require_funding_declined(call_off)
    ordered, errors, funders = check_shares(call_off.lead_buyer, shares)
    if errors:
        raise BusinessRuleViolation(errors)
    budgets, locked = _budgets_for_new_shares(call_off, ordered, funders, shares, now)
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    before["funders"] = _shares_snapshot(call_off)
    asked = _set_new_shares(call_off, ordered, funders, budgets, locked, now)
    released = _release_left_out(call_off, {share.organisation_id for share in ordered})
    transition(call_off, CallOffStatus.AWAITING_FUNDING, CALL_OFF_TRANSITIONS, noun="call-off")
    record_change(
        actor, "call_off.funding_resplit", call_off, before, funders=_shares_snapshot(call_off)
    )
    # On at once if every share is confirmed (to approval above the placer's spend limit, or
    # to the provider); else it waits for the funders asked.
    advance(actor, call_off, now)
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


def _require_funding_declined(call_off: CallOff) -> None:
    """Shares are changed only while a co-funder's refusal waits for the lead buyer."""
    if call_off.status == CallOffStatus.FUNDING_DECLINED:
        return
    if call_off.is_open:
        message = (
            "No co-funder has declined its share of this call-off, so its shares cannot be changed"
        )
    else:
        message = (
            f"This call-off is {call_off.status.label.lower()}, so its shares cannot be changed"
        )
    raise TransitionConflict({"status": [message]})


def _budgets_for_new_shares(
    call_off: CallOff,
    ordered: Sequence[FundingShare],
    funders: dict[int, Organisation],
    given: Sequence[FundingShare],
    now: datetime,
) -> tuple[dict[tuple[int, int], FundingBudget], dict[int, Budget]]:
    """Each new share's budgets by (funder, year), and every budget the old and new shares
    touch, locked in key order and read as they are now; refused unless each budget can take
    its part, counting what the funder commits there now as available to its new share."""
    budgets, _ = funding_budgets_and_counted_value(call_off, ordered, now)
    held = {f.organisation_id: f for f in call_off.funders}
    locked = {
        b.id: b
        for b in lock_rows(
            Budget,
            [b.id for b in budgets.values()]
            + [part.budget_id for f in held.values() for part in f.parts],
        )
    }
    committed_here: dict[tuple[int, int], int] = {}
    for f in held.values():
        for part in f.parts:
            key = (f.organisation_id, part.budget_id)
            committed_here[key] = committed_here.get(key, 0) + part.committed_pence
    available = {
        (pk, year): FundingBudget(
            b.id, locked[b.id].available_pence + committed_here.get((pk, b.id), 0)
        )
        for (pk, year), b in budgets.items()
    }
    errors = funding_errors(call_off, ordered, funders, available, given)
    if errors:
        # The lead buyer's budget is named by the placing answers (start date, quantity) that
        # a re-split cannot change: its refusal is about the shares.
        for key in ("start_date", "end_date", "quantity"):
            if key in errors:
                errors.setdefault("shares", []).extend(errors.pop(key))
        raise BusinessRuleViolation(errors)
    return budgets, locked


def _set_new_shares(
    call_off: CallOff,
    ordered: Sequence[FundingShare],
    funders: dict[int, Organisation],
    budgets: dict[tuple[int, int], FundingBudget],
    locked: dict[int, Budget],
    now: datetime,
) -> list[CallOffFunder]:
    """Each funder's new share and its parts by year, committed against the locked budgets (an
    old commitment given back first). A funder whose share is new or larger is asked again,
    unless its standing authorisation confirms it; returns the funders asked."""
    held = {f.organisation_id: f for f in call_off.funders}
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
            kept_by_authorisation = funder.preauthorised and not ask
            give_back(call_off, funder)
            if kept_by_authorisation:
                retake_authorisation(call_off, funder, by_year)
        funder.basis_points, funder.share_pence = share.basis_points, part
        first = locked[budgets[pk, min(by_year)].id]
        funder.budget_id, funder.budget = first.id, first
        set_parts(funder, by_year, {year: locked[budgets[pk, year].id] for year in by_year})
        if ask:
            funder.declined_at = funder.declined_by_id = funder.decline_reason = None
            funder.confirmed_at = funder.confirmed_by_id = None
            funder.preauthorised = False
            preauthorise(call_off, funder, now)
            if funder.confirmed_at is None:
                asked.append(funder)
    return asked


def _release_left_out(call_off: CallOff, kept: set[int]) -> list[tuple[Organisation, int]]:
    """Funders no longer sharing the call-off: their commitment given back, and they are
    removed (deleted with the flush); (organisation, amount) of those to tell (a funder that
    declined knows)."""
    released: list[tuple[Organisation, int]] = []
    for funder in [f for f in call_off.funders if f.organisation_id not in kept]:
        amount = give_back(call_off, funder)
        if funder.declined_at is None:
            released.append((funder.organisation, amount))
        call_off.funders.remove(funder)
    return released


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
