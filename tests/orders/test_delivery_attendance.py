"""Recording delivery as a provider does it: a session attended, late, or missed (with a reason);
a missed session is payable only where the listing says missed sessions are chargeable, and the
invoice bills only payable units (issue 18)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.db import commit, db
from marketplace.orders import services
from marketplace.orders.models import CallOff, Delivery
from marketplace.orders.services import london_date
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details


def _started(world, quantity: int = 6) -> CallOff:
    """An accepted call-off that started today, so that today's session can be recorded."""
    call_off = services.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=quantity)
    )
    services.accept(world.provider_admin, call_off)
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
