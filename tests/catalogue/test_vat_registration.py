"""A provider that is not registered for VAT cannot list at a treatment that charges VAT (standard,
reduced, zero): not on the listing form, nor through the API, nor by importing its rate card, nor
by publishing a draft; its existing VAT-charging listings are shown to it with what to change."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.services.settings import set_vat_registration
from marketplace.catalogue.imports.columns import ImportRefused
from marketplace.catalogue.imports.write import import_rows
from marketplace.catalogue.models import Listing, ListingStatus
from marketplace.catalogue.services.listings import publish_listing
from marketplace.catalogue.services.vat import VAT_REGISTRATION_MESSAGE
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation
from tests.accreditation.builders import make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.catalogue.test_imports import row
from tests.catalogue.test_listing_api import SERVICES, assert_problem, bearer, body
from tests.catalogue.test_listing_views import form_data
from tests.factories import make_member, make_organisation
from tests.pages import error_messages

CHARGING = ["standard", "reduced", "zero"]


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def unregistered(world):
    """A small charity not registered for VAT, admitted to lot A in regions A and B."""
    from marketplace.accounts.models import OrganisationType, Role

    organisation = make_organisation(
        OrganisationType.PROVIDER_VCSE, name="Tiny Steps", vat_registered=False, vat_number=None
    )
    admin = make_member(Role.PROVIDER_ADMIN, organisation)
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    commit()
    return organisation, admin


def count() -> int:
    return db.session.scalar(sa.select(sa.func.count(Listing.id)))


@pytest.mark.parametrize("treatment", CHARGING)
def test_the_form_refuses_a_vat_charging_listing_with_the_reason(
    web, world, unregistered, treatment
):
    web.as_user(unregistered[1])
    response = web.post("/catalogue/listings/new", data=form_data(world, vat_treatment=treatment))
    assert response.status_code == 422
    assert VAT_REGISTRATION_MESSAGE in error_messages(response)
    assert count() == 0


@pytest.mark.parametrize("treatment", ["exempt", "outside_scope"])
def test_an_unregistered_provider_lists_exempt_or_outside_the_scope(
    web, world, unregistered, treatment
):
    web.as_user(unregistered[1])
    response = web.post("/catalogue/listings/new", data=form_data(world, vat_treatment=treatment))
    assert response.status_code == 302, error_messages(response)
    assert count() == 1


def test_the_api_refuses_it_as_a_problem(client, world, unregistered):
    headers = bearer(unregistered[1], unregistered[0])
    response = client.post(SERVICES, json=body(world, vat_treatment="standard"), headers=headers)
    problem = assert_problem(response, 422)
    assert VAT_REGISTRATION_MESSAGE in problem["detail"]
    assert count() == 0


def test_the_rate_card_import_refuses_the_row_and_writes_nothing(world, unregistered):
    organisation, admin = unregistered
    rows = [row(title="Fine", vat_treatment="exempt"), row(title="Taxed", vat_treatment="standard")]
    with pytest.raises(ImportRefused) as refused:
        import_rows(admin, organisation, rows)
    problems = {(p.row, p.column): p.message for p in refused.value.problems}
    assert problems == {(3, "vat_treatment"): VAT_REGISTRATION_MESSAGE}
    db.session.rollback()
    assert count() == 0


def test_registering_for_vat_lifts_the_refusal(client, world, unregistered):
    organisation, admin = unregistered
    set_vat_registration(admin, organisation, True, "GB 123 4567 89")
    commit()
    response = client.post(
        SERVICES, json=body(world, vat_treatment="standard"), headers=bearer(admin, organisation)
    )
    assert response.status_code == 201, response.data


def test_existing_vat_charging_listings_are_shown_and_cannot_be_published(web, world, unregistered):
    organisation, admin = unregistered
    taxed = make_listing(
        world.lot_a, organisation, status=ListingStatus.DRAFT, title="Taxed support"
    )
    taxed.vat_treatment = "standard"
    make_listing(world.lot_a, organisation, status=ListingStatus.DRAFT, title="Exempt support")
    commit()
    with pytest.raises(BusinessRuleViolation) as refused:
        publish_listing(admin, taxed)
    assert refused.value.errors == {"status": [VAT_REGISTRATION_MESSAGE]}
    db.session.rollback()

    web.as_user(admin)
    page = web.get("/organisation/settings").get_data(as_text=True)
    assert "You are not registered for VAT, but 1 of your listings charges VAT" in page
    assert "Taxed support" in page and "Exempt support" not in page
    home = web.get("/").get_data(as_text=True)
    assert "Listings that charge VAT while you are not registered for VAT" in home
