"""One call-off: its page (timeline, variations, the actions the reader may take and what the
features built on call-offs add), the one-click and one-form actions the other call-off pages
share, and the provider's and buyer's answers (approve, accept, decline, cancel)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import redirect, render_template, url_for
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Organisation, Role
from marketplace.accounts.permissions import can_view_audit
from marketplace.core.audit import AuditEvent, unsealed
from marketplace.core.db import db
from marketplace.core.filters import govuk_date
from marketplace.core.views_helpers import act_on_click, act_on_form
from marketplace.orders import permissions
from marketplace.orders import signals as orders_signals
from marketplace.orders.forms import CancelForm, ConfirmForm, DeclineForm
from marketplace.orders.models import CallOff, VariationStatus
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import responses
from marketplace.orders.views import PARTIES, bp, own_organisation, visible_call_off


def cancellation_text(call_off: CallOff) -> str:
    """The buyer's reason for cancelling, in words, with their explanation."""
    if call_off.cancellation_reason is None:
        return ""
    text = call_off.cancellation_reason.label
    if call_off.cancellation_detail:
        text += f": {call_off.cancellation_detail}"
    return text


def _variation_words(call_off: CallOff, variation) -> str:
    """What a variation changes, in words: "4 more sessions and an end date of 7 March 2027"."""
    parts = []
    if variation.extra_units:
        unit = call_off.unit
        noun = unit.label if variation.extra_units == 1 else unit.plural
        parts.append(f"{variation.extra_units:,} more {noun}")
    if variation.new_end_date:
        parts.append(f"an end date of {govuk_date(variation.new_end_date)}")
    return " and ".join(parts)


def _variation_text(call_off: CallOff, action: str, variation) -> str:
    """A variation's timeline entry: what it changes, and why (proposed) or the decision's
    reason (rejected); the buyer follows each change from the call-off's timeline alone."""
    words = _variation_words(call_off, variation)
    if action == "call_off.variation_proposed":
        return f"{words[0].upper()}{words[1:]}. Reason: {variation.reason}"
    if action == "call_off.variation_agreed":
        return f"{words[0].upper()}{words[1:]}: the call-off is now version {variation.version}"
    if action == "call_off.variation_rejected":
        return variation.decision_reason or ""
    return f"{words[0].upper()}{words[1:]}"


def _timeline(call_off: CallOff) -> list[dict]:
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.object_type == "call_off", AuditEvent.object_id == str(call_off.id))
        .where(unsealed())
        .order_by(AuditEvent.id.desc())
    ).all()
    titles = {
        "call_off.placed": "Call-off placed",
        "call_off.funding_confirmed": "Co-funder's share confirmed",
        "call_off.funding_declined": "Co-funder declined its share",
        "call_off.funding_resplit": "Shares changed",
        "call_off.approved": "Approved",
        "call_off.accepted": "Accepted by the provider",
        "call_off.declined": "Declined by the provider",
        "call_off.expired": "Expired without a response",
        "call_off.delivery_recorded": "Delivery recorded",
        "call_off.variation_proposed": "Variation proposed",
        "call_off.variation_agreed": "Variation agreed",
        "call_off.variation_rejected": "Variation rejected",
        "call_off.variation_withdrawn": "Variation withdrawn",
        "call_off.cancelled": "Cancelled",
        "call_off.completed": "Completed",
        "call_off.outcome_terms_agreed": "Outcome terms agreed",
    }
    deliveries = {d.id: d for d in call_off.deliveries}
    variations = {v.id: v for v in call_off.variations}
    items = []
    for event in events:
        after = event.after or {}
        text = ""
        if event.action.startswith("call_off.variation_"):
            variation = variations.get(after.get("variation_id"))
            if variation is not None:
                text = _variation_text(call_off, event.action, variation)
        elif event.action == "call_off.delivery_recorded":
            delivery = deliveries.get(after.get("delivery_id"))
            if delivery is not None:
                text = (
                    f"{call_off.unit.count(delivery.units)} on {govuk_date(delivery.delivered_on)}"
                    f": {delivery.attendance.label}"
                    + (f" ({delivery.absence_reason.label})" if delivery.absence_reason else "")
                    + (
                        ""
                        if delivery.payable
                        else ", not paid for (missed sessions are not charged)"
                    )
                    + (f". {delivery.progress_note}" if delivery.progress_note else "")
                )
        elif event.action == "call_off.funding_declined":
            text = f"Reason: {after.get('reason', '')}"
        elif event.action == "call_off.funding_resplit":
            text = _shares_text(after.get("funders") or [])
        elif event.action == "call_off.declined":
            text = call_off.decline_reason or ""
        elif event.action == "call_off.cancelled":
            text = cancellation_text(call_off)
        elif event.action == "call_off.completed":
            text = call_off.completion_summary
            outcomes = [
                f"{record.outcome}: {record.result.label.lower()}"
                + (f" ({record.comment})" if record.comment else "")
                for record in call_off.outcomes
            ]
            if outcomes:
                text += ("\n" if text else "") + "Outcomes: " + "; ".join(outcomes)
        items.append(
            {
                "title": titles.get(event.action, event.action),
                "by": event.actor.name if event.actor else "The marketplace",
                "at": event.occurred_at,
                "text": text,
            }
        )
    return items


