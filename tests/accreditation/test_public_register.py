"""The public arrangement pages and register of members: no sign-in, active members only."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType
from marketplace.accreditation.models import (
    ArrangementStatus,
    LegalRegime,
    LotMembership,
    MembershipStatus,
)
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from tests.accreditation.factories import make_arrangement, make_criterion, make_lot_membership
from tests.factories import make_organisation

REGISTER_FIELDS = [
    "organisation",
    "organisation_type",
    "charity_number",
    "companies_house_number",
    "lot_code",
    "lot_name",
    "region_code",
    "pcc_area_code",
    "area_name",
    "admitted_on",
]


@pytest.fixture
def register(app):
    """A live arrangement with members in several states, lots and areas."""
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE, name="Rehab DPS", lots=("ACC", "ETE"), regions=("A", "B")
    )
    acc, ete = arrangement.lots
    hope = make_organisation(name="Hope Housing", charity_number="1234567")
    work = make_organisation(
        OrganisationType.PROVIDER_PRIVATE, name="Work Ltd", companies_house_number="01234567"
    )
    make_lot_membership(acc, hope, region_code="A")
    make_lot_membership(ete, work, region_code="B")
    make_lot_membership(acc, work, pcc_area_code="cheshire")  # Cheshire is in region B
    make_lot_membership(
        acc, make_organisation(name="Suspended Org"), status=MembershipStatus.SUSPENDED
    )
    make_lot_membership(acc, make_organisation(name="Removed Org"), status=MembershipStatus.REMOVED)
    make_criterion(acc, question="Do you hold public liability insurance?")
    commit()
    return arrangement


def test_register_html_needs_no_sign_in_and_lists_active_members_only(client, register):
    response = client.get(f"/arrangements/{register.id}/register")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Hope Housing" in html and "Work Ltd" in html
    assert "Suspended Org" not in html and "Removed Org" not in html
    assert "Cheshire" in html and "North East" in html
    assert "3 memberships" in html


def test_register_filters(client, register):
    by_lot = client.get(f"/arrangements/{register.id}/register?lot=ETE").get_data(as_text=True)
    assert "1 membership" in by_lot and "Work Ltd" in by_lot and "Hope Housing" not in by_lot
    by_region = client.get(f"/arrangements/{register.id}/register?region=B").get_data(as_text=True)
    # Region B includes the Cheshire PCC area membership.
    assert "2 memberships" in by_region and "Hope Housing" not in by_region
    both = client.get(f"/arrangements/{register.id}/register?lot=ACC&region=A").get_data(
        as_text=True
    )
    assert "1 membership" in both and "Hope Housing" in both
    unknown = client.get(f"/arrangements/{register.id}/register?lot=NOPE&page=abc")
    assert unknown.status_code == 200 and "3 memberships" in unknown.get_data(as_text=True)


def test_register_csv(client, register):
    response = client.get(f"/arrangements/{register.id}/register.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="{register.reference}-register.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(response.get_data().decode("utf-8-sig"), newline="")))
    assert list(rows[0]) == REGISTER_FIELDS
    assert [(r["lot_code"], r["area_name"], r["organisation"]) for r in rows] == [
        ("ACC", "Cheshire", "Work Ltd"),
        ("ACC", "North East", "Hope Housing"),
        ("ETE", "North West", "Work Ltd"),
    ]
    assert rows[1]["charity_number"] == "1234567"
    assert rows[1]["admitted_on"] == "2026-01-15"
    assert rows[0]["pcc_area_code"] == "cheshire" and rows[0]["region_code"] == ""


def test_register_csv_opens_in_a_spreadsheet_with_names_intact(client, register):
    """V1: the register is for anyone to open in a spreadsheet. Without a byte order mark Excel
    reads the UTF-8 file as Windows-1252: "Môn – Ynys" came out as "MÃ´n â€“ Ynys"."""
    welsh = make_organisation(name="Cymorth Adferiad Môn – Ynys", charity_number="1160524")
    make_lot_membership(register.lots[0], welsh, region_code="B")
    commit()
    data = client.get(f"/arrangements/{register.id}/register.csv").get_data()
    assert data.startswith(b"\xef\xbb\xbf")
    assert data.count(b"\xef\xbb\xbf") == 1
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows[0] == REGISTER_FIELDS
    assert ["Cymorth Adferiad Môn – Ynys", "provider_vcse", "1160524"] in [r[:3] for r in rows]
    assert all(line.endswith(b"\r") for line in data.split(b"\n")[:-1])  # CRLF rows


def test_register_json(client, register):
    response = client.get(f"/arrangements/{register.id}/register.json")
    assert response.status_code == 200
    records = response.get_json()
    assert isinstance(records, list) and len(records) == 3
    assert set(records[0]) == set(REGISTER_FIELDS)
    hope = next(r for r in records if r["organisation"] == "Hope Housing")
    assert hope == {
        "organisation": "Hope Housing",
        "organisation_type": "provider_vcse",
        "charity_number": "1234567",
        "companies_house_number": None,
        "lot_code": "ACC",
        "lot_name": "Accommodation",
        "region_code": "A",
        "pcc_area_code": None,
        "area_name": "North East",
        "admitted_on": "2026-01-15",
    }


def test_csv_cells_that_look_like_formulas_are_defused(client, app):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    make_lot_membership(arrangement.lots[0], make_organisation(name="=HYPERLINK(1)"))
    commit()
    text = client.get(f"/arrangements/{arrangement.id}/register.csv").get_data(as_text=True)
    assert "'=HYPERLINK(1)" in text


def test_public_arrangement_pages(client, register):
    listing = client.get("/arrangements")
    assert listing.status_code == 200 and "Rehab DPS" in listing.get_data(as_text=True)
    page = client.get(f"/arrangements/{register.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "Do you hold public liability insurance?" in html
    assert "Accommodation" in html and "North West" in html
    assert "/register" in html and "Sign in" in html or "sign in" in html


def test_pending_arrangements_are_not_public(client, app):
    pending = make_arrangement(name="Secret plans")
    commit()
    assert "Secret plans" not in client.get("/arrangements").get_data(as_text=True)
    for suffix in ("", "/register", "/register.csv", "/register.json"):
        assert client.get(f"/arrangements/{pending.id}{suffix}").status_code == 404
    assert client.get("/arrangements/999999/register").status_code == 404


def test_public_pages_show_no_personal_data(client, register):
    from marketplace.accounts.models import Role
    from marketplace.accreditation.queries import register_rows
    from tests.factories import make_member

    members = register_rows(register)
    people = [make_member(Role.PROVIDER_ADMIN, m.organisation) for m in members]
    commit()
    for url in (
        f"/arrangements/{register.id}",
        f"/arrangements/{register.id}/register",
        f"/arrangements/{register.id}/register.csv",
        f"/arrangements/{register.id}/register.json",
    ):
        text = client.get(url).get_data(as_text=True)
        for user in people:
            assert user.email not in text and user.name not in text


def test_frozen_regime_label_on_public_page(client, app):
    arrangement = make_arrangement(
        status=ArrangementStatus.LIVE, regime=LegalRegime.PA2023_DYNAMIC_MARKET
    )
    commit()
    html = client.get(f"/arrangements/{arrangement.id}").get_data(as_text=True)
    assert "Dynamic market (Procurement Act 2023)" in html


def _fill(arrangement, count):
    lots = arrangement.lots
    regions = ["A", "B"]
    for n in range(count):
        make_lot_membership(
            lots[n % len(lots)],
            make_organisation(name=f"Provider {n:03d}", charity_number=f"{1000000 + n}"),
            region_code=regions[n % 2] if n % 3 else None,
            pcc_area_code="cheshire" if not n % 3 else None,
        )
    commit()


@pytest.mark.parametrize(
    "suffix", ["/register", "/register?lot=ACC&region=B&page=2", "/register.csv", "/register.json"]
)
def test_register_query_count_does_not_grow_with_members(client, app, count_queries, suffix):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE)
    _fill(arrangement, 5)
    url = f"/arrangements/{arrangement.id}{suffix}"
    with count_queries() as few:
        assert client.get(url).status_code == 200
    _fill(arrangement, 40)
    with count_queries() as many:
        assert client.get(url).status_code == 200
    assert few.count == many.count <= 10


def _membership_of(arrangement, organisation_name: str) -> LotMembership:
    return db.session.scalars(
        sa.select(LotMembership)
        .join(LotMembership.organisation)
        .where(
            LotMembership.arrangement_id == arrangement.id,
            Organisation.name == organisation_name,
            LotMembership.status == MembershipStatus.ACTIVE,
        )
        .order_by(LotMembership.id)
    ).first()


def test_an_unchanged_register_page_is_served_with_one_query(client, register, count_queries):
    url = f"/arrangements/{register.id}/register?lot=acc"
    with count_queries() as first:
        built = client.get(url)
    with count_queries() as again:
        reused = client.get(url)
    assert first.count > 1
    assert again.count == 1, again.statements  # the register's generation
    assert reused.get_data() == built.get_data()
    # "acc" and " ACC" name the same lot, so they share the page.
    same_lot_url = f"/arrangements/{register.id}/register?lot=+ACC"
    with count_queries() as same_lot:
        assert client.get(same_lot_url).get_data() == built.get_data()
    assert same_lot.count == 1, same_lot.statements


def test_register_shows_each_change_at_once_after_it_was_cached(client, register):
    from marketplace.accreditation.services import memberships as membership_services
    from tests.accreditation.builders import make_authority

    url = f"/arrangements/{register.id}/register"
    assert "Hope Housing" in client.get(url).get_data(as_text=True)  # now cached

    _, admin = make_authority()
    hope = _membership_of(register, "Hope Housing")
    membership_services.suspend(admin, hope, "Insurance lapsed")
    commit()
    html = client.get(url).get_data(as_text=True)
    assert "Hope Housing" not in html and "2 memberships" in html

    make_lot_membership(
        register.lots[1], make_organisation(name="New Start Trust"), region_code="A"
    )
    commit()
    assert "New Start Trust" in client.get(url).get_data(as_text=True)

    work = _membership_of(register, "Work Ltd").organisation
    work.name = "Work Renamed Ltd"
    commit()
    html = client.get(url).get_data(as_text=True)
    assert "Work Renamed Ltd" in html and "Work Ltd" not in html

    register.closed_at = utcnow()
    register.status = ArrangementStatus.CLOSED
    commit()
    assert client.get(url).status_code == 200  # a closed arrangement keeps its public register
    register.name = "Renamed DPS"
    commit()
    assert "Renamed DPS" in client.get(url).get_data(as_text=True)


def test_unwatched_changes_keep_the_cached_register(client, register, count_queries):
    url = f"/arrangements/{register.id}/register"
    client.get(url)
    hope = _membership_of(register, "Hope Housing").organisation
    hope.active = not hope.active  # not shown in the register
    commit()
    with count_queries() as again:
        client.get(url)
    assert again.count == 1


def test_unknown_and_unpublished_arrangements_stay_404_when_cached(client, app):
    pending = make_arrangement(status=ArrangementStatus.PENDING)
    commit()
    for _ in range(2):
        assert client.get(f"/arrangements/{pending.id}/register").status_code == 404
        assert client.get("/arrangements/999999/register").status_code == 404
    pending.status = ArrangementStatus.LIVE
    pending.went_live_at = utcnow()
    commit()
    assert client.get(f"/arrangements/{pending.id}/register").status_code == 200
