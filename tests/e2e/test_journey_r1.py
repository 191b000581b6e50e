"""Journey R1 (issue 22): a PCC's commissioner, signed in, goes from its home page to its spend,
its VCSE-share chart (the chart and its data table; no Content-Security-Policy violation), the
market map and one region and lot's details, and downloads its spend as CSV, whose figures are
the page's. Moving only by links, buttons and forms; axe-core checks every page (conftest.py).

The world is the hand-checked scenario of ``tests/insight/scenario.py``, built through the
services (call-offs placed, funded, accepted, delivered, invoiced by the monthly run, issued,
validated and paid; a credit note; a cancellation; a reclassification), then the ledger caught
up: the PCC's spend is real, not roll-up rows inserted by hand. Its one co-funded call-off gives
it £399.96 committed, invoiced and paid in 2025-26, all to Harbour Housing (VCSE and SME)."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def r1_world(live_server) -> dict:
    import sqlalchemy as sa

    from marketplace.core.db import db
    from marketplace.insight.services import ledger
    from marketplace.reference.models import ProbationRegion, ServiceCategory
    from tests.insight.scenario import CARILLION, FIGURES, PCC, build_scenario

    with live_server.app.app_context():
        scenario = build_scenario()
        assert ledger.catch_up() >= 5
        pcc = scenario.funders[PCC]
        world = {
            "pcc": pcc.name,
            "buyer": worlds.person(scenario.people[f"{PCC} buyer"]),
            "others": [org.name for name, org in scenario.funders.items() if name != PCC],
            "paid": FIGURES.total("paid", funder=PCC),
            "region": db.session.scalar(
                sa.select(ProbationRegion.name).where(ProbationRegion.id == pcc.region_id)
            ),
            "lot": db.session.scalar(
                sa.select(ServiceCategory.name).where(ServiceCategory.code == "ACC")
            ),
            "member": CARILLION,
        }
        worlds.commit_and_close()
    return world


def pence(text: str) -> int:
    return int(Decimal(text.replace("£", "").replace(",", "")) * 100)


def rows_of(journey, selector: str) -> list[list[str]]:
    rows = journey.page.locator(f"{selector} tbody tr")
    return [rows.nth(i).inner_text().split("\t") for i in range(rows.count())]


def test_r1_a_pcc_reads_its_spend_vcse_share_and_market_map_and_downloads_the_csv(
    journey, browser, live_server
):
    world = r1_world(live_server)
    assert world["paid"] == 39_996  # the scenario's hand-worked figure for the PCC
    journey.sign_in_from_home(world["buyer"].email, PASSWORD, world["buyer"].totp_secret)

    # Its spend: only its own share of the co-funded call-off, all three measures.
    journey.follow("Your spend")
    assert journey.heading() == "Spend"
    text = journey.main_text()
    assert world["pcc"] in text
    assert not [name for name in world["others"] if name in text]
    chart = journey.page.locator("svg[role=img]")
    assert chart.count() == 1 and chart.is_visible()
    by_region = rows_of(journey, "#spend-by-region-table")
    assert by_region == [
        [world["region"], "£399.96", "£399.96", "£399.96"],
        ["Total", "£399.96", "£399.96", "£399.96"],
    ]
    by_year = rows_of(journey, "#spend-by-period")
    assert by_year[0] == ["2025-26", "£399.96", "£399.96", "£399.96"]

    # The CSV, by the page's own link: the page's figures, in pounds and in pence.
    download = journey.download("Download spend as CSV")
    assert download.suggested_filename.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert table[0][:2] == ["Financial year", "Probation region"]
    page_lines = [[by_year[0][0], *by_region[0]]]
    assert [row[:5] for row in table[1:-1]] == [
        [year, region, *(f"{pence(c) / 100:.2f}" for c in cells)]
        for year, region, *cells in page_lines
    ]
    assert [[int(v) for v in row[5:]] for row in table[1:]] == [
        [pence(c) for c in by_region[0][1:]],
        [pence(c) for c in by_region[-1][1:]],
    ]
    assert table[-1][5:] == [str(world["paid"])] * 3

    # Its VCSE share: the chart and its data table; all of its paid spend went to a VCSE.
    journey.home()
    journey.follow("The voluntary sector's share of your spend")
    assert journey.heading() == "The voluntary sector’s share of spend"
    trend = journey.page.locator("svg[role=img]")
    assert trend.count() == 1 and trend.is_visible()
    assert journey.page.locator("#vcse-share-trend-table").is_visible()
    paid = {row[0]: row[1:] for row in rows_of(journey, "#vcse-paid")}
    assert paid["2025-26"] == ["£399.96", "£399.96", "£399.96", "100.0%", "100.0%"]
    assert paid["2025-26 and 2026-27"] == ["£399.96", "£399.96", "£399.96", "100.0%", "100.0%"]

    # The market map, and the details of its region's accommodation lot.
    journey.home()
    journey.follow("The market map")
    assert journey.heading() == "Market map"
    journey.follow(f"{world['lot']} in {world['region']}")
    assert journey.heading() == f"{world['lot']} in {world['region']}"
    assert world["member"] in journey.main_text()

    # The same pages under the app's own Content-Security-Policy (the journey's tab bypasses
    # it for axe-core): no violation reported, nothing refused in the console.
    context = browser.new_context(base_url=live_server.url)
    try:
        context.add_cookies(journey.page.context.cookies())
        context.add_init_script(
            "window.__violations = [];"
            "document.addEventListener('securitypolicyviolation',"
            " e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));"
        )
        page = context.new_page()
        messages: list[str] = []
        page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
        for path in ("/insight/spend", "/insight/vcse-share", "/insight/market"):
            response = page.goto(path)
            assert response.status == 200
            assert "style-src" in response.headers["content-security-policy"]
            page.wait_for_load_state("load")
            assert page.evaluate("window.__violations") == [], path
        assert not [m for m in messages if m.startswith("error") or "Refused" in m], messages
    finally:
        context.close()
