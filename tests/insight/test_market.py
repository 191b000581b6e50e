"""The market map against a hand-built world: members, listings, capacity free and paid spend
per region and lot, the gaps, and the page, CSV and API agreeing; bad input; who sees a cell's
details. Spend rows go into ``SpendMonth`` directly (the ledger's derivation is another lane's)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import lxml.html
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accreditation.models import ArrangementStatus, MembershipStatus
from marketplace.catalogue.models import CapacityCommitment, ListingStatus
from marketplace.core.clock import frozen_at, utcnow
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.insight.models import Measure, SpendMonth
from marketplace.reference.models import PccArea
from tests.accreditation.factories import category, make_arrangement, make_lot_membership, region
from tests.catalogue.factories import make_listing
from tests.factories import make_member, make_organisation

NOW = datetime(2026, 12, 15, 12, 0, tzinfo=UTC)


@pytest.fixture
def frozen():
    with frozen_at(NOW):
        yield


def _pcc_code_in(region_code: str) -> str:
    return db.session.scalar(
        sa.select(PccArea.code)
        .where(PccArea.region_id == region(region_code).id)
        .order_by(PccArea.code)
        .limit(1)
    )


def _commit_units(listing, month: date, units: int) -> None:
    db.session.add(
        CapacityCommitment(
            listing_id=listing.id, month=month, units=units, source="test", created_at=utcnow()
        )
    )


def _spend(month, measure, region_code, category_code, funder, pence) -> None:
    db.session.add(
        SpendMonth(
            month=month,
            financial_year=month.year if month.month >= 4 else month.year - 1,
            measure=measure,
            funder_id=funder.id,
            category_id=category(category_code).id,
            region_id=region(region_code).id,
            pcc_area_id=None,
            provider_vcse=True,
            provider_sme=True,
            amount_pence=pence,
            entries=1,
        )
    )


@pytest.fixture
def world(app, frozen):
    """Region A, Accommodation: two members (one region-wide, one for a PCC area in A; the first
    admitted twice), a suspended member and a member of a pending arrangement that do not count;
    two visible listings (10 and 5 a month) and a draft; call-offs taking 4 units this month, 12
    (more than the capacity) next month and 3 four months on. Region B, Education, training and
    employment: one member with one listing of no capacity. Paid spend in A/Accommodation from
    two funders this month and 11 months ago, with rows outside the window and of other
    measures."""
    live = make_arrangement(status=ArrangementStatus.LIVE, lots=("ACC", "ETE"), regions=("A", "B"))
    acc, ete = live.lots
    pending = make_arrangement(status=ArrangementStatus.PENDING, lots=("ACC",), regions=("A",))
    p1, p2, p3, p4, p5 = (make_organisation(OrganisationType.PROVIDER_VCSE) for _ in range(5))
    pcc_code = _pcc_code_in("A")
    make_lot_membership(acc, p1, region_code="A")
    make_lot_membership(acc, p1, pcc_area_code=pcc_code)
    make_lot_membership(acc, p2, pcc_area_code=pcc_code)
    make_lot_membership(acc, p3, region_code="A", status=MembershipStatus.SUSPENDED)
    make_lot_membership(pending.lots[0], p5, region_code="A")
    make_lot_membership(ete, p4, region_code="B")
    l1 = make_listing(acc, p1, region_codes=("A",), monthly_capacity=10)
    make_listing(acc, p2, region_codes=(), pcc_area_codes=(pcc_code,), monthly_capacity=5)
    make_listing(acc, p1, region_codes=("A",), status=ListingStatus.DRAFT, monthly_capacity=50)
    make_listing(ete, p4, region_codes=("B",), monthly_capacity=0)
    _commit_units(l1, date(2026, 12, 1), 4)
    _commit_units(l1, date(2027, 1, 1), 12)
    _commit_units(l1, date(2027, 4, 1), 3)
    funder = make_organisation(OrganisationType.PROBATION_REGION, region_id=region("A").id)
    other = make_organisation(OrganisationType.PCC)
    _spend(date(2026, 12, 1), Measure.PAID, "A", "ACC", funder, 12_345)
    _spend(date(2026, 1, 1), Measure.PAID, "A", "ACC", other, 100)
    _spend(date(2025, 12, 1), Measure.PAID, "A", "ACC", funder, 999)  # 13 months ago
    _spend(date(2026, 12, 1), Measure.INVOICED, "A", "ACC", funder, 5_000)
    _spend(date(2026, 11, 1), Measure.PAID, "B", "ETE", other, 700)
    commit()
    return {"funder": funder, "other": other, "pcc_code": pcc_code, "providers": [p1, p2, p4]}


EXPECTED = {
    # (region, lot): (members, listings, capacity free, paid pence, gaps)
    # Capacity in A/ACC: l1 (10 - 4) + max(0, 10 - 12) + 10 = 16; l2 5 * 3 = 15.
    ("A", "ACC"): (2, 2, 31, 12_445, []),
    ("B", "ETE"): (1, 1, 0, 700, ["No capacity"]),
    ("B", "ACC"): (0, 0, 0, 0, ["No member", "No listing", "No capacity"]),
    ("A", "ETE"): (0, 0, 0, 0, ["No member", "No listing", "No capacity"]),
}


def _csv_rows(client, url="/insight/market.csv") -> dict:
    response = client.get(url)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    return {
        (r["region_code"], r["lot_code"]): (
            int(r["active_members"]),
            int(r["published_listings"]),
            int(r["capacity_free_units_next_3_months"]),
            int(r["paid_pence_last_12_months"]),
            [g for g in r["gaps"].split("; ") if g],
        )
        for r in rows
    }


def _api_cells(client, url="/api/v1/insight/market") -> dict:
    response = client.get(url)
    assert response.status_code == 200, response.get_json()
    return {
        (c["region_code"], c["lot_code"]): (
            c["active_members"],
            c["published_listings"],
            c["capacity_free"],
            c["paid_pence"],
            c["gaps"],
        )
        for c in response.get_json()["cells"]
    }


def _pounds(pence: int) -> str:
    return f"£{pence // 100:,}.{pence % 100:02d}"


def _page_cells(client, url="/insight/market") -> dict:
    response = client.get(url)
    assert response.status_code == 200
    tree = lxml.html.fromstring(response.get_data(as_text=True))
    found = {}
    for heading in tree.xpath('//h2[starts-with(@id, "region-")]'):
        code = heading.get("id").removeprefix("region-")
        table = heading.getnext()
        if table is None or table.tag != "table":
            continue
        for row in table.xpath(".//tbody/tr"):
            name = row.xpath("./th")[0].text_content().split(" in ")[0].strip()
            cells = [td.text_content().strip() for td in row.xpath("./td")]
            found[(code, name)] = cells
    return found


def _as_page(expected) -> list[str]:
    members, listings, capacity, paid, gaps = expected
    return [
        f"{members:,}",
        f"{listings:,}",
        f"{capacity:,}",
        _pounds(paid),
        " ".join(gaps) if gaps else "None",
    ]


def test_the_grid_counts_the_hand_built_world(world, client):
    cells = _csv_rows(client)
    for key, expected in EXPECTED.items():
        assert cells[key] == expected, key


def test_page_csv_and_api_agree_on_every_cell(world, client):
    from_csv = _csv_rows(client)
    from_api = _api_cells(client)
    page = _page_cells(client)
    assert from_csv == from_api
    names = {c.code: c.name for c in map(category, {k[1] for k in from_csv})}
    for (region_code, lot_code), expected in from_csv.items():
        shown = page[(region_code, names[lot_code])]
        assert [" ".join(shown[4].split())] == [_as_page(expected)[4]], (region_code, lot_code)
        assert shown[:4] == _as_page(expected)[:4], (region_code, lot_code)


def test_gaps_are_words_in_a_tag_and_can_be_shown_alone(world, client):
    page = client.get("/insight/market?region=B&gaps=yes").get_data(as_text=True)
    assert '<strong class="govuk-tag govuk-tag--red">No capacity</strong>' in page
    shown = _page_cells(client, "/insight/market?region=B&gaps=yes")
    assert ("B", category("ETE").name) in shown
    assert all(code == "B" for code, _name in shown)
    # Only one region's rows, and A's full cell is not a gap.
    shown_a = _page_cells(client, "/insight/market?region=A&gaps=yes")
    assert ("A", category("ACC").name) not in shown_a


def test_one_region_and_lot_by_filter_and_by_cell(world, client):
    assert _api_cells(client, "/api/v1/insight/market?region=a&lot=acc") == {
        ("A", "ACC"): EXPECTED[("A", "ACC")]
    }
    assert _api_cells(client, "/api/v1/insight/market/A/ACC") == {
        ("A", "ACC"): EXPECTED[("A", "ACC")]
    }
    assert _csv_rows(client, "/insight/market.csv?region=B&lot=ETE") == {
        ("B", "ETE"): EXPECTED[("B", "ETE")]
    }


@pytest.mark.parametrize(
    "url",
    [
        "/insight/market?region=ZZ",
        "/insight/market?lot=NOPE",
        "/insight/market.csv?region=ZZ",
        "/insight/market/ZZ/ACC",
        "/insight/market/A/NOPE",
    ],
)
def test_an_unknown_region_or_lot_is_not_found(world, client, login, url):
    buyer = make_member(Role.BUYER, make_organisation(OrganisationType.PROBATION_REGION))
    commit()
    login(buyer)
    assert client.get(url).status_code == 404


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/insight/market?region=ZZ",
        "/api/v1/insight/market?lot=NOPE",
        "/api/v1/insight/market/ZZ/ACC",
        "/api/v1/insight/market/A/NOPE",
    ],
)
def test_the_api_answers_an_unknown_region_or_lot_with_a_problem(world, client, url):
    response = client.get(url)
    assert response.status_code == 404
    assert response.mimetype == PROBLEM_JSON


def test_visitors_see_counts_without_links_to_details(world, client):
    page = client.get("/insight/market").get_data(as_text=True)
    assert "/insight/market/A/ACC" not in page
    response = client.get("/insight/market/A/ACC")
    assert response.status_code == 302  # sign in first


def test_a_provider_cannot_open_a_cell(world, client, login):
    provider_admin = make_member(Role.PROVIDER_ADMIN, world["providers"][0])
    commit()
    login(provider_admin)
    assert "/insight/market/A/ACC" not in client.get("/insight/market").get_data(as_text=True)
    assert client.get("/insight/market/A/ACC").status_code == 404


def test_a_commissioner_sees_members_listings_and_its_own_spend(world, client, login):
    buyer = make_member(Role.BUYER, world["funder"])
    commit()
    login(buyer)
    assert "/insight/market/A/ACC" in client.get("/insight/market").get_data(as_text=True)
    response = client.get("/insight/market/A/acc")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    for provider in world["providers"][:2]:
        assert provider.name in page
    assert world["providers"][2].name not in page  # a member in B, of another lot
    # Every commissioner's paid spend, and the funder's own (12,345 of 12,445).
    assert "£124.45" in page and "£123.45" in page


def test_the_authority_sees_every_commissioners_spend_only(world, client, login):
    admin = make_member(Role.AUTHORITY_ADMIN, make_organisation(OrganisationType.AUTHORITY))
    commit()
    login(admin)
    page = client.get("/insight/market/A/ACC").get_data(as_text=True)
    assert "£124.45" in page and "£123.45" not in page


def test_the_market_map_reads_a_fixed_number_of_statements(world, client, count_queries):
    client.get("/insight/market")  # warm
    with count_queries() as few:
        client.get("/insight/market?region=A")
    with count_queries() as many:
        client.get("/insight/market")
    assert many.count == few.count


def test_a_commissioner_is_offered_a_link_to_its_own_regions_section(world, client, login):
    """Twelve regions of lots make a long page: a commissioner in region A is offered a link to
    A's section (not when the page is already filtered to one region, nor to a visitor)."""
    link = 'href="#region-A">Go to'
    assert link not in client.get("/insight/market").get_data(as_text=True)
    buyer = make_member(Role.BUYER, world["funder"])
    commit()
    login(buyer)
    page = client.get("/insight/market").get_data(as_text=True)
    assert link in page and 'id="region-A"' in page
    assert f"Go to {region('A').name}, your organisation’s region" in page
    assert link not in client.get("/insight/market?region=B").get_data(as_text=True)
    assert link not in client.get("/insight/market?region=A").get_data(as_text=True)
