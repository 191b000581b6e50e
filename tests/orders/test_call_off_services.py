"""Call-off services: placing on a lawful route at the locked price, shares and budgets,
approval, the provider's response with capacity, delivery, cancellation and completion."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.catalogue.models import CapacityCommitment
from marketplace.catalogue.queries import committed_units, first_of_month
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import (
    BusinessRuleViolation,
    NotFound,
    PermissionDenied,
    TransitionConflict,
)
from marketplace.core.notifications.models import Notification
from marketplace.orders import permissions, queries
from marketplace.orders.models import Budget, CallOff, CallOffStatus, FundingAuthorisation
from marketplace.orders.services import capacity as order_capacity
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services import responses
from marketplace.orders.services import variations as order_variations
from marketplace.orders.services.delivery import DeliveryDetails, OutcomeDetails
from marketplace.reference.models import ServiceCategory
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, second_buyer, shares


@pytest.fixture
def world(app):
    return build_orders_world()


def place(world, actor=None, organisation=None, **fields):
    return order_placing.place_call_off(
        actor or world.buyer,
        organisation or world.region,
        world.listing.id,
        details(world, **fields),
    )


def emails_to(user) -> list[str]:
    return [
        n.template
        for n in db.session.scalars(
            sa.select(Notification).where(Notification.to_email == user.email)
        )
    ]


def actions() -> list[str]:
    return list(db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)))


def counts() -> tuple[int, int, int]:
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(CallOff)),
        int(db.session.scalar(sa.select(sa.func.sum(Budget.committed_pence)))),
        db.session.scalar(sa.select(sa.func.count()).select_from(CapacityCommitment)),
    )


# --- placing


def test_placing_locks_the_price_computes_the_value_and_sends_it_to_the_provider(world):
    call_off = place(world, quantity=12)
    assert call_off.status == CallOffStatus.SENT
    year = date.today().year
    assert call_off.reference == f"CO-{year}-{call_off.id:06d}"
    assert (call_off.unit_price_pence, call_off.net_pence) == (10_000, 120_000)
    assert call_off.vat_pence == 0 and call_off.gross_pence == 120_000  # exempt by default
    assert world.budget.committed_pence == 120_000
    [lead] = call_off.funders
    assert (lead.is_lead, lead.basis_points, lead.share_pence) == (True, 10_000, 120_000)
    assert call_off.respond_by > date.today()
    assert "orders_sent_to_provider" in emails_to(world.provider_admin)
    assert actions()[-1] == "call_off.placed"

    # A later price change never alters it.
    price = world.listing.prices[0]
    price.unit_price_pence = 99_999
    db.session.flush()
    db.session.expire(call_off)
    assert call_off.unit_price_pence == 10_000


def test_vat_is_locked_per_the_listing_treatment_and_rounded_half_up(app):
    world = build_orders_world(price_pence=1_234, vat_treatment="standard")
    call_off = place(world, quantity=3)
    assert call_off.net_pence == 3_702
    assert call_off.vat_pence == 740  # 740.4
    assert call_off.gross_pence == 4_442


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"crn": "x123456"}, "crn", "one capital letter and six digits"),
        ({"crn": "X12345"}, "crn", "one capital letter and six digits"),
        ({"crn": "XX23456"}, "crn", "one capital letter and six digits"),
        ({"crn": ""}, "crn", "Enter the person's CRN"),
        ({"quantity": 0}, "quantity", "1 or more"),
        ({"quantity": -3}, "quantity", "1 or more"),
        ({"quantity": 2.5}, "quantity", "whole number"),
        ({"quantity": "3"}, "quantity", "whole number"),
        ({"quantity": 501}, "quantity", "at most 500"),
        ({"end_date": "yesterday"}, "end_date", "Enter the planned end date"),
        ({"pdu": "  "}, "pdu", "Enter the probation delivery unit"),
        ({"po_number": "P" * 61}, "po_number", "60 characters or fewer"),
        ({"choice_reason": "cheapest"}, "choice_reason", "Choose the reason"),
    ],
)
def test_bad_details_are_refused_with_a_clear_message_and_nothing_is_written(
    world, fields, field, message
):
    before = counts()
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, **fields)
    assert any(message in m for m in refused.value.errors[field])
    assert counts() == before


def test_an_end_date_before_the_start_is_refused(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, end_date=world.start - timedelta(days=1))
    assert "same as or after the start date" in refused.value.errors["end_date"][0]


def test_the_start_must_allow_the_providers_lead_time(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, start_date=date.today() + timedelta(days=1))
    assert "5 working days' notice" in refused.value.errors["start_date"][0]


def test_an_unpublished_listing_or_a_suspended_membership_cannot_be_bought(world):
    world.listing.status = "paused"
    world.listing.paused_at = utcnow()
    db.session.flush()
    with pytest.raises(NotFound):
        place(world)


def test_only_a_buyer_of_a_commissioning_organisation_may_place(world):
    with pytest.raises(PermissionDenied):
        place(world, actor=world.provider_admin, organisation=world.provider)
    with pytest.raises(PermissionDenied):
        place(world, actor=world.pcc_approver, organisation=world.pcc)  # approver, not buyer


# --- the award route


def test_a_value_exactly_at_the_limit_is_placed_and_a_penny_over_is_refused(app):
    world = build_orders_world(price_pence=10_000, limit_pence=200_000)
    at_limit = place(world, quantity=20)
    assert at_limit.gross_pence == 200_000 and at_limit.status == CallOffStatus.SENT

    over = build_orders_world(price_pence=10_001, limit_pence=200_000)
    before = counts()
    with pytest.raises(BusinessRuleViolation) as refused:
        place(over, quantity=20)
    message = refused.value.errors["quantity"][0]
    assert "£2,000.20" in message and "further competition" in message
    assert counts() == before


def test_anti_splitting_counts_the_buyers_call_offs_for_the_same_service(app):
    world = build_orders_world(price_pence=10_000, limit_pence=300_000)
    place(world, quantity=20)  # £2,000
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, actor=second_buyer(world), quantity=11)  # £1,100 more: £3,100
    assert "not be split into smaller call-offs" in refused.value.errors["quantity"][0]
    assert place(world, quantity=10).gross_pence == 100_000  # exactly £3,000 in all


def test_cancelled_call_offs_do_not_count_towards_the_limit(app):
    world = build_orders_world(price_pence=10_000, limit_pence=300_000)
    first = place(world, quantity=20)
    responses.cancel(world.buyer, first, "duplicate")
    assert place(world, quantity=30).gross_pence == 300_000


# --- shares and budgets


def test_shares_must_sum_to_exactly_100_percent_and_name_commissioners(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, shares=shares((world.region, 6_000), (world.pcc, 3_999)))
    assert "add up to exactly 100% (they add up to 99.99%)" in refused.value.errors["shares"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, shares=shares((world.region, 6_000), (world.provider, 4_000)))
    # A problem with one funder is keyed by its entry in the shares given.
    assert "not a commissioning organisation" in refused.value.errors["shares-1-organisation_id"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, shares=shares((world.pcc, 10_000)))
    assert "must fund a share" in refused.value.errors["shares"][0]
    assert counts()[0] == 0


def test_a_funder_without_headroom_refuses_the_whole_call_off(app):
    world = build_orders_world(pcc_allocated_pence=39_999)
    before = counts()
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    assert "Durham PCC has £399.99 left" in refused.value.errors["shares-1-basis_points"][0]
    assert counts() == before


def test_a_funder_with_no_budget_for_the_year_is_named(world):
    db.session.delete(world.pcc_budget)
    db.session.flush()
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    assert "Durham PCC has no budget for" in refused.value.errors["shares-1-organisation_id"][0]


def test_a_category_budget_is_used_before_the_general_one(world):
    category_budget = Budget(
        organisation=world.region,
        financial_year=world.budget.financial_year,
        category_id=world.listing.lot.category_id,
        allocated_pence=500_000,
    )
    db.session.add(category_budget)
    db.session.flush()
    place(world)
    assert (category_budget.committed_pence, world.budget.committed_pence) == (100_000, 0)


def test_every_funders_budget_is_read_in_one_statement_the_category_one_first(world, count_queries):
    other_pcc = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    year = world.budget.financial_year
    other_budget = Budget(organisation=other_pcc, financial_year=year, allocated_pence=90_000)
    # Another category's budget of the PCC is not this call-off's.
    other_category = db.session.scalar(
        sa.select(ServiceCategory.id).where(ServiceCategory.id != world.listing.lot.category_id)
    )
    elsewhere = Budget(
        organisation=world.pcc,
        financial_year=year,
        category_id=other_category,
        allocated_pence=90_000,
    )
    region_category = Budget(
        organisation=world.region,
        financial_year=year,
        category_id=world.listing.lot.category_id,
        allocated_pence=90_000,
    )
    db.session.add_all([other_budget, elsewhere, region_category])
    db.session.flush()
    funding = shares((world.region, 5_000), (world.pcc, 3_000), (other_pcc, 2_000))
    with count_queries() as placing:
        call_off = place(world, quantity=10, shares=funding)
    assert sum("FROM budgets" in s for s in placing.statements) == 1
    assert {f.organisation_id: f.budget for f in call_off.funders} == {
        world.region.id: region_category,
        world.pcc.id: world.pcc_budget,
        other_pcc.id: other_budget,
    }
    assert (region_category.committed_pence, world.budget.committed_pence) == (50_000, 0)
    assert (world.pcc_budget.committed_pence, elsewhere.committed_pence) == (30_000, 0)
    assert other_budget.committed_pence == 20_000


def test_co_funding_waits_for_the_co_funder_then_goes_to_the_provider(world):
    call_off = place(world, quantity=7, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    lead, pcc = call_off.funders
    assert (lead.share_pence, pcc.share_pence) == (42_000, 28_000)
    assert (world.budget.committed_pence, world.pcc_budget.committed_pence) == (42_000, 28_000)
    assert "orders_funding_requested" in emails_to(world.pcc_approver)
    request = db.session.scalar(
        sa.select(Notification).where(
            Notification.to_email == world.pcc_approver.email,
            Notification.template == "orders_funding_requested",
        )
    )
    year = world.pcc_budget.financial_year
    assert f"£280.00 including VAT, from your {year}-{(year + 1) % 100:02d} budget." in (
        " ".join(request.body.split())
    )

    with pytest.raises(NotFound):  # not a funder
        order_funding.confirm_funding(world.provider_admin, call_off, world.provider)
    order_funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    assert call_off.status == CallOffStatus.SENT
    assert pcc.confirmed_by_id == world.pcc_approver.id
    with pytest.raises(BusinessRuleViolation):
        order_funding.confirm_funding(world.pcc_approver, call_off, world.pcc)


def _emails(template: str) -> list[Notification]:
    return list(
        db.session.scalars(
            sa.select(Notification)
            .where(Notification.template == template)
            .order_by(Notification.id)
        )
    )


def test_the_lead_buyer_is_emailed_when_each_co_funder_confirms_its_share(world):
    other_pcc = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    other_approver = make_member(Role.APPROVER, other_pcc, name="Cal Cleveland")
    db.session.add(
        Budget(
            organisation=other_pcc,
            financial_year=world.budget.financial_year,
            allocated_pence=1_000_000,
        )
    )
    call_off = place(
        world,
        quantity=10,
        shares=shares((world.region, 5_000), (world.pcc, 3_000), (other_pcc, 2_000)),
    )
    assert _emails("orders_funding_confirmed") == []

    order_funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    [first] = _emails("orders_funding_confirmed")
    assert first.to_email == world.buyer.email  # the person who placed it, nobody else
    assert first.subject == f"Durham PCC confirmed its share of call-off {call_off.reference}"
    body = " ".join(first.body.split())
    assert f"Dear {world.buyer.name}," in body
    assert (
        f"Durham PCC has confirmed its share of call-off {call_off.reference} for "
        '"Supported housing" from Harbour Housing: 30%, £300.00 including VAT.'
    ) in body
    assert "It goes to Harbour Housing once Cleveland PCC has confirmed its share." in body
    assert f"http://marketplace.test/call-offs/{call_off.id}" in first.body.split()  # its page

    order_funding.confirm_funding(other_approver, call_off, other_pcc)
    assert call_off.status == CallOffStatus.SENT
    last = _emails("orders_funding_confirmed")[-1]
    assert last.subject == f"Cleveland PCC confirmed its share of call-off {call_off.reference}"
    assert "Every funder has confirmed, so it has gone to Harbour Housing" in " ".join(
        last.body.split()
    )
    assert [n.to_email for n in _emails("orders_funding_confirmed")] == [world.buyer.email] * 2


def test_shares_split_to_the_penny(app):
    world = build_orders_world(price_pence=3_333, vat_treatment="standard")
    call_off = place(world, quantity=1, shares=shares((world.region, 3_333), (world.pcc, 6_667)))
    parts = [f.share_pence for f in call_off.funders]
    assert sum(parts) == call_off.gross_pence == 4_000
    assert parts == [1_333, 2_667]


def test_a_standing_authorisation_confirms_the_co_funders_share_within_its_limits(world):
    authorisation = FundingAuthorisation(
        funder=world.pcc,
        lead_buyer=world.region,
        financial_year=world.budget.financial_year,
        per_call_off_limit_pence=50_000,
        annual_limit_pence=60_000,
    )
    db.session.add(authorisation)
    db.session.flush()
    first = place(world, quantity=10, shares=shares((world.region, 5_000), (world.pcc, 5_000)))
    assert first.status == CallOffStatus.SENT and first.funders[1].preauthorised
    assert authorisation.used_pence == 50_000
    second = place(world, quantity=4, shares=shares((world.region, 5_000), (world.pcc, 5_000)))
    assert second.status == CallOffStatus.AWAITING_FUNDING  # 20,000 more would pass 60,000
    assert authorisation.used_pence == 50_000


# --- approval


def test_above_the_spend_limit_another_approver_must_approve(app, monkeypatch):
    world = build_orders_world(price_pence=100_000)
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 500_000)
    call_off = place(world, quantity=6)  # £6,000
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    assert "orders_approval_requested" in emails_to(world.approver)
    with pytest.raises(PermissionDenied):
        order_funding.approve(world.buyer, call_off)  # a buyer, not an approver
    with pytest.raises(NotFound):
        order_funding.approve(world.pcc_approver, call_off)  # another organisation's approver
    order_funding.approve(world.approver, call_off)
    assert call_off.status == CallOffStatus.SENT
    assert call_off.approved_by_id == world.approver.id


def test_an_approver_cannot_approve_their_own_call_off(app):
    world = build_orders_world(price_pence=100_000)
    both = make_member(Role.APPROVER, world.region)
    from tests.factories import add_membership

    add_membership(both, world.region, Role.BUYER)
    db.session.flush()
    for membership in both.memberships:
        membership.spend_limit_pence = 100_000  # £1,000 even as an approver
    call_off = place(world, actor=both, quantity=6)
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    with pytest.raises(PermissionDenied) as refused:
        order_funding.approve(both, call_off)
    assert "another approver" in str(refused.value)


# --- the provider's response and capacity


def test_accepting_commits_the_units_over_the_months(world):
    call_off = place(world, quantity=10)
    with pytest.raises(NotFound):  # another provider's admin
        responses.accept(make_member(Role.PROVIDER_ADMIN), call_off)
    with pytest.raises(PermissionDenied):
        responses.accept(world.buyer, call_off)
    responses.accept(world.provider_admin, call_off)
    assert call_off.status == CallOffStatus.ACCEPTED
    plan = order_capacity.capacity_plan(call_off)
    assert sum(plan.values()) == 10 and len(plan) >= 2
    taken = committed_units([world.listing.id], list(plan))
    assert {month: taken[(world.listing.id, month)] for month in plan} == plan
    assert "orders_accepted" in emails_to(world.buyer)


def test_capacity_full_refuses_acceptance_and_changes_nothing(app):
    world = build_orders_world(monthly_capacity=4)
    call_off = place(world, quantity=10, end_date=world.start + timedelta(days=1))
    before = counts()
    with pytest.raises(BusinessRuleViolation) as refused:
        responses.accept(world.provider_admin, call_off)
    assert "monthly capacity of 4" in refused.value.errors["capacity"][0]
    assert counts() == before and call_off.status == CallOffStatus.SENT


def test_accepting_after_the_response_period_is_refused_and_the_expiry_run_expires_it(world):
    call_off = place(world)
    late = utcnow() + timedelta(days=14)
    with pytest.raises(BusinessRuleViolation) as refused:
        responses.accept(world.provider_admin, call_off, now=late)
    assert "can no longer be accepted" in refused.value.errors["status"][0]
    assert responses.expire_overdue(now=late) == [call_off]
    assert call_off.status == CallOffStatus.EXPIRED
    assert world.budget.committed_pence == 0
    assert "orders_expired" in emails_to(world.buyer)
    assert responses.expire_overdue(now=late) == []  # safe to run again


def test_declining_needs_a_reason_and_releases_the_budget(world):
    call_off = place(world)
    with pytest.raises(BusinessRuleViolation):
        responses.decline(world.provider_admin, call_off, "  ")
    responses.decline(world.provider_admin, call_off, "No bed spaces in that area")
    assert call_off.status == CallOffStatus.DECLINED
    assert world.budget.committed_pence == 0
    assert "orders_declined" in emails_to(world.buyer)


# --- delivery, cancellation, completion


def accepted(world, **fields):
    call_off = place(world, **fields)
    responses.accept(world.provider_admin, call_off)
    return call_off


def deliver(world, call_off, units, day=None, **fields):
    values = {"delivered_on": day or call_off.start_date, "units": units, "attendance": "attended"}
    values.update(fields)
    future = utcnow() + timedelta(days=30)
    return order_delivery.record_delivery(
        world.provider_admin, call_off, DeliveryDetails(**values), now=future
    )


def test_delivery_moves_value_from_committed_to_spent_and_never_beyond_the_quantity(world):
    call_off = accepted(world, quantity=10)
    deliver(world, call_off, 3)
    assert call_off.status == CallOffStatus.IN_DELIVERY
    assert (world.budget.committed_pence, world.budget.spent_pence) == (70_000, 30_000)
    with pytest.raises(BusinessRuleViolation) as refused:
        deliver(world, call_off, 8)
    assert "Only 7 of the 10" in refused.value.errors["units"][0]
    with pytest.raises(BusinessRuleViolation) as refused:
        deliver(world, call_off, 0, attendance="did_not_attend")
    assert "reason the person did not attend" in refused.value.errors["absence_reason"][0]
    deliver(world, call_off, 0, attendance="did_not_attend", absence_reason="unacceptable")
    assert call_off.delivered_units == 3 and len(call_off.deliveries) == 2


def test_a_delivery_in_the_future_or_before_the_start_is_refused(world):
    call_off = accepted(world)
    with pytest.raises(BusinessRuleViolation) as refused:
        order_delivery.record_delivery(
            world.provider_admin,
            call_off,
            DeliveryDetails(
                delivered_on=date.today() + timedelta(days=1), units=1, attendance="attended"
            ),
        )
    assert "today or in the past" in refused.value.errors["delivered_on"][0]
    with pytest.raises(BusinessRuleViolation):
        deliver(world, call_off, 1, day=call_off.start_date - timedelta(days=1))


def test_cancelling_releases_what_was_not_delivered_and_a_completed_one_cannot_be_cancelled(world):
    call_off = accepted(world, quantity=10)
    deliver(world, call_off, 4)
    with pytest.raises(BusinessRuleViolation) as refused:
        responses.cancel(world.buyer, call_off, "other")
    assert "Explain why" in refused.value.errors["detail"][0]
    with pytest.raises(PermissionDenied):
        responses.cancel(world.provider_admin, call_off, "duplicate")
    responses.cancel(world.buyer, call_off, "recalled")
    assert (world.budget.committed_pence, world.budget.spent_pence) == (0, 40_000)
    assert counts()[2] == 0  # its capacity is free again
    assert "orders_cancelled" in emails_to(world.provider_admin)
    with pytest.raises(TransitionConflict) as refused:
        responses.cancel(world.buyer, call_off, "duplicate")
    assert refused.value.errors["status"] == ["This call-off has already been cancelled"]


def test_completion_records_outcomes_and_releases_the_rest(world):
    call_off = accepted(world, quantity=10)
    deliver(world, call_off, 6)
    with pytest.raises(BusinessRuleViolation) as refused:
        order_delivery.complete(
            world.provider_admin, call_off, "Done", [OutcomeDetails("Not offered", "achieved")]
        )
    assert "outcomes-0" in refused.value.errors
    order_delivery.complete(
        world.provider_admin,
        call_off,
        "Housed and settled",
        [
            OutcomeDetails("Settled accommodation", "achieved"),
            OutcomeDetails("Tenancy kept for 6 months", "partly_achieved", "Four months so far"),
        ],
    )
    assert call_off.status == CallOffStatus.COMPLETED
    assert (world.budget.committed_pence, world.budget.spent_pence) == (0, 60_000)
    assert [o.result.value for o in call_off.outcomes] == ["achieved", "partly_achieved"]
    with pytest.raises(BusinessRuleViolation):
        responses.cancel(world.buyer, call_off, "duplicate")
    # The delivery not yet billed is drafted on a completion invoice at once.
    assert actions()[-2:] == ["call_off.completed", "invoice.drafted"]


def test_a_co_funded_call_off_moves_each_budget_by_exactly_its_share(world):
    call_off = place(world, quantity=7, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    order_funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    responses.accept(world.provider_admin, call_off)
    deliver(world, call_off, 3)  # £300: 180 and 120
    assert (world.budget.spent_pence, world.pcc_budget.spent_pence) == (18_000, 12_000)
    order_delivery.complete(world.provider_admin, call_off, "Ended early: moved area")
    assert (world.budget.committed_pence, world.pcc_budget.committed_pence) == (0, 0)
    assert (world.budget.spent_pence, world.pcc_budget.spent_pence) == (18_000, 12_000)


def test_only_parties_and_the_authority_can_see_a_call_off(world):
    call_off = place(world, shares=shares((world.region, 6_000), (world.pcc, 4_000)))
    outsider_org = make_organisation()
    outsider = make_member(Role.BUYER, outsider_org)
    authority = make_organisation(OrganisationType.AUTHORITY)
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    assert not permissions.can_see(outsider, outsider_org, call_off)
    assert not permissions.can_see(outsider, None, call_off)
    assert permissions.can_see(world.provider_admin, world.provider, call_off)
    assert permissions.can_see(world.pcc_approver, world.pcc, call_off)  # a co-funder
    assert permissions.can_see(admin, authority, call_off)
    # What waits for whom: the co-funder's share first.
    waiting = sa.select(CallOff.id).where(queries.waiting_condition(world.pcc.id))
    assert db.session.scalars(waiting).all() == [call_off.id]
    waiting = sa.select(CallOff.id).where(queries.waiting_condition(world.provider.id))
    assert db.session.scalars(waiting).all() == []
    offered = permissions.actions(world.pcc_approver, world.pcc, call_off)
    assert offered["confirm_funding"] and not offered["cancel"]
    assert permissions.actions(world.buyer, world.region, call_off)["cancel"]


def test_capacity_is_what_accepted_call_offs_leave(world):
    call_off = accepted(world, quantity=10)
    month = first_of_month(call_off.start_date)
    taken = db.session.scalar(
        sa.select(sa.func.sum(CapacityCommitment.units)).where(
            CapacityCommitment.listing_id == world.listing.id, CapacityCommitment.month == month
        )
    )
    assert taken == order_capacity.capacity_plan(call_off)[month]


def test_the_expire_command_expires_overdue_call_offs_once(app, world):
    call_off = place(world)
    call_off.respond_by = date.today() - timedelta(days=1)
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["orders", "expire"])
    assert result.exit_code == 0, result.output
    assert "Expired 1 call-off(s)." in result.output
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.EXPIRED
    again = app.test_cli_runner().invoke(args=["orders", "expire"])
    assert "Expired 0 call-off(s)." in again.output


# --- variations


def test_a_variation_agreed_by_the_other_side_reruns_the_checks_and_makes_a_new_version(world):
    call_off = accepted(world, quantity=10)
    with pytest.raises(BusinessRuleViolation) as refused:
        order_variations.propose_variation(world.buyer, call_off, extra_units=0, reason="More")
    assert "Add units, a later end date, or both" in refused.value.errors["extra_units"][0]
    variation = order_variations.propose_variation(
        world.buyer,
        call_off,
        extra_units=5,
        new_end_date=call_off.end_date + timedelta(days=30),
        reason="Needs longer support",
    )
    assert "orders_variation_proposed" in emails_to(world.provider_admin)
    with pytest.raises(BusinessRuleViolation):  # one open proposal at a time
        order_variations.propose_variation(
            world.provider_admin, call_off, extra_units=1, reason="x"
        )
    with pytest.raises(PermissionDenied):  # the proposer cannot agree their own proposal
        order_variations.agree_variation(world.buyer, call_off, variation.id)
    order_variations.agree_variation(world.provider_admin, call_off, variation.id)
    assert (call_off.quantity, call_off.version, call_off.gross_pence) == (15, 2, 150_000)
    assert world.budget.committed_pence == 150_000
    assert [f.share_pence for f in call_off.funders] == [150_000]
    assert sum(order_capacity.capacity_plan(call_off).values()) == 15
    taken = db.session.scalar(
        sa.select(sa.func.sum(CapacityCommitment.units)).where(
            CapacityCommitment.source == call_off.reference
        )
    )
    assert taken == 15
    assert variation.before["quantity"] == 10 and variation.after["quantity"] == 15
    assert "orders_variation_decided" in emails_to(world.buyer)


def test_a_variation_over_the_limit_budget_or_capacity_is_refused_and_changes_nothing(app):
    world = build_orders_world(price_pence=10_000, limit_pence=150_000, monthly_capacity=12)
    call_off = accepted(world, quantity=10, end_date=world.start)
    variation = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=6, reason="Two more weeks"
    )
    db.session.commit()  # a refused request rolls back to here, as a page or the API would
    with pytest.raises(BusinessRuleViolation) as refused:
        order_variations.agree_variation(world.buyer, call_off, variation.id)
    assert "further competition" in refused.value.errors["quantity"][0]
    db.session.rollback()
    assert (call_off.quantity, call_off.version) == (10, 1)

    order_variations.withdraw_variation(world.provider_admin, call_off, variation.id)
    smaller = order_variations.propose_variation(
        world.provider_admin, call_off, extra_units=3, reason="A little more"
    )
    db.session.commit()
    with pytest.raises(BusinessRuleViolation) as refused:  # 13 units in a month of 12
        order_variations.agree_variation(world.buyer, call_off, smaller.id)
    assert "monthly capacity of 12" in refused.value.errors["capacity"][0]
    db.session.rollback()
    assert sum(order_capacity.capacity_plan(call_off).values()) == 10
    order_variations.reject_variation(world.buyer, call_off, smaller.id, "No capacity this month")
    assert smaller.status.value == "rejected"
    assert world.budget.committed_pence == 100_000
    taken = db.session.scalar(
        sa.select(sa.func.sum(CapacityCommitment.units)).where(
            CapacityCommitment.source == call_off.reference
        )
    )
    assert taken == 10


def test_an_outsider_cannot_propose_and_only_accepted_call_offs_vary(world):
    call_off = place(world)
    with pytest.raises(BusinessRuleViolation):
        order_variations.propose_variation(world.buyer, call_off, extra_units=1, reason="More")
    with pytest.raises(NotFound):
        order_variations.propose_variation(
            make_member(Role.BUYER), call_off, extra_units=1, reason="x"
        )
