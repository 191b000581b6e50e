"""Issue 6, acceptance point 2, as one story: a call-off co-funded 60/40 by a probation region and
a PCC, with delivery over two months and one verified outcome claim, gives two monthly invoices
and an outcome invoice; the PCC's recharge statement shows its 40% of each; the buyer pays one
by card through localstripe, the webhook marks it paid, and a retry charges nothing more."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import sqlalchemy as sa

from marketplace.core.db import commit, db
from marketplace.invoices.models import Invoice, InvoiceKind, InvoiceStatus, PaymentMethod
from marketplace.invoices.services import issuing, monthly_run, recharging
from marketplace.orders.services import delivery as order_delivery
from marketplace.outcomes import queries as outcome_queries
from marketplace.outcomes import services as outcomes
from marketplace.payments.models import CardPaymentStatus
from marketplace.payments.services import card_payments, saved_cards
from tests.factories import after_month
from tests.invoices.test_invoice_services import period_of
from tests.orders.factories import build_orders_world
from tests.outcomes.factories import LATER, accepted_with_terms, claim, term
from tests.payments.conftest import post_event
from tests.payments.test_payment_services import wait_for_event


def test_two_months_and_an_outcome_billed_recharged_and_paid_by_card_once(stripe_on, web):
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    call_off = accepted_with_terms(world, term(world, tariff_pence=50_000), co_funded=True)
    first = call_off.start_date
    second = (first.replace(day=1) + timedelta(days=32)).replace(day=1) + timedelta(days=2)
    for day, units in ((first, 2), (second, 3)):
        order_delivery.record_delivery(
            world.provider_admin,
            call_off,
            order_delivery.DeliveryDetails(delivered_on=day, units=units, attendance="attended"),
            now=LATER,
        )
    [row] = outcome_queries.terms_of(call_off.id)
    made = claim(world, call_off, row, achieved_on=row.earliest_claim_on)
    outcomes.verify_claim(world.buyer, made, now=LATER)

    monthly_run.run_period(period_of(first), now=LATER)
    monthly_run.run_period(period_of(second), now=LATER)
    monthly_run.run_period(
        period_of(LATER.date()), now=after_month(LATER.date())
    )  # the month the claim was verified
    made_invoices = db.session.scalars(
        sa.select(Invoice).where(Invoice.call_off_id == call_off.id).order_by(Invoice.id)
    ).all()
    kinds = [i.kind for i in made_invoices]
    assert kinds.count(InvoiceKind.MONTHLY) == 2 and kinds.count(InvoiceKind.OUTCOME) == 1
    monthly = [i for i in made_invoices if i.kind == InvoiceKind.MONTHLY]
    # 2 × £123.45 + 20% VAT = £296.28; 3 × = £444.42; the outcome £500 + £100 VAT.
    assert sorted(i.gross_pence for i in monthly) == [29_628, 44_442]
    [outcome] = [i for i in made_invoices if i.kind == InvoiceKind.OUTCOME]
    assert outcome.gross_pence == 60_000
    for invoice in made_invoices:
        issuing.issue(world.provider_admin, invoice)
        parts = recharging.recharge_parts(invoice)
        assert sum(p.gross_pence for p in parts) == invoice.gross_pence
    commit()

    # The PCC's recharge statement: its 40% of each of the three, to the penny.
    web.as_user(world.pcc_approver, world.pcc)
    statement = list(
        csv.reader(io.StringIO(web.get("/invoices/recharges?format=csv").get_data(as_text=True)))
    )
    parts = {row[0]: row for row in statement[1:]}
    assert {i.number for i in made_invoices} == set(parts)
    for invoice in made_invoices:
        row = parts[invoice.number]
        assert row[7] == "40.00"
        [_, pcc_part] = recharging.recharge_parts(invoice)
        assert row[-1] == f"{pcc_part.gross_pence // 100}.{pcc_part.gross_pence % 100:02d}"
    assert parts[outcome.number][-1] == "240.00"

    # The buyer validates the outcome invoice and pays it by card.
    issuing.validate(world.buyer, outcome)
    saved_cards.save_card(world.buyer, world.region, "pm_card_visa")
    payment = card_payments.pay_invoice_by_card(world.buyer, outcome)
    commit()
    assert payment.status == CardPaymentStatus.PROCESSING and payment.amount_pence == 60_000
    # A retry (a second click, or the API called again) is the same payment: nothing charged.
    assert card_payments.pay_invoice_by_card(world.approver, outcome).id == payment.id
    event = wait_for_event(stripe_on, "payment_intent.succeeded", payment.payment_intent_id)
    answer = post_event(web, event.to_dict())
    assert answer.status_code == 200
    db.session.expire_all()
    assert outcome.status == InvoiceStatus.PAID and outcome.payment_method == PaymentMethod.CARD
    assert post_event(web, event.to_dict()).json["outcome"] == "duplicate"
    assert len(stripe_on.list("payment_intents")) == 1
    assert len(stripe_on.list("charges")) == 1
