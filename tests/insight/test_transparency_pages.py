"""The transparency pages and API: who may read which export, the same rows on the page, in
the CSV and in the API's JSON, and bad input answered on the index (pages) or as
problem+json (API)."""

from __future__ import annotations

import csv
import io

import pytest

from marketplace.accounts.models import Role
from marketplace.core.clock import london_date
from marketplace.core.db import commit
from marketplace.core.errors import PROBLEM_JSON
from tests.factories import make_member
from tests.insight.transparency_world import build_transparency_world
from tests.orders.test_call_off_api import bearer


@pytest.fixture
def world(app):
    world = build_transparency_world()
    world.authority_admin = make_member(Role.AUTHORITY_ADMIN)
    world.provider_admin = make_member(Role.PROVIDER_ADMIN, world.harbour)
    commit()
    return world


def rows_of(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


def next_year_month() -> str:
    return f"{london_date().year + 1}-01"


def test_the_pcc_finds_its_exports_from_home_and_downloads_its_spend(world, web):
    home = web.as_user(world.pcc_approver).get("/").get_data(as_text=True)
    assert 'href="/insight/transparency"' in home
    index = web.get("/insight/transparency").get_data(as_text=True)
    for title in (
        "Spend over £500",
        "Contracts register",
        "Payments over £30,000",
        "Payments compliance",
    ):
        assert title in index
    assert 'name="organisation"' not in index  # its own only: nothing to choose
    download = web.get("/insight/transparency/pcc-spend?period=2025-07&format=csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert download.get_data(as_text=True).startswith("\ufeffDate paid,")
    assert [row[1:4] for row in rows_of(download)[1:]] == [
        ["INV-000001", "Swift Skills Ltd", "500.01"],
        ["INV-000001", "Northgate Services plc", "34800.00"],
        ["CN-000002", "Northgate Services plc", "-2400.00"],
    ]
    page = web.get("/insight/transparency/pcc-spend?period=2025-07").get_data(as_text=True)
    for text in ("£500.01", "£34,800.00", "-£2,400.00", "3 rows", "July 2025"):
        assert text in page


def test_the_page_the_csv_and_the_api_give_the_same_rows(world, web, client):
    web.as_user(world.pcc_approver)
    page = web.get("/insight/transparency/contracts?period=2025-Q1").get_data(as_text=True)
    download = rows_of(web.get("/insight/transparency/contracts?period=2025-Q1&format=csv"))
    headers = bearer(world.pcc_approver, world.pcc)
    answer = client.get("/api/v1/insight/transparency/contracts?period=2025-Q1", headers=headers)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["organisation"] == "Durham PCC" and body["period"] == "2025-Q1"
    assert [c["heading"] for c in body["columns"]] == download[0]
    assert [
        (r["reference"], r["organisation_share_pence"], r["sme"], r["vcse"]) for r in body["rows"]
    ] == [
        ("CO-2025-000001", 375_000, True, True),
        ("CO-2025-000002", 250_007, True, False),
        ("CO-2025-000003", 6_600_000, False, False),
        ("CO-2025-000006", 312_500, True, True),
    ]
    assert [row[7] for row in download[1:]] == ["3750.00", "2500.07", "66000.00", "3125.00"]
    for share in ("£3,750.00", "£2,500.07", "£66,000.00", "£3,125.00"):
        assert share in page
    as_csv = client.get(
        "/api/v1/insight/transparency/contracts?period=2025-Q1&format=csv", headers=headers
    )
    assert as_csv.mimetype == "text/csv" and rows_of(as_csv) == download


def test_the_authority_chooses_any_commissioner(world, web, client):
    web.as_user(world.authority_admin)
    assert 'href="/insight/transparency"' in web.get("/").get_data(as_text=True)
    index = web.get("/insight/transparency").get_data(as_text=True)
    assert "Durham PCC" in index and "North East Probation" in index
    large = web.get(
        f"/insight/transparency/large-payments?period=2025-Q2&organisation={world.pcc.id}"
        "&format=csv"
    )
    assert [row[2] for row in rows_of(large)[1:]] == ["34800.00"]
    compliance = web.get(
        f"/insight/transparency/payments-compliance?period=2025-H1&organisation={world.region.id}"
    ).get_data(as_text=True)
    assert "North East Probation" in compliance and "52.2%" in compliance
    # Without a choice: told on the index, beside the field.
    missing = web.get("/insight/transparency/large-payments?period=2025-Q2")
    assert missing.status_code == 400
    assert 'href="#large-payments-organisation"' in missing.get_data(as_text=True)
    # The PCC's spend is for PCCs; the region is none.
    not_pcc = f"/insight/transparency/pcc-spend?period=2025-07&organisation={world.region.id}"
    assert web.get(not_pcc).status_code == 404
    api = client.get(
        f"/api/v1/insight/transparency/large-payments?period=2025-Q2&organisation={world.pcc.id}",
        headers=bearer(world.authority_admin, world.authority_admin.memberships[0].organisation),
    )
    assert api.status_code == 200, api.get_json()
    assert [r["amount_pence"] for r in api.get_json()["rows"]] == [3_480_000]


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("/insight/transparency/pcc-spend?period=2026-13", "Enter a month like 2026-04"),
        ("/insight/transparency/pcc-spend?period=", "Enter a month like 2026-04"),
        ("/insight/transparency/contracts?period=2025-Q9", "Enter a quarter like 2026-Q1"),
        ("/insight/transparency/payments-compliance?period=H1", "Enter a six-month period"),
    ],
)
def test_bad_input_is_answered_on_the_index_beside_the_field(world, web, url, message):
    answer = web.as_user(world.pcc_approver).get(url)
    html = answer.get_data(as_text=True)
    assert answer.status_code == 400 and message in html
    assert "There is a problem" in html
    key = url.split("/")[3].split("?")[0]
    assert f'href="#{key}-period"' in html and f'id="{key}-period-error"' in html


