"""A call-off's funding: a co-funder confirms or declines its share; after a decline, the lead
buyer shares the call-off out again."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError, NotFound, PermissionDenied
from marketplace.orders import permissions
from marketplace.orders.forms import DeclineFundingForm, ResplitForm
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services import details as order_details
from marketplace.orders.services import funding as order_funding
from marketplace.orders.views import bp, own_organisation, visible_call_off
from marketplace.orders.views.call_off import form_action, one_click
from marketplace.orders.views.placing import co_funders, form_field


@bp.post("/<int:call_off_id>/confirm-funding")
@roles_required(Role.APPROVER)
def confirm_funding(call_off_id: int):
    organisation = own_organisation()
    return one_click(
        call_off_id,
        lambda c: order_funding.confirm_funding(current_user, c, organisation),
        "You have confirmed your organisation's share.",
    )


@bp.route("/<int:call_off_id>/decline-funding", methods=["GET", "POST"])
@roles_required(Role.APPROVER)
def decline_funding(call_off_id: int):
    organisation = own_organisation()
    return form_action(
        call_off_id,
        DeclineFundingForm(),
        "orders/decline_funding.html",
        lambda c, f: order_funding.decline_funding(current_user, c, organisation, f.reason.data),
        "You have declined your organisation's share. The lead buyer has been told.",
    )


@bp.route("/<int:call_off_id>/funding", methods=["GET", "POST"])
@roles_required(Role.BUYER, Role.APPROVER)
def resplit_funding(call_off_id: int):
    """After a co-funder declined: the lead buyer shares the call-off out again."""
    organisation = own_organisation()
    call_off = visible_call_off(call_off_id)
    if not permissions.actions(current_user, organisation, call_off)["resplit"]:
        if organisation.id != call_off.lead_buyer_id:
            abort(403)
        flash(
            "No co-funder has declined its share of this call-off, so its shares cannot be changed",
            "error",
        )
        return redirect(url_for("orders.show", call_off_id=call_off_id))
    form = ResplitForm(co_funders=co_funders(organisation))
    declined = [f for f in call_off.funders if f.declined_at is not None]
    if request.method == "GET":
        # The remaining co-funders keep their shares; the lead would pay the declined part.
        kept = [f for f in call_off.funders if not f.is_lead and f.declined_at is None]
        for n, funder in enumerate(kept[:3], start=1):
            getattr(form, f"co_funder_{n}").data = str(funder.organisation_id)
            getattr(form, f"share_{n}").data = f"{funder.basis_points / 100:g}"
    elif form.validate_on_submit():
        co_funding = form.co_funding()
        rows = [n for n, _, _ in co_funding]
        total = sum(points for *_, points in co_funding)
        errors: dict[str, list[str]] = {}
        if not any(f.errors for f in form):
            if total >= 10_000:
                errors[f"share_{rows[0]}"] = [
                    f"The co-funders' shares add up to {total / 100:g}%: together they must "
                    "come to less than 100%, leaving your organisation a share"
                ]
            else:
                shares = [order_details.FundingShare(organisation.id, 10_000 - total)] + [
                    order_details.FundingShare(org_id, points) for _, org_id, points in co_funding
                ]
                try:
                    order_funding.resplit_funding(current_user, call_off, shares)
                    commit()
                except (NotFound, PermissionDenied) as error:
                    rollback()
                    abort(error.status)
                except DomainError as error:
                    rollback()
                    if error.status == 409:
                        flash(" ".join(m for ms in error.errors.values() for m in ms), "error")
                        return redirect(url_for("orders.show", call_off_id=call_off_id))
                    errors = {
                        form_field(form, key, rows) or "": messages
                        for key, messages in error.errors.items()
                    }
                else:
                    flash(_resplit_message(call_off), "success")
                    return redirect(url_for("orders.show", call_off_id=call_off_id))
                call_off = visible_call_off(call_off_id)
        for name, messages in errors.items():
            target = form.form_errors if not name else getattr(form, name).errors
            if not isinstance(target, list):
                getattr(form, name).errors = target = list(target)
            target.extend(m for m in messages if m not in target)
    return render_template("orders/resplit.html", form=form, call_off=call_off, declined=declined)


def _resplit_message(call_off: CallOff) -> str:
    if call_off.status == CallOffStatus.AWAITING_FUNDING:
        return "New shares saved. The co-funders asked for a new or larger share have been told."
    if call_off.status == CallOffStatus.AWAITING_APPROVAL:
        return "New shares saved. The call-off now needs an approver."
    return "New shares saved. Every funder has confirmed, so the call-off has gone to the provider."
