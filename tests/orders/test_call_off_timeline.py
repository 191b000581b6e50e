"""The call-off's timeline tells what happened without opening anything else (JOURNEYS.md B4):
each variation entry says what it changes and why, or why it was rejected."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

from marketplace.core import clock
from marketplace.core.db import commit
from marketplace.core.filters import govuk_date
from marketplace.orders.services import delivery, placing, responses, variations
from tests.orders.factories import build_orders_world, details
from tests.pages import main


def timeline(html: str) -> list[tuple[str, str]]:
    """(title, description) of each timeline entry, newest first, as a person reads them."""
    entries = []
    for item in html.split('class="moj-timeline__item"')[1:]:
        title = re.search(r'moj-timeline__title">(.*?)</h3>', item, re.S)[1]
        found = re.search(r'moj-timeline__description">(.*?)</div>', item, re.S)
        words = re.sub(r"<[^>]+>", " ", found[1]) if found else ""
        entries.append((unescape(title).strip(), " ".join(unescape(words).split())))
    return entries


def test_each_variation_entry_says_what_changes_and_why(web, app):
    world = build_orders_world()
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=10)
    )
    responses.accept(world.provider_admin, call_off)
    more = variations.propose_variation(
        world.provider_admin, call_off, extra_units=4, reason="Rent arrears need more sessions"
    )
    variations.agree_variation(world.buyer, call_off, more.id)
    new_end = call_off.end_date + timedelta(days=30)
    later = variations.propose_variation(
        world.provider_admin, call_off, new_end_date=new_end, reason="Her flat is not ready"
    )
    variations.reject_variation(world.buyer, call_off, later.id, "The current end date is enough")
    commit()

    web.as_user(world.buyer, world.region)
    page = main(web.get(f"/call-offs/{call_off.id}"))
    entries = timeline(page)
    assert entries[:4] == [
        ("Variation rejected", "The current end date is enough"),
        (
            "Variation proposed",
            f"An end date of {govuk_date(new_end)}. Reason: Her flat is not ready",
        ),
        ("Variation agreed", "4 more sessions: the call-off is now version 2"),
        ("Variation proposed", "4 more sessions. Reason: Rent arrears need more sessions"),
    ]
    # The list of changes words them the same way, in the call-off's units.
    changes = " ".join(re.sub(r"<[^>]+>", " ", page.split(">Changes</h2>", 1)[1]).split())
    assert "4 more sessions, agreed (version 2)" in changes
    assert f"an end date of {govuk_date(new_end)}, rejected: The current end date" in changes
    assert "more units" not in changes


def test_the_cancel_page_counts_what_was_delivered_in_the_call_offs_units(web, app):
    world = build_orders_world()
    call_off = placing.place_call_off(
        world.buyer, world.region, world.listing.id, details(world, quantity=10)
    )
    responses.accept(world.provider_admin, call_off)
    delivery.record_delivery(
        world.provider_admin,
        call_off,
        delivery.DeliveryDetails(delivered_on=call_off.start_date, units=2, attendance="attended"),
        now=clock.utcnow() + timedelta(days=30),
    )
    commit()
    web.as_user(world.buyer, world.region)
    page = " ".join(main(web.get(f"/call-offs/{call_off.id}/cancel")).split())
    assert "What has been delivered remains payable (2 sessions so far)." in page
