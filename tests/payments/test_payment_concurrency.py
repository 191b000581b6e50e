"""Paying one invoice from several clients at once, on PostgreSQL: the invoice's row is locked
while the PaymentIntent is made, so exactly one is made and every client gets that attempt."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.db import commit, db
from marketplace.invoices.models import Invoice
from marketplace.payments import services
from marketplace.payments.models import CardPayment
from tests.orders.test_call_off_concurrency import race

pytestmark = pytest.mark.postgres_only

CLIENTS = 6


def test_paying_at_once_from_many_clients_charges_once(app, stripe_on, card_world):
    services.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    commit()
    buyer_id, invoice_id = card_world.buyer.id, card_world.invoice.id

    def paying() -> None:
        services.pay_invoice_by_card(
            db.session.get(User, buyer_id), db.session.get(Invoice, invoice_id)
        )

    outcomes = race(app, [paying] * CLIENTS)
    assert outcomes == ["ok"] * CLIENTS
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CardPayment)) == 1
    assert len(stripe_on.list("payment_intents")) == 1
    assert len(stripe_on.list("charges")) == 1
