"""Recording delivery as a provider does it: a session attended, late, or missed (with a reason);
a missed session is payable only where the listing says missed sessions are chargeable, and the
invoice bills only payable units (issue 18)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.invoices.models import Invoice
from marketplace.invoices.services.completion import bill_on_completion
from marketplace.invoices.services.monthly_run import run_period
from marketplace.orders.models import CallOff, Delivery
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import placing, responses
from marketplace.orders.services.delivery import DeliveryDetails
from tests.factories import after_month, make_member, make_organisation
from tests.orders.factories import build_orders_world, details


def _started(world, quantity: int = 6) -> CallOff:
    """An accepted call-off that started today, so that today's session can be recorded."""
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=quantity)
    )
    responses.accept(world.provider_admin, call_off)
    call_off.start_date = london_date(None)
    db.session.flush()
    return call_off


@pytest.fixture
def world(app):
    built = build_orders_world()
    commit()
    return built


def _deliveries(call_off_id: int) -> list[Delivery]:
    return list(
        db.session.scalars(
            sa.select(Delivery).where(Delivery.call_off_id == call_off_id).order_by(Delivery.id)
        )
    )


# --- the page


def _session(**changes) -> dict:
    data = {"delivered_on": london_date(None).isoformat(), "units": "1", "attendance": "attended"}
    data.update(changes)
    return data


@pytest.mark.parametrize("attendance", ["attended", "late"])
def test_a_session_attended_or_late_is_recorded_on_the_page_without_an_absence_reason(
    web, world, attendance
):
    call_off = _started(world)
    commit()
    web.as_user(world.provider_admin, world.provider)
    response = web.post(
        f"/call-offs/{call_off.id}/deliveries/new", data=_session(attendance=attendance)
    )
    assert response.status_code == 302, response.data
    [delivery] = _deliveries(call_off.id)
    assert (delivery.attendance.value, delivery.absence_reason) == (attendance, None)
    assert db.session.get(CallOff, call_off.id).delivered_units == 1


def test_did_not_attend_needs_a_reason_shown_beside_the_field_and_in_the_summary(web, world):
    call_off = _started(world)
    commit()
    web.as_user(world.provider_admin, world.provider)
    url = f"/call-offs/{call_off.id}/deliveries/new"
    form = web.get(url).data.decode()
    # GOV.UK conditional reveal: the reasons sit under "Did not attend".
    reveal = form.index('id="conditional-attendance-3"')
    assert form.index('name="absence_reason"') > reveal
    assert 'data-aria-controls="conditional-attendance-3"' in form

    refused = web.post(url, data=_session(attendance="did_not_attend", units="0"))
    assert refused.status_code == 422
    page = refused.data.decode()
    assert 'href="#absence_reason"' in page
    assert "Choose the reason the person did not attend" in page
    assert _deliveries(call_off.id) == []

    bad = web.post(url, data=_session(attendance="did_not_attend", absence_reason="holiday"))
    assert bad.status_code == 422 and _deliveries(call_off.id) == []

    recorded = web.post(
        url, data=_session(attendance="did_not_attend", units="1", absence_reason="acceptable")
    )
    assert recorded.status_code == 302
    [delivery] = _deliveries(call_off.id)
    assert delivery.absence_reason.value == "acceptable"


def test_the_delivery_page_is_the_providers_alone(web, world):
    call_off = _started(world)
    outsider_org = make_organisation()
    outsider = make_member(Role.PROVIDER_ADMIN, outsider_org)
    commit()
    url = f"/call-offs/{call_off.id}/deliveries/new"
    web.as_user(world.buyer, world.region)
    assert web.get(url).status_code == 403
    assert web.post(url, data=_session()).status_code == 403
    web.as_user(outsider, outsider_org)
    assert web.post(url, data=_session()).status_code == 404
    assert _deliveries(call_off.id) == []


# --- missed sessions: payable only where the listing says so


def _record(world, call_off, **fields):
    values = {"delivered_on": call_off.start_date, "units": 1, "attendance": "attended"}
    values.update(fields)
    return order_delivery.record_delivery(
        world.provider_admin, call_off, DeliveryDetails(**values), now=utcnow()
    )


def test_a_missed_session_is_not_payable_unless_the_listing_says_so(world):
    call_off = _started(world, quantity=6)
    _record(world, call_off, units=2)
    missed = _record(world, call_off, attendance="did_not_attend", absence_reason="unacceptable")
    # Recorded as it happened, but not billed, not spent and not taken from the quantity.
    assert (missed.units, missed.payable, missed.payable_units) == (1, False, 0)
    assert call_off.delivered_units == 2
    assert (world.budget.spent_pence, world.budget.committed_pence) == (20_000, 40_000)

    # Completing bills what is left unbilled: the two attended units, not the missed one.
    order_delivery.complete(world.provider_admin, call_off, "Done")
    invoice = db.session.scalar(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
    assert [(line.units, line.net_pence) for line in invoice.lines] == [(2, 20_000)]
    assert bill_on_completion(call_off) is None  # nothing is left to bill


def test_the_timeline_says_a_missed_session_was_not_paid_for(web, world):
    call_off = _started(world)
    _record(world, call_off, attendance="did_not_attend", absence_reason="acceptable")
    commit()
    web.as_user(world.buyer, world.region)
    page = web.get(f"/call-offs/{call_off.id}").data.decode()
    assert "Did not attend (Acceptable absence), not paid for" in page


def test_a_missed_session_is_payable_where_the_listing_says_missed_sessions_are_chargeable(app):
    world = build_orders_world(missed_sessions_chargeable=True)
    call_off = _started(world, quantity=6)
    missed = _record(world, call_off, attendance="did_not_attend", absence_reason="unacceptable")
    assert (missed.payable, missed.payable_units) == (True, 1)
    assert call_off.delivered_units == 1
    assert world.budget.spent_pence == 10_000
    today = london_date(None)
    result = run_period(f"{today:%Y-%m}", now=after_month(today))
    assert result.lines == 1


def test_the_monthly_run_bills_only_payable_units(world):
    call_off = _started(world, quantity=6)
    _record(world, call_off, units=1, attendance="late")
    _record(world, call_off, attendance="did_not_attend", absence_reason="logistics")
    today = london_date(None)
    result = run_period(f"{today:%Y-%m}", now=after_month(today))
    assert (result.created, result.lines) == (1, 1)


def test_unpaid_missed_units_do_not_use_up_the_quantity(world):
    call_off = _started(world, quantity=2)
    _record(world, call_off, units=2)
    # The quantity is used up, but a missed session can still be recorded (it costs nothing)…
    _record(world, call_off, attendance="did_not_attend", absence_reason="acceptable")
    # …while an attended one cannot.
    with pytest.raises(BusinessRuleViolation) as refused:
        _record(world, call_off, units=1)
    assert "left to deliver" in refused.value.errors["units"][0]


def test_the_api_answers_what_a_session_makes_payable(client, world):
    call_off = _started(world)
    _, token = create_api_token(world.provider_admin, world.provider, "tests")
    commit()
    response = client.post(
        f"/api/v1/orders/{call_off.id}/deliveries",
        json={
            "delivered_on": call_off.start_date.isoformat(),
            "units": 1,
            "attendance": "did_not_attend",
            "absence_reason": "acceptable",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status_code == 201, response.json
    assert (response.json["payable"], response.json["payable_units"]) == (False, 0)
    again = client.post(
        f"/api/v1/orders/{call_off.id}/deliveries",
        json={"delivered_on": call_off.start_date.isoformat(), "units": 1, "attendance": "late"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert (again.json["payable"], again.json["payable_units"]) == (True, 1)
