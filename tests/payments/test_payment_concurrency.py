"""Paying one invoice from several clients at once, on PostgreSQL: the invoice's row is locked
while the PaymentIntent is made, so exactly one is made and every client gets that attempt."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import User
from marketplace.core.db import commit, db
from marketplace.invoices.models import Invoice
from marketplace.payments.models import CardPayment
from marketplace.payments.services import card_payments, saved_cards
from tests.orders.test_call_off_concurrency import race

pytestmark = pytest.mark.postgres_only

CLIENTS = 6


def test_paying_at_once_from_many_clients_charges_once(app, stripe_on, card_world):
    saved_cards.save_card(card_world.buyer, card_world.region, "pm_card_visa")
    commit()
    buyer_id, invoice_id = card_world.buyer.id, card_world.invoice.id

    def paying() -> None:
        card_payments.pay_invoice_by_card(
            db.session.get(User, buyer_id), db.session.get(Invoice, invoice_id)
        )

    outcomes = race(app, [paying] * CLIENTS)
    assert outcomes == ["ok"] * CLIENTS
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CardPayment)) == 1
    assert len(stripe_on.list("payment_intents")) == 1
    assert len(stripe_on.list("charges")) == 1


def test_checking_an_authenticated_payment_at_once_pays_the_invoice_once(
    app, stripe_on, card_world
):
    from marketplace.core.audit import AuditEvent
    from marketplace.invoices.models import InvoiceStatus
    from tests.payments.test_card_form import pay_with_authentication

    payment = pay_with_authentication(card_world, stripe_on)
    commit()
    stripe_on.confirm_card_payment(card_payments.authentication_secret(payment))
    buyer_id, invoice_id = card_world.buyer.id, card_world.invoice.id

    def checking() -> None:
        card_payments.check_card_payment(
            db.session.get(User, buyer_id), db.session.get(Invoice, invoice_id)
        )

    outcomes = race(app, [checking] * CLIENTS)
    assert outcomes == ["ok"] * CLIENTS
    db.session.expire_all()
    assert db.session.get(Invoice, invoice_id).status == InvoiceStatus.PAID
    paid = db.session.scalars(sa.select(AuditEvent).where(AuditEvent.action == "invoice.paid"))
    assert len(paid.all()) == 1
    assert len(stripe_on.list("charges")) == 1
