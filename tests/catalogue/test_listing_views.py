"""The provider's listing pages: your listings, create and edit, check, states, price, history,
uplift, availability; bad input, roles, other organisations and CSRF; `flask catalogue notify-stale`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation.models import LotMembership
from marketplace.accreditation.services import memberships as membership_services
from marketplace.catalogue.cli import catalogue_cli
from marketplace.catalogue.models import (
    CapacityCommitment,
    Listing,
    ListingPrice,
    ListingStatus,
)
from marketplace.catalogue.queries import next_months
from marketplace.catalogue.services.details import ListingDetails
from marketplace.catalogue.services.listings import confirm_accurate, create_listing
from marketplace.catalogue.services.prices import set_price
from marketplace.catalogue.services.stale import is_stale
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import commit, db
from marketplace.core.money import VatTreatment
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import make_authority, make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import make_member
from tests.pages import count, error_messages, main, text


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    """A charity admitted to lot A in regions A and B, its administrator and an editor."""
    organisation, admin = make_provider("Hope Housing")
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    commit()
    return organisation, admin, editor


@pytest.fixture
def listing(world, provider):
    organisation = provider[0]
    row = make_listing(
        world.lot_a,
        organisation,
        status=ListingStatus.DRAFT,
        title="Move-on accommodation support",
        region_codes=("A",),
        price_pence=12_550,
    )
    commit()
    return row


def today():
    return london_date()


def form_data(world, **changes) -> dict:
    data = {
        "title": "Move-on accommodation support",
        "summary": "Help to find and keep a tenancy after release",
        "description": "We find a home.\n\nThen we help keep it.",
        "outcomes": "Settled accommodation within 28 days\nTenancy kept for 6 months",
        "lot_id": str(world.lot_a.id),
        "region_codes": ["A", "B"],
        "settings": ["community"],
        "formats": ["one_to_one"],
        "eligibility_sex": "any",
        "min_age": "18",
        "max_age": "",
        "risk_levels": ["low", "medium"],
        "complexities": ["medium", "high"],
        "lead_time_days": "5",
        "unit": "week",
        "unit_price": "125.50",
        "vat_treatment": "standard",
        "min_units": "1",
        "max_units": "26",
        "monthly_capacity": "40",
        "missed_sessions_chargeable": "no",
        "cost_staff": "90.00",
        "cost_overheads": "",
        "cost_other": "",
        "social_value": "We employ people with lived experience.",
        "contact_name": "Referrals team",
        "contact_email": "referrals@hope.example.org",
        "contact_phone": "0161 000 0000",
    }
    data.update(changes)
    return data


# ---------------------------------------------------------------------------------------------
# Your listings


def test_empty_state_offers_to_create_a_listing(web, provider):
    web.as_user(provider[1])
    page = main(web.get("/catalogue/"))
    assert "Your listings" in page
    assert "You have no listings yet" in page
    assert "/catalogue/listings/new" in page


def test_buyers_keep_the_find_services_page(web, provider):
    buyer = make_member(Role.BUYER)
    commit()
    page = main(web.as_user(buyer).get("/catalogue/"))
    assert "Find services" in page and "Your listings" not in page


def test_your_listings_shows_state_price_vat_and_staleness(web, world, provider):
    organisation, admin, _ = provider
    make_listing(world.lot_a, organisation, title="Fresh and published", price_pence=4_500)
    make_listing(
        world.lot_a,
        organisation,
        title="Old and published",
        confirmed_at=utcnow() - timedelta(days=181),
    )
    make_listing(world.lot_a, organisation, title="A draft", status=ListingStatus.DRAFT)
    other, _ = make_provider("Someone Else")
    make_listing(world.lot_a, other, title="Not ours")
    commit()
    web.as_user(admin)
    page = main(web.get("/catalogue/"))
    assert "Fresh and published" in page and "A draft" in page and "Not ours" not in page
    assert "£45.00 a session" in page
    assert "Exempt from VAT" in page
    assert page.count("Needs confirming") == 1
    assert "Published" in page and "Draft" in page

    page = main(web.get("/catalogue/?status=draft"))
    assert "A draft" in page and "Fresh and published" not in page
    page = main(web.get("/catalogue/?status=withdrawn"))
    assert "No listings in this state" in page
    # Nonsense filters and pages are ignored, never a 500.
    response = web.get("/catalogue/?status=nope&page=-3")
    assert response.status_code == 200 and "Fresh and published" in main(response)


def test_your_listings_paginates(web, world, provider):
    organisation, admin, _ = provider
    for i in range(27):
        make_listing(world.lot_a, organisation, title=f"Listing {i:02d}")
    commit()
    web.as_user(admin)
    first = main(web.get("/catalogue/"))
    assert "Listing 00" in first and "Listing 26" not in first
    assert "Page 1 of 2" in first
    second = main(web.get("/catalogue/?page=2"))
    assert "Listing 26" in second and "Listing 00" not in second


def test_your_listings_query_count_does_not_grow(web, world, provider, count_queries):
    organisation, admin, _ = provider
    make_listing(world.lot_a, organisation, pcc_area_codes=())
    commit()
    web.as_user(admin)
    web.get("/catalogue/")
    with count_queries() as small:
        assert web.get("/catalogue/").status_code == 200
    for i in range(20):
        make_listing(
            world.lot_a,
            organisation,
            status=list(ListingStatus)[i % 4],
            region_codes=("A", "B"),
        )
    commit()
    with count_queries() as large:
        assert web.get("/catalogue/").status_code == 200
    assert small.count == large.count <= 14


# ---------------------------------------------------------------------------------------------
# Create and edit


def test_create_a_listing(web, world, provider):
    organisation, admin, editor = provider
    web.as_user(editor)
    page = main(web.get("/catalogue/listings/new"))
    assert "Create a listing" in page
    # Only lots and areas where the provider is an active member are offered.
    assert world.lot_a.category.name in page and world.lot_b.category.name not in page
    assert world.region_1.name in page and world.outside_region.name not in page

    response = web.post("/catalogue/listings/new", data=form_data(world))
    assert response.status_code == 302
    listing = db.session.scalar(sa.select(Listing))
    assert response.headers["Location"].endswith(f"/catalogue/listings/{listing.id}/check")
    assert listing.status == ListingStatus.DRAFT
    assert listing.organisation_id == organisation.id
    assert [p.unit_price_pence for p in listing.prices] == [12_550]
    assert listing.cost_staff_pence == 9_000 and listing.cost_overheads_pence is None
    assert sorted(a.region.code for a in listing.areas) == ["A", "B"]
    assert listing.min_age == 18 and listing.max_age is None
    assert listing.settings and listing.outcome_list[0] == "Settled accommodation within 28 days"
    assert count(AuditEvent, AuditEvent.action == "listing.created") == 1


@pytest.mark.parametrize(
    "price,message",
    [
        ("-5.00", "The unit price cannot be negative"),
        (
            "45.505",
            "Enter the unit price in pounds and pence with no more than 2 decimal places, like 45.50",
        ),
        ("forty", "Enter the unit price as a number in pounds and pence, like 45.00"),
        ("", "Enter the unit price"),
        ("2000000", "The unit price must be £1,000,000 or less"),
    ],
)
def test_create_refuses_a_bad_price(web, world, provider, price, message):
    web.as_user(provider[1])
    response = web.post("/catalogue/listings/new", data=form_data(world, unit_price=price))
    assert response.status_code == 422
    assert message in error_messages(response)
    assert count(Listing) == 0


def test_create_refuses_a_bad_cost_breakdown(web, world, provider):
    web.as_user(provider[1])
    response = web.post("/catalogue/listings/new", data=form_data(world, cost_other="-1"))
    assert response.status_code == 422
    assert error_messages(response) == ["The other costs cannot be negative"]
    assert count(Listing) == 0


def test_create_refuses_an_unknown_vat_treatment(web, world, provider):
    web.as_user(provider[1])
    response = web.post("/catalogue/listings/new", data=form_data(world, vat_treatment="luxury"))
    assert response.status_code == 422
    assert error_messages(response) == [
        "Choose a VAT treatment: standard, reduced, zero, exempt or outside the scope"
    ]
    assert count(Listing) == 0


def test_create_refuses_a_region_without_membership(web, world, provider):
    organisation, admin, _ = provider
    # A membership of the other lot in region D puts D on the form, but not for lot A.
    make_lot_membership(world.lot_b, organisation, region_code="D")
    commit()
    web.as_user(admin)
    response = web.post("/catalogue/listings/new", data=form_data(world, region_codes=["A", "D"]))
    assert response.status_code == 422
    [message] = error_messages(response)
    assert message.startswith("You are not an active member of") and "You can only offer" in message
    # A region on no membership at all is not even a choice.
    response = web.post("/catalogue/listings/new", data=form_data(world, region_codes=["K"]))
    assert response.status_code == 422
    assert error_messages(response) == ["Choose regions where you hold an active membership"]
    assert count(Listing) == 0


def test_create_shows_every_missing_answer(web, world, provider):
    web.as_user(provider[1])
    response = web.post("/catalogue/listings/new", data={"title": ""})
    assert response.status_code == 422
    messages = error_messages(response)
    for expected in (
        "Enter a title",
        "Enter a summary",
        "Choose the lot this service belongs to",
        "Enter the unit price",
        "Choose at least one region or PCC area where you deliver this service",
    ):
        assert expected in messages
    assert count(Listing) == 0


def test_create_without_any_membership_explains(web, world):
    organisation, admin = make_provider()
    commit()
    web.as_user(admin)
    page = main(web.get("/catalogue/listings/new"))
    assert "You cannot create a listing yet" in page
    response = web.post("/catalogue/listings/new", data=form_data(world))
    assert response.status_code == 200 and count(Listing) == 0


def test_edit_a_listing(web, world, provider, listing):
    web.as_user(provider[2])
    page = main(web.get(f"/catalogue/listings/{listing.id}/edit"))
    assert 'value="Move-on accommodation support"' in page
    assert "Unit price" not in page  # the price changes on its own page
    data = form_data(world, title="Move-on support", region_codes=["B"], max_units="30")
    del data["unit_price"]
    response = web.post(f"/catalogue/listings/{listing.id}/edit", data=data)
    assert response.status_code == 302
    db.session.refresh(listing)
    assert listing.title == "Move-on support" and listing.max_units == 30
    assert [a.region.code for a in listing.areas] == ["B"]
    assert [p.unit_price_pence for p in listing.prices] == [12_550]
    assert count(AuditEvent, AuditEvent.action == "listing.updated") == 1


def test_edit_refuses_bad_input_and_writes_nothing(web, world, provider, listing):
    web.as_user(provider[1])
    data = form_data(world, title="", min_units="30", max_units="5")
    response = web.post(f"/catalogue/listings/{listing.id}/edit", data=data)
    assert response.status_code == 422
    assert "Enter a title" in error_messages(response)
    data = form_data(world, min_units="30", max_units="5")
    response = web.post(f"/catalogue/listings/{listing.id}/edit", data=data)
    assert response.status_code == 422
    assert error_messages(response) == [
        "The maximum units must be the same as or more than the minimum"
    ]
    db.session.refresh(listing)
    assert listing.title == "Move-on accommodation support" and listing.max_units == 20
    assert count(AuditEvent, AuditEvent.action == "listing.updated") == 0


# ---------------------------------------------------------------------------------------------
# The listing page, the check page and states


def test_listing_page_shows_live_availability(web, world, provider, listing):
    months = next_months(today(), 3)
    db.session.add(
        CapacityCommitment(
            listing_id=listing.id, month=months[1], units=30, source="CO-1", created_at=utcnow()
        )
    )
    commit()
    web.as_user(provider[1])
    page = main(web.get(f"/catalogue/listings/{listing.id}"))
    assert "Availability" in page
    for month in months:
        assert month.strftime("%B %Y") in page
    assert "70 sessions" in page and "100 sessions" in page
    assert "£125.50 a session, excluding VAT" in page


def test_check_page_shows_the_listing_as_buyers_will(web, world, provider, listing):
    web.as_user(provider[1])
    page = main(web.get(f"/catalogue/listings/{listing.id}/check"))
    assert "Check your listing" in page
    assert "Hope Housing" in page and listing.summary in page
    # The rows the public listing page shows, from its own partial.
    assert "£125.50 per session excluding VAT" in page
    assert "Available" in page and "Last confirmed accurate" in page
    assert "Referrals team" in page
    assert "The provider&#39;s memberships" in page or "The provider's memberships" in page
    assert "Publish" in page


def _summary_value(page: str, key: str) -> str:
    """The value of a summary list row, as a person reads it."""
    row = page.split(f'<dt class="govuk-summary-list__key">{key}</dt>', 1)[1]
    value = row.split("</dd>", 1)[0]
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", value)).split())


def test_check_page_shows_a_drafts_areas_prices_and_capacity_as_buyers_will_see_them(
    web, world, provider
):
    organisation = provider[0]
    draft = make_listing(
        world.lot_a,
        organisation,
        status=ListingStatus.DRAFT,
        title="Tenancy rescue",
        region_codes=("A",),
        pcc_area_codes=("cumbria",),  # in region B, which the provider's membership covers
        price_pence=10_000,
        vat_treatment=VatTreatment.STANDARD,
        monthly_capacity=12,
    )
    commit()
    web.as_user(provider[1])
    page = main(web.get(f"/catalogue/listings/{draft.id}/check"))
    assert _summary_value(page, "Areas") == "North East, Cumbria"
    assert _summary_value(page, "Unit price") == "£100.00 per session excluding VAT"
    assert _summary_value(page, "Price including VAT") == "£120.00 per session"
    month = london_date().strftime("%B %Y")
    assert f"{month}: 12 sessions" in _summary_value(page, "Available")
    assert "Not given" not in page
    # Published, the listing's page shows buyers the same areas.
    response = web.post(f"/catalogue/listings/{draft.id}/publish", data={"from": "check"})
    assert response.status_code == 302
    public = main(web.get(f"/services/{draft.id}"))
    assert _summary_value(public, "Areas") == "North East, Cumbria"


def test_publish_pause_resume_and_withdraw(web, world, provider, listing):
    web.as_user(provider[2])
    url = f"/catalogue/listings/{listing.id}"
    response = web.post(f"{url}/publish", data={"from": "check"})
    assert response.status_code == 302
    db.session.refresh(listing)
    assert listing.status == ListingStatus.PUBLISHED
    assert "is published" in main(web.get(url))

    assert web.post(f"{url}/pause").status_code == 302
    db.session.refresh(listing)
    assert listing.status == ListingStatus.PAUSED

    assert web.post(f"{url}/resume").status_code == 302
    db.session.refresh(listing)
    assert listing.status == ListingStatus.PUBLISHED

    # Resuming a published listing is refused with a message, not a 500.
    response = web.post(f"{url}/resume")
    assert response.status_code == 422
    assert error_messages(response) == ["This listing is already published"]
    response = web.post(f"{url}/publish")
    assert response.status_code == 422
    assert error_messages(response) == ["This listing has already been published"]

    page = main(web.get(f"{url}/withdraw"))
    assert "Withdrawing is for good" in page
    response = web.post(f"{url}/withdraw", data={"reason": "Funding ended"})
    assert response.status_code == 302
    db.session.refresh(listing)
    assert listing.status == ListingStatus.WITHDRAWN
    actions = list(
        db.session.scalars(
            sa.select(AuditEvent.action).where(AuditEvent.object_id == str(listing.id))
        )
    )
    assert actions == [
        "listing.published",
        "listing.paused",
        "listing.resumed",
        "listing.withdrawn",
    ]
    # A withdrawn listing cannot change any more.
    assert web.get(f"{url}/edit").status_code == 302
    response = web.post(f"{url}/confirm")
    assert response.status_code == 422
    assert "withdrawn" in error_messages(response)[0]


def test_withdraw_reason_too_long_is_refused(web, world, provider, listing):
    web.as_user(provider[1])
    url = f"/catalogue/listings/{listing.id}/withdraw"
    response = web.post(url, data={"reason": "x" * 2_001})
    assert response.status_code == 422
    db.session.refresh(listing)
    assert listing.status == ListingStatus.DRAFT


def test_publishing_while_the_membership_is_suspended_shows_the_error(
    web, world, provider, listing
):
    organisation = provider[0]
    membership = db.session.scalar(
        sa.select(LotMembership).where(
            LotMembership.organisation_id == organisation.id,
            LotMembership.region.has(code="A"),
        )
    )
    _, authority_admin = make_authority()
    membership_services.suspend(authority_admin, membership, "Insurance lapsed")
    commit()
    web.as_user(provider[1])
    page = main(web.get(f"/catalogue/listings/{listing.id}"))
    assert "not active in" in page
    response = web.post(f"/catalogue/listings/{listing.id}/publish", data={"from": "check"})
    assert response.status_code == 422
    [message] = error_messages(response)
    assert message.startswith("This listing cannot be published: your membership of")
    assert "Check your listing" in main(response)
    db.session.refresh(listing)
    assert listing.status == ListingStatus.DRAFT


def test_confirm_accurate_is_one_click(web, world, provider):
    organisation, admin, _ = provider
    old = make_listing(
        world.lot_a, organisation, confirmed_at=utcnow() - timedelta(days=200), title="Old"
    )
    commit()
    web.as_user(admin)
    assert "Needs confirming" in main(web.get(f"/catalogue/listings/{old.id}"))
    response = web.post(f"/catalogue/listings/{old.id}/confirm")
    assert response.status_code == 302
    db.session.refresh(old)
    assert not is_stale(old)
    assert "Needs confirming" not in main(web.get("/catalogue/"))


def test_copy_a_listing(web, world, provider, listing):
    web.as_user(provider[1])
    response = web.post(f"/catalogue/listings/{listing.id}/copy")
    assert response.status_code == 302
    copy = db.session.scalar(sa.select(Listing).where(Listing.id != listing.id))
    assert response.headers["Location"].endswith(f"/catalogue/listings/{copy.id}/edit")
    assert copy.title == "Copy of Move-on accommodation support"
    assert copy.status == ListingStatus.DRAFT and copy.copied_from_id == listing.id
    assert [p.unit_price_pence for p in copy.prices] == [12_550]


# ---------------------------------------------------------------------------------------------
# Prices


def test_change_price_from_a_date(web, world, provider, listing):
    organisation, admin, _ = provider
    web.as_user(admin)
    url = f"/catalogue/listings/{listing.id}/price"
    page = main(web.get(url))
    assert "Price history" in page and "£125.50" in page
    starts = today() + timedelta(days=10)
    response = web.post(
        url,
        data={"unit_price": "130.00", "effective_from": starts.isoformat(), "reason": "Pay award"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    prices = list(
        db.session.scalars(
            sa.select(ListingPrice)
            .where(ListingPrice.listing_id == listing.id)
            .order_by(ListingPrice.effective_from)
        )
    )
    assert [(p.unit_price_pence, p.effective_from) for p in prices] == [
        (12_550, prices[0].effective_from),
        (13_000, starts),
    ]
    assert prices[0].effective_to == starts
    page = main(web.get(url))
    assert "£130.00" in page and "Pay award" in page and admin.name in page
    assert "Future" in page and "Current" in page
    # The listing shows the coming change too.
    assert "£130.00 from" in main(web.get(f"/catalogue/listings/{listing.id}"))


@pytest.mark.parametrize(
    "price,day,message",
    [
        ("-1", None, "The unit price cannot be negative"),
        (
            "12.345",
            None,
            "Enter the unit price in pounds and pence with no more than 2 decimal places, like 45.50",
        ),
        ("12", "yesterday", "The new price must take effect today or later, not in the past"),
        ("12", "nonsense", "Enter a real date, like 31 3 2027"),
    ],
)
def test_change_price_refuses_bad_input(web, world, provider, listing, price, day, message):
    web.as_user(provider[1])
    when = {
        None: today() + timedelta(days=1),
        "yesterday": today() - timedelta(days=1),
    }.get(day)
    data = {"unit_price": price, "effective_from": when.isoformat() if when else day}
    response = web.post(f"/catalogue/listings/{listing.id}/price", data=data)
    assert response.status_code == 422
    assert error_messages(response) == [message]
    assert count(ListingPrice) == 1
    assert count(AuditEvent, AuditEvent.action == "listing.price_set") == 0


# ---------------------------------------------------------------------------------------------
# Change history


def test_change_history_lists_the_audit_events(web, world, provider):
    organisation, admin, _ = provider
    listing = create_listing(
        admin,
        organisation,
        ListingDetails(
            title="Tenancy sustainment",
            summary="Keep a home",
            lot_id=world.lot_a.id,
            unit="week",
            vat_treatment="exempt",
            max_units=10,
            monthly_capacity=10,
            region_codes=["A"],
            settings=["community"],
            formats=["group"],
            complexities=["low"],
        ),
        unit_price_pence=5_000,
    )
    set_price(admin, listing, 5_500, today() + timedelta(days=3), "Costs went up")
    for _ in range(30):
        confirm_accurate(admin, listing)
    commit()
    web.as_user(admin)
    url = f"/catalogue/listings/{listing.id}/history"
    first = main(web.get(url))
    assert "Change history" in first and "Confirmed accurate" in first and admin.name in first
    assert "Page 1 of 2" in first
    last = main(web.get(f"{url}?page=2"))
    assert "Created" in last and "Price changed" in last and "£55.00 from" in last
    assert "Costs went up" in last

    # The authority can read it too; other providers cannot.
    _, authority_admin = make_authority()
    commit()
    assert web.as_user(authority_admin).get(url).status_code == 200


# ---------------------------------------------------------------------------------------------
# Bulk uplift


def test_uplift_previews_then_applies(web, world, provider):
    organisation, admin, _ = provider
    one = make_listing(world.lot_a, organisation, title="One", price_pence=10_000)
    two = make_listing(world.lot_a, organisation, title="Two", price_pence=3_333)
    make_listing(world.lot_a, organisation, title="Three", price_pence=1_000)
    commit()
    web.as_user(admin)
    assert "Change several prices" in main(web.get("/catalogue/listings/uplift"))
    starts = (today() + timedelta(days=30)).isoformat()
    data = {"listings": [str(one.id), str(two.id)], "percentage": "2.5", "effective_from": starts}
    response = web.post("/catalogue/listings/uplift", data=data)
    assert response.status_code == 200
    page = main(response)
    assert "Check the new prices" in page
    assert "£100.00" in page and "£102.50" in page
    assert "£33.33" in page and "£34.16" in page  # 3,416.325 pence, rounded half up
    assert "Three" not in page
    assert count(ListingPrice) == 3  # nothing written by the preview

    response = web.post("/catalogue/listings/uplift/apply", data=data)
    assert response.status_code == 302
    new = dict(
        db.session.execute(
            sa.select(ListingPrice.listing_id, ListingPrice.unit_price_pence).where(
                ListingPrice.effective_from == today() + timedelta(days=30)
            )
        ).all()
    )
    assert new == {one.id: 10_250, two.id: 3_416}
    assert count(AuditEvent, AuditEvent.action == "rate_card.uplifted") == 1


@pytest.mark.parametrize(
    "changes,message",
    [
        (
            {"percentage": "2.555"},
            "Enter the uplift as a percentage with no more than 2 decimal places, like 2.5",
        ),
        (
            {"percentage": "lots"},
            "Enter the uplift as a percentage with no more than 2 decimal places, like 2.5",
        ),
        ({"percentage": "0"}, "Enter an uplift between -50% and 100%, other than 0"),
        ({"percentage": "150"}, "Enter an uplift between -50% and 100%, other than 0"),
        ({"listings": []}, "Choose at least one listing to uplift"),
        (
            {"effective_from": "2020-01-01"},
            "The new prices must take effect today or later, not in the past",
        ),
    ],
)
def test_uplift_refuses_bad_input(web, world, provider, changes, message):
    organisation, admin, _ = provider
    one = make_listing(world.lot_a, organisation, title="One", price_pence=10_000)
    commit()
    web.as_user(admin)
    data = {
        "listings": [str(one.id)],
        "percentage": "2.5",
        "effective_from": (today() + timedelta(days=1)).isoformat(),
        **changes,
    }
    for url in ("/catalogue/listings/uplift", "/catalogue/listings/uplift/apply"):
        response = web.post(url, data=data)
        assert response.status_code == 422
        assert error_messages(response) == [message]
    assert count(ListingPrice) == 1


def test_uplift_refuses_another_providers_listing(web, world, provider):
    organisation, admin, _ = provider
    other, _ = make_provider("Someone Else")
    theirs = make_listing(world.lot_a, other, price_pence=10_000)
    ours = make_listing(world.lot_a, organisation, price_pence=10_000)
    commit()
    web.as_user(admin)
    data = {
        "listings": [str(ours.id), str(theirs.id)],
        "percentage": "5",
        "effective_from": (today() + timedelta(days=1)).isoformat(),
    }
    response = web.post("/catalogue/listings/uplift/apply", data=data)
    assert response.status_code == 422
    assert error_messages(response) == [
        "Choose listings from your own rate card that are not withdrawn"
    ]
    assert count(ListingPrice) == 2


# ---------------------------------------------------------------------------------------------
# Who may use the pages


def _urls(listing_id: int) -> list[tuple[str, str]]:
    base = f"/catalogue/listings/{listing_id}"
    return [
        ("get", base),
        ("get", f"{base}/check"),
        ("get", f"{base}/edit"),
        ("post", f"{base}/edit"),
        ("post", f"{base}/publish"),
        ("post", f"{base}/pause"),
        ("post", f"{base}/resume"),
        ("post", f"{base}/confirm"),
        ("post", f"{base}/copy"),
        ("get", f"{base}/withdraw"),
        ("post", f"{base}/withdraw"),
        ("get", f"{base}/price"),
        ("post", f"{base}/price"),
        ("get", f"{base}/history"),
    ]


@pytest.mark.parametrize("role", [Role.BUYER, Role.APPROVER, Role.ASSESSOR])
def test_other_roles_get_403(web, world, provider, listing, role):
    user = make_member(role)
    commit()
    web.as_user(user)
    for method, url in [
        *_urls(listing.id),
        ("get", "/catalogue/listings/new"),
        ("post", "/catalogue/listings/new"),
        ("get", "/catalogue/listings/uplift"),
        ("post", "/catalogue/listings/uplift"),
        ("post", "/catalogue/listings/uplift/apply"),
    ]:
        response = web.open(url, method=method.upper(), data=form_data(world))
        assert response.status_code == 403, (method, url)
    assert count(Listing) == 1 and count(AuditEvent) == 0


def test_another_providers_listing_is_not_found(web, world, provider, listing):
    other, other_admin = make_provider("Someone Else")
    make_lot_membership(world.lot_a, other, region_code="A")
    commit()
    web.as_user(other_admin)
    for method, url in _urls(listing.id):
        response = web.open(url, method=method.upper(), data=form_data(world))
        assert response.status_code == 404, (method, url)
    assert web.get("/catalogue/listings/99999999").status_code == 404
    db.session.refresh(listing)
    assert listing.status == ListingStatus.DRAFT and count(Listing) == 1
    assert count(AuditEvent) == 0


def test_posts_need_a_csrf_token(web, world, provider, listing, csrf_enabled):
    web.as_user(provider[1])
    url = f"/catalogue/listings/{listing.id}"
    for target, data in (
        (f"{url}/publish", {}),
        (f"{url}/withdraw", {"reason": "x"}),
        (f"{url}/price", {"unit_price": "1", "effective_from": today().isoformat()}),
        ("/catalogue/listings/new", form_data(world)),
    ):
        response = web.post(target, data=data)
        assert response.status_code in (400, 422), target
    db.session.refresh(listing)
    assert listing.status == ListingStatus.DRAFT
    assert count(Listing) == 1 and count(ListingPrice) == 1


# ---------------------------------------------------------------------------------------------
# flask catalogue notify-stale


def test_notify_stale_command(app, world, provider):
    organisation = provider[0]
    make_listing(world.lot_a, organisation, confirmed_at=utcnow() - timedelta(days=200))
    make_listing(world.lot_a, organisation, confirmed_at=utcnow() - timedelta(days=10))
    commit()
    runner = app.test_cli_runner()
    result = runner.invoke(args=["catalogue", "notify-stale"])
    assert result.exit_code == 0, result.output
    assert "Emailed providers about 1 stale listing." in result.output
    db.session.expire_all()
    assert count(Notification) >= 1
    # Idempotent: a second run emails nobody.
    result = runner.invoke(args=["catalogue", "notify-stale"])
    assert "about 0 stale listings" in result.output


def test_every_catalogue_command_is_in_the_one_catalogue_group(app):
    group = app.cli.commands["catalogue"]
    assert group is catalogue_cli
    assert set(group.commands) == {"reindex", "refresh-prices", "notify-stale"}
    result = app.test_cli_runner().invoke(args=["catalogue", "--help"])
    assert result.exit_code == 0
    assert all(name in result.output for name in ("reindex", "refresh-prices", "notify-stale"))


def test_page_text_is_plain(web, provider):
    # Guard against a template printing a Python object instead of words.
    web.as_user(provider[1])
    assert "<marketplace." not in text(web.get("/catalogue/"))


def test_the_pages_forms_carry_a_csrf_token(web, world, provider, listing, csrf_enabled):
    web.as_user(provider[1])
    page = text(web.get(f"/catalogue/listings/{listing.id}"))
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf_token" value="([^"]+)"', page
    )
    assert token, "the listing page's buttons carry no CSRF token"
    response = web.post(
        f"/catalogue/listings/{listing.id}/publish", data={"csrf_token": token.group(1)}
    )
    assert response.status_code == 302
    db.session.refresh(listing)
    assert listing.status == ListingStatus.PUBLISHED


def test_editing_keeps_an_area_no_longer_covered_on_the_form_and_says_why(
    web, world, provider, listing
):
    organisation = provider[0]
    membership = db.session.scalar(
        sa.select(LotMembership).where(
            LotMembership.organisation_id == organisation.id,
            LotMembership.region.has(code="A"),
        )
    )
    _, authority_admin = make_authority()
    membership_services.suspend(authority_admin, membership, "Insurance lapsed")
    commit()
    web.as_user(provider[1])
    url = f"/catalogue/listings/{listing.id}/edit"
    page = main(web.get(url))
    assert 'value="A" checked' in page
    data = form_data(world, region_codes=["A"])
    del data["unit_price"]
    response = web.post(url, data=data)
    assert response.status_code == 422
    [message] = error_messages(response)
    assert message.startswith("You are not an active member of") and world.region_1.name in message
    data["region_codes"] = ["B"]
    assert web.post(url, data=data).status_code == 302
    db.session.refresh(listing)
    assert [a.region.code for a in listing.areas] == ["B"]
