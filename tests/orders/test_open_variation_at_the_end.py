"""A change still waiting for a decision when the call-off ends (issue 18, P5): completing or
cancelling closes it, so that nobody is asked to agree a change to a call-off that is over."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import DomainError
from marketplace.orders import permissions
from marketplace.orders.models import VariationStatus
from marketplace.orders.services import delivery, placing, responses, variations
from marketplace.orders.services.delivery import DeliveryDetails, OutcomeDetails
from tests.orders.factories import build_orders_world, details


@pytest.fixture
def world(app):
    return build_orders_world()


def delivering(world):
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=10)
    )
    responses.accept(world.provider_admin, call_off)
    delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=call_off.start_date, units=2, attendance="attended"),
        now=utcnow() + timedelta(days=30),
    )
    return call_off


def withdrawn_events(call_off) -> list[dict]:
    return [
        event.after
        for event in db.session.scalars(
            sa.select(AuditEvent).where(
                AuditEvent.action == "call_off.variation_withdrawn",
                AuditEvent.object_id == str(call_off.id),
            )
        )
    ]


def test_completing_closes_the_change_the_provider_proposed(world):
    call_off = delivering(world)
    variation = variations.propose_variation(
        world.provider_admin, call_off, extra_units=4, reason="Four more sessions"
    )
    results = [
        OutcomeDetails("Settled accommodation", "achieved"),
        OutcomeDetails("Tenancy kept for 6 months", "partly_achieved"),
    ]
    delivery.complete(world.provider_admin, call_off, "Housed and settled.", results)

    assert variation.status == VariationStatus.WITHDRAWN
    assert variation.decided_at is not None and variation.decided_by_id == world.provider_admin.id
    assert variation.decision_reason == "The call-off was completed before the change was decided"
    assert withdrawn_events(call_off) == [
        {"variation_id": variation.id, "reason": variation.decision_reason}
    ]
    # The buyer is no longer offered to agree or reject it, and cannot.
    offered = permissions.actions(world.buyer, world.region, call_off)
    assert not offered["decide"] and not offered["withdraw"]
    with pytest.raises(DomainError):
        variations.agree_variation(world.buyer, call_off, variation.id)
    assert call_off.quantity == 10


def test_cancelling_closes_the_change_the_buyer_proposed(world):
    call_off = delivering(world)
    variation = variations.propose_variation(
        world.buyer, call_off, new_end_date=call_off.end_date + timedelta(days=14), reason="Later"
    )
    responses.cancel(world.buyer, call_off, "person_moved")

    assert variation.status == VariationStatus.WITHDRAWN
    assert variation.decision_reason == "The call-off was cancelled before the change was decided"
    assert len(withdrawn_events(call_off)) == 1
    offered = permissions.actions(world.provider_admin, world.provider, call_off)
    assert not offered["decide"]