def test_a_month_that_has_not_started_is_refused(world, web, client):
    future = next_year_month()
    answer = web.as_user(world.pcc_approver).get(
        f"/insight/transparency/pcc-spend?period={future}&format=csv"
    )
    assert answer.status_code == 400 and answer.mimetype == "text/html"
    assert "has ended or is under way" in answer.get_data(as_text=True)
    api = client.get(
        f"/api/v1/insight/transparency/pcc-spend?period={future}",
        headers=bearer(world.pcc_approver, world.pcc),
    )
    assert api.status_code == 422 and api.mimetype == PROBLEM_JSON
    assert "has ended or is under way" in api.get_json()["errors"]["period"][0]


def test_another_organisations_export_is_not_found(world, web, client):
    web.as_user(world.approver)  # North East Probation
    other = f"/insight/transparency/contracts?period=2025-Q1&organisation={world.pcc.id}"
    assert web.get(other).status_code == 404
    assert web.get(other + "&format=csv").status_code == 404
    # A region is no PCC: no spend-over-£500 export for it, not even on its index.
    assert web.get("/insight/transparency/pcc-spend?period=2025-07").status_code == 404
    assert "Spend over £500" not in web.get("/insight/transparency").get_data(as_text=True)
    assert web.get("/insight/transparency/nonsense?period=2025-07").status_code == 404
    headers = bearer(world.approver, world.region)
    api = client.get(
        f"/api/v1/insight/transparency/contracts?period=2025-Q1&organisation={world.pcc.id}",
        headers=headers,
    )
    assert api.status_code == 404 and api.mimetype == PROBLEM_JSON
    unknown = client.get(
        "/api/v1/insight/transparency/contracts?period=2025-Q1&organisation=999999",
        headers=bearer(world.authority_admin, world.authority_admin.memberships[0].organisation),
    )
    assert unknown.status_code == 404 and unknown.mimetype == PROBLEM_JSON
    no_export = client.get("/api/v1/insight/transparency/nonsense?period=2025-Q1", headers=headers)
    assert no_export.status_code == 404 and no_export.mimetype == PROBLEM_JSON


def test_a_provider_may_not_use_the_exports(world, web, client):
    web.as_user(world.provider_admin)
    assert web.get("/insight/transparency").status_code == 403
    assert web.get("/insight/transparency/contracts?period=2025-Q1").status_code == 403
    api = client.get(
        "/api/v1/insight/transparency/contracts?period=2025-Q1",
        headers=bearer(world.provider_admin, world.harbour),
    )
    assert api.status_code == 403 and api.mimetype == PROBLEM_JSON


def test_the_api_refuses_malformed_arguments_as_problem_json(world, client):
    headers = bearer(world.pcc_approver, world.pcc)
    for query in ("", "period=2025-07&format=xlsx", "period=2025-07&colour=blue"):
        answer = client.get(f"/api/v1/insight/transparency/pcc-spend?{query}", headers=headers)
        assert answer.status_code == 422 and answer.mimetype == PROBLEM_JSON
    bad_month = client.get("/api/v1/insight/transparency/pcc-spend?period=2026-13", headers=headers)
    assert bad_month.status_code == 422
    assert "Enter a month" in bad_month.get_json()["errors"]["period"][0]


def test_payment_performance_shows_the_bands_with_their_counts(world, web):
    html = (
        web.as_user(world.approver)
        .get("/invoices/payment-performance?period=2025-H1")
        .get_data(as_text=True)
    )
    for text in ("2 of 4", "50.0%", "1 of 4", "25.0%", "52.2%", "46.6%", "1.2%", "£42,000.19"):
        assert text in html
    assert 'href="/insight/transparency"' in html
