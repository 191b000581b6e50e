"""Delivery and completion: the provider records each delivery and completes the call-off with
the outcomes it offered."""

from __future__ import annotations

from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.forms import parse_day, parse_whole_number
from marketplace.orders.forms import DeliveryForm, complete_form
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.views import bp, visible_call_off
from marketplace.orders.views.call_off import form_action


@bp.route("/<int:call_off_id>/deliveries/new", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def record_delivery(call_off_id: int):
    def act(call_off, form):
        order_delivery.record_delivery(
            current_user,
            call_off,
            order_delivery.DeliveryDetails(
                delivered_on=parse_day(form.delivered_on.data),
                units=parse_whole_number(form.units.data),
                attendance=form.attendance.data,
                absence_reason=form.absence_reason.data or None,
                progress_note=form.progress_note.data or "",
            ),
        )

    return form_action(
        call_off_id, DeliveryForm(), "orders/delivery.html", act, "Delivery recorded."
    )


@bp.route("/<int:call_off_id>/complete", methods=["GET", "POST"])
@roles_required(Role.PROVIDER_ADMIN)
def complete(call_off_id: int):
    offered = visible_call_off(call_off_id).offered_outcomes
    form = complete_form(offered)

    def act(call_off, form):
        results = [
            order_delivery.OutcomeDetails(outcome, getattr(form, f"outcome_{n}").data)
            for n, outcome in enumerate(offered)
        ]
        try:
            order_delivery.complete(current_user, call_off, form.summary.data, results)
        except BusinessRuleViolation as error:
            # The service names each outcome by its place in the list: the form's outcome_<n>.
            raise BusinessRuleViolation(
                {k.replace("outcomes-", "outcome_"): v for k, v in error.errors.items()}
            ) from None

    return form_action(
        call_off_id,
        form,
        "orders/complete.html",
        act,
        "Call-off completed. The buyer has been told.",
    )
