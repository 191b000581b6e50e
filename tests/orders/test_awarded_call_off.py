"""Issue 21: a call-off awarded by further competition. Placed at the winning price with the
winner, without a rate-card listing, funded by the shares agreed for the competition (budgets
moved by the exact pence of each funder's part in each financial year), not held to the
direct-award limit; then accepted, delivered, varied, invoiced by the monthly run and completed
like any call-off. A funder short of budget refuses it and nothing is written."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accreditation.models import AwardLimitScope
from marketplace.catalogue.models import MAX_UNITS, CapacityCommitment
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import financial_year, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.core.notifications.models import Notification
from marketplace.invoices.models import Invoice
from marketplace.invoices.services import monthly_run
from marketplace.orders.models import (
    AwardRoute,
    CallOff,
    CallOffStatus,
    FundingAuthorisation,
)
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import funding, placing, responses, variations
from marketplace.orders.services.awarded import (
    place_awarded_call_off,
)
from marketplace.orders.services.delivery import DeliveryDetails, OutcomeDetails
from marketplace.outcomes import services as outcome_services
from marketplace.outcomes.services import OutcomeTermDetails
from tests.factories import after_month
from tests.orders.awarded_factories import (
    AWARD_PRICE_PENCE,
    award,
    budget_of,
    months_by_year,
    next_year_budgets,
)
from tests.orders.factories import build_orders_world, details, shares


@pytest.fixture
def world(app):
    world = build_orders_world()
    next_year_budgets(world)
    return world


def emails_since(seen: set[int]) -> list[tuple[str, str]]:
    rows = db.session.scalars(sa.select(Notification).order_by(Notification.id)).all()
    fresh = [(n.to_email, n.template) for n in rows if n.id not in seen]
    seen.update(n.id for n in rows)
    return fresh


def counts() -> tuple[int, int, int]:
    return tuple(
        db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (CallOff, AuditEvent, Notification)
    )


def test_an_awarded_call_off_is_funded_by_year_and_runs_its_whole_lifecycle(
    app, world, monkeypatch
):
    # £500: the region's share of the award needs an approver, as any call-off's would.
    monkeypatch.setitem(app.config, "BUYER_SPEND_LIMIT_PENCE", 50_000)
    first = financial_year(world.start)
    by_year = months_by_year(world)
    assert sorted(by_year) == [first, first + 1]
    seen: set[int] = set()
    emails_since(seen)

    call_off = place_awarded_call_off(world.buyer, world.region, award(world))

    # At the winning price, over the £30,000 direct-award limit, with no listing.
    units = 10 * sum(by_year.values())
    assert call_off.award_route == AwardRoute.FURTHER_COMPETITION
    assert call_off.listing_id is None and call_off.choice_reason is None
    assert call_off.competition_id == 7
    assert call_off.service_title == "Women's accommodation service for County Durham"
    assert (call_off.crn, call_off.pdu, call_off.for_one_person) == ("", "", False)
    assert call_off.quantity == units
    assert call_off.gross_pence == units * AWARD_PRICE_PENCE > 3_000_000
    # Each funder's share (60/40), each split by the units planned in each financial year
    # (10 a month), committed against that year's budget to the penny.
    year_value = {year: 10 * months * AWARD_PRICE_PENCE for year, months in by_year.items()}
    region, pcc = call_off.funders
    assert (region.share_pence, pcc.share_pence) == (
        call_off.gross_pence * 6 // 10,
        call_off.gross_pence * 4 // 10,
    )
    for funder, tenths in ((region, 6), (pcc, 4)):
        assert {p.financial_year: p.committed_pence for p in funder.parts} == {
            year: value * tenths // 10 for year, value in year_value.items()
        }
    for organisation, tenths in ((world.region, 6), (world.pcc, 4)):
        for year, value in year_value.items():
            budget = budget_of(organisation, year, world)
            assert (budget.committed_pence, budget.spent_pence) == (value * tenths // 10, 0)
    assert call_off.status == CallOffStatus.AWAITING_FUNDING
    assert emails_since(seen) == [(world.pcc_approver.email, "orders_funding_requested")]
    placed = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "call_off.placed")
    ).one()
    assert placed.after["award_route"] == "further_competition"
    assert placed.after["competition_id"] == 7

    # The co-funder confirms its share through the usual funding flow; an approver approves.
    funding.confirm_funding(world.pcc_approver, call_off, world.pcc)
    assert call_off.status == CallOffStatus.AWAITING_APPROVAL
    funding.approve(world.approver, call_off)
    assert call_off.status == CallOffStatus.SENT
    assert (world.provider_admin.email, "orders_sent_to_provider") in emails_since(seen)

    # Accepted: no listing, so no capacity is committed.
    responses.accept(world.provider_admin, call_off)
    assert call_off.status == CallOffStatus.ACCEPTED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CapacityCommitment)) == 0

    # Delivered: 10 sessions attended; a missed one is recorded but not paid for (the award
    # did not make missed sessions chargeable).
    later = utcnow() + timedelta(days=40)
    day = world.start
    order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=day, units=10, attendance="attended"),
        now=later,
    )
    missed = order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(
            delivered_on=day, units=1, attendance="did_not_attend", absence_reason="unacceptable"
        ),
        now=later,
    )
    assert not missed.payable and call_off.delivered_units == 10
    assert call_off.status == CallOffStatus.IN_DELIVERY
    spent = 10 * AWARD_PRICE_PENCE
    assert budget_of(world.region, first, world).spent_pence == spent * 6 // 10
    assert budget_of(world.pcc, first, world).spent_pence == spent * 4 // 10

    # Varied: 100 more sessions, above what the direct-award limit would allow, and without a
    # listing's range; the lead buyer's approver agrees (within their approval limit).
    variation = variations.propose_variation(
        world.provider_admin, call_off, extra_units=100, reason="The need is larger"
    )
    variations.agree_variation(world.approver, call_off, variation.id, now=later)
    assert call_off.quantity == units + 100 and call_off.version == 2
    assert call_off.gross_pence == (units + 100) * AWARD_PRICE_PENCE

    # Invoiced by the monthly run, each line named by the call-off's service title.
    result = monthly_run.run_period(f"{day:%Y-%m}", now=after_month(day))
    assert (result.created, result.lines) == (1, 1)  # the missed session is not billed
    invoice = db.session.scalars(sa.select(Invoice)).one()
    assert invoice.call_off_id == call_off.id
    assert invoice.net_pence == spent
    assert all(
        line.description.startswith("Women's accommodation service for County Durham")
        for line in invoice.lines
    )

    # Completed: nothing offered to record an outcome against; the rest released.
    order_delivery.complete(world.provider_admin, call_off, "Delivered as bid", now=later)
    assert call_off.status == CallOffStatus.COMPLETED
    for organisation in (world.region, world.pcc):
        for year in by_year:
            assert budget_of(organisation, year, world).committed_pence == 0


def test_a_funder_short_of_budget_for_a_year_refuses_it_and_nothing_is_written(world):
    first = financial_year(world.start)
    pcc_next = budget_of(world.pcc, first + 1, world)
    pcc_next.allocated_pence = 100  # £1 left for its part of the second year
    db.session.flush()
    before = counts()
    budgets = [
        (b.committed_pence, b.spent_pence)
        for b in (
            budget_of(o, y, world) for o in (world.region, world.pcc) for y in (first, first + 1)
        )
    ]

    with pytest.raises(BusinessRuleViolation) as refused:
        place_awarded_call_off(world.buyer, world.region, award(world))

    [message] = refused.value.errors["shares-1-basis_points"]
    assert message.startswith(f"Durham PCC has £1.00 left in its {first + 1}-")
    assert "budget, less than its share of" in message
    # Refused before anything was added: nothing to roll back.
    assert not db.session.new and not db.session.dirty
    db.session.flush()
    assert counts() == before
    assert budgets == [
        (b.committed_pence, b.spent_pence)
        for b in (
            budget_of(o, y, world) for o in (world.region, world.pcc) for y in (first, first + 1)
        )
    ]


def test_a_funder_without_a_budget_for_a_year_is_named_with_the_year(world):
    db.session.delete(budget_of(world.pcc, financial_year(world.start) + 1, world))
    db.session.flush()
    with pytest.raises(BusinessRuleViolation) as refused:
        place_awarded_call_off(world.buyer, world.region, award(world))
    year = financial_year(world.start) + 1
    assert refused.value.errors["shares-1-organisation_id"] == [
        f"Durham PCC has no budget for {year}-{str(year + 1)[-2:]}, so it cannot fund this call-off"
    ]


def test_a_standing_authorisation_confirms_the_co_funders_share_at_once(world):
    first = financial_year(world.start)
    authorisations = [
        FundingAuthorisation(
            funder=world.pcc,
            lead_buyer=world.region,
            financial_year=year,
            per_call_off_limit_pence=10_000_000,
            annual_limit_pence=10_000_000,
        )
        for year in (first, first + 1)
    ]
    db.session.add_all(authorisations)
    db.session.flush()
    call_off = place_awarded_call_off(world.buyer, world.region, award(world))
    pcc = call_off.funders[1]
    assert pcc.preauthorised and pcc.confirmed_at is not None
    assert [a.used_pence for a in authorisations] == [
        p.share_pence for p in sorted(pcc.parts, key=lambda p: p.financial_year)
    ]
    assert call_off.status in (CallOffStatus.AWAITING_APPROVAL, CallOffStatus.SENT)


def test_only_a_buyer_of_a_commissioner_places_an_award(world):
    with pytest.raises(PermissionDenied):
        place_awarded_call_off(world.provider_admin, world.region, award(world))
    with pytest.raises(PermissionDenied):
        place_awarded_call_off(world.provider_admin, world.provider, award(world))


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"unit": "fortnight"}, "unit"),
        ({"vat_treatment": "half"}, "vat_treatment"),
        ({"quantity": 0}, "quantity"),
        ({"quantity": MAX_UNITS + 1}, "quantity"),
        ({"unit_price_pence": -1}, "unit_price_pence"),
        ({"unit_price_pence": 10**12}, "unit_price_pence"),
        ({"service_title": "  "}, "service_title"),
        ({"service_title": "x" * 121}, "service_title"),
        ({"provider_id": 10**9}, "provider_id"),
        ({"arrangement_id": 10**9}, "arrangement_id"),
        ({"category_id": 10**9}, "category_id"),
        ({"po_number": "P" * 61}, "po_number"),
    ],
)
def test_bad_award_values_are_refused_by_field_and_nothing_is_written(world, fields, key):
    before = counts()
    with pytest.raises(BusinessRuleViolation) as refused:
        place_awarded_call_off(world.buyer, world.region, award(world, **fields))
    assert key in refused.value.errors
    assert counts() == before


def test_the_winner_must_be_a_provider_and_the_dates_in_order(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        place_awarded_call_off(
            world.buyer,
            world.region,
            award(world, provider_id=world.pcc.id, end_date=world.start - timedelta(days=1)),
        )
    assert set(refused.value.errors) == {"provider_id", "end_date"}


def test_shares_not_adding_up_are_refused(world):
    with pytest.raises(BusinessRuleViolation) as refused:
        place_awarded_call_off(
            world.buyer,
            world.region,
            award(world, shares=shares((world.region, 6_000), (world.pcc, 3_000))),
        )
    assert refused.value.errors["shares"] == [
        "The shares must add up to exactly 100% (they add up to 90%)"
    ]


@pytest.mark.parametrize("chargeable", [True, False])
def test_a_missed_session_is_paid_for_only_if_the_award_says_so(world, chargeable):
    call_off = accepted_award(world, missed_sessions_chargeable=chargeable)
    missed = order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(
            delivered_on=world.start,
            units=1,
            attendance="did_not_attend",
            absence_reason="logistics",
        ),
        now=utcnow() + timedelta(days=40),
    )
    assert missed.payable is chargeable
    assert call_off.delivered_units == (1 if chargeable else 0)


def accepted_award(world, **fields) -> CallOff:
    call_off = place_awarded_call_off(
        world.buyer,
        world.region,
        award(world, shares=shares((world.region, 10_000)), quantity=20, **fields),
    )
    if call_off.status == CallOffStatus.AWAITING_APPROVAL:
        funding.approve(world.approver, call_off)
    responses.accept(world.provider_admin, call_off)
    return call_off


def test_without_a_listing_no_outcome_can_be_recorded_or_paid_for_by_results(world):
    call_off = accepted_award(world)
    with pytest.raises(BusinessRuleViolation) as refused:
        order_delivery.complete(
            world.provider_admin,
            call_off,
            "Done",
            [OutcomeDetails("Settled accommodation", "achieved")],
        )
    assert refused.value.errors == {"outcomes-0": ["Choose an outcome the service offers"]}
    with pytest.raises(BusinessRuleViolation) as refused:
        outcome_services.propose_term(
            world.buyer,
            call_off,
            OutcomeTermDetails(
                outcome="Settled accommodation",
                tariff_pence=10_000,
                earliest_claim_on=world.start + timedelta(days=90),
                evidence_required="A tenancy agreement",
                cap=1,
            ),
        )
    assert refused.value.errors["outcome"] == [
        "This call-off has no rate-card listing, so it offers no outcomes to pay for by results"
    ]


def test_a_variation_without_a_listing_is_bounded_only_by_what_a_call_off_can_hold(world):
    call_off = accepted_award(world)
    with pytest.raises(BusinessRuleViolation) as refused:
        variations.propose_variation(
            world.provider_admin, call_off, extra_units=MAX_UNITS, reason="Far more"
        )
    assert refused.value.errors["extra_units"] == [
        f"A call-off can have at most {call_off.unit.count(MAX_UNITS)}"
    ]
    # A listing's range does not apply: the world's listing sells at most 500 sessions.
    variation = variations.propose_variation(
        world.provider_admin, call_off, extra_units=600, reason="More people referred"
    )
    assert variation.after["quantity"] == 620


def test_cancelling_an_awarded_call_off_releases_its_budgets(world):
    call_off = accepted_award(world)
    responses.cancel(world.buyer, call_off, "needs_met_elsewhere")
    assert call_off.status == CallOffStatus.CANCELLED
    assert budget_of(world.region, financial_year(world.start), world).committed_pence == 0


@pytest.mark.parametrize("scope", list(AwardLimitScope))
def test_an_award_is_neither_held_to_nor_counted_in_the_direct_award_limit(world, scope):
    world.listing.lot.arrangement.award_limit_scope = scope
    db.session.flush()
    awarded = place_awarded_call_off(world.buyer, world.region, award(world))
    assert awarded.gross_pence > world.listing.lot.arrangement.direct_award_limit_pence
    # The same buyer can still buy directly from the winner's rate card up to the limit: 250
    # sessions at £100 is £25,000, within £30,000 only if the award does not count.
    direct = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=250)
    )
    assert direct.award_route == AwardRoute.DIRECT_RATE_CARD
