"""Anti-splitting (issue 18): a buyer organisation's call-offs with the same provider in the same
lot over the rolling 12 months count together towards the direct-award limit, whichever of the
provider's listings they buy; an arrangement may narrow the rule to the same listing. Above the
limit the buyer is told why in plain words and what to do instead."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accreditation.models import ArrangementLot, AwardLimitScope
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.orders.models import Budget, CallOff
from marketplace.orders.services import funding, placing, responses, route, variations
from tests.accreditation.factories import category, make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world, details, second_buyer


def another_listing(world, lot=None, provider=None, **fields):
    """Another published listing at £100 a session: of the same provider and lot by default."""
    return make_listing(
        lot or world.listing.lot,
        provider or world.provider,
        title=fields.pop("title", "Tenancy sustainment"),
        price_pence=10_000,
        price_from=date.today() - timedelta(days=30),
        max_units=500,
        **fields,
    )


def place(world, listing, quantity, actor=None):
    return placing.place_call_off(
        actor or world.buyer, world.region, listing.id, details(world, quantity=quantity)
    )


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(CallOff))


@pytest.fixture
def world(app):
    # £100 a session, a £50,000 limit: £60,000 with one provider in one lot is over it.
    return build_orders_world(price_pence=10_000, limit_pence=5_000_000, allocated_pence=50_000_000)


def test_call_offs_with_one_provider_in_one_lot_count_together_across_its_listings(world):
    other = another_listing(world)
    first = place(world, world.listing, 300)  # £30,000
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, other, 300, actor=second_buyer(world))  # £30,000 more: £60,000
    message = refused.value.errors["quantity"][0]
    # Why, in plain words: what was counted, which call-offs, the limit; and what to do instead.
    assert "call-offs with Harbour Housing in the Accommodation lot" in message
    assert "come to £30,000.00 including VAT" in message
    assert f"({first.reference} (£30,000.00))" in message
    assert "with this one they would be £60,000.00" in message
    assert "over the direct award limit of £50,000.00" in message
    assert "whichever of its services they buy" in message
    assert "further competition" in message and "not be split into smaller call-offs" in message
    assert "or buy no more than £20,000.00 including VAT directly" in message
    assert count() == 1
    assert place(world, other, 200).gross_pence == 2_000_000  # exactly at the limit


def test_another_provider_or_another_lot_is_counted_apart(world):
    arrangement = world.listing.lot.arrangement
    employment = ArrangementLot(category=category("ETE"), description="Employment")
    arrangement.lots.append(employment)
    db.session.flush()
    make_lot_membership(employment, world.provider, region_code="A")
    other_lot = another_listing(world, lot=employment, title="Job coaching")
    rival = make_organisation(OrganisationType.PROVIDER_VCSE, name="Second Chance")
    make_lot_membership(world.listing.lot, rival, region_code="A")
    other_provider = another_listing(world, provider=rival, title="Rival housing")

    place(world, world.listing, 400)  # £40,000 with Harbour Housing in accommodation
    assert place(world, other_lot, 400).status  # another lot of the same provider
    assert place(world, other_provider, 400).status  # another provider in the same lot
    assert count() == 3


def test_an_arrangement_may_narrow_the_rule_to_the_same_listing(world):
    world.listing.lot.arrangement.award_limit_scope = AwardLimitScope.LISTING
    db.session.flush()
    other = another_listing(world)
    place(world, world.listing, 300)
    assert place(world, other, 300).gross_pence == 3_000_000  # £60,000 in all: allowed
    with pytest.raises(BusinessRuleViolation) as refused:
        place(world, other, 201)  # £50,100 for that one listing
    message = refused.value.errors["quantity"][0]
    assert "call-offs for this service in the last 12 months come to £30,000.00" in message
    assert "Call-offs for the same service count together" in message


def test_cancelled_and_older_call_offs_stop_counting(world):
    other = another_listing(world)
    cancelled = place(world, world.listing, 300)
    responses.cancel(world.buyer, cancelled, "duplicate")
    old = place(world, world.listing, 200)
    old.placed_at -= timedelta(days=366)
    db.session.flush()
    assert place(world, other, 500).gross_pence == 5_000_000


def test_agreeing_a_variation_counts_the_providers_other_listings(world):
    other = another_listing(world)
    place(world, world.listing, 300)
    varied = place(world, other, 200)  # £50,000 in all: at the limit
    funding.approve(world.approver, varied)  # above the buyer's own spend limit
    responses.accept(world.provider_admin, varied)
    variation = variations.propose_variation(
        world.provider_admin, varied, extra_units=1, reason="One more session"
    )
    with pytest.raises(BusinessRuleViolation) as refused:
        variations.agree_variation(world.buyer, varied, variation.id)
    assert "with Harbour Housing in the Accommodation lot" in refused.value.errors["quantity"][0]


def test_the_lock_is_named_after_the_buyer_the_provider_and_the_lot(world):
    other = another_listing(world)
    first = place(world, world.listing, 1)
    second = place(world, other, 1)
    # One name for both listings of the provider in the lot: placements across them queue.
    assert route.buyer_total_lock(first) == route.buyer_total_lock(second)
    rival = make_organisation(OrganisationType.PROVIDER_VCSE, name="Second Chance")
    make_lot_membership(world.listing.lot, rival, region_code="A")
    third = place(world, another_listing(world, provider=rival), 1)
    assert route.buyer_total_lock(third) != route.buyer_total_lock(first)


# --- the authority sets the rule; buyers and providers see it


def test_the_authority_chooses_the_rule_on_the_arrangement_form_and_sees_it(web, app):
    from marketplace.accreditation.models import Arrangement
    from tests.accreditation.test_arrangement_views import form_data

    admin = make_member(Role.AUTHORITY_ADMIN)
    commit()
    web.as_user(admin)
    form = web.get("/accreditation/arrangements/new").data.decode()
    assert "Which call-offs count together towards the limit?" in form
    # The rule by default is the wider one, chosen already.
    assert 'value="provider_and_lot" checked' in form

    bad = web.post("/accreditation/arrangements/new", data=form_data(award_limit_scope="buyer"))
    assert bad.status_code == 422
    assert 'href="#award_limit_scope"' in bad.data.decode()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Arrangement)) == 0

    made = web.post("/accreditation/arrangements/new", data=form_data(award_limit_scope="listing"))
    assert made.status_code == 302
    arrangement = db.session.scalar(sa.select(Arrangement))
    assert arrangement.award_limit_scope == AwardLimitScope.LISTING
    page = web.get(made.headers["Location"]).data.decode()
    assert "Only call-offs for the same service (listing), over the last 12 months" in page

    edit = f"/accreditation/arrangements/{arrangement.id}/edit"
    assert 'value="listing" checked' in web.get(edit).data.decode()
    changed = web.post(edit, data=form_data(award_limit_scope="provider_and_lot"))
    assert changed.status_code == 302
    db.session.refresh(arrangement)
    assert arrangement.award_limit_scope == AwardLimitScope.PROVIDER_AND_LOT


def test_only_the_authority_sets_the_rule(web, world):
    arrangement = world.listing.lot.arrangement
    commit()
    web.as_user(world.buyer, world.region)
    edit = f"/accreditation/arrangements/{arrangement.id}/edit"
    assert web.get(edit).status_code == 403
    assert web.post(edit, data={"award_limit_scope": "listing"}).status_code == 403
    db.session.refresh(arrangement)
    assert arrangement.award_limit_scope == AwardLimitScope.PROVIDER_AND_LOT


def test_the_public_arrangement_and_its_api_say_which_call_offs_count(client, world):
    arrangement = world.listing.lot.arrangement
    commit()
    body = client.get(f"/api/v1/arrangements/{arrangement.id}").get_json()
    assert body["award_limit_scope"] == "provider_and_lot"
    page = client.get(f"/arrangements/{arrangement.id}").data.decode()
    assert "Every call-off with the same provider in the same lot" in page


def test_a_buyer_organisations_other_buyers_count_too_and_other_organisations_do_not(world):
    other = another_listing(world)
    place(world, world.listing, 300)
    region = make_organisation(OrganisationType.PROBATION_REGION, name="Wales Probation")
    buyer = make_member(Role.BUYER, region)
    make_member(Role.APPROVER, region)  # £30,000 is above the buyer's limit: someone approves
    db.session.add(
        Budget(
            organisation=region,
            financial_year=world.budget.financial_year,
            allocated_pence=10_000_000,
        )
    )
    db.session.flush()
    placed = placing.place_call_off(buyer, region, other.id, details(world, quantity=300))
    assert placed.gross_pence == 3_000_000
