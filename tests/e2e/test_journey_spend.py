"""R1 (the spend part): a PCC's commissioner, from its home page, opens its spend, sees the
chart with its data table, groups it otherwise, downloads the CSV, and reads its VCSE share
chart; axe-core checks every page (conftest.py), and a second tab that keeps the app's
Content-Security-Policy sees no violation on either page (the charts carry no inline style or
script).

The ledger's roll-up rows are inserted directly (the ledger lane derives them from call-offs
and invoices); the filters are selects, so a person cannot pick a period that has not started:
that mistake is answered on the page's own tests (tests/insight/test_spend.py)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest

from tests.e2e import worlds
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


@dataclass(frozen=True)
class SpendWorld:
    pcc: str
    approver: worlds.Person
    other: str  # another commissioner, whose spend the PCC never sees
    category: str


def spend_world(live_server) -> SpendWorld:
    import sqlalchemy as sa

    from marketplace.accounts.models import OrganisationType, Role
    from marketplace.core.clock import financial_year
    from marketplace.core.db import db
    from marketplace.insight.models import Measure
    from marketplace.reference.models import PccArea, ServiceCategory
    from tests.factories import make_member, make_organisation
    from tests.insight.spend_world import month_row, provider_year

    t = worlds.tag()
    with live_server.app.app_context():
        area = db.session.scalars(sa.select(PccArea).order_by(PccArea.code)).first()
        category = db.session.scalars(
            sa.select(ServiceCategory).order_by(ServiceCategory.code)
        ).first()
        pcc = make_organisation(
            OrganisationType.PCC,
            name=f"Police and Crime Commissioner {t}",
            region_id=area.region_id,
            pcc_area_id=area.id,
        )
        approver = make_member(Role.APPROVER, pcc)
        other = make_organisation(OrganisationType.PROBATION_REGION, name=f"Probation {t}")
        provider = make_organisation(OrganisationType.PROVIDER_VCSE, name=f"Charity {t}")
        year = financial_year(worlds.london_today())
        april = date(year, 4, 1)
        month_row(april, Measure.COMMITTED, pcc, category, 120_000, vcse=True)
        month_row(april, Measure.INVOICED, pcc, category, 45_000, vcse=True)
        month_row(april, Measure.PAID, pcc, category, 30_000, vcse=True)
        month_row(april, Measure.PAID, pcc, category, 90_000)
        month_row(april, Measure.PAID, other, category, 777_700)
        provider_year(year, pcc, provider, 30_000, vcse=True)
        built = SpendWorld(pcc.name, worlds.person(approver), other.name, category.name)
        worlds.commit_and_close()
    return built


def test_r1_a_pcc_reads_its_spend_and_vcse_share_and_downloads_the_csv(
    journey, browser, live_server
):
    world = spend_world(live_server)
    journey.sign_in_from_home(world.approver.email, PASSWORD)
    journey.follow("Your spend")
    assert journey.heading() == "Spend"
    text = journey.main_text()
    assert world.pcc in text and world.other not in text and "£7,777.00" not in text

    # The chart, named for a screen reader, and its table with the figures beside it.
    chart = journey.page.locator("svg[role=img]")
    assert chart.count() == 1 and chart.is_visible()
    labelled_by = chart.get_attribute("aria-labelledby").split()
    assert journey.page.locator(f"#{labelled_by[0]}").text_content() == "Spend by probation region"
    figures = journey.page.locator("#spend-by-region-table")
    assert figures.is_visible()
    assert figures.locator("tr").last.inner_text().split("\t") == [
        "Total",
        "£1,200.00",
        "£450.00",
        "£1,200.00",
    ]

    journey.select("Group by", "Provider type")
    journey.press("Show spend")
    rows = journey.page.locator("#spend-by-provider-type-table tbody tr")
    assert [rows.nth(i).inner_text().split("\t") for i in range(rows.count())] == [
        ["VCSE", "£1,200.00", "£450.00", "£300.00"],
        ["Other", "£0.00", "£0.00", "£900.00"],
        ["Total", "£1,200.00", "£450.00", "£1,200.00"],
    ]

    download = journey.download("Download spend as CSV")
    assert download.suggested_filename.startswith(
        "spend-"
    ) and download.suggested_filename.endswith(".csv")
    raw = Path(download.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf"), "no UTF-8 byte order mark: a spreadsheet garbles names"
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert table[0][:2] == ["Financial year", "Provider type"]
    assert table[-1] == ["Total", "", "1200.00", "450.00", "1200.00", "120000", "45000", "120000"]

    journey.follow("The voluntary sector’s share of spend")
    assert journey.heading() == "The voluntary sector’s share of spend"
    trend = journey.page.locator("svg[role=img]")
    assert trend.count() == 1 and trend.is_visible()
    assert journey.page.locator("#vcse-share-trend-table").is_visible()
    assert "25.0%" in journey.page.locator("#vcse-paid").inner_text()

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
        for path in ("/insight/spend", "/insight/vcse-share"):
            response = page.goto(path)
            assert response.status == 200
            assert "style-src" in response.headers["content-security-policy"]
            page.wait_for_load_state("load")
            assert page.locator("svg[role=img]").count() == 1
            assert page.evaluate("window.__violations") == []
        assert not [m for m in messages if m.startswith("error") or "Refused" in m], messages
    finally:
        context.close()
