"""Call-offs across financial years: each funder's share is committed to each year's budget
by the planned spread of units over the months, in exact pence; placing refuses a year without
budget or with too little; delivery spends from the year it falls in; cancelling and completing
release each year's unspent part; standing authorisations are used per year; a variation
reaching into a year without budget is refused."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from marketplace.core import clock
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.orders.models import Budget, CallOff, CallOffBudgetPart, FundingAuthorisation
from marketplace.orders.services import budgets, responses, variations
from marketplace.orders.services import delivery as order_delivery
from marketplace.orders.services import placing as order_placing
from marketplace.orders.services.delivery import DeliveryDetails
from tests.orders.factories import build_orders_world, details, shares


def across_31_march(today: date) -> tuple[date, date, int]:
    """1 February to 31 May around a 31 March at least three months away: four months, two in
    each financial year; the first year."""
    april = date(today.year, 4, 1)
    while (april - today).days < 90:
        april = date(april.year + 1, 4, 1)
    return date(april.year, 2, 1), date(april.year, 5, 31), april.year - 1


@pytest.fixture
def world(app):
    return build_orders_world(price_pence=10_000)  # £100.00 a unit, exempt


def budget(organisation, year, allocated=10_000_000) -> Budget:
    found = db.session.scalar(
        sa.select(Budget).where(
            Budget.organisation_id == organisation.id, Budget.financial_year == year
        )
    )
    if found is None:
        found = Budget(organisation=organisation, financial_year=year, allocated_pence=allocated)
        db.session.add(found)
    found.allocated_pence = allocated
    db.session.flush()
    return found


def place(world, start, end, quantity=10, **fields):
    return order_placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, quantity=quantity, start_date=start, end_date=end, **fields),
    )


def parts_of(funder) -> dict[int, tuple[int, int]]:
    return {p.financial_year: (p.share_pence, p.committed_pence) for p in funder.parts}


def committed(b: Budget) -> int:
    db.session.refresh(b)
    return b.committed_pence


def test_a_co_funded_call_off_across_31_march_commits_each_years_part_in_exact_pence(world):
    start, end, first = across_31_march(date.today())
    lead = [budget(world.region, first), budget(world.region, first + 1)]
    pcc = [budget(world.pcc, first), budget(world.pcc, first + 1)]
    before = [committed(b) for b in lead + pcc]
    call_off = place(world, start, end, shares=shares((world.region, 6_667), (world.pcc, 3_333)))
    assert call_off.gross_pence == 100_000
    # 10 units over February to May: 3, 3, 2, 2, so 6 in the first year and 4 in the second.
    assert budgets.year_weights(call_off) == {first: 6, first + 1: 4}
    region, pcc_funder = call_off.funders
    assert (region.share_pence, pcc_funder.share_pence) == (66_670, 33_330)
    assert parts_of(region) == {first: (40_002, 40_002), first + 1: (26_668, 26_668)}
    assert parts_of(pcc_funder) == {first: (19_998, 19_998), first + 1: (13_332, 13_332)}
    moved = [committed(b) - was for b, was in zip(lead + pcc, before, strict=True)]
    assert moved == [40_002, 26_668, 19_998, 13_332]
    assert sum(moved) == call_off.gross_pence


def test_placing_refuses_a_year_without_a_budget_or_with_too_little(world):
    start, end, first = across_31_march(date.today())
    budget(world.region, first)
    db.session.execute(
        sa.delete(Budget).where(
            Budget.organisation_id == world.region.id, Budget.financial_year == first + 1
        )
    )
    count = db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))
    label = f"{first + 1}-{str(first + 2)[-2:]}"
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, start, end)
    assert refused.value.errors["end_date"] == [
        f"North East Probation has no budget for {label}, so it cannot fund this call-off"
    ]
    errors = order_placing.check_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, quantity=10, start_date=start, end_date=end),
    )
    assert "has no budget for" in errors["end_date"][0]
    budget(world.region, first + 1, allocated=39_999)  # the second year's part is £400.00
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, start, end)
    assert refused.value.errors["quantity"] == [
        f"North East Probation has £399.99 left in its {label} budget, less than its share of "
        "£400.00"
    ]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(CallOff)) == count


def test_delivery_spends_from_its_year_and_completing_releases_each_years_unspent_part(world):
    start, end, first = across_31_march(date.today())
    one, two = budget(world.region, first), budget(world.region, first + 1)
    call_off = place(world, start, end)
    responses.accept(world.provider_admin, call_off)
    in_april = datetime(first + 1, 4, 20, 10, tzinfo=UTC)
    order_delivery.record_delivery(
        world.provider_admin,
        call_off,
        DeliveryDetails(delivered_on=in_april.date(), units=3, attendance="attended"),
        now=in_april,
    )
    # £300.00 spent from the second year, its commitment taken from that year's part.
    db.session.refresh(one)
    db.session.refresh(two)
    assert (one.spent_pence, two.spent_pence) == (0, 30_000)
    assert (one.committed_pence, two.committed_pence) == (60_000, 10_000)
    order_delivery.complete(world.provider_admin, call_off, "Done early", now=in_april)
    db.session.refresh(one)
    db.session.refresh(two)
    assert (one.committed_pence, two.committed_pence) == (0, 0)
    assert all(p.committed_pence == 0 for p in call_off.funders[0].parts)


def test_cancelling_releases_each_years_part(world):
    start, end, first = across_31_march(date.today())
    one, two = budget(world.region, first), budget(world.region, first + 1)
    was = (committed(one), committed(two))
    call_off = place(world, start, end)
    assert (committed(one) - was[0], committed(two) - was[1]) == (60_000, 40_000)
    responses.cancel(world.buyer, call_off, "person_moved")
    assert (committed(one), committed(two)) == was


def test_standing_authorisations_are_used_per_year_and_only_if_every_year_has_room(world):
    start, end, first = across_31_march(date.today())
    for organisation in (world.region, world.pcc):
        budget(organisation, first)
        budget(organisation, first + 1)
    authorisations = [
        FundingAuthorisation(
            funder=world.pcc,
            lead_buyer=world.region,
            financial_year=year,
            per_call_off_limit_pence=1_000_000,
            annual_limit_pence=1_000_000,
        )
        for year in (first, first + 1)
    ]
    db.session.add_all(authorisations)
    db.session.flush()
    call_off = place(world, start, end, shares=shares((world.region, 5_000), (world.pcc, 5_000)))
    assert call_off.funders[1].preauthorised
    assert [a.used_pence for a in authorisations] == [30_000, 20_000]
    # The second year's authorisation has too little left: neither year's is used.
    authorisations[1].annual_limit_pence = 30_000
    again = place(world, start, end, shares=shares((world.region, 5_000), (world.pcc, 5_000)))
    assert not again.funders[1].preauthorised
    assert [a.used_pence for a in authorisations] == [30_000, 20_000]


def test_a_variation_reaching_into_a_year_without_a_budget_is_refused(world):
    start = world.start
    end = date(clock.financial_year(start) + 1, 3, 20)
    call_off = place(world, start, end, quantity=4)
    responses.accept(world.provider_admin, call_off)
    new_end = date(end.year, 6, 30)
    variation = variations.propose_variation(
        world.provider_admin, call_off, extra_units=6, new_end_date=new_end, reason="Longer"
    )
    parts_before = db.session.scalar(sa.select(sa.func.count()).select_from(CallOffBudgetPart))
    with pytest.raises(BusinessRuleViolation) as refused:
        variations.agree_variation(world.buyer, call_off, variation.id)
    label = f"{end.year}-{str(end.year + 1)[-2:]}"
    assert (
        f"has no budget for {label}, which this variation reaches into"
        in (refused.value.errors["shares"][0])
    )
    parts = db.session.scalar(sa.select(sa.func.count()).select_from(CallOffBudgetPart))
    assert parts == parts_before and call_off.quantity == 4


def test_the_call_off_page_shows_each_years_part(world, web):
    from tests.pages import main

    start, end, first = across_31_march(date.today())
    budget(world.region, first)
    budget(world.region, first + 1)
    call_off = place(world, start, end)
    db.session.commit()
    response = web.as_user(world.buyer, world.region).get(f"/call-offs/{call_off.id}")
    assert response.status_code == 200, response.get_data(as_text=True)[-3000:]
    page = main(response)
    table = page.split('id="funding-by-year"', 1)[1].split("</table>", 1)[0]
    label = f"{first}-{str(first + 1)[-2:]}"
    later = f"{first + 1}-{str(first + 2)[-2:]}"
    assert label in table and "£600.00" in table and later in table and "£400.00" in table
