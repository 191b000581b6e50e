"""Invoices: the monthly run, gapless numbers, who may act, each transition and its bad input."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marketplace.accounts.models import Role
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.money import (
    BASIS_POINTS_WHOLE,
    VatTreatment,
    split_by_basis_points,
    vat_pence,
)
from marketplace.core.notifications.models import Notification
from marketplace.invoices.models import Invoice, InvoiceLine, InvoiceStatus
from marketplace.invoices.services import (
    common,
    credit_notes,
    issuing,
    monthly_run,
    outcome_billing,
    recharging,
)
from marketplace.orders.models import CallOffFunder
from marketplace.orders.services import delivery, funding, placing, responses
from marketplace.orders.services.delivery import DeliveryDetails
from tests.factories import after_month, make_member
from tests.orders.factories import build_orders_world, details, shares

LATER = utcnow() + timedelta(days=60)


@pytest.fixture
def world(app):
    # £123.45 a session plus 20% VAT: VAT per line that does not divide evenly.
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


def accepted_call_off(world, **fields):
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, **fields)
    )
    responses.accept(world.provider_admin, call_off)
    return call_off


def deliver(world, call_off, day: date, units: int, attendance="attended"):
    reason = {"absence_reason": "acceptable"} if attendance == "did_not_attend" else {}
    return delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=day, units=units, attendance=attendance, **reason),
        now=LATER,
    )


def period_of(day: date) -> str:
    return f"{day:%Y-%m}"


def test_the_run_drafts_one_invoice_per_call_off_with_a_line_per_delivery(world):
    call_off = accepted_call_off(world, po_number="PO-INV-1")
    start = call_off.start_date
    deliver(world, call_off, start, 3)
    deliver(world, call_off, start, 0, attendance="did_not_attend")  # nothing to bill
    deliver(world, call_off, start, 2, attendance="late")
    result = monthly_run.run_period(period_of(start), now=after_month(start))
    assert (result.call_offs, result.created, result.lines) == (1, 1, 2)
    [invoice] = db.session.scalars(sa.select(Invoice)).all()
    assert invoice.status == InvoiceStatus.DRAFT and invoice.number is None
    assert (invoice.po_number, invoice.call_off_reference) == ("PO-INV-1", call_off.reference)
    assert (invoice.provider_id, invoice.lead_buyer_id) == (world.provider.id, world.region.id)
    # 3 × £123.45 = £370.35, VAT £74.07; 2 × £123.45 = £246.90, VAT £49.38: per line, half up.
    assert [(line.units, line.net_pence, line.vat_pence) for line in invoice.lines] == [
        (3, 37_035, 7_407),
        (2, 24_690, 4_938),
    ]
    assert (invoice.net_pence, invoice.vat_pence, invoice.gross_pence) == (61_725, 12_345, 74_070)
    assert invoice.period_start == start.replace(day=1)
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "invoice.drafted" in actions


def test_running_the_same_period_again_makes_nothing_new(world):
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 3)
    period = period_of(call_off.start_date)
    monthly_run.run_period(period, now=after_month(call_off.start_date))
    again = monthly_run.run_period(period, now=after_month(call_off.start_date))
    assert (again.call_offs, again.created, again.extended, again.lines) == (0, 0, 0, 0)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(InvoiceLine)) == 1


def test_late_delivery_joins_the_draft_or_after_issue_gets_its_own(world):
    call_off = accepted_call_off(world)
    start = call_off.start_date
    period = period_of(start)
    deliver(world, call_off, start, 1)
    monthly_run.run_period(period, now=after_month(start))
    deliver(world, call_off, start, 2)
    late = monthly_run.run_period(period, now=after_month(start))
    assert (late.created, late.extended, late.lines) == (0, 1, 1)
    [draft] = db.session.scalars(sa.select(Invoice)).all()
    assert [line.units for line in draft.lines] == [1, 2]
    assert draft.net_pence == 3 * 12_345
    issuing.issue(world.provider_admin, draft)
    deliver(world, call_off, start, 1)
    after_issue = monthly_run.run_period(period, now=after_month(start))
    assert after_issue.created == 1  # the issued invoice is never changed
    assert draft.net_pence == 3 * 12_345 and len(draft.lines) == 2


def test_a_cancelled_call_off_bills_only_what_was_delivered(world):
    call_off = accepted_call_off(world, quantity=10)
    deliver(world, call_off, call_off.start_date, 2)
    responses.cancel(world.buyer, call_off, "person_moved", "Moved to another area", now=LATER)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    [invoice] = db.session.scalars(sa.select(Invoice)).all()
    assert sum(line.units for line in invoice.lines) == 2


def test_a_month_with_no_delivery_bills_nothing(world):
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 2)
    month_before = call_off.start_date.replace(day=1) - timedelta(days=1)
    assert (
        monthly_run.run_period(period_of(month_before), now=after_month(month_before)).created == 0
    )


@pytest.mark.parametrize("period", ["", "2026", "2026-13", "2026-00", "26-10", "1999-01", "x"])
def test_a_bad_period_is_refused_with_a_clear_message(world, period):
    with pytest.raises(BusinessRuleViolation) as refused:
        monthly_run.run_period(period)
    assert "month" in refused.value.detail


def test_issued_numbers_run_per_provider_without_gaps(world):
    first = accepted_call_off(world)
    second = accepted_call_off(world, po_number="PO-2")
    for call_off in (first, second):
        deliver(world, call_off, call_off.start_date, 1)
    monthly_run.run_period(period_of(first.start_date), now=after_month(first.start_date))
    drafts = db.session.scalars(sa.select(Invoice).order_by(Invoice.id)).all()
    # A refused issue (a second, failing attempt) takes no number.
    issued = issuing.issue(world.provider_admin, drafts[1])
    with pytest.raises(BusinessRuleViolation):
        issuing.issue(world.provider_admin, drafts[1])
    issuing.issue(world.provider_admin, drafts[0])
    assert [issued.number, drafts[0].number] == ["INV-000001", "INV-000002"]
    assert issued.due_on == issued.received_at.date() + timedelta(days=30)
    emails = db.session.scalars(sa.select(Notification.template)).all()
    assert emails.count("invoices_issued") == 2 * 2  # the buyer and the approver, twice


def test_only_the_provider_administrator_issues_and_others_do_not_see_it(world):
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 1)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    [invoice] = db.session.scalars(sa.select(Invoice)).all()
    editor = make_member(Role.PROVIDER_EDITOR, world.provider)
    with pytest.raises(PermissionDenied):
        issuing.issue(editor, invoice)
    with pytest.raises(NotFound):
        issuing.issue(world.pcc_approver, invoice)  # not party to the invoice at all
    with pytest.raises(NotFound):
        common.visible_invoice(world.pcc_approver, invoice.id)
    with pytest.raises(NotFound):
        common.visible_invoice(world.buyer, invoice.id)  # a draft is the provider's own
    assert common.visible_invoice(world.provider_admin, invoice.id) is invoice
    with pytest.raises(NotFound):
        issuing.validate(world.provider_admin, invoice)  # the provider cannot validate its own
    assert invoice.status == InvoiceStatus.DRAFT and invoice.sequence is None


def test_the_buyer_disputes_then_validates_then_records_payment(world):
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 2)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    [invoice] = db.session.scalars(sa.select(Invoice)).all()
    with pytest.raises(BusinessRuleViolation):
        issuing.validate(world.buyer, invoice)  # a draft is not the buyer's yet
    issuing.issue(world.provider_admin, invoice, now=LATER)
    with pytest.raises(BusinessRuleViolation) as no_reason:
        issuing.dispute(world.buyer, invoice, "   ")
    assert "why" in no_reason.value.detail
    issuing.dispute(world.buyer, invoice, "Two sessions, not three", now=LATER)
    assert invoice.status == InvoiceStatus.DISPUTED and invoice.disputed_at == LATER
    provider_emails = db.session.scalars(
        sa.select(Notification.template).where(Notification.to_email == world.provider_admin.email)
    ).all()
    assert "invoices_disputed" in provider_emails
    with pytest.raises(BusinessRuleViolation):
        issuing.mark_paid_by_bacs(world.buyer, invoice, "REM-1", LATER.date())  # not validated
    issuing.validate(world.approver, invoice, now=LATER)
    assert invoice.resolved_at == LATER and invoice.status == InvoiceStatus.VALIDATED
    for reference, paid_on, field in [
        ("", LATER.date(), "payment_reference"),
        ("REM-1", LATER.date() + timedelta(days=1), "paid_on"),
        ("REM-1", "yesterday", "paid_on"),
        ("REM-1", LATER.date() - timedelta(days=1), "paid_on"),  # before it was received
    ]:
        with pytest.raises(BusinessRuleViolation) as refused:
            issuing.mark_paid_by_bacs(world.buyer, invoice, reference, paid_on, now=LATER)
        assert field in refused.value.errors
        assert invoice.status == InvoiceStatus.VALIDATED
    issuing.mark_paid_by_bacs(world.buyer, invoice, "REM-1", LATER.date(), now=LATER)
    assert (invoice.status, invoice.payment_reference) == (InvoiceStatus.PAID, "REM-1")
    with pytest.raises(BusinessRuleViolation):
        issuing.dispute(world.buyer, invoice, "Too late")


def _emails_to(user, template: str) -> list[str]:
    return db.session.scalars(
        sa.select(Notification.body).where(
            Notification.to_email == user.email, Notification.template == template
        )
    ).all()


@pytest.mark.parametrize("method", ["bacs", "card"])
def test_after_a_credit_note_the_provider_is_told_the_amount_that_is_paid(world, method):
    """£444.42 invoiced, £148.14 credited: validated for £296.28, and £296.28 paid."""
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 3)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    [invoice] = db.session.scalars(sa.select(Invoice)).all()
    issuing.issue(world.provider_admin, invoice, now=LATER)
    credit_notes.raise_credit_note(world.provider_admin, invoice, 12_345, "One session cancelled")
    assert (invoice.gross_pence, invoice.amount_due_pence) == (44_442, 29_628)

    issuing.validate(world.buyer, invoice, now=LATER)
    if method == "bacs":
        issuing.mark_paid_by_bacs(world.buyer, invoice, "REM-7", LATER.date(), now=LATER)
    else:
        issuing.mark_paid_by_card(invoice, "pi_123", now=LATER)

    [validated] = _emails_to(world.provider_admin, "invoices_validated")
    template = "invoices_paid" if method == "bacs" else "invoices_paid_by_card"
    [paid] = _emails_to(world.provider_admin, template)
    for body in (validated, paid):
        assert "£296.28" in body
        assert "£444.42" not in body


def test_a_co_funders_recharge_is_its_share_of_each_invoice_to_the_penny(world):
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 6_000), (world.pcc, 4_000))),
    )
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    responses.accept(world.provider_admin, call_off)
    deliver(world, call_off, call_off.start_date, 3)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    [invoice] = db.session.scalars(sa.select(Invoice)).all()
    lead, pcc = recharging.recharge_parts(invoice)
    assert (lead.organisation_id, pcc.organisation_id) == (world.region.id, world.pcc.id)
    # £370.35 + £74.07 = £444.42: 40% is £148.14 net and £29.63 VAT (largest remainder).
    assert (pcc.net_pence, pcc.vat_pence, pcc.gross_pence) == (14_814, 2_963, 17_777)
    assert lead.gross_pence + pcc.gross_pence == invoice.gross_pence


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lines=st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=500),
            st.integers(min_value=1, max_value=2_000_000),
            st.sampled_from(list(VatTreatment)),
        ),
        min_size=1,
        max_size=12,
    ),
    cuts=st.lists(st.integers(min_value=1, max_value=BASIS_POINTS_WHOLE - 1), max_size=4),
)
def test_totals_are_the_sum_of_the_lines_and_recharges_lose_no_penny(app, lines, cuts):
    points = sorted(set(cuts))
    bounds = [0, *points, BASIS_POINTS_WHOLE]
    shares_bp = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    invoice = Invoice(lines=[])
    for units, price, treatment in lines:
        net, vat, gross = common.line_amounts(units, price, treatment)
        assert (net, vat) == (units * price, vat_pence(units * price, treatment))
        invoice.lines.append(
            InvoiceLine(
                units=units, unit_price_pence=price, net_pence=net, vat_pence=vat, gross_pence=gross
            )  # fmt: skip
        )
    common._total(invoice)
    assert invoice.net_pence == sum(line.net_pence for line in invoice.lines)
    assert invoice.vat_pence == sum(line.vat_pence for line in invoice.lines)
    assert invoice.gross_pence == invoice.net_pence + invoice.vat_pence

    class _CallOff:
        funders = [
            CallOffFunder(organisation_id=n + 1, is_lead=n == 0, basis_points=bp)
            for n, bp in enumerate(shares_bp)
        ]

    parts = recharging.recharge_parts(invoice, _CallOff())
    assert sum(p.net_pence for p in parts) == invoice.net_pence
    assert sum(p.vat_pence for p in parts) == invoice.vat_pence
    assert sum(p.gross_pence for p in parts) == invoice.gross_pence
    # Each part is within a penny of its exact share of the net and of the VAT.
    for part in parts:
        exact = invoice.gross_pence * part.basis_points / BASIS_POINTS_WHOLE
        assert abs(part.gross_pence - exact) <= 2


def test_the_run_command_bills_a_month_once_and_refuses_a_bad_period(app, world, monkeypatch):
    from marketplace.core.db import commit

    call_off = accepted_call_off(world)
    # The run bills only a month that has ended: it runs on the first of the next month.
    # The run reads the clock where it checks the month and where it drafts outcome invoices.
    monkeypatch.setattr(monthly_run, "utcnow", lambda: after_month(call_off.start_date))
    monkeypatch.setattr(outcome_billing, "utcnow", lambda: after_month(call_off.start_date))
    deliver(world, call_off, call_off.start_date, 2)
    commit()
    runner = app.test_cli_runner()
    period = period_of(call_off.start_date)
    first = runner.invoke(args=["invoices", "run", "--period", period])
    assert first.exit_code == 0, first.output
    assert f"Billing {period}" in first.output  # the progress bar's label
    assert "1 new draft invoice(s)" in first.output and "1 line(s)" in first.output
    again = runner.invoke(args=["invoices", "run", "--period", period])
    assert again.exit_code == 0 and "0 new draft invoice(s)" in again.output
    bad = runner.invoke(args=["invoices", "run", "--period", "2026-13"])
    assert bad.exit_code == 2 and "Enter a real month" in bad.output
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Invoice)) == 1


@settings(max_examples=200, deadline=None)
@given(
    lines=st.lists(
        st.tuples(st.integers(min_value=1, max_value=50), st.integers(1, 500_000)),
        min_size=1,
        max_size=8,
    ),
    treatment=st.sampled_from(list(VatTreatment)),
    cuts=st.lists(st.integers(min_value=1, max_value=10**9), max_size=5),
    shares=st.lists(st.integers(min_value=1, max_value=BASIS_POINTS_WHOLE - 1), max_size=3),
)
def test_credit_notes_never_take_off_more_than_the_invoice_and_split_exactly(
    lines, treatment, cuts, shares
):
    """Credits of any sizes up to what is left, then the rest: the VAT taken off never exceeds
    the invoice's, crediting it all takes off exactly its VAT, and each credit note's split among
    the funders (as on the recharge statement) sums exactly to it."""
    net_total = vat_total = 0
    for units, price in lines:
        net, vat, _ = common.line_amounts(units, price, treatment)
        net_total, vat_total = net_total + net, vat_total + vat
    bounds = [0, *sorted(set(shares)), BASIS_POINTS_WHOLE]
    points = [b - a for a, b in zip(bounds, bounds[1:], strict=False)]
    net_left, vat_left = net_total, vat_total
    credits = [min(cut, net_left) for cut in cuts] + [None]
    for cut in credits:
        if net_left == 0:
            break
        net = net_left if cut is None else min(cut, net_left)
        if net <= 0:
            continue
        vat = credit_notes.credit_vat_pence(net, net_left, vat_left, treatment)
        assert 0 <= vat <= vat_left
        for amount in (-net, -vat, -(net + vat)):
            assert sum(split_by_basis_points(amount, points)) == amount
        net_left, vat_left = net_left - net, vat_left - vat
    assert (net_left, vat_left) == (0, 0)
