"""Above the direct-award limit the question page says so in a short error on the quantity,
and beside it, in paragraphs, why and what to do instead (JOURNEYS.md B5): not one paragraph of
ninety words in bold red. The API keeps the whole explanation in its one message."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape

from marketplace.core.db import commit
from marketplace.orders.services import placing
from tests.catalogue.factories import make_listing
from tests.orders.factories import build_orders_world, details
from tests.orders.test_question_page import answers, count, summary_links
from tests.pages import main


def test_the_limit_refusal_is_a_short_error_with_the_explanation_beside_it(web, app):
    world = build_orders_world(price_pence=10_000, allocated_pence=10**8)  # limit £30,000.00
    other = make_listing(
        world.listing.lot,
        world.provider,
        title="Tenancy sustainment",
        price_pence=6_000,
        price_from=date.today() - timedelta(days=30),
        max_units=500,
    )
    bought = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=250)
    )
    commit()
    web.as_user(world.buyer, world.region)
    response = web.post(f"/call-offs/new/{other.id}", data=answers(world, quantity="100"))
    assert response.status_code == 422
    assert summary_links(response)["quantity"] == (
        "With this call-off, your organisation's direct awards with Harbour Housing in the "
        "Accommodation lot would come to £31,000.00 in 12 months, over the direct award limit "
        "of £30,000.00: buy no more than £5,000.00 directly, or through a further competition"
    )
    inset = main(response).split('id="direct-award-limit"', 1)[1].split("</div>", 1)[0]
    paragraphs = [
        " ".join(unescape(re.sub(r"<[^>]+>", "", p)).split())
        for p in re.findall(r"<p[^>]*>(.*?)</p>", inset, re.S)
    ]
    assert paragraphs[:3] == [
        "Your organisation's call-offs with Harbour Housing in the Accommodation lot in the last "
        f"12 months come to £25,000.00 including VAT: {bought.reference} (£25,000.00).",
        "Call-offs with the same provider in the same lot count together, whichever of its "
        "services they buy.",
        "Needs above the limit must go to further competition, not be split into smaller "
        "call-offs: start a further competition among every member of the lot in the area, or "
        "buy no more than £5,000.00 including VAT directly.",
    ]
    assert paragraphs[3].startswith("The oldest of them stops counting after ")
    assert count() == 1

    # Under the limit, no explanation.
    fine = web.post(f"/call-offs/new/{other.id}", data=answers(world, quantity="80"))
    assert fine.status_code == 302 and b"direct-award-limit" not in fine.data
