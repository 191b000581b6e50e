"""Declining a share and re-splitting on the call-off's pages and through the API: GOV.UK errors
on the page, problem+json from the API, 403 for the wrong role and 404 for a stranger."""

from __future__ import annotations

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.orders.models import Budget, CallOff, CallOffStatus
from marketplace.orders.services import funding as order_funding
from marketplace.orders.services import placing
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, shares
from tests.orders.test_call_off_api import bearer
from tests.pages import error_messages, main


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=10_000)


def co_funded(world, pcc_points=4_000) -> CallOff:
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 10_000 - pcc_points), (world.pcc, pcc_points))),
    )
    commit()
    return call_off


def declined(world) -> CallOff:
    call_off = co_funded(world)
    order_funding.decline_funding(world.pcc_approver, call_off, world.pcc, "Budget spent elsewhere")
    commit()
    return call_off


def status_of(call_off_id: int) -> CallOffStatus:
    db.session.expire_all()
    return db.session.get(CallOff, call_off_id).status


def test_the_co_funders_approver_declines_on_the_page_and_a_blank_reason_is_an_error(web, world):
    call_off = co_funded(world)
    web.as_user(world.pcc_approver, world.pcc)
    page = main(web.get(f"/call-offs/{call_off.id}"))
    assert "Confirm our share" in page and "Decline our share" in page

    form = web.get(f"/call-offs/{call_off.id}/decline-funding")
    assert "Durham PCC is asked to fund 40% of this call-off" in main(form)
    blank = web.post(f"/call-offs/{call_off.id}/decline-funding", data={"reason": "  "})
    assert blank.status_code == 422
    assert error_messages(blank) == ["Enter why your organisation is declining its share"]
    assert 'href="#reason"' in blank.get_data(as_text=True)
    assert status_of(call_off.id) == CallOffStatus.AWAITING_FUNDING

    done = web.post(
        f"/call-offs/{call_off.id}/decline-funding", data={"reason": "Budget spent elsewhere"}
    )
    assert done.status_code == 302
    assert status_of(call_off.id) == CallOffStatus.FUNDING_DECLINED
    page = main(web.get(f"/call-offs/{call_off.id}"))
    assert "Decline our share" not in page and "Confirm our share" not in page


def test_declining_needs_an_approver_of_a_funder(web, world):
    call_off = co_funded(world)
    web.as_user(make_member(Role.BUYER, world.pcc), world.pcc)
    url = f"/call-offs/{call_off.id}/decline-funding"
    assert web.post(url, data={"reason": "No"}).status_code == 403
    stranger_org = make_organisation(OrganisationType.PCC, name="Cumbria PCC")
    web.as_user(make_member(Role.APPROVER, stranger_org), stranger_org)
    assert web.post(url, data={"reason": "No"}).status_code == 404
    assert status_of(call_off.id) == CallOffStatus.AWAITING_FUNDING


def test_the_lead_buyer_sees_the_decline_and_re_splits_on_the_page(web, world):
    call_off = declined(world)
    other = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    db.session.add(
        Budget(
            organisation=other, financial_year=world.budget.financial_year, allocated_pence=10**7
        )
    )
    commit()
    web.as_user(world.buyer, world.region)
    home = main(web.get("/"))
    assert "Co-funding declined" in home and "See call-offs with a declined share" in home
    page = main(web.get(f"/call-offs/{call_off.id}"))
    assert "Funding declined" in page
    assert "Durham PCC declined its share of 40% (£400.00). Their reason: Budget spent" in page
    assert "Share out again" in page and "Cancel call-off" in page

    url = f"/call-offs/{call_off.id}/funding"
    form = web.get(url)
    assert "Their reason: Budget spent elsewhere" in main(form)
    # Mistakes answered as on the question page: co-funders of 100% or more, a funder twice.
    too_much = web.post(url, data={"co_funder_1": str(other.id), "share_1": "100"})
    assert error_messages(too_much) == [
        "Enter the co-funder's share as a percentage above 0 and below 100, like 40 or 33.33"
    ]
    over = web.post(
        url,
        data={
            "co_funder_1": str(other.id),
            "share_1": "60",
            "co_funder_2": str(world.pcc.id),
            "share_2": "40",
        },
    )
    assert error_messages(over) == [
        "The co-funders' shares add up to 100%: together they must come to less than 100%, "
        "leaving your organisation a share"
    ]
    twice = web.post(
        url,
        data={
            "co_funder_1": str(other.id),
            "share_1": "20",
            "co_funder_2": str(other.id),
            "share_2": "20",
        },
    )
    assert error_messages(twice) == ["Name each funder once"]
    assert 'href="#co_funder_2"' in twice.get_data(as_text=True)
    assert status_of(call_off.id) == CallOffStatus.FUNDING_DECLINED

    done = web.post(url, data={"co_funder_1": str(other.id), "share_1": "25"})
    assert done.status_code == 302
    assert status_of(call_off.id) == CallOffStatus.AWAITING_FUNDING
    page = main(web.get(f"/call-offs/{call_off.id}"))
    assert "Shares changed" in page and "North East Probation 75%, Cleveland PCC 25%" in page


