"""A change that raises a call-off's value above the buyer's spend limit goes to an approver
again: the call-off shows it waiting, an approver (not the person who asked) approves or rejects
it; one that would exceed a funder's budget or the direct-award limit is refused with the
reason."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied, TransitionConflict
from marketplace.core.notifications.models import Notification
from marketplace.orders import queries
from marketplace.orders.models import VariationStatus
from marketplace.orders.services import placing, responses
from marketplace.orders.services import variations as order_variations
from tests.orders.factories import build_orders_world, details


@pytest.fixture
def world(app, monkeypatch):
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 500_000)  # £5,000
    world = build_orders_world(price_pence=100_000)  # £1,000 a unit
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=4)
    )
    responses.accept(world.provider_admin, call_off)
    world.call_off = call_off
    return world


def emails_to(user) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Notification.template).where(Notification.to_email == user.email)
        )
    )


def test_a_providers_change_above_the_buyers_limit_waits_for_an_approver_who_approves_it(world):
    call_off = world.call_off
    change = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=2, reason="Two more weeks"
    )
    order_variations.agree_variation(world.buyer, call_off, change.id)  # £6,000: above £5,000
    assert change.status == VariationStatus.PROPOSED and change.awaiting_approval
    assert call_off.quantity == 4 and call_off.gross_pence == 400_000
    assert "orders_variation_approval_requested" in emails_to(world.approver)
    assert queries.waiting_first(world.region.id, 10, world.approver.id)[1] == 1
    with pytest.raises(TransitionConflict):  # the buyer cannot agree it again
        order_variations.agree_variation(world.buyer, call_off, change.id)
    with pytest.raises(PermissionDenied):  # a buyer is no approver
        order_variations.approve_variation(world.buyer, call_off, change.id)
    order_variations.approve_variation(world.approver, call_off, change.id)
    assert change.status == VariationStatus.AGREED and call_off.quantity == 6
    assert call_off.gross_pence == 600_000 and world.budget.committed_pence == 600_000
    with pytest.raises(TransitionConflict) as again:
        order_variations.approve_variation(world.approver, call_off, change.id)
    assert "already been approved" in str(again.value.errors)


def test_a_buyers_change_above_their_limit_goes_to_the_provider_only_once_approved(world):
    call_off = world.call_off
    change = order_variations.propose_variation(world.buyer, call_off, extra_units=3, reason="More")
    assert change.awaiting_approval
    assert "orders_variation_proposed" not in emails_to(world.provider_admin)
    with pytest.raises(TransitionConflict):  # the provider waits for the approver
        order_variations.agree_variation(world.provider_admin, call_off, change.id)
    order_variations.approve_variation(world.approver, call_off, change.id)
    assert "orders_variation_proposed" in emails_to(world.provider_admin)
    order_variations.agree_variation(world.provider_admin, call_off, change.id)
    assert call_off.quantity == 7


def test_an_approver_rejects_a_change_waiting_for_approval(world):
    call_off = world.call_off
    change = order_variations.propose_variation(world.buyer, call_off, extra_units=3, reason="More")
    order_variations.reject_variation(
        world.approver, call_off, change.id, "Not in this year's plan"
    )
    assert change.status == VariationStatus.REJECTED and call_off.quantity == 4


def test_within_the_limit_a_change_is_agreed_at_once(world):
    call_off = world.call_off
    change = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=1, reason="x"
    )
    order_variations.agree_variation(world.buyer, call_off, change.id)  # £5,000: at the limit
    assert change.status == VariationStatus.AGREED and not change.awaiting_approval


def test_a_change_nobody_else_could_approve_is_refused_with_who_can_fix_it(world):
    from marketplace.accounts.services.limits import set_limits

    set_limits(world.approver, world.region, world.approver, approval_limit_pence=1)
    call_off = world.call_off
    change = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=2, reason="x"
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        order_variations.agree_variation(world.buyer, call_off, change.id)
    [message] = refused.value.errors["extra_units"]
    assert "nobody in North East Probation other than you can approve" in message
    assert "Abe Approver can raise your spend limit" in message


def test_a_change_over_the_budget_or_the_direct_award_limit_is_refused_with_the_reason(app):
    world = build_orders_world(price_pence=100_000, allocated_pence=500_000)
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, quantity=4),
    )
    responses.accept(world.provider_admin, call_off)
    change = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=2, reason="x"
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        order_variations.agree_variation(world.buyer, call_off, change.id)
    assert (
        "less than the £2,000.00 more this variation needs there"
        in (refused.value.errors["shares"][0])
    )
    big = build_orders_world(price_pence=1_000_000, limit_pence=3_000_000)  # £10,000 a unit
    from marketplace.accounts.models import Role
    from tests.factories import add_membership

    add_membership(big.approver, big.region, Role.BUYER)
    db.session.flush()
    call_off = placing.place_call_off(
        big.approver, big.region, big.listing.id, details(big, quantity=3)
    )
    responses.accept(big.provider_admin, call_off)
    change = order_variations.propose_variation(
        big.provider_admin, call_off, extra_units=1, reason="x"
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        order_variations.agree_variation(big.approver, call_off, change.id)
    assert "over the direct award limit of £30,000.00" in refused.value.errors["quantity"][0]


def test_the_call_off_page_shows_the_change_waiting_and_offers_the_approver_approve(world, web):
    call_off = world.call_off
    change = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=2, reason="x"
    )
    agreed = web.as_user(world.buyer, world.region).post(
        f"/call-offs/{call_off.id}/variations/{change.id}/agree"
    )
    assert agreed.status_code == 302
    page = web.get(f"/call-offs/{call_off.id}").get_data(as_text=True)
    assert "Waiting for approval" in page and "an approver must approve it" in page
    assert "Change sent to your organisation&#39;s approvers" in page
    assert "Approve change" not in page and "Agree change" not in page
    approver_page = web.as_user(world.approver, world.region).get(f"/call-offs/{call_off.id}")
    assert "Approve change" in approver_page.get_data(as_text=True)
    provider_page = web.as_user(world.provider_admin, world.provider).get(
        f"/call-offs/{call_off.id}"
    )
    assert "Agree change" not in provider_page.get_data(as_text=True)
    done = web.as_user(world.approver, world.region).post(
        f"/call-offs/{call_off.id}/variations/{change.id}/approve"
    )
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(type(call_off), call_off.id).quantity == 6
