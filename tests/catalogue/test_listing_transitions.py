"""A listing is paused, resumed or withdrawn once, however many clients ask at the same moment or
act on a page read before someone else did: the others get a clear 409 and nothing is written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role, User
from marketplace.catalogue.models import Listing, ListingStatus
from marketplace.catalogue.services.listings import pause_listing, publish_listing
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import TransitionConflict
from tests.factories import make_member
from tests.orders.factories import build_orders_world
from tests.racing import elsewhere, one_wins, race


def audited(action: str) -> int:
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
    )


def test_a_listing_paused_from_a_page_read_before_it_was_paused_is_refused(app):
    world = build_orders_world()
    commit()
    listing = db.session.get(Listing, world.listing.id)
    assert listing.status == ListingStatus.PUBLISHED
    admin_id = world.provider_admin.id

    def pause():
        pause_listing(db.session.get(User, admin_id), db.session.get(Listing, listing.id))

    elsewhere(app, pause)
    paused_at = db.session.scalar(sa.select(Listing.paused_at).where(Listing.id == listing.id))

    with pytest.raises(TransitionConflict) as refused:
        pause_listing(world.provider_admin, listing)
    assert refused.value.errors == {"status": ["This listing has already been paused"]}
    db.session.rollback()
    assert db.session.get(Listing, listing.id).paused_at == paused_at
    assert audited("listing.paused") == 1


def test_two_pauses_at_once_pause_once(app):
    world = build_orders_world()
    editor = make_member(Role.PROVIDER_EDITOR, world.provider).id
    commit()
    listing_id = world.listing.id

    def pausing(user_id: int):
        def client():
            actor = db.session.get(User, user_id)
            listing = db.session.get(Listing, listing_id)
            return lambda: pause_listing(actor, listing)

        return client

    outcomes = race(app, [pausing(world.provider_admin.id), pausing(editor)])

    one_wins(outcomes, "409: This listing has already been paused")
    db.session.expire_all()
    assert db.session.get(Listing, listing_id).status == ListingStatus.PAUSED
    assert audited("listing.paused") == 1


def test_a_resumption_from_a_page_read_before_another_resumed_it_is_refused(app):
    world = build_orders_world()
    pause_listing(world.provider_admin, world.listing)
    commit()
    listing = db.session.get(Listing, world.listing.id)
    admin_id = world.provider_admin.id

    def resume():
        publish_listing(
            db.session.get(User, admin_id), db.session.get(Listing, listing.id), resume=True
        )

    elsewhere(app, resume)

    with pytest.raises(TransitionConflict) as refused:
        publish_listing(world.provider_admin, listing, resume=True)
    assert refused.value.errors == {"status": ["This listing is already published"]}
    db.session.rollback()
    assert db.session.get(Listing, listing.id).status == ListingStatus.PUBLISHED
    assert audited("listing.resumed") == 1
