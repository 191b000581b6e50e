"""Issue 4, acceptance 1, through the pages a provider and a buyer use.

A charity admitted to Accommodation in two regions publishes a listing, changes its price from next
month, and its rate card shows both the current and the future price; the listing cannot be offered
in a third region; suspending the membership hides it from search, and reinstating shows it again.
"""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation.models import LotMembership
from marketplace.accreditation.services import memberships as membership_services
from marketplace.catalogue.models import Listing, ListingStatus
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from tests.accreditation.builders import make_authority, make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.factories import make_member
from tests.pages import error_messages, main

TITLE = "Harbourside move-on accommodation"


def _first_of_next_month(today: date) -> date:
    return date(today.year + (today.month == 12), today.month % 12 + 1, 1)


def _listing_form(world, **changes) -> dict:
    data = {
        "title": TITLE,
        "summary": "A room and a key worker for up to six months after release",
        "description": "Shared houses with a key worker on site.",
        "outcomes": "Settled accommodation within 28 days",
        "lot_id": str(world.lot_a.id),
        "region_codes": [world.region_1.code, world.region_2.code],
        "settings": ["community"],
        "formats": ["one_to_one"],
        "eligibility_sex": "any",
        "min_age": "18",
        "max_age": "",
        "risk_levels": ["low", "medium", "high"],
        "complexities": ["medium", "high"],
        "lead_time_days": "3",
        "unit": "bed_night",
        "unit_price": "42.50",
        "vat_treatment": "exempt",
        "min_units": "7",
        "max_units": "182",
        "monthly_capacity": "300",
        "missed_sessions_chargeable": "no",
        "cost_staff": "",
        "cost_overheads": "",
        "cost_other": "",
        "social_value": "",
        "contact_name": "Referrals",
        "contact_email": "referrals@harbourside.example.org",
        "contact_phone": "",
    }
    data.update(changes)
    return data


def test_publish_reprice_rate_card_third_region_and_suspension(app, web, client):
    world = make_world()  # lot A is Accommodation
    organisation, admin = make_provider("Harbourside Housing Trust")
    memberships = [
        make_lot_membership(world.lot_a, organisation, region_code=region.code)
        for region in (world.region_1, world.region_2)
    ]
    buyer = make_member(Role.BUYER)
    _, authority_admin = make_authority()
    commit()
    membership_id = memberships[0].id

    # The provider creates and publishes the listing.
    web.as_user(admin, organisation)
    response = web.post("/catalogue/listings/new", data=_listing_form(world))
    assert response.status_code == 302, error_messages(response)
    listing = db.session.scalar(sa.select(Listing).where(Listing.title == TITLE))
    assert web.post(f"/catalogue/listings/{listing.id}/publish").status_code == 302
    db.session.refresh(listing)
    assert listing.status == ListingStatus.PUBLISHED

    # A new price from the first of next month.
    today = london_date()
    next_month = _first_of_next_month(today)
    response = web.post(
        f"/catalogue/listings/{listing.id}/price",
        data={
            "unit_price": "45.00",
            "effective_from": next_month.isoformat(),
            "reason": "Rent rise",
        },
    )
    assert response.status_code == 302, error_messages(response)

    # The rate card shows the price in force and the future one, on the page and as JSON.
    card = json.loads(client.get(f"/catalogue/providers/{organisation.id}/rate-card.json").data)
    [line] = card["listings"]
    assert (line["unit_price_pence"], line["price_effective_from"]) == (4_250, today.isoformat())
    assert (line["next_unit_price_pence"], line["next_price_effective_from"]) == (
        4_500,
        next_month.isoformat(),
    )
    page = main(client.get(f"/catalogue/providers/{organisation.id}/rate-card"))
    assert "£42.50" in page and "£45.00" in page

    # A third region, where the charity is not a member, is refused and nothing changes.
    response = web.post(
        f"/catalogue/listings/{listing.id}/edit",
        data=_listing_form(
            world,
            region_codes=[world.region_1.code, world.region_2.code, world.outside_region.code],
        ),
    )
    assert response.status_code == 422
    # The form offers only covered regions, and a tampered request names the rule.
    assert error_messages(response) == ["Choose regions where you hold an active membership"]
    db.session.expire_all()
    assert sorted(a.region_id for a in listing.areas) == sorted(
        [world.region_1.id, world.region_2.id]
    )

    # Buyers find it; suspending both memberships hides it, reinstating one shows it again.
    web.as_user(buyer)
    assert TITLE in main(web.get("/services?q=harbourside"))
    for membership in db.session.scalars(
        sa.select(LotMembership).where(LotMembership.organisation_id == organisation.id)
    ):
        membership_services.suspend(authority_admin, membership, "Insurance lapsed")
    commit()
    assert TITLE not in main(web.get("/services?q=harbourside"))
    assert web.get(f"/services/{listing.id}").status_code == 404
    membership_services.reinstate(authority_admin, db.session.get(LotMembership, membership_id))
    commit()
    found = main(web.get(f"/services?q=harbourside&region={world.region_1.code}"))
    assert TITLE in found
    # Only the reinstated region shows it.
    assert TITLE not in main(web.get(f"/services?q=harbourside&region={world.region_2.code}"))

    actions = db.session.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.object_type == "listing", AuditEvent.object_id == str(listing.id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == ["listing.created", "listing.published", "listing.price_set"]
