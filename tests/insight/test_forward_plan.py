"""Forward plans: who plans, where, when (not a quarter that has ended), publishing and
withdrawing with their emails, the public list and its filters, the pages and the API, another
organisation's entry (404), and exactly once under two concurrent clients."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role, User
from marketplace.accreditation.models import ArrangementStatus
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import frozen_at
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON, BusinessRuleViolation, NotFound
from marketplace.core.notifications.models import Notification
from marketplace.insight.models import PlannedProcurement, PlannedRoute, PlanStatus, ValueBand
from marketplace.insight.services import forward_plan
from marketplace.reference.models import PccArea
from tests.accreditation.factories import (
    category,
    make_arrangement,
    make_lot_membership,
    pcc_area,
    region,
)
from tests.factories import make_member, make_organisation
from tests.orders.test_call_off_api import bearer
from tests.pages import count, error_messages
from tests.racing import OK, race

# Q3 of 2026-27 (October to December 2026): Q1 and Q2 of 2026-27 have ended.
NOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with frozen_at(NOW):
        yield


class World:
    pass


@pytest.fixture
def world(app, frozen):
    """North West (B): a commissioner with a buyer and an approver, a provider member of ACC in
    B, one member of ACC in a PCC area of B, one member of ACC in A (not told), one member of
    ETE in B (not told); another commissioner."""
    w = World()
    live = make_arrangement(status=ArrangementStatus.LIVE, lots=("ACC", "ETE"), regions=("A", "B"))
    acc, ete = live.lots
    w.commissioner = make_organisation(OrganisationType.PROBATION_REGION, region_id=region("B").id)
    w.buyer = make_member(Role.BUYER, w.commissioner, email="buyer@example.org")
    w.approver = make_member(Role.APPROVER, w.commissioner)
    w.other = make_organisation(OrganisationType.PROBATION_REGION, region_id=region("A").id)
    w.other_buyer = make_member(Role.BUYER, w.other)
    w.region_member = make_organisation(OrganisationType.PROVIDER_VCSE, name="Region member")
    w.pcc_code = db.session.scalar(
        sa.select(PccArea.code)
        .where(PccArea.region_id == region("B").id)
        .order_by(PccArea.code)
        .limit(1)
    )
    w.pcc_member = make_organisation(OrganisationType.PROVIDER_VCSE, name="PCC member")
    w.elsewhere = make_organisation(OrganisationType.PROVIDER_VCSE, name="Elsewhere")
    w.other_lot = make_organisation(OrganisationType.PROVIDER_VCSE, name="Other lot")
    make_lot_membership(acc, w.region_member, region_code="B")
    make_lot_membership(acc, w.pcc_member, pcc_area_code=w.pcc_code)
    make_lot_membership(acc, w.elsewhere, region_code="A")
    make_lot_membership(ete, w.other_lot, region_code="B")
    w.admins = {
        o.id: make_member(Role.PROVIDER_ADMIN, o, email=f"admin{o.id}@example.org")
        for o in (w.region_member, w.pcc_member, w.elsewhere, w.other_lot)
    }
    w.provider_editor = make_member(Role.PROVIDER_EDITOR, w.region_member)
    commit()
    return w


def details(world, **changes) -> forward_plan.PlanDetails:
    values = {
        "title": "Supported housing in the North West",
        "description": "Move-on housing",
        "category_id": category("ACC").id,
        "area": f"region:{region('B').id}",
        "route": PlannedRoute.FURTHER_COMPETITION.value,
        "value_band": ValueBand.FROM_100K_TO_500K.value,
        "financial_year": 2026,
        "quarter": 4,
    }
    values.update(changes)
    return forward_plan.PlanDetails(**values)


def emails(template: str) -> list[str]:
    return sorted(
        db.session.scalars(
            sa.select(Notification.to_email).where(Notification.template == template)
        )
    )


# ---------------------------------------------------------------------------------------------
# Services


def test_a_buyer_adds_publishes_and_the_lots_members_in_the_area_are_told(world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    commit()
    assert plan.status is PlanStatus.DRAFT
    assert emails("forward_plan_published") == []
    forward_plan.publish_plan(world.buyer, plan)
    commit()
    assert plan.status is PlanStatus.PUBLISHED and plan.published_at is not None
    told = sorted(world.admins[o.id].email for o in (world.region_member, world.pcc_member))
    assert emails("forward_plan_published") == told
    actions = db.session.scalars(
        sa.select(AuditEvent.action).where(AuditEvent.object_type == "planned_procurement")
    ).all()
    assert sorted(actions) == ["planned_procurement.added", "planned_procurement.published"]


def test_a_pcc_area_entry_reaches_its_members_and_the_regions(world):
    plan = forward_plan.add_plan(
        world.buyer, world.commissioner, details(world, area=f"pcc:{pcc_area(world.pcc_code).id}")
    )
    forward_plan.publish_plan(world.buyer, plan)
    commit()
    told = sorted(world.admins[o.id].email for o in (world.region_member, world.pcc_member))
    assert emails("forward_plan_published") == told


def test_withdrawing_a_published_entry_tells_them_again_with_the_reason(world):
    plan = forward_plan.add_plan(world.approver, world.commissioner, details(world))
    forward_plan.publish_plan(world.approver, plan)
    commit()
    forward_plan.withdraw_plan(world.approver, plan, "The budget was cut")
    commit()
    assert plan.status is PlanStatus.WITHDRAWN
    assert len(emails("forward_plan_withdrawn")) == 2
    body = db.session.scalar(
        sa.select(Notification.body).where(Notification.template == "forward_plan_withdrawn")
    )
    assert "The budget was cut" in body


def test_withdrawing_a_draft_tells_nobody(world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    forward_plan.withdraw_plan(world.buyer, plan, "Not needed")
    commit()
    assert emails("forward_plan_withdrawn") == []


def test_withdrawing_needs_a_reason(world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    commit()
    with pytest.raises(BusinessRuleViolation) as refused:
        forward_plan.withdraw_plan(world.buyer, plan, "  ")
    assert "reason" in refused.value.errors


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"quarter": 2}, "quarter", "has already ended"),
        ({"financial_year": 2025, "quarter": 4}, "financial_year", "Choose a financial year"),
        ({"financial_year": 2030}, "financial_year", "Choose a financial year"),
        ({"quarter": 5}, "quarter", "Choose a quarter"),
        ({"value_band": "a_million"}, "value_band", "value band"),
        ({"route": "auction"}, "route", "further competition"),
        ({"category_id": 999_999}, "category_id", "lot"),
        ({"area": "region:999999"}, "area", "area"),
        ({"title": " "}, "title", "Enter a title"),
    ],
)
def test_bad_details_are_refused_and_nothing_is_written(world, changes, field, message):
    if field == "area":
        changes = {"area": f"region:{region('A').id}"}  # a region it does not buy for
    with pytest.raises(BusinessRuleViolation) as refused:
        forward_plan.add_plan(world.buyer, world.commissioner, details(world, **changes))
    db.session.rollback()
    assert message in " ".join(refused.value.errors[field])
    assert count(PlannedProcurement) == 0


def test_the_current_quarter_may_be_planned_for(world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world, quarter=3))
    assert plan.quarter == 3


def test_publishing_a_draft_whose_quarter_has_since_ended_is_refused(world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world, quarter=3))
    commit()
    later = datetime(2027, 1, 5, 12, tzinfo=UTC)
    with frozen_at(later), pytest.raises(BusinessRuleViolation) as refused:
        forward_plan.publish_plan(world.buyer, plan)
    db.session.rollback()
    assert "already ended" in " ".join(refused.value.errors["quarter"])
    assert db.session.get(PlannedProcurement, plan.id).status is PlanStatus.DRAFT
    assert emails("forward_plan_published") == []


def test_a_published_entry_cannot_be_changed(world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    forward_plan.publish_plan(world.buyer, plan)
    commit()
    with pytest.raises(BusinessRuleViolation):
        forward_plan.edit_plan(world.buyer, plan, details(world, title="Changed"))


def test_only_a_commissioners_buyers_and_approvers_plan(world):
    with pytest.raises(NotFound):
        forward_plan.add_plan(
            world.admins[world.region_member.id], world.region_member, details(world)
        )
    with pytest.raises(NotFound):
        forward_plan.add_plan(world.provider_editor, world.commissioner, details(world))
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    commit()
    with pytest.raises(NotFound):
        forward_plan.owned_plan(world.other_buyer, world.other, plan.id)


# ---------------------------------------------------------------------------------------------
# Exactly once


def _publisher(user_id: int, plan_id: int):
    def client():
        actor = db.session.get(User, user_id)
        plan = db.session.get(PlannedProcurement, plan_id)
        plan.status  # noqa: B018 - read before the others act
        return lambda: forward_plan.publish_plan(actor, plan)

    return client


def _withdrawer(user_id: int, plan_id: int):
    def client():
        actor = db.session.get(User, user_id)
        plan = db.session.get(PlannedProcurement, plan_id)
        plan.status  # noqa: B018 - read before the others act
        return lambda: forward_plan.withdraw_plan(actor, plan, "Cut")

    return client


def test_publishing_twice_at_once_publishes_once_with_one_set_of_emails(app, world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    commit()
    outcomes = race(
        app, [_publisher(world.buyer.id, plan.id), _publisher(world.approver.id, plan.id)]
    )
    assert outcomes.count(OK) == 1, outcomes
    assert all("already been published" in o for o in outcomes if o != OK), outcomes
    db.session.expire_all()
    assert len(emails("forward_plan_published")) == 2
    assert count(AuditEvent, AuditEvent.action == "planned_procurement.published") == 1


def test_withdrawing_twice_at_once_withdraws_once(app, world):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    forward_plan.publish_plan(world.buyer, plan)
    commit()
    outcomes = race(
        app, [_withdrawer(world.buyer.id, plan.id), _withdrawer(world.approver.id, plan.id)]
    )
    assert outcomes.count(OK) == 1, outcomes
    db.session.expire_all()
    assert len(emails("forward_plan_withdrawn")) == 2
    assert count(AuditEvent, AuditEvent.action == "planned_procurement.withdrawn") == 1


# ---------------------------------------------------------------------------------------------
# Pages


def form(world, **changes) -> dict:
    values = {
        "title": "Supported housing in the North West",
        "description": "",
        "category_id": str(category("ACC").id),
        "area": f"region:{region('B').id}",
        "route": "further_competition",
        "value_band": "100k_to_500k",
        "financial_year": "2026",
        "quarter": "4",
    }
    values.update(changes)
    return values


def test_a_commissioner_adds_changes_publishes_and_withdraws_on_the_pages(world, client, login):
    login(world.buyer, world.commissioner)
    assert client.get("/insight/forward-plans/yours").status_code == 200
    response = client.post("/insight/forward-plans/yours/new", data=form(world))
    assert response.status_code == 302
    plan = db.session.scalar(sa.select(PlannedProcurement))
    assert response.headers["Location"].endswith(f"/insight/forward-plans/yours/{plan.id}")
    response = client.post(
        f"/insight/forward-plans/yours/{plan.id}/edit", data=form(world, title="Changed")
    )
    assert response.status_code == 302
    page = client.get(f"/insight/forward-plans/yours/{plan.id}/publish")
    assert "2 providers" in page.get_data(as_text=True)
    assert client.post(f"/insight/forward-plans/yours/{plan.id}/publish").status_code == 302
    # A second click: no second set of emails, and it says so.
    again = client.post(f"/insight/forward-plans/yours/{plan.id}/publish", follow_redirects=True)
    assert "already been published" in again.get_data(as_text=True)
    assert len(emails("forward_plan_published")) == 2
    public = client.get("/insight/forward-plans").get_data(as_text=True)
    assert "Changed" in public
    response = client.post(
        f"/insight/forward-plans/yours/{plan.id}/withdraw", data={"reason": "Cut"}
    )
    assert response.status_code == 302
    assert "Changed" not in client.get("/insight/forward-plans").get_data(as_text=True)


def test_a_quarter_that_has_ended_is_shown_on_its_field(world, client, login):
    login(world.buyer, world.commissioner)
    response = client.post("/insight/forward-plans/yours/new", data=form(world, quarter="1"))
    assert response.status_code == 422
    assert any("has already ended" in m for m in error_messages(response))
    assert 'href="#quarter' in response.get_data(as_text=True)
    assert count(PlannedProcurement) == 0


@pytest.mark.parametrize("field", ["value_band", "quarter", "route"])
def test_a_choice_that_does_not_exist_is_refused_on_the_page(world, client, login, field):
    login(world.buyer, world.commissioner)
    response = client.post("/insight/forward-plans/yours/new", data=form(world, **{field: "x"}))
    assert response.status_code == 422
    assert error_messages(response)
    assert count(PlannedProcurement) == 0


def test_another_organisations_entry_is_not_found(world, client, login):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    commit()
    login(world.other_buyer, world.other)
    for suffix in ("", "/edit", "/publish", "/withdraw"):
        assert client.get(f"/insight/forward-plans/yours/{plan.id}{suffix}").status_code == 404
    assert client.post(f"/insight/forward-plans/yours/{plan.id}/publish").status_code == 404
    assert db.session.get(PlannedProcurement, plan.id).status is PlanStatus.DRAFT


def test_a_provider_has_no_forward_plan_of_its_own(world, client, login):
    login(world.admins[world.region_member.id], world.region_member)
    assert client.get("/insight/forward-plans/yours").status_code == 404
    assert client.get("/insight/forward-plans/yours/new").status_code == 404


def test_the_public_list_filters_and_a_provider_sees_its_lots(world, client, login):
    acc_b = forward_plan.add_plan(world.buyer, world.commissioner, details(world, title="ACC B"))
    ete_b = forward_plan.add_plan(
        world.buyer,
        world.commissioner,
        details(
            world, title="ETE B", category_id=category("ETE").id, financial_year=2027, quarter=1
        ),
    )
    draft = forward_plan.add_plan(world.buyer, world.commissioner, details(world, title="Draft"))
    for plan in (acc_b, ete_b):
        forward_plan.publish_plan(world.buyer, plan)
    commit()
    del draft

    def titles(url):
        page = client.get(url)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        return {t for t in ("ACC B", "ETE B", "Draft") if f">{t}<" in text}

    assert titles("/insight/forward-plans") == {"ACC B", "ETE B"}
    assert titles("/insight/forward-plans?lot=ETE") == {"ETE B"}
    assert titles("/insight/forward-plans?year=2027") == {"ETE B"}
    assert titles("/insight/forward-plans?region=A") == set()
    assert client.get("/insight/forward-plans?region=ZZ").status_code == 404
    assert client.get("/insight/forward-plans?year=soon").status_code == 404
    login(world.admins[world.region_member.id], world.region_member)
    assert titles("/insight/forward-plans?member=yes") == {"ACC B"}
    page = client.get("/insight/forward-plans").get_data(as_text=True)
    assert "/accreditation/applications" in page or "/applications" in page


# ---------------------------------------------------------------------------------------------
# API


def api_body(world, **changes) -> dict:
    values = {
        "title": "Supported housing",
        "category_id": category("ACC").id,
        "area": f"region:{region('B').id}",
        "route": "further_competition",
        "value_band": "100k_to_500k",
        "financial_year": 2026,
        "quarter": 4,
    }
    values.update(changes)
    return values


def test_the_api_adds_publishes_and_lists(world, client):
    headers = bearer(world.buyer, world.commissioner)
    response = client.post(
        "/api/v1/insight/forward-plans/yours", json=api_body(world), headers=headers
    )
    assert response.status_code == 201, response.get_json()
    plan_id = response.get_json()["id"]
    response = client.post(
        f"/api/v1/insight/forward-plans/yours/{plan_id}/publish", headers=headers
    )
    assert response.status_code == 200
    again = client.post(f"/api/v1/insight/forward-plans/yours/{plan_id}/publish", headers=headers)
    assert again.status_code == 409 and again.mimetype == PROBLEM_JSON
    listed = client.get("/api/v1/insight/forward-plans?lot=ACC").get_json()
    assert [p["id"] for p in listed["items"]] == [plan_id]
    assert listed["items"][0]["quarter"] == 4
    assert len(emails("forward_plan_published")) == 2


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"quarter": 1}, 422),
        ({"value_band": "a_million"}, 422),
        ({"quarter": 9}, 422),
        ({"area": f"pcc:{999_999}"}, 422),
    ],
)
def test_the_api_refuses_bad_details_with_a_problem(world, client, changes, status):
    headers = bearer(world.buyer, world.commissioner)
    response = client.post(
        "/api/v1/insight/forward-plans/yours", json=api_body(world, **changes), headers=headers
    )
    assert response.status_code == status
    assert response.mimetype == PROBLEM_JSON
    assert count(PlannedProcurement) == 0


def test_the_api_hides_another_organisations_entry(world, client):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world))
    commit()
    headers = bearer(world.other_buyer, world.other)
    for method, suffix in (("get", ""), ("post", "/publish")):
        response = getattr(client, method)(
            f"/api/v1/insight/forward-plans/yours/{plan.id}{suffix}", headers=headers
        )
        assert response.status_code == 404 and response.mimetype == PROBLEM_JSON
    assert client.get("/api/v1/insight/forward-plans?region=ZZ").status_code == 404


def test_publishing_a_quarter_that_has_since_ended_shows_why_on_the_page(world, client, login):
    plan = forward_plan.add_plan(world.buyer, world.commissioner, details(world, quarter=3))
    commit()
    login(world.buyer, world.commissioner)
    with frozen_at(datetime(2027, 1, 5, 12, tzinfo=UTC)):
        response = client.post(f"/insight/forward-plans/yours/{plan.id}/publish")
    assert response.status_code == 422
    assert any("has already ended" in m for m in error_messages(response))
    assert f"/insight/forward-plans/yours/{plan.id}/edit" in response.get_data(as_text=True)
    assert db.session.get(PlannedProcurement, plan.id).status is PlanStatus.DRAFT
    assert emails("forward_plan_published") == []
