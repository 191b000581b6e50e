"""Who a listing is for, by age, in words a buyer reads (issue 18, P3): "Any age", "18 and
over", "Up to 25", "18 to 25"; never "Any to any"."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from marketplace.core.clock import london_date
from marketplace.core.db import commit
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.pages import main


def ages_row(response, key: str = "Ages") -> str:
    """The text of the summary row ``key`` on a listing page."""
    assert response.status_code == 200
    html = main(response)
    [value] = re.findall(
        rf'<dt class="govuk-summary-list__key">\s*{key}\s*</dt>\s*'
        r'<dd class="govuk-summary-list__value">(.*?)</dd>',
        html,
        re.S,
    )
    return " ".join(re.sub(r"<[^>]+>", " ", value).split())


@pytest.mark.parametrize(
    ("min_age", "max_age", "shown", "own"),
    [
        (None, None, "Any age", "Anyone, any age"),
        (18, None, "18 and over", "Anyone, aged 18 and over"),
        (None, 25, "Up to 25", "Anyone, aged up to 25"),
        (18, 25, "18 to 25", "Anyone, aged 18 to 25"),
    ],
)
def test_the_listing_page_and_the_providers_pages_word_the_ages(
    web, client, app, min_age, max_age, shown, own
):
    world = make_world()
    organisation, admin = make_provider("Young Futures")
    make_lot_membership(world.lot_a, organisation, region_code="A")
    listing = make_listing(
        world.lot_a,
        organisation,
        title="Mentoring for young adults",
        min_age=min_age,
        max_age=max_age,
        price_from=london_date() - timedelta(days=5),
    )
    commit()

    assert ages_row(client.get(f"/services/{listing.id}")) == shown
    web.as_user(admin, organisation)
    assert ages_row(web.get(f"/catalogue/listings/{listing.id}/check")) == shown
    assert ages_row(web.get(f"/catalogue/listings/{listing.id}"), "Who it is for") == own