def _shares_text(funders: list[dict]) -> str:
    """The shares a re-split made, in words: "North East Probation 75%, Durham PCC 25%"."""
    names = dict(
        db.session.execute(
            sa.select(Organisation.id, Organisation.name).where(
                Organisation.id.in_([f["organisation_id"] for f in funders] or [0])
            )
        ).all()
    )
    return ", ".join(
        f"{names.get(f['organisation_id'], 'A funder')} {f['basis_points'] / 100:g}%"
        for f in funders
    )


@bp.get("/<int:call_off_id>")
@roles_required(*PARTIES, Role.AUTHORITY_ADMIN)
def show(call_off_id: int):
    call_off = visible_call_off(call_off_id)
    open_variations = [v for v in call_off.variations if v.status == VariationStatus.PROPOSED]
    return render_template(
        "orders/show.html",
        call_off=call_off,
        cancellation=cancellation_text(call_off),
        can=permissions.actions(current_user, own_organisation(), call_off),
        timeline=_timeline(call_off),
        open_variations=open_variations,
        variations=call_off.variations,
        change_words={v.id: _variation_words(call_off, v) for v in call_off.variations},
        audit_url=(
            url_for("accounts.audit_log", object_type=call_off.audit_type, object_id=call_off.id)
            if can_view_audit(current_user)
            else None
        ),
        **{
            # A receiver gives the page of the competition that awarded it (``signals``).
            "competition_url": None,
            **page_values(
                orders_signals.call_off_page,
                call_off,
                user=current_user,
                organisation=own_organisation(),
            ),
        },
    )


def page_values(signal, sender, **values) -> dict:
    """The values the features built on call-offs add to one of its pages (``orders.signals``)."""
    page: dict = {}
    for _, answer in signal.send(sender, **values):
        page.update(answer)
    return page


def one_click(call_off_id: int, action, success: str):
    call_off = visible_call_off(call_off_id)
    act_on_click(ConfirmForm(), lambda: action(call_off), success)
    return redirect(url_for("orders.show", call_off_id=call_off_id))


@bp.post("/<int:call_off_id>/approve")
@roles_required(Role.APPROVER)
def approve(call_off_id: int):
    return one_click(
        call_off_id,
        lambda c: order_funding.approve(current_user, c),
        "Call-off approved and sent to the provider.",
    )


@bp.post("/<int:call_off_id>/accept")
@roles_required(Role.PROVIDER_ADMIN)
def accept(call_off_id: int):
    return one_click(
        call_off_id,
        lambda c: responses.accept(current_user, c),
        "Call-off accepted. The buyer has been told.",
    )


def form_action(call_off_id: int, form, template: str, act, success: str):
    call_off = visible_call_off(call_off_id)
    if act_on_form(form, lambda: act(call_off, form), success):
        return redirect(url_for("orders.show", call_off_id=call_off_id))
    return render_template(template, form=form, call_off=visible_call_off(call_off_id))


@bp.route("/<int:call_off_id>/decline", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def decline(call_off_id: int):
    return form_action(
        call_off_id,
        DeclineForm(),
        "orders/decline.html",
        lambda c, f: responses.decline(current_user, c, f.reason.data),
        "Call-off declined. The buyer has been told.",
    )


@bp.route("/<int:call_off_id>/cancel", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER)
def cancel(call_off_id: int):
    return form_action(
        call_off_id,
        CancelForm(),
        "orders/cancel.html",
        lambda c, f: responses.cancel(current_user, c, f.reason.data, f.detail.data or ""),
        "Call-off cancelled.",
    )
