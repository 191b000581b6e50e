"""Rate card import: checked file, every bad row and column named, all or nothing, preview."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from openpyxl import Workbook, load_workbook

from marketplace.accounts.models import Role
from marketplace.catalogue.imports.cells import looks_like_formula
from marketplace.catalogue.imports.columns import (
    COLUMN_NAMES,
    COLUMNS,
    MAX_IMPORT_BYTES,
    ImportRefused,
)
from marketplace.catalogue.imports.context import check_details, load_context
from marketplace.catalogue.imports.read import read_rate_card_file
from marketplace.catalogue.imports.write import import_rows
from marketplace.catalogue.models import Listing, ListingPrice, ListingStatus
from marketplace.catalogue.services.details import ListingDetails
from marketplace.catalogue.services.listings import create_listing
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import BusinessRuleViolation, NotFound
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import make_member
from tests.pages import count, error_messages, main


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


def row(**changes) -> dict[str, str]:
    base = {c.name: c.example for c in COLUMNS}
    base.update(changes)
    return base


def as_csv(rows: list[dict[str, str]], header: list[str] | None = None) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = header or COLUMN_NAMES
    writer.writerow(header)
    for r in rows:
        writer.writerow([r.get(name, "") for name in header])
    return buffer.getvalue().encode()


def as_xlsx(rows: list[dict[str, str]]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(COLUMN_NAMES)
    for r in rows:
        sheet.append([r.get(name, "") for name in COLUMN_NAMES])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def read(data: bytes) -> list[dict[str, str]]:
    return read_rate_card_file("rates.csv", io.BytesIO(data))


# ---------------------------------------------------------------------------------------------
# import_rows


def test_import_creates_updates_and_prices(world, provider):
    organisation, admin = provider
    existing = make_listing(world.lot_a, organisation, title="Old title", price_pence=5_000)
    commit()
    next_month = (london_date() + timedelta(days=31)).isoformat()
    rows = [
        row(title="New service", publish="yes"),
        row(title="Second new", regions="B", unit_price="80", publish=""),
        row(reference=existing.reference, title="Renamed", unit_price="60.50",
            price_effective_from=next_month),
    ]  # fmt: skip
    preview = import_rows(admin, organisation, [dict(r) for r in rows], dry_run=True)
    assert (preview.created, preview.updated, preview.prices_changed) == (2, 1, 1)
    assert count(Listing) == 1

    result = import_rows(admin, organisation, rows)
    commit()
    assert (result.created, result.updated, result.prices_changed, result.published) == (2, 1, 1, 1)
    listings = {
        listing.title: listing
        for listing in db.session.scalars(
            db.select(Listing).where(Listing.organisation_id == organisation.id)
        )
    }
    new = listings["New service"]
    assert new.status == ListingStatus.PUBLISHED and new.published_at is not None
    assert new.reference.startswith("SL-")
    assert [p.unit_price_pence for p in new.prices] == [12_500]
    assert sorted(a.region.code for a in new.areas) == ["A", "B"]
    assert new.complexity_medium and new.complexity_high and not new.complexity_low
    assert listings["Second new"].status == ListingStatus.DRAFT
    assert [a.region.code for a in listings["Second new"].areas] == ["B"]
    renamed = listings["Renamed"]
    assert renamed.id == existing.id
    assert [(p.unit_price_pence, p.effective_to) for p in renamed.prices] == [
        (5_000, london_date() + timedelta(days=31)),
        (6_050, None),
    ]
    actions = set(db.session.scalars(db.select(AuditEvent.action)))
    assert {
        "listing.created",
        "listing.updated",
        "listing.price_set",
        "rate_card.imported",
    } <= actions


def test_a_row_identical_to_the_listing_changes_nothing_but_confirms(world, provider):
    organisation, admin = provider
    import_rows(admin, organisation, [row()])
    commit()
    listing = db.session.scalar(db.select(Listing))
    result = import_rows(admin, organisation, [row(reference=listing.reference)])
    assert (result.updated, result.unchanged, result.prices_changed) == (0, 1, 0)


def test_one_bad_row_among_many_writes_nothing_and_names_row_and_column(world, provider):
    organisation, admin = provider
    rows = [row(title=f"Service {n}") for n in range(300)]
    rows[157]["unit_price"] = "-4.50"
    rows[200]["regions"] = "D"
    rows[201]["vat_treatment"] = "sometimes"
    rows[202]["unit_price"] = "12.345"
    rows[203]["price_effective_from"] = (london_date() - timedelta(days=1)).isoformat()
    with pytest.raises(ImportRefused) as excinfo:
        import_rows(admin, organisation, rows)
    problems = {(p.row, p.column): p.message for p in excinfo.value.problems}
    assert problems[(159, "unit_price")] == "The unit price cannot be negative"
    assert "not an active member" in problems[(202, "regions")]
    assert (203, "vat_treatment") in problems
    assert "fractions of a penny" in problems[(204, "unit_price")]
    assert "past" in problems[(205, "price_effective_from")]
    assert len(problems) == 5
    db.session.rollback()
    assert count(Listing) == 0 and count(ListingPrice) == 0


def test_one_bad_row_among_9999_good_ones_is_named_and_nothing_is_written(world, provider):
    organisation, admin = provider
    rows = [row(title=f"Service {n}") for n in range(10_000)]
    rows[6_543]["unit_price"] = "=1+1"
    with pytest.raises(ImportRefused) as excinfo:
        import_rows(admin, organisation, rows)
    # Row numbers are the spreadsheet's: the header is row 1.
    assert [(p.row, p.column) for p in excinfo.value.problems] == [(6_545, "unit_price")]
    db.session.rollback()
    assert count(Listing) == 0 and count(ListingPrice) == 0


def test_every_error_of_a_row_is_reported(world, provider):
    organisation, admin = provider
    # A new listing needs its title and settings; an empty cell of an existing one keeps its value.
    new = row(title="", unit="fortnight", settings="", max_units="lots", lot="XYZ")
    unknown = row(title="", unit="fortnight", max_units="lots", reference="SL-999999")
    with pytest.raises(ImportRefused) as excinfo:
        import_rows(admin, organisation, [new, unknown])
    columns = {(p.row, p.column) for p in excinfo.value.problems}
    assert {(2, c) for c in ("title", "unit", "settings", "max_units", "lot")} <= columns
    assert {(3, "reference"), (3, "unit"), (3, "max_units")} == {c for c in columns if c[0] == 3}


def test_import_checks_agree_with_the_listing_services(world, provider):
    """The bulk checker applies the same rules as create_listing, field by field."""
    organisation, admin = provider
    ctx = load_context(organisation, [])
    lot = world.lot_a
    samples = [
        ListingDetails(title="", summary="x" * 301, lot_id=lot.id, unit="x",
                                vat_treatment="standard", max_units=0, monthly_capacity=-1,
                                region_codes=["D"], settings=[], formats=["group"],
                                complexities=["low"], min_age=50, max_age=20),
        ListingDetails(title="Fine", summary="Fine", lot_id=lot.id, unit="week",
                                vat_treatment="exempt", max_units=5, monthly_capacity=5,
                                region_codes=["A"], settings=["remote"], formats=["group"],
                                complexities=["low"], contact_email="nope", min_units=9),
    ]  # fmt: skip
    for details in samples:
        with pytest.raises(BusinessRuleViolation) as excinfo:
            create_listing(admin, organisation, details, unit_price_pence=100)
        ours: dict = {}
        check_details(details, lot, ctx, ours)
        assert ours == excinfo.value.errors


def test_formula_cells_are_refused(world, provider):
    organisation, admin = provider
    with pytest.raises(ImportRefused) as excinfo:
        import_rows(admin, organisation, [row(title="=cmd|' /C calc'!A0"), row(summary="@SUM(A1)")])
    assert [(p.row, p.column) for p in excinfo.value.problems] == [(2, "title"), (3, "summary")]
    assert "formula" in excinfo.value.problems[0].message
    assert looks_like_formula("+44 20 7946 0000")
    assert not looks_like_formula("-5")
    assert not looks_like_formula("Move-on support")


def test_another_providers_listing_cannot_be_updated(world, provider):
    organisation, admin = provider
    other, _ = make_provider("Other")
    theirs = make_listing(world.lot_a, other)
    commit()
    with pytest.raises(ImportRefused) as excinfo:
        import_rows(admin, organisation, [row(reference=theirs.reference)])
    assert excinfo.value.problems[0].column == "reference"


def test_only_the_providers_editors_may_import(world, provider):
    organisation, _ = provider
    buyer = make_member(Role.BUYER)
    with pytest.raises(NotFound):
        import_rows(buyer, organisation, [row()])


def test_import_runs_a_fixed_number_of_statements(world, provider, count_queries):
    organisation, admin = provider
    existing = [make_listing(world.lot_a, organisation) for _ in range(5)]
    commit()
    db.session.expire_all()

    def rows(n):
        return [row(title=f"S{i}") for i in range(n)] + [
            row(reference=listing.reference, unit_price="70") for listing in existing
        ]

    with count_queries() as few:
        import_rows(admin, organisation, rows(3))
    db.session.rollback()
    with count_queries() as many:
        import_rows(admin, organisation, rows(200))
    db.session.rollback()
    assert many.count == few.count


def test_bulk_updates_never_set_the_primary_key(world, provider, count_queries):
    """Setting a key, even to itself, makes SQLite check every table that refers to it: 10,000
    updated listings took minutes."""
    organisation, admin = provider
    listings = [make_listing(world.lot_a, organisation) for _ in range(3)]
    commit()
    rows = [
        row(reference=listing.reference, unit_price="70", title="Renamed") for listing in listings
    ]
    with count_queries() as counter:
        import_rows(admin, organisation, rows)
    updates = [s for s in counter.statements if s.startswith("UPDATE")]
    assert {s.split(" SET ")[0] for s in updates} == {"UPDATE listings", "UPDATE listing_prices"}
    assert not [s for s in updates if " SET id=" in s or ", id=" in s.split(" WHERE ")[0]]


# ---------------------------------------------------------------------------------------------
# Reading files


def test_csv_and_xlsx_are_read_alike():
    rows = [row(title="From a spreadsheet", min_age="18", unit_price="125.5")]
    from_csv = read(as_csv(rows))
    from_xlsx = read_rate_card_file("rates.xlsx", io.BytesIO(as_xlsx(rows)))
    assert from_csv == from_xlsx
    assert from_csv[0]["title"] == "From a spreadsheet"


def test_wrong_header_is_refused_clearly():
    header = [n for n in COLUMN_NAMES if n != "unit_price"] + ["price"]
    with pytest.raises(ImportRefused) as excinfo:
        read(as_csv([row()], header=header))
    message = excinfo.value.errors["file"][0]
    assert "missing unit_price" in message and "not expected price" in message


def test_files_that_are_not_csv_or_xlsx_are_refused():
    for data in (b"%PDF-1.4 fake", b"MZ\x90\x00program", b"\x89PNG\r\n\x1a\n....", b"a\x00b"):
        with pytest.raises(ImportRefused) as excinfo:
            read(data)
        assert "file" in excinfo.value.errors
    with pytest.raises(ImportRefused):
        read(b"")


def test_oversized_file_is_refused_before_parsing():
    data = b"x" * (MAX_IMPORT_BYTES + 1)
    with pytest.raises(ImportRefused) as excinfo:
        read(data)
    assert "smaller than 5 MB" in excinfo.value.errors["file"][0]


def test_template_downloads_have_the_columns(client):
    response = client.get("/catalogue/rate-card/template.csv")
    assert next(csv.reader(io.StringIO(response.get_data(as_text=True)))) == COLUMN_NAMES
    response = client.get("/catalogue/rate-card/template.xlsx")
    workbook = load_workbook(io.BytesIO(response.data))
    assert [c.value for c in workbook["Rate card"][1]] == COLUMN_NAMES
    rules = [row[0] for row in workbook["Column rules"].iter_rows(values_only=True) if row]
    assert rules[1 : len(COLUMNS) + 1] == COLUMN_NAMES
    page = main(client.get("/catalogue/rate-card/import/help"))
    assert "price_effective_from" in page


# ---------------------------------------------------------------------------------------------
# Pages


def upload(web, data: bytes, name: str = "rates.csv"):
    return web.post(
        "/catalogue/rate-card/import",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def test_upload_preview_then_confirm(web, world, provider):
    organisation, admin = provider
    web.as_user(admin, organisation)
    response = upload(
        web,
        as_xlsx(
            [
                row(title="Quokka housing", publish="yes"),
                row(title="Zephyr mentoring", publish="yes"),
            ]
        ),
        "r.xlsx",
    )
    assert response.status_code == 302
    page = main(web.get(response.location))
    assert "2 listings will be created" in page and "0 listings will be changed" in page
    assert count(Listing) == 0
    token = page.split('name="token" type="hidden" value="', 1)[1].split('"', 1)[0]
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token})
    assert response.status_code == 302
    assert count(Listing) == 2
    # The published row is searchable at once (the bulk write re-indexed it in its transaction).
    found = main(web.get("/services?q=zephyr"))
    assert "Zephyr mentoring" in found and "Quokka housing" not in found
    # The same confirmation cannot be replayed.
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token})
    assert response.status_code == 302
    assert count(Listing) == 2


def test_upload_with_errors_lists_them_and_writes_nothing(web, world, provider):
    organisation, admin = provider
    rows = [row(title=f"S{n}") for n in range(20)]
    rows[7]["unit_price"] = "=cmd|' /C calc'!A0"
    response = upload(web.as_user(admin, organisation), as_csv(rows))
    assert response.status_code == 422
    assert "1 error" in error_messages(response)[0]
    page = main(response)
    assert '<td class="govuk-table__cell govuk-table__cell--numeric">9</td>' in page
    assert "unit_price" in page
    assert count(Listing) == 0


def test_upload_of_a_wrong_type_is_refused(web, world, provider):
    organisation, admin = provider
    response = upload(web.as_user(admin, organisation), b"%PDF-1.4 not a rate card", "rates.csv")
    assert response.status_code == 422
    assert "CSV file or an Excel workbook" in error_messages(response)[0]


def test_a_50_mb_upload_is_refused(web, world, provider):
    organisation, admin = provider
    # The multipart body built by hand: the test client would spool it to a temporary file.
    boundary = "rate-card-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + b"a" * (50 * 1024 * 1024)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    response = web.as_user(admin, organisation).post(
        "/catalogue/rate-card/import",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 413
    assert count(Listing) == 0


def test_wrong_role_is_403(web, world, provider):
    organisation, _ = provider
    buyer = make_member(Role.BUYER)
    commit()
    response = web.as_user(buyer).get("/catalogue/rate-card/import")
    assert response.status_code == 403
    assert upload(web, as_csv([row()])).status_code == 403


def test_csrf_is_checked(web, world, provider, csrf_enabled):
    organisation, admin = provider
    response = upload(web.as_user(admin, organisation), as_csv([row()]))
    assert response.status_code in (400, 422)
    assert count(Listing) == 0
