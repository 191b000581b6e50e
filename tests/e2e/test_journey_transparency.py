"""A PCC's staff publish its spend over £500 (issue 22's transparency exports), from the home
page by links, buttons and forms alone; axe-core checks every page (conftest.py).

The PCC's approver opens the transparency exports from its home page, types a month that does
not exist (told on the same page, the message linked to the field), then downloads July 2025's
spend over £500 as CSV: the rows of the hand-checked data set (tests/insight/transparency_world),
to the penny. It also shows the month on a page and downloads the same CSV from there."""

from __future__ import annotations

import pytest

from tests.e2e.worlds import commit_and_close
from tests.factories import PASSWORD
from tests.insight.transparency_world import build_transparency_world

pytestmark = pytest.mark.e2e

VFM = "Call-off at the published rate card price: Lowest unit price with capacity"
JULY = (
    '\ufeffDate paid,Transaction number,Supplier name,"Amount (£, including VAT)",'
    "Summary of the purpose of the expenditure,Value for money reason\r\n"
    f"2025-07-15,INV-000001,Swift Skills Ltd,500.01,Employment skills (Accommodation),{VFM}\r\n"
    "2025-07-20,INV-000001,Northgate Services plc,34800.00,Accommodation hub (Accommodation),"
    f"{VFM}\r\n"
    "2025-07-25,CN-000002,Northgate Services plc,-2400.00,Accommodation hub (Accommodation),"
    f"{VFM}\r\n"
)


def test_a_pcc_downloads_its_spend_over_500_for_a_month(journey, live_server):
    with live_server.app.app_context():
        world = build_transparency_world()
        email = world.pcc_approver.email
        commit_and_close()

    journey.sign_in_from_home(email, PASSWORD)
    journey.follow("Transparency exports")
    assert journey.heading() == "Transparency exports"

    # A month that does not exist: answered on the same page, nothing downloaded.
    journey.fill("Month", "2025-13")
    journey.press("Download spend over £500 as CSV")
    found = journey.expect_errors("Enter a month like 2026-04 for April 2026")
    assert found[0][1] == "#pcc-spend-period"

    journey.fill("Month", "2025-07")
    button = journey.page.get_by_role("button", name="Download spend over £500 as CSV")
    with journey.page.expect_download() as download:
        button.click()
    saved = download.value
    assert saved.suggested_filename.endswith("-2025-07.csv")
    with open(saved.path(), "rb") as file:
        assert file.read().decode("utf-8") == JULY

    journey.press("Show spend over £500")
    assert journey.heading() == "Spend over £500: July 2025"
    table = journey.page.locator("table").inner_text()
    assert "£500.01" in table and "£34,800.00" in table and "-£2,400.00" in table
    again = journey.download("Download spend over £500 for July 2025 as CSV")
    with open(again.path(), "rb") as file:
        assert file.read().decode("utf-8") == JULY
