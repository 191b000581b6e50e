"""A price to come is shown with VAT as today's is (issue 18, P3): buyers budget with VAT, so
"From 6 January 2027: £48.00 per session excluding VAT, £57.60 including VAT"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from marketplace.catalogue.services.prices import set_price
from marketplace.core.clock import london_date
from marketplace.core.db import commit
from marketplace.core.filters import govuk_date
from marketplace.core.money import VatTreatment
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.pages import main


def words(response) -> str:
    assert response.status_code == 200
    return " ".join(re.sub(r"<[^>]+>", " ", main(response)).split())


@pytest.mark.parametrize(
    ("treatment", "clause"),
    [(VatTreatment.STANDARD, ", £57.60 including VAT"), (VatTreatment.EXEMPT, "")],
)
def test_the_listing_page_and_the_check_page_give_a_future_price_with_vat(
    web, client, app, treatment, clause
):
    world = make_world()
    organisation, admin = make_provider("Bright Futures")
    make_lot_membership(world.lot_a, organisation, region_code="A")
    listing = make_listing(
        world.lot_a,
        organisation,
        title="Move-on housing support",
        vat_treatment=treatment,
        price_pence=4_550,
        price_from=london_date() - timedelta(days=5),
    )
    from_day = london_date() + timedelta(days=30)
    set_price(admin, listing, 4_800, from_day, "Pay award")
    commit()

    expected = f"From {govuk_date(from_day)}: £48.00 per session excluding VAT{clause}"
    web.as_user(admin, organisation)
    for page in (
        words(client.get(f"/services/{listing.id}")),
        words(web.get(f"/catalogue/listings/{listing.id}/check")),
    ):
        assert expected in page
        # The "Price including VAT" row, and (with VAT to add) the price to come.
        assert page.count("including VAT") == (2 if clause else 1)
