"""The VCSE share (/insight/vcse-share, its CSV and XLSX, /api/v1/insight/vcse-share): of paid
spend, of providers paid and of further-competition bids, per financial year and for the
two-year period, against the aim; "no spend" rather than 0% when nothing was paid; the same
numbers on the page, in the downloads and in the API; a commissioner sees only its own."""

from __future__ import annotations

from datetime import UTC, datetime
from fractions import Fraction

import pytest

from marketplace.core.clock import frozen_at
from marketplace.core.db import commit
from marketplace.core.errors import PROBLEM_JSON
from marketplace.insight.queries.spend import Share, format_percent
from tests.competitions.factories import add_bid, build_competition_world, publish_directly
from tests.insight.spend_world import add_spend, build_world, provider_year
from tests.insight.test_spend import bearer, read_csv, read_xlsx, table

TODAY = datetime(2026, 12, 7, 12, tzinfo=UTC)


@pytest.fixture
def world(app):
    world = build_world()
    add_spend(world)
    with frozen_at(TODAY):
        yield world


def test_shares_are_exact_and_shown_to_one_decimal_place():
    assert Share(1, 3).fraction == Fraction(1, 3)
    assert Share(1, 3).percent_text == "33.3"
    assert Share(2, 3).percent_text == "66.7"
    assert Share(1, 8).percent_text == "12.5"
    assert Share(1, 16).percent_text == "6.3"  # 6.25: halves up
    assert Share(0, 5).percent_text == "0.0"
    assert Share(0, 0).percent_text is None and Share(0, 0).fraction is None
    assert format_percent(Fraction(-1, 16)) == "-0.1"


def test_authority_page_csv_xlsx_and_api_agree(world, web, client):
    w = world
    response = web.as_user(w.admin, w.authority).get("/insight/vcse-share")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    # Paid spend, worked by hand from spend_world.add_spend: 2025-26 £750.00 paid, of which
    # £250.00 to the VCSE (north £100 + PCC £150), also SME; 2026-27 £500.01, of which
    # £300.01 to the SME and nothing to the VCSE.
    paid = table(html, "vcse-paid")
    assert paid[1:] == [
        ["2025-26", "£250.00", "£250.00", "£750.00", "33.3%", "33.3%"],
        ["2026-27", "£0.00", "£300.01", "£500.01", "0.0%", "60.0%"],
        ["2025-26 and 2026-27", "£250.00", "£550.01", "£1,250.01", "20.0%", "44.0%"],
    ]
    assert "20.0% of paid spend in 2025-26 and 2026-27 went to VCSE providers" in html
    assert "at or above the aim of 10%" in html
    # The trend, with "No spend" for the half-year in which nothing was paid.
    trend = table(html, "vcse-share-trend-table")
    assert trend[0] == ["Half-year", "VCSE share", "SME share", "Aim"]
    assert trend[1:] == [
        ["Apr to Sep 2025", "33.3%", "33.3%", "10.0%"],
        ["Oct 2025 to Mar 2026", "No spend", "No spend", "10.0%"],
        ["Apr to Sep 2026", "0.0%", "0.0%", "10.0%"],
        ["Oct 2026 to Mar 2027", "0.0%", "100.0%", "10.0%"],
    ]
    assert 'role="img"' in html and "<style" not in html and "<script>" not in html
    providers = table(html, "vcse-providers")
    assert providers[1:] == [
        ["2025-26", "1", "1", "2", "50.0%", "50.0%"],
        ["2026-27", "0", "1", "2", "0.0%", "50.0%"],
        ["2025-26 and 2026-27", "1", "2", "3", "33.3%", "66.7%"],
    ]

    rows = read_csv(client.get("/insight/vcse-share?format=csv").data)
    assert rows[0] == [
        "Figure",
        "Period",
        "VCSE",
        "SME",
        "Total",
        "VCSE share (%)",
        "SME share (%)",
        "Aim for the VCSE share (%)",
    ]
    csv_paid = [r for r in rows if r[0] == "Paid spend (pence)"]
    assert csv_paid == [
        ["Paid spend (pence)", "2025-26", "25000", "25000", "75000", "33.3", "33.3", "10"],
        ["Paid spend (pence)", "2026-27", "0", "30001", "50001", "0.0", "60.0", "10"],
        [
            "Paid spend (pence)",
            "2025-26 and 2026-27",
            "25000",
            "55001",
            "125001",
            "20.0",
            "44.0",
            "10",
        ],
    ]
    halves = [r for r in rows if r[0] == "Paid spend by half-year (pence)"]
    assert halves[1][5:7] == ["no spend", "no spend"]
    assert [r[2:5] for r in rows if r[0] == "Providers paid"] == [
        ["1", "1", "2"],
        ["0", "1", "2"],
        ["1", "2", "3"],
    ]
    sheet = read_xlsx(client.get("/insight/vcse-share?format=xlsx").data)
    assert [[str(c) for c in row] for row in sheet] == rows

    body = client.get("/api/v1/insight/vcse-share", headers=bearer(w.admin, w.authority)).get_json()
    assert body["aim_percent"] == 10 and body["period_start_year"] == 2025
    assert body["paid_period"]["vcse_share"] == {
        "numerator": 25_000,
        "denominator": 125_001,
        "percent": "20.0",
    }
    assert [
        (line["label"], line["vcse"], line["sme"], line["total"]) for line in body["paid_years"]
    ] == [("2025-26", 25_000, 25_000, 75_000), ("2026-27", 0, 30_001, 50_001)]
    empty_half = body["paid_halves"][1]
    assert empty_half["total"] == 0 and empty_half["vcse_share"]["percent"] is None
    assert [
        (line["vcse"], line["sme"], line["total"])
        for line in [*body["providers_years"], body["providers_period"]]
    ] == [(1, 1, 2), (0, 1, 2), (1, 2, 3)]


