"""Listing rules: membership-bound areas, states, versioned prices, uplifts, freshness, copies."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation.models import MembershipStatus
from marketplace.accreditation.services import memberships as membership_services
from marketplace.catalogue import queries
from marketplace.catalogue.models import Listing, ListingPrice, ListingStatus
from marketplace.catalogue.services.areas import uncovered_areas
from marketplace.catalogue.services.details import ListingDetails
from marketplace.catalogue.services.listings import (
    confirm_accurate,
    copy_listing,
    create_listing,
    pause_listing,
    publish_listing,
    update_listing,
    withdraw_listing,
)
from marketplace.catalogue.services.prices import apply_uplift, preview_uplift, set_price
from marketplace.catalogue.services.stale import is_stale, notify_stale_listings
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, NotFound, TransitionConflict
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import make_authority, make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.factories import make_member

NOW = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday
TODAY = date(2026, 11, 20)


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    """A charity admitted to lot A in two regions (A and B), and its administrator."""
    organisation, admin = make_provider("Hope Housing")
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    commit()
    return organisation, admin


def details(world, **changes) -> ListingDetails:
    base = ListingDetails(
        title="Move-on accommodation support",
        summary="Help to find and keep a tenancy after release",
        lot_id=world.lot_a.id,
        unit="week",
        vat_treatment="exempt",
        max_units=26,
        monthly_capacity=40,
        region_codes=["A", "B"],
        settings=["community"],
        formats=["one_to_one"],
        risk_levels=["low", "medium"],
        complexities=["medium", "high"],
        outcomes="Settled accommodation within 28 days\nTenancy kept for 6 months",
        lead_time_days=5,
    )
    return replace(base, **changes)


def create(world, provider, **changes) -> Listing:
    organisation, admin = provider
    return create_listing(
        admin, organisation, details(world, **changes), unit_price_pence=12_500, at=NOW
    )


def errors_of(excinfo) -> dict:
    return excinfo.value.errors


# ---------------------------------------------------------------------------------------------
# Create and edit


def test_create_makes_a_draft_with_its_first_price_and_areas(world, provider):
    listing = create(world, provider)
    assert listing.status == ListingStatus.DRAFT
    assert listing.reference.startswith("SL-")
    assert [p.unit_price_pence for p in listing.prices] == [12_500]
    assert listing.prices[0].effective_from == TODAY
    assert sorted(a.region.code for a in listing.areas) == ["A", "B"]
    assert listing.settings and listing.complexities and listing.risk_levels
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "listing.created")
    ).one()
    assert event.object_id == str(listing.id)


def test_a_region_without_membership_is_refused(world, provider):
    with pytest.raises(BusinessRuleViolation) as excinfo:
        create(world, provider, region_codes=["A", "C"])
    assert "not an active member" in errors_of(excinfo)["areas"][0]
    assert db.session.scalar(sa.select(sa.func.count(Listing.id))) == 0


def test_a_region_membership_covers_its_pcc_areas(world, provider):
    listing = create(world, provider, region_codes=[], pcc_area_codes=["northumbria"])
    assert [a.pcc_area.code for a in listing.areas] == ["northumbria"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": " "}, "title"),
        ({"summary": "x" * 301}, "summary"),
        ({"unit": "fortnight"}, "unit"),
        ({"vat_treatment": "luxury"}, "vat_treatment"),
        ({"min_units": 10, "max_units": 5}, "max_units"),
        ({"min_age": 40, "max_age": 18}, "max_age"),
        ({"settings": []}, "settings"),
        ({"formats": ["telepathy"]}, "formats"),
        ({"monthly_capacity": -1}, "monthly_capacity"),
        ({"monthly_capacity": 2.5}, "monthly_capacity"),
        ({"lot_id": 999_999}, "lot_id"),
        ({"region_codes": ["ZZ"]}, "areas"),
        ({"region_codes": []}, "areas"),
        ({"contact_email": "not-an-email"}, "contact_email"),
    ],
)
def test_bad_details_are_refused_with_a_message(world, provider, changes, field):
    with pytest.raises(BusinessRuleViolation) as excinfo:
        create(world, provider, **changes)
    assert field in errors_of(excinfo)
    assert db.session.scalar(sa.select(sa.func.count(Listing.id))) == 0


@pytest.mark.parametrize("price", [-1, 12.5, "100", None, 100_000_001])
def test_bad_prices_are_refused(world, provider, price):
    organisation, admin = provider
    with pytest.raises(BusinessRuleViolation) as excinfo:
        create_listing(admin, organisation, details(world), unit_price_pence=price, at=NOW)
    assert "unit_price_pence" in errors_of(excinfo)


def test_another_organisation_cannot_touch_the_listing(world, provider):
    listing = create(world, provider)
    _, stranger = make_provider("Other Charity")
    buyer = make_member(Role.BUYER)
    for actor in (stranger, buyer):
        with pytest.raises(NotFound):
            update_listing(actor, listing, details(world, title="Hijacked"))
        with pytest.raises(NotFound):
            publish_listing(actor, listing, at=NOW)
    assert listing.title == "Move-on accommodation support"


def test_an_editor_may_manage_listings(world, provider):
    organisation, _ = provider
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    listing = create_listing(editor, organisation, details(world), unit_price_pence=1, at=NOW)
    publish_listing(editor, listing, at=NOW)
    assert listing.status == ListingStatus.PUBLISHED


def test_update_records_before_and_after_and_confirms(world, provider):
    organisation, admin = provider
    listing = create(world, provider)
    later = NOW + timedelta(days=3)
    update_listing(admin, listing, details(world, title="Renamed", region_codes=["A"]), at=later)
    assert listing.title == "Renamed"
    assert [a.region.code for a in listing.areas] == ["A"]
    assert listing.confirmed_at == later
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "listing.updated")
    ).one()
    assert event.before["title"] == "Move-on accommodation support"
    assert event.after["areas"] == ["A"]


# ---------------------------------------------------------------------------------------------
# States


def test_publish_pause_resume_withdraw(world, provider):
    organisation, admin = provider
    listing = create(world, provider)
    publish_listing(admin, listing, at=NOW)
    assert listing.status == ListingStatus.PUBLISHED and listing.published_at == NOW
    pause_listing(admin, listing, at=NOW)
    assert listing.status == ListingStatus.PAUSED
    publish_listing(admin, listing, at=NOW + timedelta(days=1))
    assert listing.status == ListingStatus.PUBLISHED
    assert listing.published_at == NOW  # first publication kept
    withdraw_listing(admin, listing, "No longer funded", at=NOW)
    assert listing.status == ListingStatus.WITHDRAWN
    with pytest.raises(BusinessRuleViolation):
        publish_listing(admin, listing, at=NOW)
    with pytest.raises(BusinessRuleViolation):
        update_listing(admin, listing, details(world))
    actions = db.session.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.object_type == "listing")
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "listing.created",
        "listing.published",
        "listing.paused",
        "listing.resumed",
        "listing.withdrawn",
    ]


def test_a_draft_may_be_withdrawn(world, provider):
    _, admin = provider
    listing = create(world, provider)
    withdraw_listing(admin, listing, "Started by mistake", at=NOW)
    db.session.flush()  # the database's CHECK constraints agree with the transition map
    assert listing.status == ListingStatus.WITHDRAWN and listing.published_at is None


def test_a_draft_cannot_be_paused(world, provider):
    _, admin = provider
    listing = create(world, provider)
    with pytest.raises(TransitionConflict) as excinfo:
        pause_listing(admin, listing)
    assert errors_of(excinfo)["status"] == ["This listing is a draft, so it cannot be paused"]


def test_publishing_while_suspended_is_refused(world, provider):
    organisation, admin = provider
    listing = create(world, provider)
    _, authority_admin = make_authority()
    membership = _membership(organisation, "A")
    membership_services.suspend(authority_admin, membership, "Insurance lapsed", notify=False)
    with pytest.raises(BusinessRuleViolation) as excinfo:
        publish_listing(admin, listing, at=NOW)
    assert "not active in North East" in errors_of(excinfo)["status"][0]
    assert listing.status == ListingStatus.DRAFT
    assert [a.region.code for a in uncovered_areas(listing)] == ["A"]


def _membership(organisation, region_code):
    from marketplace.accreditation.models import LotMembership
    from marketplace.reference.models import ProbationRegion

    return db.session.scalars(
        sa.select(LotMembership)
        .join(ProbationRegion, ProbationRegion.id == LotMembership.region_id)
        .where(
            LotMembership.organisation_id == organisation.id,
            ProbationRegion.code == region_code,
            LotMembership.status == MembershipStatus.ACTIVE,
        )
    ).one()


# ---------------------------------------------------------------------------------------------
# Prices


def test_a_future_price_is_kept_beside_the_current_one(world, provider):
    _, admin = provider
    listing = create(world, provider)
    first_of_next_month = date(2026, 12, 1)
    set_price(admin, listing, 13_000, first_of_next_month, "Pay award", at=NOW)
    assert listing.price_on(TODAY).unit_price_pence == 12_500
    assert listing.price_on(first_of_next_month).unit_price_pence == 13_000
    assert listing.price_on(date(2026, 11, 30)).unit_price_pence == 12_500
    assert queries.price_on(listing.id, first_of_next_month).unit_price_pence == 13_000
    assert queries.price_on(listing.id, date(2026, 11, 19)) is None
    # A change between two versions closes the earlier one and ends where the later one starts.
    set_price(admin, listing, 12_800, date(2026, 11, 25), at=NOW)
    ranges = [(p.effective_from, p.effective_to, p.unit_price_pence) for p in listing.prices]
    assert ranges == [
        (TODAY, date(2026, 11, 25), 12_500),
        (date(2026, 11, 25), first_of_next_month, 12_800),
        (first_of_next_month, None, 13_000),
    ]


def test_a_second_change_for_the_same_date_replaces_the_first(world, provider):
    _, admin = provider
    listing = create(world, provider)
    set_price(admin, listing, 13_000, date(2026, 12, 1), at=NOW)
    set_price(admin, listing, 13_100, date(2026, 12, 1), at=NOW)
    assert [p.unit_price_pence for p in listing.prices] == [12_500, 13_100]
    events = db.session.scalars(
        sa.select(AuditEvent)
        .where(AuditEvent.action == "listing.price_set")
        .order_by(AuditEvent.id)
    ).all()
    assert events[-1].before["unit_price_pence"] == 13_000


@pytest.mark.parametrize(
    ("price", "when", "field"),
    [
        (13_000, date(2026, 11, 19), "effective_from"),
        (-5, date(2026, 12, 1), "unit_price_pence"),
        (99.5, date(2026, 12, 1), "unit_price_pence"),
        (13_000, None, "effective_from"),
    ],
)
def test_bad_price_changes_are_refused(world, provider, price, when, field):
    _, admin = provider
    listing = create(world, provider)
    with pytest.raises(BusinessRuleViolation) as excinfo:
        set_price(admin, listing, price, when, at=NOW)
    assert field in errors_of(excinfo)
    assert db.session.scalar(sa.select(sa.func.count(ListingPrice.id))) == 1


def test_uplift_preview_changes_nothing_and_apply_sets_every_price(world, provider):
    organisation, admin = provider
    one = create(world, provider)
    two = create(world, provider, title="Group work")
    set_price(admin, two, 3_333, TODAY, at=NOW)
    ids = [one.id, two.id]
    lines = preview_uplift(admin, organisation, ids, 250, date(2027, 4, 1), at=NOW)
    assert [(line.current_pence, line.new_pence) for line in lines] == [
        (3_333, 3_416),  # 3,333 × 1.025 = 3,416.325 → 3,416
        (12_500, 12_813),  # 12,812.5 → 12,813 (half up)
    ]
    assert db.session.scalar(sa.select(sa.func.count(ListingPrice.id))) == 2
    apply_uplift(admin, organisation, ids, 250, date(2027, 4, 1), at=NOW)
    assert one.price_on(date(2027, 4, 1)).unit_price_pence == 12_813
    assert two.price_on(date(2027, 4, 1)).unit_price_pence == 3_416
    assert one.price_on(TODAY).unit_price_pence == 12_500


def test_uplift_refuses_other_organisations_listings_and_nonsense(world, provider):
    organisation, admin = provider
    mine = create(world, provider)
    other_org, other_admin = make_provider("Other")
    make_lot_membership(world.lot_a, other_org, region_code="A")
    theirs = create_listing(
        other_admin, other_org, details(world, region_codes=["A"]), unit_price_pence=100, at=NOW
    )
    with pytest.raises(BusinessRuleViolation) as excinfo:
        preview_uplift(admin, organisation, [mine.id, theirs.id], 250, date(2027, 4, 1), at=NOW)
    assert "listings" in errors_of(excinfo)
    for bps, when, field in (
        (0, date(2027, 4, 1), "percentage"),
        (250, date(2026, 1, 1), "effective_from"),
    ):
        with pytest.raises(BusinessRuleViolation) as excinfo:
            apply_uplift(admin, organisation, [mine.id], bps, when, at=NOW)
        assert field in errors_of(excinfo)
    assert len(mine.prices) == 1 and len(theirs.prices) == 1


# ---------------------------------------------------------------------------------------------
# Freshness, copies, availability


def test_stale_listings_are_flagged_and_emailed_once(world, provider):
    organisation, admin = provider
    listing = create(world, provider)
    publish_listing(admin, listing, at=NOW)
    later = NOW + timedelta(days=181)
    assert is_stale(listing, later)
    assert not is_stale(listing, NOW + timedelta(days=179))
    assert notify_stale_listings(later) == 1
    assert notify_stale_listings(later) == 0  # safe to run again
    mail = db.session.scalars(
        sa.select(Notification).where(Notification.template == "catalogue_listings_stale")
    ).all()
    assert [m.to_email for m in mail] == [admin.email]
    assert listing.reference in mail[0].body
    confirm_accurate(admin, listing, at=later)
    assert not is_stale(listing, later)
    assert listing.stale_notified_at is None


def test_copy_starts_a_draft_with_the_same_details_and_todays_price(world, provider):
    _, admin = provider
    listing = create(world, provider)
    publish_listing(admin, listing, at=NOW)
    copy = copy_listing(admin, listing, at=NOW)
    assert copy.status == ListingStatus.DRAFT and copy.id != listing.id
    assert copy.title == "Copy of Move-on accommodation support"
    assert copy.copied_from_id == listing.id
    assert copy.outcomes == listing.outcomes
    assert [p.unit_price_pence for p in copy.prices] == [12_500]


def test_availability_is_capacity_minus_committed_units(world, provider):
    from marketplace.catalogue.models import CapacityCommitment

    listing = create(world, provider)
    months = queries.next_months(date(2026, 12, 15), 3)
    assert months == [date(2026, 12, 1), date(2027, 1, 1), date(2027, 2, 1)]
    for units in (10, 5):
        db.session.add(
            CapacityCommitment(listing_id=listing.id, month=months[0], units=units, created_at=NOW)
        )
    db.session.add(
        CapacityCommitment(listing_id=listing.id, month=months[1], units=50, created_at=NOW)
    )
    db.session.flush()
    result = queries.availability([listing], months)[listing.id]
    assert [(m.committed, m.available) for m in result] == [(15, 25), (50, 0), (0, 40)]
