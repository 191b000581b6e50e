"""The spend report (/insight/spend, its CSV and XLSX, /api/v1/insight/spend): figures from
roll-up rows equal on the page, in the downloads and in the API; the authority sees every
funder, a commissioner only its own; bad filters are refused on the same page; a bounded
number of statements whatever the size of the ledger."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.clock import frozen_at
from marketplace.core.db import commit
from marketplace.core.errors import PROBLEM_JSON
from marketplace.insight.models import Measure
from tests.insight.spend_world import add_spend, build_world, month_row

TODAY = datetime(2026, 12, 7, 12, tzinfo=UTC)  # in 2026-27, its second half


@pytest.fixture
def world(app):
    world = build_world()
    add_spend(world)
    with frozen_at(TODAY):
        yield world


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def table(html: str, table_id: str) -> list[list[str]]:
    """The rows of the table with ``id`` (header cells and data cells, tags stripped)."""
    found = re.search(rf'<table[^>]*id="{table_id}".*?</table>', html, re.S)
    assert found, f"no table {table_id}"
    rows = []
    for row in re.findall(r"<tr.*?</tr>", found.group(0), re.S):
        cells = re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        rows.append([re.sub(r"<[^>]+>", "", c).strip() for c in cells])
    return rows


def money(text: str) -> int:
    """Pence from "£1,234.56"."""
    return int(Decimal(text.replace("£", "").replace(",", "")) * 100)


def read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "UTF-8, marked as such for spreadsheets"
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))


def read_xlsx(data: bytes) -> list[list]:
    sheet = load_workbook(io.BytesIO(data), read_only=True).worksheets[0]
    return [list(row) for row in sheet.iter_rows(values_only=True)]


# ---------------------------------------------------------------------------------------------
# The same numbers everywhere


def test_authority_sees_every_funder_and_page_csv_xlsx_api_agree(world, web, client):
    w = world
    page = web.as_user(w.admin, w.authority).get("/insight/spend?by=funder")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    by_funder = table(html, "spend-by-funder-table")
    assert by_funder[0] == ["Commissioner", "Committed", "Invoiced", "Paid"]
    page_figures = {row[0]: [money(c) for c in row[1:]] for row in by_funder[1:]}
    # Worked by hand from spend_world.add_spend.
    assert page_figures == {
        "PCC for the North": [25_000, 0, 15_000],
        "Probation North": [100_000, 60_000, 90_001],
        "Probation South": [40_000, 0, 20_000],
        "Total": [165_000, 60_000, 125_001],
    }
    by_year = table(html, "spend-by-period")
    assert by_year[1:] == [
        ["2025-26", "£1,250.00", "£600.00", "£750.00"],
        ["2026-27", "£400.00", "£0.00", "£500.01"],
        ["Total", "£1,650.00", "£600.00", "£1,250.01"],
    ]

    rows = read_csv(client.get("/insight/spend?by=funder&format=csv").data)
    assert rows[0][:2] == ["Financial year", "Commissioner"]
    csv_figures: dict[str, list[int]] = {}
    for row in rows[1:]:
        key = "Total" if row[0] == "Total" else row[1]
        sums = csv_figures.setdefault(key, [0, 0, 0])
        for i, value in enumerate(row[5:8]):
            sums[i] += int(value)
        # Pounds and pence columns say the same.
        assert [money(v) for v in row[2:5]] == [int(v) for v in row[5:8]]
    assert csv_figures == page_figures

    sheet = read_xlsx(client.get("/insight/spend?by=funder&format=xlsx").data)
    assert [[str(c) if c is not None else "" for c in row] for row in sheet] == rows

    api = client.get("/api/v1/insight/spend?by=funder", headers=bearer(w.admin, w.authority))
    assert api.status_code == 200
    body = api.get_json()
    api_figures = {
        line["label"]: [line["measures"][m] for m in ("committed", "invoiced", "paid")]
        for line in body["by_group"]
    }
    api_figures["Total"] = [body["total"][m] for m in ("committed", "invoiced", "paid")]
    assert api_figures == page_figures
    assert [
        [line["label"], *(line["measures"][m] for m in ("committed", "invoiced", "paid"))]
        for line in body["by_period"]
    ] == [["2025-26", 125_000, 60_000, 75_000], ["2026-27", 40_000, 0, 50_001]]


def test_provider_type_by_half_year(world, web):
    w = world
    html = (
        web.as_user(w.admin, w.authority)
        .get("/insight/spend?by=provider_type&interval=half")
        .get_data(as_text=True)
    )
    assert table(html, "spend-by-provider-type-table")[1:] == [
        ["VCSE", "£250.00", "£0.00", "£250.00"],
        ["SME (not VCSE)", "£0.00", "£0.00", "£300.01"],
        ["Other", "£1,400.00", "£600.00", "£700.00"],
        ["Total", "£1,650.00", "£600.00", "£1,250.01"],
    ]
    assert [row[0] for row in table(html, "spend-by-period")[1:]] == [
        "April to September 2025",
        "April to September 2026",
        "October 2026 to March 2027",
        "Total",
    ]


def test_filters_by_period_region_and_category(world, web, client):
    w = world
    web.as_user(w.admin, w.authority)
    html = client.get(
        f"/insight/spend?period=2025&region={w.region_a.code}&category={w.housing.code}"
        "&by=category&interval=month"
    ).get_data(as_text=True)
    assert table(html, "spend-by-category-table")[1:] == [
        [w.housing.name, "£1,250.00", "£600.00", "£750.00"],
        ["Total", "£1,250.00", "£600.00", "£750.00"],
    ]
    assert table(html, "spend-by-period")[1][0] == "May 2025"
    # A month and a half-year are periods too.
    html = client.get("/insight/spend?period=2026-11").get_data(as_text=True)
    assert table(html, "spend-by-region-table")[-1] == ["Total", "£0.00", "£0.00", "£300.01"]
    html = client.get("/insight/spend?period=2026-H1").get_data(as_text=True)
    assert table(html, "spend-by-region-table")[-1] == ["Total", "£400.00", "£0.00", "£200.00"]


def test_pcc_area_grouping_names_spend_with_no_area(world, web):
    w = world
    html = (
        web.as_user(w.admin, w.authority).get("/insight/spend?by=pcc_area").get_data(as_text=True)
    )
    rows = table(html, "spend-by-pcc-area-table")
    assert rows[1] == [w.pcc_area.name, "£250.00", "£0.00", "£150.00"]
    assert rows[2] == ["No PCC area", "£1,400.00", "£600.00", "£1,100.01"]


# ---------------------------------------------------------------------------------------------
# Scope


def test_a_commissioner_sees_only_its_own_funding(world, web, client):
    w = world
    html = web.as_user(w.pcc_buyer, w.pcc).get("/insight/spend").get_data(as_text=True)
    assert table(html, "spend-by-region-table")[-1] == ["Total", "£250.00", "£0.00", "£150.00"]
    assert "Probation North" not in html and "Probation South" not in html
    rows = read_csv(client.get("/insight/spend?format=csv").data)
    assert rows[-1][5:] == ["25000", "0", "15000"]
    body = client.get("/api/v1/insight/spend", headers=bearer(w.pcc_buyer, w.pcc)).get_json()
    assert body["total"] == {"committed": 25_000, "invoiced": 0, "paid": 15_000}
    assert body["filters"]["funder"] == w.pcc.id


def test_a_commissioner_naming_another_funder_is_refused(world, web, client):
    """Decided: refused (not ignored), with the same words as for an organisation that does
    not exist, so the answer tells nothing about the other organisation (the page's error
    summary; the API's 404, as for any other organisation's detail)."""
    w = world
    web.as_user(w.north_buyer, w.north)
    for funder in (w.south.id, 999_999):
        response = client.get(f"/insight/spend?funder={funder}")
        assert response.status_code == 400
        html = response.get_data(as_text=True)
        assert '<a href="#funder">Choose a commissioner from the list</a>' in html
        assert 'id="funder"' in html  # the error summary's link reaches the field
        assert "spend-by-region-table" not in html and "£" not in html
        assert client.get(f"/insight/spend?funder={funder}&format=csv").status_code == 400
        api = client.get(
            f"/api/v1/insight/spend?funder={funder}", headers=bearer(w.north_buyer, w.north)
        )
        # The API answers as for another organisation's detail: not found.
        assert api.status_code == 404 and api.mimetype == PROBLEM_JSON
    # Its own id is fine.
    assert client.get(f"/insight/spend?funder={w.north.id}").status_code == 200


def test_a_commissioner_cannot_group_by_funder(world, web):
    w = world
    html = (
        web.as_user(w.north_buyer, w.north).get("/insight/spend?by=funder").get_data(as_text=True)
    )
    assert "spend-by-region-table" in html and "Probation South" not in html


@pytest.mark.parametrize("who", ["provider_admin", "nobody"])
def test_providers_and_people_without_an_organisation_get_404(world, web, client, who):
    w = world
    if who == "provider_admin":
        web.as_user(w.provider_admin, w.vcse)
        headers = bearer(w.provider_admin, w.vcse)
        assert client.get("/api/v1/insight/spend", headers=headers).status_code == 404
    else:
        from tests.factories import make_user

        web.as_user(make_user())
    for url in ("/insight/spend", "/insight/spend?format=csv", "/insight/vcse-share"):
        assert client.get(url).status_code == 404


def test_signed_out_is_sent_to_sign_in_and_the_api_needs_a_token(world, client):
    response = client.get("/insight/spend")
    assert response.status_code in (302, 401)
    assert client.get("/api/v1/insight/spend").status_code == 401


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("period=2027", "period", "2027-28 has not started yet: choose a period that has"),
        (
            "period=2027-01",
            "period",
            "January 2027 has not started yet: choose a period that has",
        ),
        ("period=2026-13", "period", "Choose a period from the list"),
        ("period=last-year", "period", "Choose a period from the list"),
        ("period=2026%0A", "period", "Choose a period from the list"),
        ("period=%D9%A2%D9%A0%D9%A2%D9%A5", "period", "Choose a period from the list"),
        ("region=ZZ", "region", "Choose a probation region from the list"),
        ("category=NOPE", "category", "Choose a category from the list"),
        ("by=colour", "by", "Choose what to group spend by"),
        ("interval=weeks", "interval", "Choose years, half-years or months"),
        ("region=" + "A" * 200, "region", "Choose from the list"),
    ],
)
def test_bad_filters_are_refused_on_the_same_page(world, web, client, query, field, message):
    w = world
    response = web.as_user(w.admin, w.authority).get(f"/insight/spend?{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "govuk-error-summary" in html
    assert f'<a href="#{field}">{message}</a>' in html
    assert f'id="{field}"' in html and f'id="{field}-error"' in html
    # Nothing shown as if the filters were good.
    assert "app-chart" not in html and "spend-totals" not in html and "Download" not in html
    api = client.get(f"/api/v1/insight/spend?{query}", headers=bearer(w.admin, w.authority))
    assert api.status_code == 422 and api.mimetype == PROBLEM_JSON
    assert field in api.get_json()["errors"]


def test_a_download_in_an_unknown_format_is_not_found(world, web):
    w = world
    assert web.as_user(w.admin, w.authority).get("/insight/spend?format=pdf").status_code == 404


# ---------------------------------------------------------------------------------------------
# Empty states


def test_an_empty_ledger_shows_an_empty_state(app, web):
    world = build_world()
    commit()
    with frozen_at(TODAY):
        html = (
            web.as_user(world.north_buyer, world.north).get("/insight/spend").get_data(as_text=True)
        )
        assert "No spend is recorded yet" in html and "app-chart" not in html
        html = (
            web.as_user(world.admin, world.authority)
            .get("/insight/spend?period=2024")
            .get_data(as_text=True)
        )
        assert "No spend is recorded for these filters" in html


# ---------------------------------------------------------------------------------------------
# Statements


def test_a_bounded_number_of_statements_whatever_the_size_of_the_ledger(
    world, web, client, count_queries
):
    w = world
    web.as_user(w.admin, w.authority)

    def statements(url: str) -> int:
        client.get(url)  # warm the caches of the page's frame
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        return counter.count

    urls = ["/insight/spend?by=funder&interval=month", "/insight/spend?format=csv"]
    before = [statements(url) for url in urls]
    # Many more roll-up rows: every month of two years, both categories, every funder.
    for month in range(24):
        day = date(2025 + (3 + month) // 12, (3 + month) % 12 + 1, 1)
        for funder in (w.north, w.pcc, w.south):
            for category in (w.housing, w.employment):
                for measure in Measure:
                    month_row(day, measure, funder, category, 1_234, vcse=month % 2 == 0)
    commit()
    after = [statements(url) for url in urls]
    assert after == before, (before, after)
    assert max(after) <= 20


@pytest.mark.parametrize("url", ["/insight/spend", "/insight/vcse-share"])
def test_a_page_brings_the_ledger_up_to_date_once(world, web, client, count_queries, url):
    web.as_user(world.admin, world.authority)
    client.get(url)  # warm the caches of the page's frame
    with count_queries() as counter:
        assert client.get(url).status_code == 200
    stale_reads = [s for s in counter.statements if "spend_stale_call_offs" in s]
    assert len(stale_reads) == 1, stale_reads


def test_by_year_the_yearly_roll_up_gives_the_monthly_sums(world, web, client):
    """The page by financial year (read from the yearly roll-up) shows for each group what the
    same filters by month (read from the monthly roll-up) sum to, whole years and one year."""
    web.as_user(world.admin, world.authority)

    def by_group(query: str) -> dict:
        rows = list(csv.reader(io.StringIO(client.get(f"/insight/spend?{query}").text)))[1:]
        sums: dict = {}
        for period, group, *figures in rows:
            key = "Total" if period == "Total" else group
            pence = [int(v) for v in figures[3:]]
            sums[key] = [a + b for a, b in zip(sums.get(key, [0, 0, 0]), pence, strict=True)]
        return sums

    for by in ("region", "funder", "provider_type", "category"):
        for period in ("", "2025"):
            yearly = by_group(f"format=csv&by={by}&period={period}")
            assert len(yearly) > 1, (by, period)
            assert yearly == by_group(f"format=csv&by={by}&period={period}&interval=month")