def test_a_commissioner_sees_only_its_own_shares(world, web, client):
    w = world
    html = web.as_user(w.north_buyer, w.north).get("/insight/vcse-share").get_data(as_text=True)
    assert table(html, "vcse-paid")[1:] == [
        ["2025-26", "£100.00", "£100.00", "£600.00", "16.7%", "16.7%"],
        ["2026-27", "£0.00", "£300.01", "£300.01", "0.0%", "100.0%"],
        ["2025-26 and 2026-27", "£100.00", "£400.01", "£900.01", "11.1%", "44.4%"],
    ]
    assert "Probation South" not in html and "PCC for the North" not in html
    body = client.get(
        "/api/v1/insight/vcse-share", headers=bearer(w.north_buyer, w.north)
    ).get_json()
    assert body["funder"] == w.north.id
    assert body["paid_period"]["total"] == 90_001
    # Another organisation named as the commissioner is refused.
    response = client.get(f"/insight/vcse-share?funder={w.south.id}")
    assert response.status_code == 400
    assert '<a href="#funder">Choose a commissioner from the list</a>' in response.get_data(
        as_text=True
    )
    api = client.get(
        f"/api/v1/insight/vcse-share?funder={w.south.id}",
        headers=bearer(w.north_buyer, w.north),
    )
    assert api.status_code == 422 and api.mimetype == PROBLEM_JSON


def test_the_authority_narrows_to_one_commissioner(world, web):
    w = world
    html = (
        web.as_user(w.admin, w.authority)
        .get(f"/insight/vcse-share?funder={w.pcc.id}")
        .get_data(as_text=True)
    )
    assert table(html, "vcse-paid")[1] == [
        "2025-26",
        "£150.00",
        "£150.00",
        "£150.00",
        "100.0%",
        "100.0%",
    ]
    assert "PCC for the North" in html


