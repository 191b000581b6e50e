"""The call-offs list names the other side (issue 18, P5): a provider reads who placed each
call-off, a buyer who provides it; the provider's "waiting" panel says what and for whom."""

from __future__ import annotations

import re

import pytest

from marketplace.core.db import commit
from marketplace.orders.services import placing
from tests.orders.factories import build_orders_world, details


@pytest.fixture
def world(app):
    built = build_orders_world()
    built.listing.title = "Move-on support"
    built.provider.name = "Harbour Housing"
    built.region.name = "North East Probation"
    return built


def columns(html: str) -> tuple[list[str], list[str]]:
    """The list's header cells and its first row's cells, as text."""
    table = html.split("<table", 1)[1].split("</table>", 1)[0]
    head, body = table.split("</thead>", 1)

    def cells(part: str, tag: str) -> list[str]:
        return [
            " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for cell in re.findall(rf"<{tag}\b[^>]*>(.*?)</{tag}>", part, re.S)
        ]

    return cells(head, "th"), cells(body.split("</tr>", 1)[0], "td")


def test_the_provider_reads_the_buyer_and_the_buyer_reads_the_provider(web, world):
    call_off = placing.place_call_off(world.buyer, world.region, world.listing.id, details(world))
    commit()

    web.as_user(world.provider_admin, world.provider)
    html = web.get("/call-offs/").get_data(as_text=True)
    head, row = columns(html)
    assert head[2] == "Buyer" and row[2] == "North East Probation", (head, row)
    assert "Harbour Housing" not in row
    panel = html.split('class="govuk-inset-text"', 1)[1].split("</div>", 1)[0]
    line = " ".join(re.sub(r"<[^>]+>", "", panel).split())
    assert f"{call_off.reference}: Move-on support, placed by North East Probation (sent" in line

    web.as_user(world.buyer, world.region)
    head, row = columns(web.get("/call-offs/").get_data(as_text=True))
    assert head[2] == "Provider" and row[2] == "Harbour Housing", (head, row)
