"""Journey P4 through a real browser: a provider goes from the home page to its rate card,
downloads it as CSV and as XLSX, imports the untouched download (no changes), makes a mistake
in a changed file (answered on the same page), imports the corrected file after checking each
change, and is emailed what changed. axe-core checks every page (conftest.py)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook

from marketplace.core.clock import london_date
from marketplace.core.db import db
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def build_provider(live_server) -> tuple[str, str, str, str]:
    """A provider admin with two published listings; (email, provider name, titles…)."""
    tag = uuid.uuid4().hex[:8]
    with live_server.app.app_context():
        world = make_world()
        organisation, admin = make_provider(f"Harbour Housing {tag}")
        for region in (world.region_1, world.region_2):
            make_lot_membership(world.lot_a, organisation, region_code=region.code)
        since = london_date() - timedelta(days=60)
        housing = make_listing(
            world.lot_a, organisation, title=f"Move-on housing {tag}", price_pence=12_500,
            price_from=since, description="Weekly visits by a named worker",
            outcomes="Settled accommodation within 28 days", cost_staff_pence=9_000,
        )  # fmt: skip
        mentoring = make_listing(
            world.lot_a, organisation, title=f"Tenancy mentoring {tag}", price_pence=4_000,
            price_from=since,
        )  # fmt: skip
        db.session.commit()
        result = (admin.email, organisation.name, housing.title, mentoring.title)
        db.session.remove()
    return result


def _download(page, link_name: str) -> bytes:
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name, exact=True).first.click()
    return Path(info.value.path()).read_bytes()


def _upload(ui, tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    ui.page.get_by_label("Upload your rate card").set_input_files(str(path))
    ui.press_button("Check the file")


def test_provider_downloads_changes_prices_and_imports_its_rate_card(ui, live_server, tmp_path):
    email, provider, housing, mentoring = build_provider(live_server)
    page = ui.page
    ui.sign_in(email, PASSWORD)
    ui.goto("/")

    # Home → the rate card (the service navigation) → the rate card buyers see.
    ui.click_and_wait(page.locator("#service-navigation").get_by_role("link", name="Rate card"))
    ui.click_and_wait(page.get_by_role("link", name="Your rate card as buyers see it"))
    assert ui.heading() == "Rate card"
    as_csv = _download(page, "CSV")
    as_xlsx = _download(page, "Excel (XLSX)")

    # The untouched downloads import as no changes.
    ui.click_and_wait(page.get_by_role("link", name="Update your rate card from a spreadsheet"))
    for name, data in (("rate-card.csv", as_csv), ("rate-card.xlsx", as_xlsx)):
        _upload(ui, tmp_path, name, data)
        assert ui.heading() == "Check your rate card changes"
        assert "No changes." in page.locator("main").inner_text()
        ui.click_and_wait(page.get_by_role("link", name="Upload a different file").last)

    # A new price in the workbook, and a mistake: refused on the same page, row and column named.
    workbook = load_workbook(io.BytesIO(as_xlsx))
    sheet = workbook.active
    header = [cell.value for cell in sheet[1]]
    for cells in sheet.iter_rows(min_row=2):
        if cells[header.index("title")].value == housing:
            cells[header.index("unit_price")].value = "135.00"
        if cells[header.index("title")].value == mentoring:
            cells[header.index("unit_price")].value = "forty"
    buffer = io.BytesIO()
    workbook.save(buffer)
    _upload(ui, tmp_path, "changed.xlsx", buffer.getvalue())
    assert "There is a problem" in page.locator(".govuk-error-summary").inner_text()
    errors = page.locator("#import-errors").inner_text()
    assert "unit_price" in errors and "Enter the unit price in pounds and pence" in errors

    for cells in sheet.iter_rows(min_row=2):
        if cells[header.index("title")].value == mentoring:
            cells[header.index("unit_price")].value = "40.00"
    buffer = io.BytesIO()
    workbook.save(buffer)
    _upload(ui, tmp_path, "corrected.xlsx", buffer.getvalue())
    today = london_date()
    changes = page.locator("#import-changes").inner_text()
    assert housing in changes and "unit_price" in changes
    assert "£125.00" in changes and f"£135.00 from {today.day} {today:%B %Y}" in changes
    assert mentoring not in changes

    ui.press_button("Import these changes")
    assert "Rate card updated" in page.locator(".govuk-panel").inner_text()
    message = live_server.smtp.wait_for(
        lambda m: m.to == email and "rate card was updated" in m.subject
    )
    assert f"{housing}: unit_price was £125.00, now £135.00" in message.body

    ui.click_and_wait(page.get_by_role("link", name="See your rate card"))
    card = page.locator("main").inner_text()
    assert "£135.00" in card and "£40.00" in card

    # The template comes with the listings, with every column, and imports as no changes too.
    ui.click_and_wait(page.get_by_role("link", name="Update your rate card from a spreadsheet"))
    template = _download(page, "CSV")
    rows = list(csv.DictReader(io.StringIO(template.decode())))
    assert {r["title"] for r in rows} == {housing, mentoring}
    assert {r["description"] for r in rows} == {"Weekly visits by a named worker", ""}
    _upload(ui, tmp_path, "template.csv", template)
    assert "No changes." in page.locator("main").inner_text()
