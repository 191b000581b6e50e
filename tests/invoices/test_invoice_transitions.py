"""Invoices are validated, paid and credited once however many clients ask at the same moment:
one succeeds, the others are refused clearly, and the audit log, the emails and the amounts show
one change. Two clients on every backend; twenty on PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.notifications.models import Notification
from marketplace.invoices.models import CreditNote, Invoice, InvoiceCounter, InvoiceStatus
from marketplace.invoices.services import credit_notes, issuing, monthly_run
from tests.factories import after_month, make_member
from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of
from tests.orders.factories import build_orders_world
from tests.racing import elsewhere, one_wins, race

CLIENTS = 20
several = pytest.mark.parametrize(
    "clients", [2, pytest.param(CLIENTS, marks=pytest.mark.postgres_only)]
)


def audited(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def emailed(template: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count())
        .select_from(Notification)
        .where(Notification.template == template)
    )


def an_issued_invoice(*, validated: bool = False):
    """Five sessions at £123.45 plus VAT (£740.70), issued to North East Probation."""
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 5)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    invoice = db.session.scalars(sa.select(Invoice)).one()
    issuing.issue(world.provider_admin, invoice)
    if validated:
        issuing.validate(world.buyer, invoice)
    commit()
    return world, invoice


def buyers(world, clients: int) -> list[int]:
    return [world.buyer.id] + [make_member(Role.BUYER, world.region).id for _ in range(clients - 1)]


def acting(user_id: int, invoice_id: int, act):
    def client():
        actor = db.session.get(User, user_id)
        invoice = db.session.get(Invoice, invoice_id)
        list(invoice.credit_notes)
        return lambda: act(actor, invoice)

    return client


@several
def test_validations_at_once_validate_once(app, clients):
    world, invoice = an_issued_invoice()
    people = buyers(world, clients)
    commit()

    outcomes = race(app, [acting(p, invoice.id, issuing.validate) for p in people])

    one_wins(outcomes, "409: This invoice has already been validated")
    db.session.expire_all()
    assert db.session.get(Invoice, invoice.id).status == InvoiceStatus.VALIDATED
    assert audited("invoice.validated") == 1
    assert emailed("invoices_validated") == 1


@several
def test_payments_recorded_at_once_pay_once(app, clients):
    world, invoice = an_issued_invoice(validated=True)
    people = buyers(world, clients)
    paid_on = invoice.received_at.date()
    commit()

    def pay(actor, invoice):
        issuing.mark_paid_by_bacs(actor, invoice, f"REM-{actor.id}", paid_on)

    outcomes = race(app, [acting(p, invoice.id, pay) for p in people])

    one_wins(outcomes, "409: This invoice has already been paid")
    db.session.expire_all()
    paid = db.session.get(Invoice, invoice.id)
    assert paid.status == InvoiceStatus.PAID
    assert paid.payment_reference in {f"REM-{p}" for p in people}
    assert audited("invoice.paid") == 1
    assert emailed("invoices_paid") == 1


def test_two_full_credit_notes_at_once_credit_the_invoice_once(app):
    world, invoice = an_issued_invoice(validated=True)
    other_admin = make_member(Role.PROVIDER_ADMIN, world.provider).id
    net = invoice.net_pence
    commit()

    def credit(actor, invoice):
        credit_notes.raise_credit_note(actor, invoice, net, "The sessions were not delivered")

    outcomes = race(
        app,
        [
            acting(world.provider_admin.id, invoice.id, credit),
            acting(other_admin, invoice.id, credit),
        ],
    )

    one_wins(
        outcomes,
        "422: The credit cannot be more than what is left on the invoice: £0.00 before VAT",
    )
    db.session.expire_all()
    [note] = db.session.scalars(sa.select(CreditNote)).all()
    assert note.gross_pence == invoice.gross_pence
    assert db.session.get(Invoice, invoice.id).amount_due_pence == 0
    assert db.session.get(InvoiceCounter, world.provider.id).last_credit_note_number == 1
    assert audited("credit_note.raised") == 1


def test_a_credit_note_raised_from_a_page_read_before_another_is_refused(app):
    # The provider's page was read before a colleague credited the whole invoice.
    world, invoice = an_issued_invoice(validated=True)
    invoice = db.session.get(Invoice, invoice.id)
    assert invoice.credit_notes == []
    net, admin_id = invoice.net_pence, world.provider_admin.id

    def credit_it_all():
        credit_notes.raise_credit_note(
            db.session.get(User, admin_id), db.session.get(Invoice, invoice.id), net, "Not done"
        )

    elsewhere(app, credit_it_all)
    with pytest.raises(BusinessRuleViolation) as refused:
        credit_notes.raise_credit_note(world.provider_admin, invoice, net, "Not done either")
    assert refused.value.errors == {
        "amount": ["The credit cannot be more than what is left on the invoice: £0.00 before VAT"]
    }
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CreditNote)) == 1
    assert audited("credit_note.raised") == 1
    assert emailed("invoices_credited") == 2  # the buyer and the approver, once each
