"""Whether a listing charges for missed sessions: asked on the listing form, shown on its check
page and to buyers, read and written by the API (issue 18)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.catalogue.models import Listing, ListingStatus
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.catalogue.test_listing_api import assert_problem, bearer, body, counts
from tests.catalogue.test_listing_views import form_data
from tests.factories import make_member, make_organisation
from tests.pages import count, error_messages, main

SERVICES = "/api/v1/services"


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    """A charity admitted to lot A in regions A and B: (organisation, admin, its API token)."""
    organisation, admin = make_provider("Hope Housing")
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    commit()
    return organisation, admin, bearer(admin, organisation)


@pytest.fixture
def listing(world, provider):
    row = make_listing(world.lot_a, provider[0], status=ListingStatus.DRAFT)
    commit()
    return row


def test_the_listing_form_asks_and_the_check_page_and_buyers_see_the_answer(web, world, provider):
    web.as_user(provider[1])
    form = main(web.get("/catalogue/listings/new"))
    assert "Do you charge for a session the person does not attend?" in form
    response = web.post(
        "/catalogue/listings/new", data=form_data(world, missed_sessions_chargeable="yes")
    )
    assert response.status_code == 302
    listing = db.session.scalar(sa.select(Listing))
    assert listing.missed_sessions_chargeable is True
    # On the check page's preview of the buyers' page, and on the provider's own page.
    for url in (f"/catalogue/listings/{listing.id}/check", f"/catalogue/listings/{listing.id}"):
        assert "Charged at the unit price if the person does not attend" in main(web.get(url))

    listing.status, listing.published_at = ListingStatus.PUBLISHED, utcnow()
    commit()
    public = main(web.get(f"/services/{listing.id}"))
    assert "Missed sessions" in public
    assert "Charged at the unit price if the person does not attend" in public

    # Changing the answer is recorded in the listing's history.
    data = form_data(world, missed_sessions_chargeable="no")
    del data["unit_price"]
    assert web.post(f"/catalogue/listings/{listing.id}/edit", data=data).status_code == 302
    db.session.refresh(listing)
    assert listing.missed_sessions_chargeable is False
    history = main(web.get(f"/catalogue/listings/{listing.id}/history"))
    assert "missed sessions chargeable" in history.lower()


def test_the_answer_is_required_and_must_be_yes_or_no(web, world, provider):
    web.as_user(provider[1])
    for answer in (None, "maybe"):
        data = form_data(world, missed_sessions_chargeable=answer)
        if answer is None:
            del data["missed_sessions_chargeable"]
        response = web.post("/catalogue/listings/new", data=data)
        assert response.status_code == 422
        assert "Say whether you charge for a session the person does not attend" in (
            error_messages(response)
        )
        assert 'href="#missed_sessions_chargeable"' in response.data.decode()
    assert count(Listing) == 0


def test_only_the_providers_editors_answer_it(web, world, provider, listing):

    region = make_organisation(OrganisationType.PROBATION_REGION)
    buyer = make_member(Role.BUYER, region)
    commit()
    web.as_user(buyer, region)
    data = form_data(world, missed_sessions_chargeable="yes")
    del data["unit_price"]
    assert web.post(f"/catalogue/listings/{listing.id}/edit", data=data).status_code == 403
    db.session.refresh(listing)
    assert listing.missed_sessions_chargeable is False


def test_the_api_reads_and_writes_it_and_refuses_anything_but_a_boolean(client, world, provider):
    headers = provider[2]
    created = client.post(SERVICES, json=body(world), headers=headers).get_json()
    assert created["missed_sessions_chargeable"] is False
    changed = client.patch(
        f"{SERVICES}/{created['id']}", json={"missed_sessions_chargeable": True}, headers=headers
    )
    assert changed.status_code == 200 and changed.get_json()["missed_sessions_chargeable"] is True
    # A change of anything else leaves it as it is.
    again = client.patch(f"{SERVICES}/{created['id']}", json={"title": "New"}, headers=headers)
    assert again.get_json()["missed_sessions_chargeable"] is True

    before = counts()
    for bad in ("yes", 1, None):
        response = client.post(
            SERVICES, json=body(world, missed_sessions_chargeable=bad), headers=headers
        )
        assert "missed_sessions_chargeable" in assert_problem(response, 422)["errors"]
    assert counts() == before
