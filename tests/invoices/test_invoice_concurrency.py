"""Issuing many invoices of one provider at once, on PostgreSQL: each takes the next number, with
no gap, no duplicate and no error, including the first ever (when the counter row is made)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.invoices.models import Invoice, InvoiceCounter
from marketplace.invoices.services import issuing, monthly_run
from marketplace.orders.services import delivery, placing, responses
from marketplace.orders.services.delivery import DeliveryDetails
from tests.factories import after_month
from tests.orders.factories import build_orders_world, details
from tests.orders.test_call_off_concurrency import race

pytestmark = pytest.mark.postgres_only

CLIENTS = 12


def test_invoices_issued_at_once_take_consecutive_numbers(app):
    world = build_orders_world(price_pence=12_345)
    later = utcnow() + timedelta(days=60)
    for n in range(CLIENTS):
        call_off = placing.place_call_off(
            world.buyer,
            world.region,
            world.listing.id,
            details(world, quantity=2, po_number=f"PO-{n}"),
        )
        responses.accept(world.provider_admin, call_off)
        delivery.record_delivery(
            world.provider_admin,
            call_off,
            DeliveryDetails(delivered_on=call_off.start_date, units=1, attendance="attended"),
            now=later,
        )
    monthly_run.run_period(f"{world.start:%Y-%m}", now=after_month(world.start))
    commit()
    invoice_ids = db.session.scalars(sa.select(Invoice.id).order_by(Invoice.id)).all()
    assert len(invoice_ids) == CLIENTS
    admin_id, provider_id = world.provider_admin.id, world.provider.id

    def issue_one(invoice_id: int):
        def job() -> None:
            issuing.issue(db.session.get(User, admin_id), db.session.get(Invoice, invoice_id))

        return job

    outcomes = race(app, [issue_one(pk) for pk in invoice_ids])
    assert outcomes == ["ok"] * CLIENTS
    db.session.expire_all()
    numbers = sorted(db.session.scalars(sa.select(Invoice.number)).all())
    assert numbers == [f"INV-{n:06d}" for n in range(1, CLIENTS + 1)]
    assert db.session.get(InvoiceCounter, provider_id).last_number == CLIENTS
