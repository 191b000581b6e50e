"""The question page catches every mistake it can know about, with the same service checks as
placing, each shown in the error summary linked to its field (issue 18, journey B2); what still
fails at "Place call-off" sends the buyer back to the question page, to the answer to change."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.db import commit, db
from marketplace.orders.models import Budget, CallOff
from marketplace.orders.services import placing as order_placing
from tests.catalogue.factories import make_listing
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, press_place


@pytest.fixture
def world(app):
    built = build_orders_world()  # £100 a session, 1 to 500 a call-off, 5 days' notice
    commit()
    return built


def answers(world, **changes) -> dict:
    data = {
        "quantity": "12",
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "X123456",
        "pdu": "Durham",
        "po_number": "PO-9",
        "choice_reason": "continuity",
    }
    data.update(changes)
    return data


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))


def summary_links(response) -> dict[str, str]:
    """The error summary's links: {field id: message}."""
    page = response.data.decode()
    start = page.index('class="govuk-error-summary"')
    summary = page[start : page.index("</ul>", start)]
    return {
        href: html.unescape(re.sub(r"\s+", " ", text).strip())
        for href, text in re.findall(r'<a href="#([^"]+)">(.*?)</a>', summary, re.S)
    }


def refused(web, world, **changes) -> dict[str, str]:
    response = web.post(f"/call-offs/new/{world.listing.id}", data=answers(world, **changes))
    assert response.status_code == 422, response.headers.get("Location")
    return summary_links(response)


def test_a_quantity_above_the_listings_maximum_is_caught_on_the_question_page(web, world):
    web.as_user(world.buyer, world.region)
    links = refused(web, world, quantity="501")
    assert "at most 500 sessions" in links["quantity"]
    assert count() == 0


def test_a_start_inside_the_notice_period_is_caught_on_the_question_page(web, world):
    web.as_user(world.buyer, world.region)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    links = refused(web, world, start_date=tomorrow, end_date=world.start.isoformat())
    assert "5 working days' notice" in links["start_date"]


def test_a_year_with_no_budget_is_caught_on_the_question_page(web, world):
    web.as_user(world.buyer, world.region)
    next_year = date(world.start.year + 2, 6, 1)
    links = refused(web, world, start_date=next_year.isoformat(), end_date=next_year.isoformat())
    # The lead buyer's budget is the one for the year the start date falls in.
    assert "North East Probation has no budget for" in links["start_date"]

    db.session.delete(db.session.get(Budget, world.pcc_budget.id))
    commit()
    links = refused(web, world, co_funder_1=str(world.pcc.id), share_1="40")
    assert "Durham PCC has no budget for" in links["co_funder_1"]
    assert count() == 0


def test_the_same_funder_twice_is_caught_on_its_row(web, world):
    web.as_user(world.buyer, world.region)
    links = refused(
        web,
        world,
        co_funder_1=str(world.pcc.id),
        share_1="20",
        co_funder_3=str(world.pcc.id),
        share_3="20",
    )
    assert links == {"co_funder_3": "Name each funder once"}


def test_co_funders_shares_that_leave_the_lead_nothing_say_what_they_add_up_to(web, world):
    other = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    commit()
    web.as_user(world.buyer, world.region)
    links = refused(
        web,
        world,
        co_funder_1=str(world.pcc.id),
        share_1="70",
        co_funder_2=str(other.id),
        share_2="40.5",
    )
    # The buyer sees why 70 is wrong: with the other share it comes to more than the whole.
    assert links == {
        "share_1": "The co-funders' shares add up to 110.5%: together they must come to less "
        "than 100%, leaving your organisation a share"
    }
    assert count() == 0


@pytest.mark.parametrize(
    ("row", "field", "message"),
    [
        ({"share_2": "40"}, "co_funder_2", "Choose the co-funder for this share"),
        ({"co_funder_2": "PCC"}, "share_2", "Enter the co-funder's share"),
    ],
)
def test_a_co_funder_row_half_filled_is_an_error_on_that_row(web, world, row, field, message):
    web.as_user(world.buyer, world.region)
    row = {k: (str(world.pcc.id) if v == "PCC" else v) for k, v in row.items()}
    links = refused(web, world, **row)
    assert message in links[field]
    assert count() == 0


def test_a_co_funders_budget_too_small_is_shown_on_its_share(web, app):
    world = build_orders_world(pcc_allocated_pence=39_999)
    commit()
    web.as_user(world.buyer, world.region)
    links = refused(web, world, quantity="10", co_funder_1=str(world.pcc.id), share_1="40")
    assert "Durham PCC has £399.99 left" in links["share_1"]