def test_a_provider_reclassified_within_a_year_is_counted_once(world, web):
    """Paid while SME and, later that year, while VCSE (the ledger keeps the two apart): one
    provider paid, counted as VCSE and as SME."""
    w = world
    provider_year(2026, w.south, w.sme, 5_000, sme=True)
    provider_year(2026, w.south, w.sme, 7_000, vcse=True, sme=True)
    # A provider whose payment was wholly refunded is not a provider paid.
    provider_year(2026, w.south, w.vcse, 0, vcse=True)
    commit()
    html = web.as_user(w.admin, w.authority).get("/insight/vcse-share").get_data(as_text=True)
    assert table(html, "vcse-providers")[2] == ["2026-27", "1", "1", "2", "50.0%", "50.0%"]


def test_nothing_paid_says_no_spend_not_zero_per_cent(app, web):
    world = build_world()
    commit()
    with frozen_at(TODAY):
        html = (
            web.as_user(world.pcc_buyer, world.pcc)
            .get("/insight/vcse-share")
            .get_data(as_text=True)
        )
    paid = table(html, "vcse-paid")
    assert paid[1][4:] == ["No spend", "No spend"]
    assert all(row[4] == "No spend" for row in paid[1:])
    assert ">0.0%" not in html
    assert "app-chart" not in html  # nothing to draw but the aim
    assert "No spend was paid in 2025-26 and 2026-27 yet" in html
    assert "No spend paid yet" in html


def test_bids_received_and_won_count_by_declared_sector(app, web, client):
    """Bids count in the year bids closed, awards in the year awarded; a commissioner sees the
    competitions it leads or co-funds."""
    competition_world = build_competition_world()
    vcse, sme, _ = competition_world.providers
    closed = datetime(2026, 5, 10, 12, tzinfo=UTC)
    competition = publish_directly(competition_world, now=datetime(2026, 4, 20, 12, tzinfo=UTC))
    winner = add_bid(competition_world, vcse)
    add_bid(competition_world, sme)
    competition.closed_at = closed
    competition.bids_received, competition.bids_from_vcse, competition.bids_from_sme = 2, 1, 2
    competition.winning_bid_id = winner.id
    competition.awarded_at = datetime(2026, 6, 1, 12, tzinfo=UTC)
    commit()
    with frozen_at(TODAY):
        for user, organisation in (
            (competition_world.buyer, competition_world.buyer_org),
            (competition_world.pcc_approver, competition_world.pcc),
        ):
            html = web.as_user(user, organisation).get("/insight/vcse-share").get_data(as_text=True)
            bids = table(html, "vcse-bids")
            assert bids[-2] == [
                "2026-27",
                "2",
                "1 (50.0%)",
                "2 (100.0%)",
                "1",
                "1 (100.0%)",
                "1 (100.0%)",
            ]
            assert bids[-1][0] == "2025-26 and 2026-27" and bids[-1][1] == "2"
        body = client.get(
            "/api/v1/insight/vcse-share",
            headers=bearer(competition_world.buyer, competition_world.buyer_org),
        ).get_json()
        assert body["bids_period"]["received"]["vcse_share"] == {
            "numerator": 1,
            "denominator": 2,
            "percent": "50.0",
        }
        assert body["bids_period"]["won"]["vcse"] == 1
        # Another commissioner, neither leading nor funding, sees no bids.
        other = build_world()
        commit()
        html = (
            web.as_user(other.south_buyer, other.south)
            .get("/insight/vcse-share")
            .get_data(as_text=True)
        )
        assert table(html, "vcse-bids")[-1][1] == "0"


def test_a_bounded_number_of_statements(world, web, client, count_queries):
    w = world
    web.as_user(w.admin, w.authority)
    client.get("/insight/vcse-share")
    with count_queries() as before:
        client.get("/insight/vcse-share")
    for year in (2023, 2024, 2025, 2026):
        for provider in (w.vcse, w.sme, w.large):
            for funder in (w.north, w.south, w.pcc):
                provider_year(year, funder, provider, 999, vcse=provider is w.vcse)
    commit()
    with count_queries() as after:
        assert client.get("/insight/vcse-share").status_code == 200
    assert after.count == before.count <= 20
