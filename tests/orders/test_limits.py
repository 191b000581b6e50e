"""Spend and approval limits set in the service: who sets which (pages, API, services), bad
input, and what they do to approval (who can approve, who is asked, what each approver sees),
and the refusal at placing when nobody but the buyer could approve."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import LIMIT_MAX_PENCE, Membership, OrganisationType, Role
from marketplace.accounts.services.limits import set_limits
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core import clock
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.models import Notification
from marketplace.orders import queries
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services import funding
from marketplace.orders.services import placing as order_placing
from tests.factories import add_membership, make_member, make_organisation
from tests.orders.factories import build_orders_world, details
from tests.pages import error_messages, text


@pytest.fixture
def world(app, monkeypatch):
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 500_000)
    return build_orders_world(price_pence=100_000)  # £1,000 a unit


def membership(user, organisation, role) -> Membership:
    return db.session.scalar(
        sa.select(Membership).where(
            Membership.user_id == user.id,
            Membership.organisation_id == organisation.id,
            Membership.role == role,
        )
    )


def emails_to(user) -> list[str]:
    return list(
        db.session.scalars(
            sa.select(Notification.template).where(Notification.to_email == user.email)
        )
    )


def snapshot() -> tuple:
    return (
        sorted(
            db.session.execute(
                sa.select(
                    Membership.id, Membership.spend_limit_pence, Membership.approval_limit_pence
                )
            ).all()
        ),
        db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)),
        db.session.scalar(sa.select(sa.func.count()).select_from(Notification)),
        db.session.scalar(sa.select(sa.func.count()).select_from(CallOff)),
    )


def place(world, actor=None, quantity=6):
    return order_placing.place_call_off(
        actor or world.buyer, world.region, world.listing.id, details(world, quantity=quantity)
    )


# --- setting limits (the service)


def test_an_approver_sets_a_buyers_spend_limit_and_an_approval_limit_audited_and_emailed(world):
    changed = set_limits(world.approver, world.region, world.buyer, spend_limit_pence=200_000)
    assert (
        changed and membership(world.buyer, world.region, Role.BUYER).spend_limit_pence == 200_000
    )
    event = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert event.action == "membership.limits_changed"
    assert (event.before, event.after) == (
        {"spend_limit_pence": None},
        {"spend_limit_pence": 200_000},
    )
    assert "limits_changed" in emails_to(world.buyer)
    body = db.session.scalars(
        sa.select(Notification).where(Notification.to_email == world.buyer.email)
    ).first()
    assert "£2,000.00" in body.body

    assert set_limits(world.approver, world.region, world.approver, approval_limit_pence=0)
    assert membership(world.approver, world.region, Role.APPROVER).approval_limit_pence == 0
    # The same again changes nothing and tells nobody.
    before = snapshot()
    assert not set_limits(world.approver, world.region, world.approver, approval_limit_pence=0)
    assert snapshot() == before
    # None: back to the default (spend) and to no limit (approval).
    set_limits(world.approver, world.region, world.buyer, spend_limit_pence=None)
    assert membership(world.buyer, world.region, Role.BUYER).spend_limit_pence is None


@pytest.mark.parametrize(
    ("who", "field", "value", "message"),
    [
        ("approver", "spend_limit_pence", 100, "is not a buyer"),
        ("buyer", "approval_limit_pence", 100, "is not an approver"),
        ("buyer", "spend_limit_pence", -1, "cannot be negative"),
        ("buyer", "spend_limit_pence", 2.5, "in pounds and pence"),
        ("buyer", "spend_limit_pence", "100", "in pounds and pence"),
        ("buyer", "spend_limit_pence", True, "in pounds and pence"),
        ("buyer", "spend_limit_pence", LIMIT_MAX_PENCE + 1, "or less"),
        ("approver", "approval_limit_pence", 10**30, "or less"),
    ],
)
def test_bad_limits_are_refused_and_change_nothing(world, who, field, value, message):
    before = snapshot()
    with pytest.raises(BusinessRuleViolation) as refused:
        set_limits(world.approver, world.region, getattr(world, who), **{field: value})
    assert message in refused.value.errors[field][0]
    assert snapshot() == before


def test_only_an_approver_of_the_organisation_sets_limits(world):
    with pytest.raises(PermissionDenied):  # a buyer of the organisation
        set_limits(world.buyer, world.region, world.buyer, spend_limit_pence=10**9)
    with pytest.raises(NotFound):  # another organisation's approver
        set_limits(world.pcc_approver, world.region, world.buyer, spend_limit_pence=1)
    with pytest.raises(NotFound):  # someone else's member
        set_limits(world.approver, world.region, world.pcc_approver, approval_limit_pence=1)


# --- what the limits do to approval


def test_above_an_approvers_limit_an_approver_whose_limit_covers_it_must_approve(world):
    senior = make_member(Role.APPROVER, world.region, name="Sam Senior")
    set_limits(world.approver, world.region, world.approver, approval_limit_pence=100_000)
    db.session.flush()
    call_off = place(world, quantity=6)  # £6,000, above the buyer's £5,000
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    # Asked: only the approver whose limit covers it.
    assert "orders_approval_requested" in emails_to(senior)
    assert "orders_approval_requested" not in emails_to(world.approver)
    with pytest.raises(PermissionDenied) as refused:
        funding.approve(world.approver, call_off)
    assert "above your approval limit of £1,000.00" in str(refused.value)
    assert "Sam Senior can approve it" in str(refused.value)
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL

    # Each approver's list and home page show only what they can approve.
    def waiting(user):
        return [c.id for c in queries.waiting_first(world.region.id, 10, user.id)[0]]

    assert waiting(world.approver) == [] and waiting(senior) == [call_off.id]
    db.session.commit()  # the home page reads what is committed
    today = clock.london_date()
    year = clock.financial_year(today)
    assert queries.home_figures(world.region.id, today, year, world.approver.id).to_approve == 0
    assert queries.home_figures(world.region.id, today, year, senior.id).to_approve == 1

    funding.approve(senior, call_off)
    assert call_off.status == CallOffStatus.SENT and call_off.approved_by_id == senior.id


def test_an_approver_never_approves_a_call_off_they_placed_and_does_not_see_it_to_approve(world):
    both = make_member(Role.APPROVER, world.region, name="Bo Both")
    add_membership(both, world.region, Role.BUYER)
    db.session.flush()
    set_limits(world.approver, world.region, both, spend_limit_pence=100_000)
    call_off = place(world, actor=both, quantity=6)
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    assert "orders_approval_requested" not in emails_to(both)
    assert queries.waiting_first(world.region.id, 10, both.id)[1] == 0
    with pytest.raises(PermissionDenied) as refused:
        funding.approve(both, call_off)
    assert "another approver" in str(refused.value)
    funding.approve(world.approver, call_off)
    assert call_off.status == CallOffStatus.SENT


def test_an_approvers_own_call_offs_go_unapproved_only_within_their_approval_limit(world):
    both = make_member(Role.APPROVER, world.region, name="Bo Both")
    add_membership(both, world.region, Role.BUYER)
    db.session.flush()
    set_limits(world.approver, world.region, both, approval_limit_pence=700_000)
    assert place(world, actor=both, quantity=7).status == CallOffStatus.SENT  # £7,000
    assert place(world, actor=both, quantity=8).status == CallOffStatus.AWAITING_APPROVAL


# --- nobody can approve: refused at placing, before anything is written


def test_placing_above_the_limit_with_nobody_else_able_to_approve_is_refused_naming_who_can_fix_it(
    world,
):
    set_limits(world.approver, world.region, world.approver, approval_limit_pence=100_000)
    before = snapshot()
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, quantity=6)
    [message] = refused.value.errors["quantity"]
    assert "£6,000.00, above your spend limit of £5,000.00" in message
    assert "nobody in North East Probation other than you can approve that much" in message
    assert "Abe Approver can raise your spend limit" in message
    assert snapshot() == before
    # The question page's check says the same before the buyer places anything.
    errors = order_placing.check_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=6)
    )
    assert errors["quantity"] == [message]
    # Within the limit it goes straight to the provider, approvers or not.
    assert place(world, quantity=5).status == CallOffStatus.SENT


def test_the_only_approver_who_is_also_the_buyer_is_told_to_raise_their_limit_or_invite_one(app):
    region = make_organisation(OrganisationType.PROBATION_REGION, name="Solo Probation")
    world = build_orders_world(price_pence=100_000)
    solo = make_member(Role.APPROVER, region, name="Solo Sue")
    add_membership(solo, region, Role.BUYER)
    from marketplace.orders.models import Budget

    db.session.add(
        Budget(
            organisation=region, financial_year=world.budget.financial_year, allocated_pence=10**8
        )
    )
    db.session.flush()
    set_limits(solo, region, solo, spend_limit_pence=100_000)
    with pytest.raises(BusinessRuleViolation) as refused:
        order_placing.place_call_off(solo, region, world.listing.id, details(world, quantity=6))
    assert "You are its only approver" in refused.value.errors["quantity"][0]


# --- pages


def test_the_team_page_shows_limits_and_an_approver_changes_them(world, web):
    web.as_user(world.approver, world.region)
    page = text(web.get("/team"))
    assert "Spend limit: £5,000.00 (default)" in page and "Approval limit: no limit" in page
    assert f"/team/members/{world.buyer.id}/limits" in page
    form = web.get(f"/team/members/{world.buyer.id}/limits")
    assert form.status_code == 200 and "Spend limit, in pounds" in text(form)
    assert "Approval limit" not in text(form)  # a buyer has no approval limit
    done = web.post(
        f"/team/members/{world.buyer.id}/limits", data={"spend_limit_pence": "1,250.50"}
    )
    assert done.status_code == 302
    assert membership(world.buyer, world.region, Role.BUYER).spend_limit_pence == 125_050
    assert "Spend limit: £1,250.50" in text(web.get("/team"))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5", "The spend limit cannot be negative"),
        ("12.345", "Enter the spend limit in whole pence, like 1250.50"),
        ("lots", "Enter the spend limit as an amount in pounds and pence, like 500 or 1250.50"),
        ("2000000000", "The spend limit must be £1,000,000,000.00 or less"),
    ],
)
def test_bad_limits_on_the_page_are_shown_in_the_error_summary(world, web, value, message):
    web.as_user(world.approver, world.region)
    before = snapshot()
    response = web.post(f"/team/members/{world.buyer.id}/limits", data={"spend_limit_pence": value})
    assert response.status_code == 422
    assert error_messages(response) == [message]
    assert 'href="#spend_limit_pence"' in text(response)
    assert snapshot() == before


def test_the_limits_page_refuses_non_approvers_and_other_organisations_members(world, web):
    web.as_user(world.buyer, world.region)
    assert web.get(f"/team/members/{world.buyer.id}/limits").status_code == 403
    web.as_user(world.approver, world.region)
    assert web.get(f"/team/members/{world.pcc_approver.id}/limits").status_code == 404
    assert (
        web.post(
            f"/team/members/{world.pcc_approver.id}/limits", data={"approval_limit_pence": "1"}
        ).status_code
        == 404
    )
    # A provider's admin manages a team without limits.
    assert (
        web.as_user(world.provider_admin, world.provider)
        .get(f"/team/members/{world.provider_admin.id}/limits")
        .status_code
        == 403
    )


# --- API


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    db.session.commit()
    return {"Authorization": f"Bearer {secret}"}


def test_the_api_lists_and_sets_limits_for_approvers_only(world, client):
    headers = bearer(world.approver, world.region)
    listed = client.get("/api/v1/team/members", headers=headers)
    assert listed.status_code == 200
    buyer = next(p for p in listed.json if p["user_id"] == world.buyer.id)
    assert buyer["roles"] == ["buyer"] and buyer["spend_limit_pence"] is None
    url = f"/api/v1/team/members/{world.buyer.id}/spend-limit"
    done = client.put(url, json={"spend_limit_pence": 250_000}, headers=headers)
    assert done.status_code == 200 and done.json["spend_limit_pence"] == 250_000
    mine = f"/api/v1/team/members/{world.approver.id}/approval-limit"
    done = client.put(mine, json={"approval_limit_pence": 900_000}, headers=headers)
    assert done.status_code == 200 and done.json["approval_limit_pence"] == 900_000
    before = snapshot()
    for body, status in (
        ({"spend_limit_pence": 2.5}, 422),
        ({"spend_limit_pence": -1}, 422),
        ({"spend_limit_pence": 10**15}, 422),
        ({}, 422),
        ({"approval_limit_pence": 100}, 422),  # not an approver
    ):
        path = url.replace("spend-limit", "approval-limit") if "approval" in str(body) else url
        refused = client.put(path, json=body, headers=headers)
        assert refused.status_code == status, body
        assert refused.content_type == "application/problem+json"
    other = f"/api/v1/team/members/{world.pcc_approver.id}/approval-limit"
    assert client.put(other, json={"approval_limit_pence": 1}, headers=headers).status_code == 404
    buyer_headers = bearer(world.buyer, world.region)
    assert client.get("/api/v1/team/members", headers=buyer_headers).status_code == 403
    assert client.put(url, json={"spend_limit_pence": 1}, headers=buyer_headers).status_code == 403
    assert snapshot()[0] == before[0]
