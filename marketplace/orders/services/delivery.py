"""Delivery recorded against a call-off (attendance, the budget spent) and its completion by the
provider (outcomes recorded; invoices hears of it through ``orders.signals``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from marketplace.accounts.models import Role, User
from marketplace.catalogue.queries import first_of_month
from marketplace.core import audit
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, TransitionConflict
from marketplace.core.state import lock, transition
from marketplace.core.validation import date_horizon_error
from marketplace.orders import signals
from marketplace.orders.models import (
    CALL_OFF_TRANSITIONS,
    PROGRESS_NOTE_MAX,
    REASON_DETAIL_MAX,
    SUMMARY_MAX,
    AbsenceReason,
    Attendance,
    CallOff,
    CallOffStatus,
    Delivery,
    OutcomeRecord,
    OutcomeResult,
)
from marketplace.orders.services.budgets import release_budgets, spend_delivered
from marketplace.orders.services.call_offs import (
    CALL_OFF_FIELDS,
    email_buyer,
    record_change,
    require_provider,
)
from marketplace.orders.services.capacity import free_capacity
from marketplace.orders.services.variations import close_open_variations


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
    require_provider(actor, call_off, frozenset({Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}))
    now = now or utcnow()
    if call_off.status not in (CallOffStatus.ACCEPTED, CallOffStatus.IN_DELIVERY):
        raise BusinessRuleViolation(
            {
                "status": [
                    f"This call-off is {call_off.status.label.lower()}: delivery can be recorded "
                    "only once it is accepted and until it is completed or cancelled"
                ]
            }
        )
    day, units, attendance, absence, payable, note = _checked_delivery(
        call_off, details, london_date(now)
    )
    # Two people recording at once must not deliver more than the quantity between them, nor
    # record on a call-off cancelled or completed meanwhile.
    lock(call_off, "funders")
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
        spend_delivered(call_off, call_off.delivered_units + delivery.payable_units, day)
    if call_off.status == CallOffStatus.ACCEPTED:
        transition(call_off, CallOffStatus.IN_DELIVERY, CALL_OFF_TRANSITIONS, noun="call-off")
        call_off.delivery_started_at = now
    db.session.flush()
    record_change(
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


def _checked_delivery(call_off: CallOff, details: DeliveryDetails, today: date) -> tuple:
    """The provider's answers checked (nothing locked yet): (day, units, attendance, absence
    reason, payable, note), or refused with every error by field."""
    errors: dict[str, list[str]] = {}
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
    # A missed session is paid for only where the listing (or, without one, the award) charges
    # for missed sessions; unpaid, it is recorded but neither billed nor taken from the
    # quantity bought.
    payable = attendance != Attendance.DID_NOT_ATTEND or call_off.missed_sessions_are_chargeable
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
    return day, units, attendance, absence, payable, note


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
    require_provider(actor, call_off)
    errors: dict[str, list[str]] = {}
    summary = (summary or "").strip()
    if not summary:
        errors["summary"] = ["Enter an end-of-service summary"]
    elif len(summary) > SUMMARY_MAX:
        errors["summary"] = [f"The summary must be {SUMMARY_MAX} characters or fewer"]
    # The listing's outcomes; a call-off without a listing offers none to record.
    offered = call_off.offered_outcomes
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
    lock(call_off, "funders", "variations")
    before = audit.snapshot(call_off, CALL_OFF_FIELDS)
    transition(call_off, CallOffStatus.COMPLETED, CALL_OFF_TRANSITIONS, noun="call-off")
    call_off.completed_at, call_off.completed_by_id = now, actor.id
    call_off.completion_summary = summary
    call_off.outcomes.extend(records)
    release_budgets(call_off)
    next_month = first_of_month(first_of_month(london_date(now)) + timedelta(days=32))
    free_capacity(call_off, from_month=next_month)
    close_open_variations(actor, call_off, "completed", now)
    record_change(
        actor,
        "call_off.completed",
        call_off,
        before,
        outcomes=[{"outcome": r.outcome, "result": r.result.value} for r in records],
    )
    email_buyer(call_off, "orders_completed")
    # Invoices drafts what is left unbilled now, not at the next monthly run.
    signals.call_off_completed.send(call_off, now=now)
    return call_off
