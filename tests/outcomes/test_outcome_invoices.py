"""Verified outcome claims on outcome invoices: the run drafts them apart from the monthly
delivery invoices, once, and every total and recharge adds up to the penny."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.core.db import commit, db
from marketplace.core.money import BASIS_POINTS_WHOLE, VatTreatment, vat_pence
from marketplace.invoices.models import Invoice, InvoiceKind, InvoiceLine, InvoiceStatus
from marketplace.invoices.services import common, issuing, monthly_run, outcome_billing, recharging
from marketplace.orders.models import CallOffFunder
from marketplace.orders.services import delivery as order_delivery
from marketplace.outcomes import queries
from marketplace.outcomes import services as outcomes
from tests.factories import after_month
from tests.invoices.test_invoice_services import period_of
from tests.orders.factories import build_orders_world
from tests.outcomes.factories import LATER, accepted_with_terms, claim, term


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


def deliver(world, call_off, day, units):
    return order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        order_delivery.DeliveryDetails(delivered_on=day, units=units, attendance="attended"),
        now=LATER,
    )


def _invoices(kind=None) -> list[Invoice]:
    query = sa.select(Invoice).order_by(Invoice.id)
    if kind is not None:
        query = query.where(Invoice.kind == kind)
    return list(db.session.scalars(query))


def test_a_co_funded_call_off_with_a_verified_claim_gets_an_outcome_invoice(world):
    """Acceptance point 2 (payment by results): the next run bills the verified claim on an
    outcome invoice of its own, apart from the monthly delivery invoice."""
    call_off = accepted_with_terms(world, co_funded=True)
    [row] = queries.terms_of(call_off.id)
    deliver(world, call_off, LATER.date(), 2)
    made = claim(world, call_off, row)
    outcomes.verify_claim(world.buyer, made, now=LATER)
    period = period_of(LATER.date())
    result = monthly_run.run_period(period, now=after_month(LATER.date()))
    assert (result.outcome_invoices, result.outcome_lines) == (1, 1)

    [outcome] = _invoices(InvoiceKind.OUTCOME)
    assert outcome.call_off_id == call_off.id and outcome.status == InvoiceStatus.DRAFT
    [line] = outcome.lines
    assert (line.outcome_claim_id, line.delivery_id) == (made.id, None)
    assert (line.units, line.unit_price_pence, line.vat_treatment) == (1, 50_001, "standard")
    # £500.01 + VAT £100.00 (20%, half up on the line).
    assert (outcome.net_pence, outcome.vat_pence, outcome.gross_pence) == (50_001, 10_000, 60_001)
    assert made.reference in line.description
    # The same run drafted the month's delivery invoice apart from it.
    [monthly] = _invoices(InvoiceKind.MONTHLY)
    assert monthly.call_off_id == call_off.id and result.created == 1
    assert [(x.delivery_id is not None, x.outcome_claim_id) for x in monthly.lines] == [
        (True, None)
    ]
    lead, pcc = recharging.recharge_parts(outcome)
    assert (lead.gross_pence, pcc.gross_pence) == (36_001, 24_000)
    assert lead.gross_pence + pcc.gross_pence == outcome.gross_pence

    again = monthly_run.run_period(period, now=after_month(LATER.date()))
    assert (again.outcome_invoices, again.outcome_lines) == (0, 0)
    assert len(_invoices(InvoiceKind.OUTCOME)) == 1
    # The provider issues it like any other invoice.
    issuing.issue(world.provider_admin, outcome, now=LATER)
    assert outcome.number == "INV-000001"


def test_only_claims_verified_by_the_end_of_the_period_are_billed(world):
    call_off = accepted_with_terms(world, term(world, cap=3))
    [row] = queries.terms_of(call_off.id)
    first, second, pending = (claim(world, call_off, row) for _ in range(3))
    outcomes.verify_claim(world.buyer, first, now=LATER)
    next_month = (LATER.replace(day=1) + timedelta(days=32)).replace(day=5)
    outcomes.verify_claim(world.buyer, second, now=next_month)
    monthly_run.run_period(period_of(LATER.date()), now=after_month(LATER.date()))
    [invoice] = _invoices(InvoiceKind.OUTCOME)
    assert [x.outcome_claim_id for x in invoice.lines] == [first.id]
    # A month on, the later one gets an invoice of that month; the pending one is never billed.
    monthly_run.run_period(period_of(next_month.date()), now=after_month(next_month.date()))
    billed = db.session.scalars(sa.select(InvoiceLine.outcome_claim_id)).all()
    assert sorted(billed) == sorted([first.id, second.id]) and pending.id not in billed


def test_a_claim_verified_late_joins_the_periods_outcome_draft(world):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    first, second = claim(world, call_off, row), claim(world, call_off, row)
    period = period_of(LATER.date())
    outcomes.verify_claim(world.buyer, first, now=LATER)
    monthly_run.run_period(period, now=after_month(LATER.date()))
    outcomes.verify_claim(world.buyer, second, now=LATER)
    late = monthly_run.run_period(period, now=after_month(LATER.date()))
    assert late.outcome_lines == 1
    [invoice] = _invoices(InvoiceKind.OUTCOME)
    assert len(invoice.lines) == 2 and invoice.gross_pence == 2 * 60_001


def test_the_run_command_bills_outcomes_too(app, world, monkeypatch):
    # The run reads the clock where it checks the month and where it drafts outcome invoices.
    monkeypatch.setattr(monthly_run, "utcnow", lambda: after_month(LATER.date()))
    monkeypatch.setattr(outcome_billing, "utcnow", lambda: after_month(LATER.date()))
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    outcomes.verify_claim(world.buyer, claim(world, call_off, row), now=LATER)
    commit()
    runner = app.test_cli_runner()
    period = period_of(LATER.date())
    first = runner.invoke(args=["invoices", "run", "--period", period])
    assert first.exit_code == 0, first.output
    assert "1 new outcome invoice(s)" in first.output
    again = runner.invoke(args=["invoices", "run", "--period", period])
    assert "0 new outcome invoice(s)" in again.output
    assert len(_invoices(InvoiceKind.OUTCOME)) == 1


def test_a_line_must_bill_exactly_one_thing(world):
    call_off = accepted_with_terms(world)
    [row] = queries.terms_of(call_off.id)
    made = claim(world, call_off, row)
    outcomes.verify_claim(world.buyer, made, now=LATER)
    monthly_run.run_period(period_of(LATER.date()), now=after_month(LATER.date()))
    [line] = db.session.scalars(sa.select(InvoiceLine)).all()
    delivery = deliver(world, call_off, LATER.date(), 1)
    line.delivery_id = delivery.id  # both set
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.one_of(
            # a delivery: units at a unit price
            st.tuples(
                st.just("delivery"),
                st.integers(min_value=1, max_value=500),
                st.integers(min_value=1, max_value=2_000_000),
            ),
            # an outcome claim: one unit at a tariff
            st.tuples(
                st.just("outcome"), st.just(1), st.integers(min_value=1, max_value=100_000_000)
            ),
        ),
        min_size=1,
        max_size=12,
    ),
    treatment=st.sampled_from(list(VatTreatment)),
    cuts=st.lists(st.integers(min_value=1, max_value=BASIS_POINTS_WHOLE - 1), max_size=4),
)
def test_totals_with_outcome_lines_are_the_sum_of_the_lines_and_lose_no_penny(
    app, lines, treatment, cuts
):
    """Acceptance point 1, with outcome lines: an invoice's totals are the sums of its lines,
    each line's VAT is its own rounded half up, and the funders' recharges sum exactly."""
    points = sorted(set(cuts))
    bounds = [0, *points, BASIS_POINTS_WHOLE]
    shares_bp = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    invoice = Invoice(lines=[])
    for n, (kind, units, price) in enumerate(lines, start=1):
        net, vat, gross = common.line_amounts(units, price, treatment)
        assert (net, vat, gross) == (units * price, vat_pence(net, treatment), net + vat)
        if kind == "outcome":
            assert gross == outcomes.claim_gross(price, treatment)  # what the budgets spend
        invoice.lines.append(
            InvoiceLine(
                delivery_id=n if kind == "delivery" else None,
                outcome_claim_id=n if kind == "outcome" else None,
                units=units,
                unit_price_pence=price,
                net_pence=net,
                vat_pence=vat,
                gross_pence=gross,
            )
        )
    common._total(invoice)
    assert invoice.net_pence == sum(line.net_pence for line in invoice.lines)
    assert invoice.vat_pence == sum(line.vat_pence for line in invoice.lines)
    assert invoice.gross_pence == invoice.net_pence + invoice.vat_pence
    assert all((x.delivery_id is None) != (x.outcome_claim_id is None) for x in invoice.lines)

    class _CallOff:
        funders = [
            CallOffFunder(organisation_id=n + 1, is_lead=n == 0, basis_points=bp)
            for n, bp in enumerate(shares_bp)
        ]

    parts = recharging.recharge_parts(invoice, _CallOff())
    assert sum(p.net_pence for p in parts) == invoice.net_pence
    assert sum(p.vat_pence for p in parts) == invoice.vat_pence
    assert sum(p.gross_pence for p in parts) == invoice.gross_pence
    for part in parts:
        exact = invoice.gross_pence * part.basis_points / BASIS_POINTS_WHOLE
        assert abs(part.gross_pence - exact) <= 2
