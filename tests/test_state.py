"""The one transition helper (marketplace.core.state): a move is checked against the state committed
last, under a lock held to the end of the transaction, and refused with a clear 409 otherwise."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.catalogue.models import LISTING_TRANSITIONS, Listing, ListingStatus
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, TransitionConflict
from marketplace.core.state import check_transition, describe, lock, transition
from marketplace.orders.models import CallOff, CallOffFunder, CallOffStatus
from marketplace.orders.services import funding, placing
from tests.orders.factories import build_orders_world, details, shares
from tests.racing import elsewhere


@pytest.fixture
def listing(app) -> Listing:
    world = build_orders_world()
    commit()
    return db.session.get(Listing, world.listing.id)


def move(listing: Listing, target: ListingStatus, **how) -> ListingStatus:
    return transition(listing, target, LISTING_TRANSITIONS, noun="listing", **how)


def test_an_allowed_move_is_made_and_says_where_it_came_from(listing):
    assert listing.status == ListingStatus.PUBLISHED
    assert move(listing, ListingStatus.PAUSED) == ListingStatus.PUBLISHED
    assert listing.status == ListingStatus.PAUSED
    commit()
    assert db.session.get(Listing, listing.id).status == ListingStatus.PAUSED


def test_a_move_to_the_state_it_is_in_is_refused_as_already_done(listing):
    with pytest.raises(TransitionConflict) as refused:
        move(listing, ListingStatus.PUBLISHED)
    assert refused.value.errors == {"status": ["This listing has already been published"]}
    assert refused.value.status == 409 and isinstance(refused.value, BusinessRuleViolation)
    with pytest.raises(TransitionConflict) as refused:
        move(listing, ListingStatus.PUBLISHED, done="resumed", already="It is live already")
    assert refused.value.detail == "It is live already"
    assert listing.status == ListingStatus.PUBLISHED


def test_a_move_the_map_does_not_allow_is_refused_with_the_state_it_is_in(listing):
    move(listing, ListingStatus.WITHDRAWN)
    with pytest.raises(TransitionConflict) as refused:
        move(listing, ListingStatus.PUBLISHED)
    assert refused.value.detail == "This listing is withdrawn, so it cannot be published"
    assert listing.status == ListingStatus.WITHDRAWN


def test_only_from_narrows_the_states_a_use_case_starts_from(listing):
    move(listing, ListingStatus.PAUSED)
    # The map allows paused to withdrawn; this use case withdraws only what is published.
    with pytest.raises(TransitionConflict) as refused:
        move(listing, ListingStatus.WITHDRAWN, only_from={ListingStatus.PUBLISHED})
    assert refused.value.detail == "This listing is paused, so it cannot be withdrawn"
    assert listing.status == ListingStatus.PAUSED


def test_refused_names_the_message_for_a_state_and_error_field_the_field_it_is_for(listing):
    # Renewed evidence: once decided, every decision is told that it is decided, whichever.
    decided = {ListingStatus.WITHDRAWN: "This listing was withdrawn by its provider"}
    move(listing, ListingStatus.WITHDRAWN)
    for target in (ListingStatus.PUBLISHED, ListingStatus.WITHDRAWN):
        with pytest.raises(TransitionConflict) as refused:
            move(listing, target, refused=decided, error_field="decision")
        assert refused.value.errors == {"decision": ["This listing was withdrawn by its provider"]}
    # A state it does not name keeps the message built, and an allowed move is made.
    listing.status = ListingStatus.PUBLISHED
    with pytest.raises(TransitionConflict) as refused:
        move(listing, ListingStatus.PUBLISHED, refused=decided)
    assert refused.value.errors == {"status": ["This listing has already been published"]}
    assert move(listing, ListingStatus.PAUSED, refused=decided) == ListingStatus.PUBLISHED


def test_checking_refuses_or_passes_without_moving(listing):
    assert (
        check_transition(listing, ListingStatus.PAUSED, LISTING_TRANSITIONS, noun="listing")
        == ListingStatus.PUBLISHED
    )
    assert listing.status == ListingStatus.PUBLISHED
    with pytest.raises(TransitionConflict):
        check_transition(listing, ListingStatus.PUBLISHED, LISTING_TRANSITIONS, noun="listing")


def test_the_state_is_read_from_the_row_not_from_an_object_read_before(app, listing):
    # This session read the listing while it was published; another request then paused it.
    assert listing.status == ListingStatus.PUBLISHED

    def pause_it():
        move(db.session.get(Listing, listing.id), ListingStatus.PAUSED)

    elsewhere(app, pause_it)
    assert listing.status == ListingStatus.PUBLISHED  # what this session holds is out of date
    with pytest.raises(TransitionConflict) as refused:
        move(listing, ListingStatus.PAUSED)
    assert refused.value.detail == "This listing has already been paused"
    assert listing.status == ListingStatus.PAUSED  # reloaded from the locked row
    # And a move that is still allowed starts from the state committed last.
    assert move(listing, ListingStatus.PUBLISHED) == ListingStatus.PAUSED


def test_a_row_is_locked_once_per_transaction_and_again_in_the_next(listing, count_queries):
    with count_queries() as first:
        lock(listing)
    assert first.count >= 1
    with count_queries() as again:
        lock(listing)
        move(listing, ListingStatus.PAUSED)
    assert again.count == 0
    commit()
    with count_queries() as next_transaction:
        lock(listing)
    assert next_transaction.count >= 1


def test_an_object_written_in_this_transaction_is_not_locked_nor_reloaded(app, count_queries):
    world = build_orders_world()
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    call_off.notes_for_provider = "Changed, not yet written"
    with count_queries() as counter, db.session.no_autoflush:
        lock(call_off, "funders")
    assert counter.count == 0
    assert call_off.notes_for_provider == "Changed, not yet written"


def test_lock_reloads_the_named_collections_with_the_row(app):
    world = build_orders_world()
    call_off = placing.place_call_off(
        world.buyer,
        world.region,
        world.listing.id,
        details(world, shares=shares((world.region, 5_000), (world.pcc, 5_000))),
    )
    commit()
    call_off = db.session.get(CallOff, call_off.id)
    funder = call_off.funders[1]
    assert funder.confirmed_at is None

    def confirm():
        funding.confirm_funding(
            db.session.get(type(world.pcc_approver), world.pcc_approver.id),
            db.session.get(CallOff, call_off.id),
            db.session.get(type(world.pcc), world.pcc.id),
        )

    elsewhere(app, confirm)
    assert funder.confirmed_at is None and call_off.status == CallOffStatus.AWAITING_FUNDING
    lock(call_off, "funders")
    assert call_off.status == CallOffStatus.SENT
    assert call_off.funders[1] is funder and funder.confirmed_at is not None
    fresh = db.session.scalars(sa.select(CallOffFunder).order_by(CallOffFunder.id)).all()
    assert [f.confirmed_at for f in call_off.funders] == [f.confirmed_at for f in fresh]


def test_states_read_as_words():
    assert describe(CallOffStatus.AWAITING_APPROVAL) == "awaiting approval"
    assert describe(ListingStatus.DRAFT) == "a draft"
    assert describe(ListingStatus.WITHDRAWN) == "withdrawn"
