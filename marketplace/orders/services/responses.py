"""The provider's response (accept with capacity, decline), expiry past the respond-by date (the
scheduler's ``expire_overdue``) and cancellation by the buyer.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.accounts.services.common import email_people
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.state import check_transition, lock, transition
from marketplace.orders.models import (
    CALL_OFF_TRANSITIONS,
    REASON_DETAIL_MAX,
    CallOff,
    CallOffStatus,
    CancellationReason,
)
from marketplace.orders.services.budgets import release_budgets
from marketplace.orders.services.call_offs import (
    CALL_OFF_FIELDS,
    email_buyer,
    record_change,
    require_buyer,
    require_provider,
)
from marketplace.orders.services.capacity import (
    capacity_plan,
    check_capacity,
    commit_capacity,
    free_capacity,
)
from marketplace.orders.services.variations import close_open_variations


def accept(actor: User, call_off: CallOff, *, now: datetime | None = None) -> CallOff:
    """The provider accepts within the response period; the units take its capacity."""
    require_provider(actor, call_off)
    now = now or utcnow()
    # First, so that of two acceptances at once the second waits here and is then refused
    # ("already accepted") before it checks or takes any capacity.
    check_transition(call_off, CallOffStatus.ACCEPTED, CALL_OFF_TRANSITIONS, noun="call-off")
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
    check_capacity(call_off, plan)
    commit_capacity(call_off, plan, now)
    transition(call_off, CallOffStatus.ACCEPTED, CALL_OFF_TRANSITIONS, noun="call-off")
    call_off.accepted_at, call_off.accepted_by_id = now, actor.id
    record_change(actor, "call_off.accepted", call_off, before)
    email_buyer(call_off, "orders_accepted")
    return call_off


def decline(actor: User, call_off: CallOff, reason: str, *, now: datetime | None = None) -> CallOff:
    require_provider(actor, call_off)
    reason = (reason or "").strip()
    if not reason:
        raise BusinessRuleViolation({"reason": ["Enter why you are declining this call-off"]})
    if len(reason) > REASON_DETAIL_MAX:
        raise BusinessRuleViolation(
            {"reason": [f"The reason must be {REASON_DETAIL_MAX} characters or fewer"]}
        )
    now = now or utcnow()
    lock(call_off, "funders")
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    transition(call_off, CallOffStatus.DECLINED, CALL_OFF_TRANSITIONS, noun="call-off")
    call_off.declined_at, call_off.declined_by_id, call_off.decline_reason = now, actor.id, reason
    release_budgets(call_off)
    record_change(actor, "call_off.declined", call_off, before, reason=reason)
    email_buyer(call_off, "orders_declined")
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
        lock(call_off, "funders")
        if call_off.status != CallOffStatus.SENT:
            continue  # answered meanwhile
        before = audit.snapshot(call_off, CALL_OFF_FIELDS)
        transition(call_off, CallOffStatus.EXPIRED, CALL_OFF_TRANSITIONS, noun="call-off")
        call_off.expired_at = now
        release_budgets(call_off)
        record_change(None, "call_off.expired", call_off, before)
        email_buyer(call_off, "orders_expired")
    return overdue


def cancel(
    actor: User,
    call_off: CallOff,
    reason: object,
    detail: str = "",
    *,
    now: datetime | None = None,
) -> CallOff:
    """The buyer cancels an open call-off; delivered units stay payable, the rest is released."""
    require_buyer(actor, call_off)
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
    lock(call_off, "funders", "variations")
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    was_with_provider = call_off.status in (
        CallOffStatus.SENT,
        CallOffStatus.ACCEPTED,
        CallOffStatus.IN_DELIVERY,
    )
    transition(call_off, CallOffStatus.CANCELLED, CALL_OFF_TRANSITIONS, noun="call-off")
    call_off.cancelled_at, call_off.cancelled_by_id = now, actor.id
    call_off.cancellation_reason, call_off.cancellation_detail = reason, detail
    release_budgets(call_off)
    free_capacity(call_off)
    close_open_variations(actor, call_off, "cancelled", now)
    record_change(actor, "call_off.cancelled", call_off, before, reason=reason.value, detail=detail)
    if was_with_provider:
        email_people(
            call_off.provider_id,
            [Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR],
            "orders_cancelled",
            call_off=call_off,
        )
    return call_off