def test_the_direct_award_limit_is_explained_on_the_question_page(web, app):
    world = build_orders_world(price_pence=10_000, limit_pence=5_000_000, allocated_pence=10**8)
    other = make_listing(
        world.listing.lot,
        world.provider,
        title="Tenancy sustainment",
        price_pence=10_000,
        price_from=date.today() - timedelta(days=30),
        max_units=500,
    )
    order_placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=300)
    )
    commit()
    web.as_user(world.buyer, world.region)
    response = web.post(f"/call-offs/new/{other.id}", data=answers(world, quantity="300"))
    assert response.status_code == 422
    links = summary_links(response)
    assert "with Harbour Housing in the Accommodation lot" in links["quantity"]
    assert "further competition" in links["quantity"]
    assert count() == 1


def test_every_mistake_is_shown_at_once(web, world):
    web.as_user(world.buyer, world.region)
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    links = refused(
        web,
        world,
        quantity="501",
        start_date=tomorrow,
        crn="",
        share_1="30",
        co_funder_2=str(world.pcc.id),
        share_2="20",
        co_funder_3=str(world.pcc.id),
        share_3="10",
    )
    assert set(links) == {"quantity", "start_date", "crn", "co_funder_1", "co_funder_3"}
    assert links["crn"] == "Enter the person's CRN"  # the form's message, not the rule's too
    assert count() == 0


def test_a_budget_used_up_before_placing_sends_the_buyer_back_to_the_question_page(web, world):
    web.as_user(world.buyer, world.region)
    to_check = web.post(f"/call-offs/new/{world.listing.id}", data=answers(world, quantity="12"))
    assert to_check.status_code == 302
    check_url = to_check.headers["Location"]
    # Meanwhile someone else commits all but £100 of the budget.
    budget = db.session.get(Budget, world.budget.id)
    budget.committed_pence = budget.allocated_pence - 10_000
    commit()

    placed = press_place(web, check_url)
    assert placed.status_code == 302
    back = placed.headers["Location"]
    assert f"/call-offs/new/{world.listing.id}?draft=" in back
    page = web.get(back)
    assert page.status_code == 200
    links = summary_links(page)
    assert "North East Probation has £100.00 left" in links["quantity"]
    assert 'value="12"' in page.data.decode()  # the answers are kept
    assert count() == 0
    # Shown once: the next visit is the question page with the answers, without the error.
    assert b"govuk-error-summary" not in web.get(back).data

    fixed = web.post(back, data=answers(world, quantity="1"))
    assert fixed.status_code == 302
    assert press_place(web, fixed.headers["Location"]).status_code == 302
    assert count() == 1


def test_a_co_funders_budget_used_up_before_placing_points_at_its_share(web, world):
    web.as_user(world.buyer, world.region)
    to_check = web.post(
        f"/call-offs/new/{world.listing.id}",
        data=answers(world, co_funder_1=str(world.pcc.id), share_1="40"),
    )
    budget = db.session.get(Budget, world.pcc_budget.id)
    budget.committed_pence = budget.allocated_pence
    commit()
    placed = press_place(web, to_check.headers["Location"])
    links = summary_links(web.get(placed.headers["Location"]))
    assert "Durham PCC has £0.00 left" in links["share_1"]
    assert count() == 0


def test_the_question_page_is_for_buyers_only(web, world):
    url = f"/call-offs/new/{world.listing.id}"
    approver_only = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    approver = make_member(Role.APPROVER, approver_only)
    commit()
    for user, organisation in (
        (world.provider_admin, world.provider),
        (approver, approver_only),
    ):
        web.as_user(user, organisation)
        assert web.get(url).status_code == 403
        assert web.post(url, data=answers(world)).status_code == 403
    assert count() == 0


def test_the_same_checks_answer_the_api_with_the_funder_named(client, world):
    from tests.orders.test_call_off_api import bearer, order

    buyer = bearer(world.buyer, world.region)
    body = order(
        world,
        shares=[
            {"organisation_id": world.region.id, "basis_points": 6_000},
            {"organisation_id": world.pcc.id, "basis_points": 2_000},
            {"organisation_id": world.pcc.id, "basis_points": 2_000},
        ],
    )
    response = client.post("/api/v1/orders", json=body, headers=buyer)
    assert response.status_code == 422
    assert response.json["errors"] == {"shares-2-organisation_id": ["Name each funder once"]}
