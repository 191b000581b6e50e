"""Call-off pages: the buying journey, the list with filters and CSV, one call-off with its
actions, and who may see what."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.db import commit, db
from marketplace.orders.models import CallOff, CallOffStatus
from marketplace.orders.services import details as order_details
from marketplace.orders.services import placing, responses
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, press_place
from tests.pages import hidden_value


@pytest.fixture
def world(app):
    built = build_orders_world()
    commit()
    return built


def answers(world, **changes) -> dict:
    data = {
        "quantity": "12",
        "start_date": world.start.isoformat(),
        "end_date": world.start.isoformat(),
        "crn": "x123456",
        "pdu": "Durham",
        "po_number": "PO-9",
        "choice_reason": "continuity",
        "choice_reason_detail": "Already working with them",
    }
    data.update(changes)
    return data


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))


def test_a_buyer_buys_from_a_listing_checks_answers_and_sees_the_reference(web, world):
    web.as_user(world.buyer, world.region)
    listing_page = web.get(f"/services/{world.listing.id}")
    assert b"Buy this service" in listing_page.data
    form = web.get(f"/call-offs/new/{world.listing.id}")
    assert form.status_code == 200 and b"Why did you choose this provider?" in form.data

    response = web.post(f"/call-offs/new/{world.listing.id}", data=answers(world))
    assert response.status_code == 302
    check_url = response.headers["Location"]
    check = web.get(check_url)
    assert b"Check your answers" in check.data
    assert b"X123456" in check.data and "£1,200.00".encode() in check.data

    placed = web.post(check_url, data={"price_seen": hidden_value(check, "price_seen")})
    assert placed.status_code == 302 and "/placed" in placed.headers["Location"]
    confirmation = web.get(placed.headers["Location"])
    reference = re.search(rb"CO-\d{4}-\d{6}", confirmation.data).group().decode()
    # The panel shows the reference in bold under its label, as markup, never as escaped text.
    assert f"Your reference<br><strong>{reference}</strong>".encode() in confirmation.data
    assert b"&lt;strong&gt;" not in confirmation.data
    call_off = db.session.scalar(sa.select(CallOff))
    assert call_off.reference == reference and call_off.crn == "X123456"
    assert call_off.status == CallOffStatus.SENT

    # Sending the same answers again (a double click, the back button) places nothing more.
    again = web.post(check_url, data={})
    assert again.status_code == 302 and count() == 1


def test_bad_answers_show_the_error_summary_and_keep_nothing(web, world):
    web.as_user(world.buyer, world.region)
    cases = [
        ({"crn": "12345"}, b"one capital letter and six digits"),
        ({"quantity": "0"}, b"1 or more"),
        ({"quantity": "1.5"}, b"whole number"),
        ({"end_date": "2020-01-01"}, b"same as or after the start date"),
        ({"start_date": "31 2 2027"}, b"must be a real date"),
        ({"co_funder_1": str(world.pcc.id), "share_1": "100"}, b"above 0 and below 100"),
    ]
    for change, message in cases:
        response = web.post(f"/call-offs/new/{world.listing.id}", data=answers(world, **change))
        assert response.status_code == 422, change
        assert b"There is a problem" in response.data and message in response.data, change
    assert count() == 0


def test_a_refusal_over_the_limit_is_shown_on_the_question_page(web, app, world):
    web.as_user(world.buyer, world.region)
    response = web.post(
        f"/call-offs/new/{world.listing.id}", data=answers(world, quantity="400")
    )  # £40,000: over the £30,000 limit, caught before "Place call-off"
    assert response.status_code == 422 and b"further competition" in response.data
    assert b'href="#quantity"' in response.data
    assert count() == 0


def test_co_funding_goes_to_the_co_funders_approver_who_confirms_on_the_page(web, world):
    web.as_user(world.buyer, world.region)
    response = web.post(
        f"/call-offs/new/{world.listing.id}",
        data=answers(world, co_funder_1=str(world.pcc.id), share_1="40"),
    )
    check = web.get(response.headers["Location"])
    assert b"Durham PCC" in check.data and b"40%" in check.data and b"60%" in check.data
    press_place(web, response.headers["Location"])
    call_off = db.session.scalar(sa.select(CallOff))
    assert call_off.status == CallOffStatus.AWAITING_FUNDING

    web.as_user(world.pcc_approver, world.pcc)
    page = web.get(f"/call-offs/{call_off.id}")
    assert b"Confirm our share" in page.data
    web.post(f"/call-offs/{call_off.id}/confirm-funding", data={})
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.SENT


def test_the_co_funders_approver_reads_what_it_is_asked_to_confirm_beside_the_button(web, world):
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(
            world,
            quantity=7,
            shares=(
                order_details.FundingShare(world.region.id, 7_500),
                order_details.FundingShare(world.pcc.id, 2_500),
            ),
        ),
    )
    commit()
    web.as_user(world.pcc_approver, world.pcc)
    page = web.get(f"/call-offs/{call_off.id}").get_data(as_text=True)
    asked, button = page.index('id="share-to-confirm"'), page.index("Confirm our share")
    text = " ".join(re.sub(r"<[^>]+>", " ", page[asked:button]).split())
    year = world.pcc_budget.financial_year
    # 7 sessions at £100.00, exempt from VAT: £700.00, a quarter of it £175.00.
    assert (
        f"Durham PCC is asked to fund 25% of this call-off: £175.00 including VAT, from its "
        f"{year}-{(year + 1) % 100:02d} budget."
    ) in text
    assert "It goes to Harbour Housing once every funder has confirmed." in text

    web.as_user(world.buyer, world.region)  # the lead buyer has nothing to confirm
    assert 'id="share-to-confirm"' not in web.get(f"/call-offs/{call_off.id}").get_data(
        as_text=True
    )


def test_the_provider_accepts_records_delivery_and_the_buyer_sees_the_timeline(web, world):
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=4)
    )
    commit()
    web.as_user(world.provider_admin, world.provider)
    listing = web.get("/call-offs/")
    assert b"need your organisation" in listing.data or b"needs your organisation" in listing.data
    page = web.get(f"/call-offs/{call_off.id}")
    assert b"Accept call-off" in page.data
    web.post(f"/call-offs/{call_off.id}/accept", data={})
    bad = web.post(
        f"/call-offs/{call_off.id}/deliveries/new",
        data={"delivered_on": "tomorrow", "units": "x", "attendance": "attended"},
    )
    assert bad.status_code == 422 and b"There is a problem" in bad.data

    web.as_user(world.buyer, world.region)
    timeline = web.get(f"/call-offs/{call_off.id}")
    assert b"Accepted by the provider" in timeline.data and b"Call-off placed" in timeline.data
    assert b"Cancel call-off" in timeline.data
    cancel = web.post(f"/call-offs/{call_off.id}/cancel", data={"reason": "other", "detail": ""})
    assert cancel.status_code == 422 and b"Explain why you are cancelling" in cancel.data
    done = web.post(f"/call-offs/{call_off.id}/cancel", data={"reason": "sentence_ended"})
    assert done.status_code == 302
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.CANCELLED


def test_lists_filter_and_export_only_what_one_is_party_to(web, world):
    mine = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, crn="A111111")
    )
    placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, crn="B222222")
    )
    commit()
    web.as_user(world.buyer, world.region)
    filtered = web.get("/call-offs/?crn=a111111")
    assert mine.reference.encode() in filtered.data and b"B222222" not in filtered.data
    csv = web.get("/call-offs/export.csv")
    assert csv.mimetype == "text/csv"
    assert csv.data.count(b"\n") == 3 and b"A111111" in csv.data
    assert b"No call-offs match" in web.get("/call-offs/?crn=Z999999").data
    budgets = web.get("/call-offs/budgets")
    assert budgets.status_code == 200 and "£2,000.00".encode() in budgets.data

    outsider_org = make_organisation()
    outsider = make_member(Role.PROVIDER_ADMIN, outsider_org)
    commit()
    web.as_user(outsider, outsider_org)
    assert web.get(f"/call-offs/{mine.id}").status_code == 404
    assert mine.reference.encode() not in web.get("/call-offs/").data
    assert web.get(f"/call-offs/new/{world.listing.id}").status_code == 403
    assert web.post(f"/call-offs/{mine.id}/accept", data={}).status_code == 404


def test_a_change_is_proposed_on_the_page_and_agreed_by_the_other_side(web, world):
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=4)
    )
    responses.accept(world.provider_admin, call_off)
    commit()
    web.as_user(world.provider_admin, world.provider)
    assert b"Propose a change" in web.get(f"/call-offs/{call_off.id}").data
    bad = web.post(
        f"/call-offs/{call_off.id}/variations/new", data={"extra_units": "two", "reason": ""}
    )
    assert bad.status_code == 422 and b"whole number" in bad.data
    web.post(
        f"/call-offs/{call_off.id}/variations/new",
        data={"extra_units": "2", "reason": "Two more sessions"},
    )
    page = web.get(f"/call-offs/{call_off.id}")
    assert b"Withdraw proposed change" in page.data and b"Agree change" not in page.data

    web.as_user(world.buyer, world.region)
    page = web.get(f"/call-offs/{call_off.id}")
    assert b"Agree change" in page.data
    [variation] = db.session.get(CallOff, call_off.id).variations
    web.post(f"/call-offs/{call_off.id}/variations/{variation.id}/agree", data={})
    db.session.expire_all()
    changed = db.session.get(CallOff, call_off.id)
    assert (changed.quantity, changed.version) == (6, 2)
    assert b"(version 2)" in web.get(f"/call-offs/{call_off.id}").data


def test_the_authority_reaches_a_call_offs_history_in_the_audit_log_from_its_page(web, world):
    """U3: the history is one link away from the call-off, for those who may read the log."""
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    authority = make_organisation(OrganisationType.AUTHORITY)
    admin = make_member(Role.AUTHORITY_ADMIN, authority)
    commit()
    page = web.as_user(admin, authority).get(f"/call-offs/{call_off.id}").get_data(as_text=True)
    link = re.search(r'href="([^"]*/audit\?[^"]*)"[^>]*>Every change to this call-off', page)
    assert link, "no link to the audit log on the call-off page"
    history = web.get(link.group(1).replace("&amp;", "&")).get_data(as_text=True)
    assert "call_off.placed" in history

    buyer_page = web.as_user(world.buyer, world.region).get(f"/call-offs/{call_off.id}")
    assert b"Every change to this call-off" not in buyer_page.data
