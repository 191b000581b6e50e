"""The spend ledger: each measure derived from the real services' rows, co-funded shares that
sum exactly, credit notes and refunds, withdrawal, a variation, a reclassification dated in the
past, and catch-up exactly once under concurrent callers."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import commit, db
from marketplace.core.money import split_by_basis_points
from marketplace.insight.models import (
    Measure,
    SpendEntry,
    SpendHalfYear,
    SpendMonth,
    SpendStaleCallOff,
    SpendYear,
)
from marketplace.insight.services import ledger
from marketplace.invoices.models import Invoice, InvoiceStatus
from marketplace.invoices.services import credit_notes, issuing, monthly_run
from marketplace.orders.models import CallOff, CallOffFunder
from marketplace.orders.services import delivery, funding, placing, responses, variations
from marketplace.orders.services.delivery import DeliveryDetails
from tests.factories import after_month
from tests.insight.ledger_helpers import classify, entry_sums, month_sums, provider_year_sums
from tests.orders.factories import build_orders_world, details, shares
from tests.racing import race

CallOffFunderTable = CallOffFunder.__table__
LATER = utcnow() + timedelta(days=60)
COMMITTED, INVOICED, PAID = (m.value for m in Measure)


@pytest.fixture
def world(app):
    # £123.45 a session plus 20% VAT: parts that do not divide evenly.
    return build_orders_world(price_pence=12_345, vat_treatment="standard")


def co_funded(world, quantity=10):
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, quantity=quantity, shares=shares((world.region, 6_667), (world.pcc, 3_333))),
    )
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    responses.accept(world.provider_admin, call_off)
    return call_off


def deliver(world, call_off, units):
    delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=call_off.start_date, units=units, attendance="attended"),
        now=after_month(call_off.start_date) - timedelta(days=1),
    )


def bill(world, call_off) -> Invoice:
    monthly_run.run_period(f"{call_off.start_date:%Y-%m}", now=after_month(call_off.start_date))
    invoice = db.session.scalar(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
    issuing.issue(world.provider_admin, invoice, now=LATER)
    return invoice


def caught_up() -> int:
    commit()  # catch-up commits in a session of its own: it reads what is committed
    done = ledger.catch_up()
    db.session.expire_all()
    return done


def test_a_co_funded_call_off_commits_invoices_and_pays_each_funders_share_exactly(world):
    call_off = co_funded(world)
    deliver(world, call_off, 3)
    invoice = bill(world, call_off)
    draft_only = caught_up()
    assert draft_only >= 1
    # Committed: each funder's share on the day placed, to the penny, summing to the whole.
    committed = {f.organisation_id: f.share_pence for f in call_off.funders}
    assert sum(committed.values()) == call_off.gross_pence
    assert entry_sums(measure=Measure.COMMITTED) == {
        (COMMITTED, org): pence for org, pence in committed.items()
    }
    placed = db.session.scalars(
        sa.select(SpendEntry.occurred_on).where(SpendEntry.measure == Measure.COMMITTED)
    ).all()
    assert set(placed) == {london_date(call_off.placed_at)}

    credit_notes.raise_credit_note(world.provider_admin, invoice, 12_345, "One session cancelled")
    issuing.validate(world.buyer, invoice, now=LATER)
    issuing.mark_paid_by_bacs(world.buyer, invoice, "REM-1", LATER.date(), now=LATER)
    refund = credit_notes.raise_credit_note(
        world.provider_admin, invoice, 100, "Overcharged", now=LATER + timedelta(days=1)
    )
    assert caught_up() == 1
    invoice = db.session.get(Invoice, invoice.id)
    credited = [n.gross_pence for n in invoice.credit_notes]
    # Invoiced: the gross less both credit notes; split as the recharge statements split it.
    points = [6_667, 3_333]  # lead first, as split_among orders them
    split = lambda net, vat: [  # noqa: E731
        n + v
        for n, v in zip(
            split_by_basis_points(net, points), split_by_basis_points(vat, points), strict=True
        )
    ]
    notes = invoice.credit_notes
    expected_invoiced = [
        a + b + c
        for a, b, c in zip(
            split(invoice.net_pence, invoice.vat_pence),
            split(-notes[0].net_pence, -notes[0].vat_pence),
            split(-notes[1].net_pence, -notes[1].vat_pence),
            strict=True,
        )
    ]
    sums = entry_sums()
    assert [sums[INVOICED, world.region.id], sums[INVOICED, world.pcc.id]] == expected_invoiced
    assert sum(expected_invoiced) == invoice.gross_pence - sum(credited)
    # Paid: what was left when paid (the first credit note came before), then the refund.
    expected_paid = [
        a + b
        for a, b in zip(
            split(invoice.net_pence - notes[0].net_pence, invoice.vat_pence - notes[0].vat_pence),
            split(-refund.net_pence, -refund.vat_pence),
            strict=True,
        )
    ]
    assert [sums[PAID, world.region.id], sums[PAID, world.pcc.id]] == expected_paid
    refund_entries = db.session.scalars(
        sa.select(SpendEntry).where(
            SpendEntry.measure == Measure.PAID, SpendEntry.source == "credit_note"
        )
    ).all()
    assert {e.occurred_on for e in refund_entries} == {london_date(refund.created_at)}
    assert month_sums() == {k: v for k, v in sums.items() if v}
    assert provider_year_sums() == {
        (e.financial_year, e.funder_id, e.provider_id): v for e in refund_entries[:1] for v in [0]
    } | {
        (refund_entries[0].financial_year, org, world.provider.id): pence
        for org, pence in zip((world.region.id, world.pcc.id), expected_paid, strict=True)
    }
    assert ledger.check_ledger() == []


def test_a_draft_invoice_is_not_spend(world):
    call_off = co_funded(world)
    deliver(world, call_off, 2)
    monthly_run.run_period(f"{call_off.start_date:%Y-%m}", now=after_month(call_off.start_date))
    assert db.session.scalar(sa.select(Invoice.status)) == InvoiceStatus.DRAFT
    caught_up()
    assert {m for m, _ in entry_sums()} == {COMMITTED}


def test_a_cancelled_call_off_gives_back_what_was_not_delivered_on_the_day(world):
    call_off = co_funded(world)
    deliver(world, call_off, 2)
    responses.cancel(world.buyer, call_off, "person_moved", now=LATER)
    caught_up()
    call_off = db.session.get(CallOff, call_off.id)
    # What stays committed is the delivered units' value, split as the budgets spent it.
    delivered = split_by_basis_points(2 * 12_345 * 12 // 10, [6_667, 3_333])
    assert entry_sums() == {
        (COMMITTED, world.region.id): delivered[0],
        (COMMITTED, world.pcc.id): delivered[1],
    }
    withdrawal = db.session.scalars(
        sa.select(SpendEntry.occurred_on).where(SpendEntry.source == "withdrawal")
    ).all()
    assert set(withdrawal) == {london_date(LATER)}
    # The ledger agrees with the budgets: committed + spent of both is what is left.
    db.session.refresh(world.budget)
    db.session.refresh(world.pcc_budget)
    assert world.budget.committed_pence + world.budget.spent_pence == delivered[0]
    assert world.pcc_budget.committed_pence + world.pcc_budget.spent_pence == delivered[1]
    assert ledger.check_ledger() == []


def test_a_declined_call_off_gives_back_everything(world):
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    responses.decline(world.provider_admin, call_off, "No places", now=LATER)
    caught_up()
    assert entry_sums() == {}
    gross = db.session.get(CallOff, call_off.id).gross_pence
    by_month = {
        (row.month, row.amount_pence, row.entries)
        for row in db.session.scalars(sa.select(SpendMonth))
    }
    assert by_month == {
        (utcnow().date().replace(day=1), gross, 1),
        (london_date(LATER).replace(day=1), -gross, 1),
    }
    assert ledger.check_ledger() == []


def test_an_agreed_variation_moves_committed_on_its_day(world):
    call_off = co_funded(world, quantity=10)
    before = {f.organisation_id: f.share_pence for f in call_off.funders}
    variation = variations.propose_variation(
        world.provider_admin, call_off, extra_units=3, reason="More sessions needed"
    )
    variations.agree_variation(world.buyer, call_off, variation.id, now=LATER)
    caught_up()
    call_off = db.session.get(CallOff, call_off.id)
    after = {f.organisation_id: f.share_pence for f in call_off.funders}
    assert entry_sums() == {(COMMITTED, org): pence for org, pence in after.items()}
    moved = db.session.execute(
        sa.select(SpendEntry.funder_id, SpendEntry.amount_pence, SpendEntry.occurred_on).where(
            SpendEntry.source == "variation"
        )
    ).all()
    assert {(org, pence, day) for org, pence, day in moved} == {
        (org, after[org] - before[org], london_date(LATER)) for org in after
    }
    assert ledger.check_ledger() == []


def test_a_reclassification_dated_in_the_past_recounts_later_entries(world):
    classify(world.provider, world.start - timedelta(days=400), vcse=False, sme=True)
    call_off = co_funded(world)
    caught_up()
    flags = {(e.provider_vcse, e.provider_sme) for e in db.session.scalars(sa.select(SpendEntry))}
    assert flags == {(False, True)}
    # The authority corrects it, effective before the call-off was placed: re-counted.
    classify(world.provider, world.start - timedelta(days=100), vcse=True, sme=True, reason="x")
    assert caught_up() == 1
    assert {
        (e.provider_vcse, e.provider_sme) for e in db.session.scalars(sa.select(SpendEntry))
    } == {(True, True)}
    assert {
        (r.provider_vcse, r.amount_pence > 0) for r in db.session.scalars(sa.select(SpendMonth))
    } == {(True, True)}
    assert ledger.check_ledger() == []
    assert call_off.id


def test_roll_up_rows_left_with_no_entries_are_deleted(world):
    call_off = co_funded(world)
    caught_up()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpendMonth)) == 2
    db.session.execute(
        sa.delete(CallOffFunderTable).where(CallOffFunderTable.c.call_off_id == call_off.id)
    )
    assert caught_up() == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpendMonth)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpendEntry)) == 0
    assert ledger.check_ledger() == []


def test_catch_up_costs_one_query_when_nothing_is_stale(world, count_queries):
    co_funded(world)
    caught_up()
    with count_queries() as counter:
        assert ledger.catch_up() == 0
    assert counter.count == 1


def test_rebuild_all_equals_what_catch_up_kept(world):
    first = co_funded(world)
    deliver(world, first, 2)
    bill(world, first)
    co_funded(world, quantity=4)
    caught_up()
    kept = sorted(map(repr, ledger._stored_all(db.session)))
    months = month_sums()
    assert ledger.rebuild_all() == 2
    commit()
    assert sorted(map(repr, ledger._stored_all(db.session))) == kept
    assert month_sums() == months
    assert ledger.check_ledger() == []


@pytest.mark.parametrize("clients", [2, pytest.param(20, marks=pytest.mark.postgres_only)])
def test_catch_up_happens_once_under_concurrent_callers(app, world, clients):
    call_off = co_funded(world)
    deliver(world, call_off, 3)
    bill(world, call_off)
    commit()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(SpendStaleCallOff)) == 1
    done = []

    def client():
        def act():
            done.append(ledger.catch_up())

        return act

    race(app, [client] * clients)
    db.session.expire_all()
    assert sorted(done) == [0] * (clients - 1) + [1]
    assert ledger.check_ledger() == []
    assert month_sums() == entry_sums()


def test_check_ledger_finds_a_roll_up_or_an_entry_that_differs(app, world):
    call_off = co_funded(world)
    caught_up()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["insight", "check-ledger"]).exit_code == 0
    row = db.session.scalars(sa.select(SpendMonth)).first()
    row.amount_pence += 1
    commit()
    [problem] = ledger.check_ledger()
    assert problem.startswith("spend_months")
    result = runner.invoke(args=["insight", "check-ledger"])
    assert result.exit_code == 1 and "differs in 1 place" in result.output
    row.amount_pence -= 1
    # The yearly roll-up is checked against the entries too.
    year = db.session.scalars(sa.select(SpendYear)).first()
    year.entries += 1
    commit()
    [problem] = ledger.check_ledger()
    assert problem.startswith("spend_years")
    year.entries -= 1
    half = db.session.scalars(sa.select(SpendHalfYear)).first()
    half.amount_pence -= 1
    commit()
    [problem] = ledger.check_ledger()
    assert problem.startswith("spend_half_years")
    # An entry changed by hand is found too; the rebuild puts everything right.
    db.session.execute(
        sa.update(SpendEntry).where(SpendEntry.call_off_id == call_off.id).values(amount_pence=1)
    )
    commit()
    assert any(p.startswith(f"call-off {call_off.id}") for p in ledger.check_ledger())
    result = runner.invoke(args=["insight", "rebuild-ledger"])
    assert result.exit_code == 0 and "from 1 call-off" in result.output
    db.session.expire_all()
    assert ledger.check_ledger() == []


def test_the_scheduled_job_catches_up(world):
    from marketplace.core.scheduler import registry
    from marketplace.core.scheduler import services as scheduler_services

    co_funded(world)
    commit()
    job = registry.get("insight.catch-up-ledger")
    assert job is not None
    # Through the scheduler's own path: the run is claimed (committed) before the job runs.
    run = scheduler_services.run_job(job, utcnow().replace(microsecond=0))
    assert (run.outcome.value, run.counts) == ("ok", {"call-offs brought up to date": 1})
    assert job.function(utcnow()) == {"call-offs brought up to date": 0}