def test_only_the_lead_buyer_reaches_the_re_split_page_and_only_after_a_decline(web, world):
    call_off = co_funded(world)
    web.as_user(world.buyer, world.region)
    early = web.post(f"/call-offs/{call_off.id}/funding", data={})
    assert early.status_code == 302
    assert "No co-funder has declined its share" in main(web.get(early.headers["Location"]))
    order_funding.decline_funding(world.pcc_approver, call_off, world.pcc, "No")
    commit()
    web.as_user(world.pcc_approver, world.pcc)
    assert web.get(f"/call-offs/{call_off.id}/funding").status_code == 403
    stranger_org = make_organisation(OrganisationType.PROBATION_REGION, name="Wales")
    web.as_user(make_member(Role.BUYER, stranger_org), stranger_org)
    assert web.get(f"/call-offs/{call_off.id}/funding").status_code == 404


def test_the_api_declines_and_re_splits_with_problem_json_for_bad_input(client, world):
    call_off = co_funded(world)
    pcc = bearer(world.pcc_approver, world.pcc)
    buyer = bearer(world.buyer, world.region)
    url = f"/api/v1/orders/{call_off.id}"

    early = client.post(
        f"{url}/funding",
        json={"shares": [{"organisation_id": world.region.id, "basis_points": 10_000}]},
        headers=buyer,
    )
    assert early.status_code == 409 and early.mimetype == PROBLEM_JSON
    assert "No co-funder has declined" in early.json["detail"]

    blank = client.post(f"{url}/decline-funding", json={"reason": ""}, headers=pcc)
    assert blank.status_code == 422 and blank.mimetype == PROBLEM_JSON
    pcc_buyer = bearer(make_member(Role.BUYER, world.pcc), world.pcc)
    assert (
        client.post(f"{url}/decline-funding", json={"reason": "No"}, headers=pcc_buyer).status_code
        == 403
    )
    stranger_org = make_organisation(OrganisationType.PCC, name="Cumbria PCC")
    stranger = bearer(make_member(Role.APPROVER, stranger_org), stranger_org)
    assert (
        client.post(f"{url}/decline-funding", json={"reason": "No"}, headers=stranger).status_code
        == 404
    )

    done = client.post(f"{url}/decline-funding", json={"reason": "Spent"}, headers=pcc)
    assert done.status_code == 200 and done.json["status"] == "funding_declined"
    assert done.json["funders"][1]["decline_reason"] == "Spent"

    region = world.region.id
    for bad in (
        [{"organisation_id": region, "basis_points": 9_000}],  # 90%
        [{"organisation_id": region, "basis_points": 0}],
        [{"organisation_id": region, "basis_points": -100}],
        [{"organisation_id": region, "basis_points": 99.5}],
        [{"organisation_id": region, "basis_points": "10000"}],
        [
            {"organisation_id": region, "basis_points": 5_000},
            {"organisation_id": world.pcc.id, "basis_points": 2_500},
            {"organisation_id": world.pcc.id, "basis_points": 2_500},
        ],
        [],
    ):
        refused = client.post(f"{url}/funding", json={"shares": bad}, headers=buyer)
        assert refused.status_code == 422, (bad, refused.json)
        assert refused.mimetype == PROBLEM_JSON
    whole = [{"organisation_id": region, "basis_points": 10_000}]
    assert client.post(f"{url}/funding", json={"shares": whole}, headers=pcc).status_code == 403
    stranger_buyer = bearer(make_member(Role.BUYER, stranger_org), stranger_org)
    assert (
        client.post(f"{url}/funding", json={"shares": whole}, headers=stranger_buyer).status_code
        == 404
    )
    assert status_of(call_off.id) == CallOffStatus.FUNDING_DECLINED

    resplit = client.post(f"{url}/funding", json={"shares": whole}, headers=buyer)
    assert resplit.status_code == 200 and resplit.json["status"] == "sent"
    assert [f["basis_points"] for f in resplit.json["funders"]] == [10_000]
