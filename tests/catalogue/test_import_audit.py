"""The rate card import records each change with the audit events the single edit records: the
same actions, the same before and after (the listing's fields and areas), so that a listing's
change history reads the same whichever way the change was made."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.catalogue.imports.write import import_rows
from marketplace.catalogue.models import ListingStatus
from marketplace.catalogue.services.details import LISTING_FIELDS, ListingDetails
from marketplace.catalogue.services.listings import publish_listing, update_listing
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.pages import main

SNAPSHOT_KEYS = {*LISTING_FIELDS, "areas"}


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    organisation, admin = make_provider("Hope Housing")
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    commit()
    return organisation, admin


def events(action: str) -> list[AuditEvent]:
    return list(
        db.session.scalars(
            sa.select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
        )
    )


def test_an_imported_change_is_audited_as_the_edit_audits_it(world, provider):
    organisation, admin = provider
    edited = make_listing(world.lot_a, organisation, title="Edited")
    imported = make_listing(world.lot_a, organisation, title="Imported")
    commit()
    details = ListingDetails.of(edited)
    details.title = "Edited again"
    details.region_codes = ["A", "B"]
    update_listing(admin, edited, details)
    import_rows(
        admin, organisation, [{"reference": imported.reference, "title": "Imported again",
                               "regions": "A; B"}]
    )  # fmt: skip
    commit()
    by_edit, by_import = events("listing.updated")
    for event in (by_edit, by_import):
        assert set(event.before) == set(event.after) == SNAPSHOT_KEYS
        assert event.after["areas"] == ["A", "B"] and event.before["areas"] == ["A"]
    assert (by_import.before["title"], by_import.after["title"]) == ("Imported", "Imported again")
    changed = {k for k in by_import.after if by_import.before[k] != by_import.after[k]}
    assert changed == {"title", "areas"}


def test_an_imported_change_reads_as_an_edit_in_the_listing_history(web, world, provider):
    organisation, admin = provider
    listing = make_listing(world.lot_a, organisation, title="Imported")
    commit()
    import_rows(admin, organisation, [{"reference": listing.reference, "title": "Renamed"}])
    commit()
    web.as_user(admin, organisation)
    page = main(web.get(f"/catalogue/listings/{listing.id}/history"))
    assert "Changed: title" in page
    assert "source" not in page


def test_an_imported_publish_is_audited_as_publishing_is(world, provider):
    organisation, admin = provider
    by_hand = make_listing(world.lot_a, organisation, status=ListingStatus.DRAFT)
    by_file = make_listing(world.lot_a, organisation, status=ListingStatus.DRAFT)
    commit()
    publish_listing(admin, by_hand)
    import_rows(admin, organisation, [{"reference": by_file.reference, "publish": "yes"}])
    commit()
    for event in events("listing.published"):
        assert set(event.before) == set(event.after) == SNAPSHOT_KEYS
        assert (event.before["status"], event.after["status"]) == ("draft", "published")


def test_an_imported_price_is_audited_as_setting_a_price_is(world, provider):
    organisation, admin = provider
    listing = make_listing(world.lot_a, organisation, price_pence=5_000)
    commit()
    import_rows(admin, organisation, [{"reference": listing.reference, "unit_price": "55.00"}])
    commit()
    (event,) = events("listing.price_set")
    assert event.before == {"unit_price_pence": 5_000, "effective_from": "2026-01-01"}
    assert event.after == {
        "unit_price_pence": 5_500,
        "effective_from": london_date().isoformat(),
        "reason": "Rate card import",
    }
