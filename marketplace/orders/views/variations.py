"""Variations: either side proposes more units or a later end; the other agrees (above the
person's spend limit an approver then approves), rejects, or the proposer withdraws it."""

from __future__ import annotations

from flask import abort, flash, redirect, url_for
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError, NotFound
from marketplace.core.forms import parse_day, parse_whole_number
from marketplace.orders.forms import ConfirmForm, RejectVariationForm, VariationForm
from marketplace.orders.services import variations as order_variations
from marketplace.orders.views import bp, visible_call_off
from marketplace.orders.views.call_off import form_action, one_click


@bp.route("/<int:call_off_id>/variations/new", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def propose_variation(call_off_id: int):
    return form_action(
        call_off_id,
        VariationForm(),
        "orders/variation.html",
        lambda c, f: order_variations.propose_variation(
            current_user,
            c,
            extra_units=parse_whole_number(f.extra_units.data),
            new_end_date=parse_day(f.new_end_date.data) if f.new_end_date.data else None,
            reason=f.reason.data,
        ),
        "Change proposed. The other side has been asked to agree it.",
    )


@bp.post("/<int:call_off_id>/variations/<int:variation_id>/agree")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def agree_variation(call_off_id: int, variation_id: int):
    call_off = visible_call_off(call_off_id)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        variation = order_variations.agree_variation(current_user, call_off, variation_id)
        commit()
    except DomainError as error:
        rollback()
        if isinstance(error, NotFound):
            abort(404)
        flash(" ".join(m for ms in error.errors.values() for m in ms) or error.detail, "error")
    else:
        flash(
            # Not yet in force: above the person's spend limit it waits for an approver.
            "Change sent to your organisation's approvers: it is above your spend limit."
            if variation.awaiting_approval
            else "Change agreed: the call-off has a new version.",
            "success",
        )
    return redirect(url_for("orders.show", call_off_id=call_off_id))


@bp.post("/<int:call_off_id>/variations/<int:variation_id>/approve")
@roles_required(Role.APPROVER)
def approve_variation(call_off_id: int, variation_id: int):
    return one_click(
        call_off_id,
        lambda c: order_variations.approve_variation(current_user, c, variation_id),
        "Change approved.",
    )


@bp.post("/<int:call_off_id>/variations/<int:variation_id>/withdraw")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def withdraw_variation(call_off_id: int, variation_id: int):
    return one_click(
        call_off_id,
        lambda c: order_variations.withdraw_variation(current_user, c, variation_id),
        "Proposed change withdrawn.",
    )


@bp.route("/<int:call_off_id>/variations/<int:variation_id>/reject", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN)
def reject_variation(call_off_id: int, variation_id: int):
    return form_action(
        call_off_id,
        RejectVariationForm(),
        "orders/reject_variation.html",
        lambda c, f: order_variations.reject_variation(
            current_user, c, variation_id, f.reason.data
        ),
        "Change rejected. The other side has been told.",
    )
