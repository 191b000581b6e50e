"""What people enter is shown back (issue 18): the provider's completion summary and each
outcome's result, the buyer's cancellation reason and the provider's reason for declining, on
the call-off page and its timeline, in the API's call-off and in the CSV export."""

from __future__ import annotations

import csv
import io

import pytest

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.orders.models import CallOff, CallOffStatus, OutcomeResult
from marketplace.orders.services import delivery, placing, responses
from marketplace.orders.services.delivery import DeliveryDetails, OutcomeDetails
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details

SUMMARY = "Settled in a one-bedroom flat.\nKeeps in touch with the landlord."


@pytest.fixture
def world(app):
    built = build_orders_world()  # outcomes: "Settled accommodation", "Tenancy kept for 6 months"
    commit()
    return built


def _in_delivery(world) -> CallOff:
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=4)
    )
    responses.accept(world.provider_admin, call_off)
    call_off.start_date = london_date(None)
    delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=call_off.start_date, units=1, attendance="attended"),
    )
    return call_off


def _completed(world) -> CallOff:
    call_off = _in_delivery(world)
    delivery.complete(
        world.provider_admin,
        call_off,
        SUMMARY,
        [
            OutcomeDetails("Settled accommodation", "achieved", "Moved in on day 10"),
            OutcomeDetails("Tenancy kept for 6 months", "partly_achieved"),
        ],
    )
    commit()
    return call_off


def _cancelled(world) -> CallOff:
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=4)
    )
    responses.cancel(world.buyer, call_off, "other", "The person was recalled to prison")
    commit()
    return call_off


def _token(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def test_the_completion_summary_and_outcome_results_are_on_the_call_off_page(web, world):
    call_off = _completed(world)
    for user, organisation in ((world.buyer, world.region), (world.provider_admin, world.provider)):
        web.as_user(user, organisation)
        page = web.get(f"/call-offs/{call_off.id}").data.decode()
        assert "End-of-service summary" in page
        assert '<p class="govuk-body">Settled in a one-bedroom flat.</p>' in page
        assert "Keeps in touch with the landlord." in page
        assert "Settled accommodation</td>" in page and "Achieved</td>" in page
        assert "Partly achieved</td>" in page and "Moved in on day 10" in page
        # And in the timeline, under "Completed".
        timeline = page[page.index("moj-timeline") :]
        assert "Settled accommodation: achieved (Moved in on day 10)" in timeline


def test_the_cancellation_reason_is_on_the_call_off_page_and_its_timeline(web, world):
    call_off = _cancelled(world)
    web.as_user(world.buyer, world.region)
    page = web.get(f"/call-offs/{call_off.id}").data.decode()
    summary = page[: page.index("moj-timeline")]
    assert "Other" in summary and "The person was recalled to prison" in summary
    timeline = page[page.index("moj-timeline") :]
    assert "Other: The person was recalled to prison" in timeline


def test_the_api_answers_with_the_summary_outcomes_and_cancellation(client, world):
    completed = _completed(world)
    cancelled = _cancelled(world)
    headers = _token(world.buyer, world.region)
    body = client.get(f"/api/v1/orders/{completed.id}", headers=headers).get_json()
    assert body["completion_summary"] == SUMMARY
    assert body["outcomes"] == [
        {"outcome": "Settled accommodation", "result": "achieved", "comment": "Moved in on day 10"},
        {"outcome": "Tenancy kept for 6 months", "result": "partly_achieved", "comment": ""},
    ]
    body = client.get(f"/api/v1/orders/{cancelled.id}", headers=headers).get_json()
    assert body["cancellation_reason"] == "other"
    assert body["cancellation_detail"] == "The person was recalled to prison"
    assert body["cancelled_at"] is not None


def test_the_csv_export_has_the_cancellation_reason_and_completion_summary(web, world):
    completed = _completed(world)
    cancelled = _cancelled(world)
    web.as_user(world.buyer, world.region)
    rows = {
        row["Reference"]: row
        for row in csv.DictReader(io.StringIO(web.get("/call-offs/export.csv").data.decode()))
    }
    assert rows[completed.reference]["Completion summary"] == SUMMARY
    assert rows[cancelled.reference]["Cancellation reason"] == (
        "Other: The person was recalled to prison"
    )


# --- the completion page asks for each outcome's result


def test_the_provider_completes_on_the_page_with_each_outcomes_result(web, world):
    call_off = _in_delivery(world)
    commit()
    web.as_user(world.provider_admin, world.provider)
    url = f"/call-offs/{call_off.id}/complete"
    form = web.get(url).data.decode()
    assert "Settled accommodation" in form and "Tenancy kept for 6 months" in form
    outcomes = form[form.index("Settled accommodation") :]
    assert "govuk-hint" not in outcomes[: outcomes.index("</fieldset>")]

    missing = web.post(url, data={"summary": SUMMARY, "outcome_0": "achieved"})
    assert missing.status_code == 422
    assert 'href="#outcome_1"' in missing.data.decode()
    assert "Choose how far “Tenancy kept for 6 months” was achieved" in missing.data.decode()
    bad = web.post(url, data={"summary": SUMMARY, "outcome_0": "achieved", "outcome_1": "mostly"})
    assert bad.status_code == 422
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.IN_DELIVERY

    done = web.post(
        url, data={"summary": SUMMARY, "outcome_0": "achieved", "outcome_1": "not_achieved"}
    )
    assert done.status_code == 302
    db.session.expire_all()
    completed = db.session.get(CallOff, call_off.id)
    assert completed.completion_summary == SUMMARY
    assert [(r.outcome, r.result) for r in completed.outcomes] == [
        ("Settled accommodation", OutcomeResult.ACHIEVED),
        ("Tenancy kept for 6 months", OutcomeResult.NOT_ACHIEVED),
    ]


def test_only_the_providers_administrator_completes(web, world):
    call_off = _in_delivery(world)
    editor = make_member(Role.PROVIDER_EDITOR, world.provider)
    outsider_org = make_organisation()
    outsider = make_member(Role.PROVIDER_ADMIN, outsider_org)
    commit()
    url = f"/call-offs/{call_off.id}/complete"
    data = {"summary": SUMMARY, "outcome_0": "achieved", "outcome_1": "achieved"}
    for user, organisation, status in (
        (world.buyer, world.region, 403),
        (editor, world.provider, 403),
        (outsider, outsider_org, 404),
    ):
        web.as_user(user, organisation)
        assert web.post(url, data=data).status_code == status
    db.session.expire_all()
    assert db.session.get(CallOff, call_off.id).status == CallOffStatus.IN_DELIVERY
