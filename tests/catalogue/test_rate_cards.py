"""Rate cards: page, CSV, XLSX and JSON; today and as it stood on a past date; the API."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from openpyxl import load_workbook

from marketplace.accounts.models import Role
from marketplace.accreditation.models import MembershipStatus
from marketplace.catalogue import rate_cards
from marketplace.catalogue.models import ListingPrice, ListingStatus
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import make_member
from tests.pages import main, text


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    organisation, admin = make_provider("Hope Housing")
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    commit()
    return organisation, admin


def add_future_price(listing, pence: int, day: date) -> None:
    current = listing.prices[-1]
    current.effective_to = day
    listing.prices.append(
        ListingPrice(unit_price_pence=pence, effective_from=day, created_at=datetime.now(UTC))
    )
    db.session.flush()


@pytest.fixture
def card_world(world, provider):
    organisation, admin = provider
    today = london_date()
    housing = make_listing(
        world.lot_a,
        organisation,
        title="Move-on accommodation",
        price_pence=12_500,
        price_from=today - timedelta(days=30),
        region_codes=("A", "B"),
        contact_email="secret-referrals@example.org",
    )
    add_future_price(housing, 13_000, today + timedelta(days=40))
    make_listing(world.lot_a, organisation, title="Draft service", status=ListingStatus.DRAFT)
    make_listing(
        world.lot_a, organisation, title="Withdrawn service", status=ListingStatus.WITHDRAWN
    )
    make_listing(world.lot_a, organisation, title="Paused service", status=ListingStatus.PAUSED)
    make_listing(
        world.lot_a,
        organisation,
        title="=cmd|' /C calc'!A0",
        summary="+SUM(1,2)",
        price_pence=999,
        price_from=today - timedelta(days=10),
    )
    commit()
    return organisation, housing


def test_rate_card_lists_published_listings_with_current_and_next_price(card_world):
    organisation, housing = card_world
    card = rate_cards.rate_card(organisation)
    titles = [line.listing.title for line in card.lines]
    assert titles == ["=cmd|' /C calc'!A0", "Move-on accommodation"]
    line = card.lines[1]
    assert line.price.unit_price_pence == 12_500
    assert line.next_price.unit_price_pence == 13_000
    assert line.region_codes == ["A", "B"]


def test_rate_card_hides_listings_whose_membership_is_not_active(world, card_world):
    organisation, housing = card_world
    from marketplace.accreditation.models import LotMembership

    for membership in db.session.scalars(
        db.select(LotMembership).where(LotMembership.organisation_id == organisation.id)
    ):
        membership.status = MembershipStatus.SUSPENDED
        membership.suspended_at = datetime.now(UTC)
        from marketplace.accreditation.models import SuspensionCause

        membership.suspension_cause = SuspensionCause.AUTHORITY
    commit()
    assert rate_cards.rate_card(organisation).lines == []


def test_rate_card_is_read_in_a_fixed_number_of_queries(world, provider, count_queries):
    organisation, _ = provider
    make_listing(world.lot_a, organisation)
    commit()
    with count_queries() as few:
        assert len(rate_cards.rate_card(organisation).lines) == 1
    for _ in range(30):
        make_listing(world.lot_a, organisation, region_codes=("A", "B"))
    commit()
    db.session.expire_all()
    with count_queries() as many:
        assert len(rate_cards.rate_card(organisation).lines) == 31
    assert many.count == few.count <= 6


def test_past_date_uses_the_price_then_and_the_listings_published_then(world, provider):
    organisation, admin = provider
    today = london_date()
    old_day = today - timedelta(days=20)
    long_ago = datetime.now(UTC) - timedelta(days=60)
    listing = make_listing(
        world.lot_a, organisation, title="Old", price_pence=1_000,
        price_from=today - timedelta(days=50),
    )  # fmt: skip
    listing.published_at = long_ago
    listing.prices[0].effective_to = today - timedelta(days=5)
    listing.prices.append(
        ListingPrice(
            unit_price_pence=2_000,
            effective_from=today - timedelta(days=5),
            created_at=datetime.now(UTC),
        )
    )
    recent = make_listing(world.lot_a, organisation, title="New this week")
    recent.published_at = datetime.now(UTC) - timedelta(days=2)
    gone = make_listing(world.lot_a, organisation, title="Withdrawn last week")
    gone.published_at = long_ago
    gone.status = ListingStatus.WITHDRAWN
    gone.withdrawn_at = datetime.now(UTC) - timedelta(days=7)
    gone.prices[0].effective_from = today - timedelta(days=50)
    paused = make_listing(world.lot_a, organisation, title="Paused then")
    paused.published_at = long_ago
    paused.prices[0].effective_from = today - timedelta(days=50)
    db.session.add_all(
        [
            AuditEvent(
                action="listing.paused", object_type="listing", object_id=str(paused.id),
                organisation_id=organisation.id, occurred_at=long_ago + timedelta(days=1),
            ),
            AuditEvent(
                action="listing.resumed", object_type="listing", object_id=str(paused.id),
                organisation_id=organisation.id, occurred_at=datetime.now(UTC) - timedelta(days=1),
            ),
        ]
    )  # fmt: skip
    commit()

    then = rate_cards.rate_card(organisation, old_day)
    assert then.historical
    assert [(line.listing.title, line.price.unit_price_pence) for line in then.lines] == [
        ("Old", 1_000),
        ("Withdrawn last week", 5_000),
    ]
    now = rate_cards.rate_card(organisation)
    assert [(line.listing.title, line.price.unit_price_pence) for line in now.lines] == [
        ("New this week", 5_000),
        ("Old", 2_000),
        ("Paused then", 5_000),
    ]


def test_parse_on_refuses_bad_and_future_dates():
    today = date(2026, 11, 20)
    assert rate_cards.parse_on(None, today) is None
    assert rate_cards.parse_on("2026-11-01", today) == date(2026, 11, 1)
    for raw in ("2026-13-01", "yesterday", "2026-11-21", "1999-12-31", "2026-1-1"):
        with pytest.raises(rate_cards.BadRateCardDate):
            rate_cards.parse_on(raw, today)


# ---------------------------------------------------------------------------------------------
# Pages and downloads


def test_public_page_shows_prices_without_referral_contacts(client, card_world):
    organisation, housing = card_world
    response = client.get(f"/catalogue/providers/{organisation.id}/rate-card")
    assert response.status_code == 200
    page = main(response)
    assert "Move-on accommodation" in page
    assert "£125.00" in page and "£130.00" in page
    assert "Draft service" not in page and "Withdrawn service" not in page
    assert "secret-referrals@example.org" not in text(response)


def test_csv_download_escapes_formulas(client, card_world):
    organisation, housing = card_world
    response = client.get(f"/catalogue/providers/{organisation.id}/rate-card.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [r["title"] for r in rows] == ["'=cmd|' /C calc'!A0", "Move-on accommodation"]
    assert rows[0]["summary"] == "'+SUM(1,2)"
    assert rows[1]["unit_price_pence"] == "12500"
    assert rows[1]["unit_price"] == "125.00"
    assert rows[1]["next_unit_price_pence"] == "13000"
    assert rows[1]["regions"] == "A; B"
    assert "contact_email" not in rows[0]


def test_xlsx_download_has_the_same_rows_as_text(client, card_world):
    organisation, housing = card_world
    response = client.get(f"/catalogue/providers/{organisation.id}/rate-card.xlsx")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = list(sheet.iter_rows(values_only=True))
    header = rows[0]
    assert header[:3] == ("reference", "title", "lot")
    titles = [row[1] for row in rows[1:]]
    assert titles == ["'=cmd|' /C calc'!A0", "Move-on accommodation"]
    assert sheet.cell(row=2, column=2).data_type == "s"
    assert rows[2][header.index("unit_price_pence")] == 12_500


def test_json_download(client, card_world):
    organisation, housing = card_world
    response = client.get(f"/catalogue/providers/{organisation.id}/rate-card.json")
    data = json.loads(response.data)
    assert data["provider"] == {"id": organisation.id, "name": "Hope Housing"}
    assert data["historical"] is False
    record = data["listings"][1]
    assert record["reference"] == housing.reference
    assert record["unit_price_pence"] == 12_500
    assert record["regions"] == ["A", "B"]
    assert "contact_email" not in record


def test_past_date_page_and_bad_dates(client, card_world):
    organisation, housing = card_world
    past = (london_date() - timedelta(days=20)).isoformat()
    response = client.get(f"/catalogue/providers/{organisation.id}/rate-card?on={past}")
    assert response.status_code == 200
    assert "as it stood on" in main(response)
    assert (
        client.get(f"/catalogue/providers/{organisation.id}/rate-card?on=nope").status_code == 400
    )
    future = (london_date() + timedelta(days=2)).isoformat()
    assert (
        client.get(f"/catalogue/providers/{organisation.id}/rate-card.csv?on={future}").status_code
        == 400
    )


def test_unknown_or_non_provider_organisation_is_404(client, card_world):
    buyer = make_member(Role.BUYER)
    commit()
    assert client.get("/catalogue/providers/999999/rate-card").status_code == 404
    assert (
        client.get(
            f"/catalogue/providers/{buyer.memberships[0].organisation_id}/rate-card.json"
        ).status_code
        == 404
    )


# ---------------------------------------------------------------------------------------------
# API


def test_api_rate_card_json_and_csv(client, card_world):
    organisation, housing = card_world
    url = f"/api/v1/providers/{organisation.id}/rate-card"
    response = client.get(url)
    assert response.status_code == 200
    assert response.json["listings"][1]["unit_price_pence"] == 12_500
    response = client.get(url, headers={"Accept": "text/csv"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "'=cmd" in response.get_data(as_text=True)
    past = (london_date() - timedelta(days=60)).isoformat()
    response = client.get(f"{url}?on={past}")
    assert response.json["historical"] is True
    assert response.json["listings"] == []


def test_api_rate_card_bad_input(client, card_world):
    organisation, housing = card_world
    response = client.get(f"/api/v1/providers/{organisation.id}/rate-card?on=2026-02-30")
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert "YYYY-MM-DD" in response.json["detail"]
    response = client.get("/api/v1/providers/999999/rate-card")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
