"""Rate card import semantics: an empty cell leaves the listing as it is, (clear) empties an optional
field, a new price is a new version, every change is previewed (listing, column, old → new) and
nothing else changes; a download of the rate card (or the template) re-imports as no changes."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from marketplace.catalogue import rate_cards
from marketplace.catalogue.imports.columns import (
    CLEARABLE,
    COLUMN_NAMES,
    INFORMATION_COLUMNS,
    KNOWN_COLUMNS,
    REQUIRED,
    ImportRefused,
    ImportResult,
)
from marketplace.catalogue.imports.read import read_rate_card_file, rows_from_table
from marketplace.catalogue.imports.template import template_csv, template_xlsx
from marketplace.catalogue.imports.write import import_rows
from marketplace.catalogue.models import (
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    MAX_AGE,
    MAX_COST_PENCE,
    MAX_LEAD_TIME_DAYS,
    MAX_UNIT_PRICE_PENCE,
    MAX_UNITS,
    MIN_AGE,
    SUMMARY_MAX,
    TITLE_MAX,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    ListingPrice,
    ListingStatus,
    RiskLevel,
    Sex,
    Unit,
)
from marketplace.catalogue.services.details import LISTING_FIELDS, check_fields
from marketplace.catalogue.services.details import ListingDetails as ServiceDetails
from marketplace.core import audit
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.money import VatTreatment
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.pages import count, error_messages, main

TODAY = london_date()


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


def full_listing(world, organisation, **fields) -> Listing:
    """A published listing with every field given, a past price in force and a planned one."""
    values = {
        "title": "Move-on accommodation",
        "summary": "Help to find and keep a tenancy",
        "description": "Weekly visits.\nA named worker for every person.",
        "outcomes": "Settled accommodation within 28 days\nTenancy kept for 6 months",
        "social_value": "We employ people with lived experience",
        "contact_name": "Referrals team",
        "contact_email": "referrals@hope.example",
        "contact_phone": "0161 496 0000",
        "cost_staff_pence": 9_000,
        "cost_overheads_pence": 2_500,
        "cost_other_pence": 1_000,
        "min_age": 18,
        "max_age": 65,
        "eligibility_sex": Sex.FEMALE,
        "setting_custody": True,
        "format_group": True,
        "risk_high": True,
        "complexity_high": True,
        "lead_time_days": 7,
        "min_units": 2,
        "max_units": 30,
        "monthly_capacity": 45,
        **fields,
    }
    listing = make_listing(
        world.lot_a,
        organisation,
        price_pence=12_500,
        price_from=TODAY - timedelta(days=30),
        region_codes=("A",),
        pcc_area_codes=("lancashire",),
        **values,
    )
    listing.prices[0].effective_to = TODAY + timedelta(days=40)
    listing.prices.append(
        ListingPrice(
            unit_price_pence=13_000,
            effective_from=TODAY + timedelta(days=40),
            created_at=listing.prices[0].created_at,
        )
    )
    db.session.flush()
    return listing


def state(listing_id: int) -> dict:
    """Everything an import could change on a listing, read afresh."""
    db.session.expire_all()
    listing = db.session.get(Listing, listing_id)
    data = audit.snapshot(listing, LISTING_FIELDS)
    data["areas"] = sorted(str((a.region_id, a.pcc_area_id)) for a in listing.areas)
    data["prices"] = [
        (p.unit_price_pence, p.effective_from, p.effective_to, p.reason) for p in listing.prices
    ]
    return data


def full_row(organisation, listing: Listing) -> dict[str, str]:
    """Every column of a listing made by ``full_listing``, as a download gives it (by hand, so
    that these tests do not lean on the template they also check)."""
    return {
        "reference": listing.reference,
        "title": listing.title,
        "summary": listing.summary,
        "description": listing.description,
        "outcomes": listing.outcomes,
        "lot": "ACC",
        "regions": "A",
        "pcc_areas": "lancashire",
        "settings": "community; custody",
        "formats": "one_to_one; group",
        "eligibility_sex": "female",
        "min_age": "18",
        "max_age": "65",
        "risk_levels": "low; medium; high",
        "complexities": "low; medium; high",
        "lead_time_days": "7",
        "unit": "session",
        "vat_treatment": "exempt",
        "min_units": "2",
        "max_units": "30",
        "monthly_capacity": "45",
        "unit_price": "125.00",
        "price_effective_from": (TODAY - timedelta(days=30)).isoformat(),
        "cost_staff": "90.00",
        "cost_overheads": "25.00",
        "cost_other": "10.00",
        "social_value": listing.social_value,
        "contact_name": listing.contact_name,
        "contact_email": listing.contact_email,
        "contact_phone": listing.contact_phone,
        "publish": "yes" if listing.status == ListingStatus.PUBLISHED else "no",
    }


def template_row(organisation, listing: Listing) -> dict[str, str]:
    """The listing's row of the provider's template, as the template download gives it."""
    rows = list(csv.reader(io.StringIO(template_csv(organisation))))
    header = rows[0]
    for values in rows[1:]:
        record = dict(zip(header, values, strict=True))
        if record["reference"] == listing.reference:
            return record
    raise AssertionError(f"{listing.reference} is not in the template")


def run(admin, organisation, rows, **kwargs) -> ImportResult:
    return import_rows(admin, organisation, [dict(r) for r in rows], **kwargs)


def as_csv(rows: list[dict[str, str]]) -> bytes:
    header = list(rows[0])
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for r in rows:
        writer.writerow([r.get(name, "") for name in header])
    return buffer.getvalue().encode()


# ---------------------------------------------------------------------------------------------
# An empty cell leaves the listing as it is


def test_a_row_that_changes_only_the_price_keeps_every_other_field(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    before = state(listing.id)
    # The template's columns, with the optional ones left empty and only the price changed.
    row = {name: "" for name in COLUMN_NAMES}
    row.update(
        reference=listing.reference, title=listing.title, summary=listing.summary, lot="ACC",
        regions="A", pcc_areas="lancashire", settings="community; custody",
        formats="one_to_one; group", complexities="low; medium; high", lead_time_days="7",
        unit="session", vat_treatment="exempt", min_units="2", max_units="30",
        monthly_capacity="45", unit_price="140.00",
    )  # fmt: skip
    result = run(admin, organisation, [row])
    commit()
    after = state(listing.id)
    for name in ("description", "outcomes", "contact_name", "contact_email", "contact_phone",
                 "cost_staff_pence", "cost_overheads_pence", "cost_other_pence", "social_value",
                 "min_age", "max_age", "eligibility_sex", "areas"):  # fmt: skip
        assert after[name] == before[name], name
    # A new version from today; the history is kept and the planned price still follows.
    assert after["prices"] == [
        (12_500, TODAY - timedelta(days=30), TODAY, ""),
        (14_000, TODAY, TODAY + timedelta(days=40), "Rate card import"),
        (13_000, TODAY + timedelta(days=40), None, ""),
    ]
    assert [(c.column, c.old, c.new) for c in result.changes] == [
        ("unit_price", "£125.00", f"£140.00 from {TODAY.day} {TODAY:%B %Y}")
    ]


def test_a_file_with_only_the_reference_and_the_price_changes_only_the_price(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    before = state(listing.id)
    rows = read_rate_card_file(
        "r.csv", io.BytesIO(as_csv([{"reference": listing.reference, "unit_price": "99.99"}]))
    )
    run(admin, organisation, rows)
    commit()
    after = state(listing.id)
    assert {k for k in before if before[k] != after[k]} == {"prices"}
    assert (9_999, TODAY, TODAY + timedelta(days=40), "Rate card import") in after["prices"]


EDITABLE = [name for name in COLUMN_NAMES if name != "reference"]


@pytest.mark.parametrize("column", EDITABLE)
def test_each_column_left_empty_keeps_the_listing_as_it_is(world, provider, column):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    before = state(listing.id)
    row = full_row(organisation, listing)
    row[column] = ""
    result = run(admin, organisation, [row])
    assert result.no_changes and result.unchanged == 1
    commit()
    after = state(listing.id)
    assert after == before


# A different valid value for each column, and the listing fields it may change.
NEW_VALUES = {
    "title": ("Move-on housing", {"title"}),
    "summary": ("Tenancy help", {"summary"}),
    "description": ("Fortnightly visits", {"description"}),
    "outcomes": ("Housed in 14 days", {"outcomes"}),
    "lot": ("ETE", {"lot_id"}),
    "regions": ("A; B", {"areas"}),
    "pcc_areas": ("cumbria; Lancashire", {"areas"}),
    "settings": ("remote", {"setting_community", "setting_custody", "setting_remote"}),
    "formats": ("one_to_one", {"format_group"}),
    "eligibility_sex": ("Men only", {"eligibility_sex"}),
    "min_age": ("21", {"min_age"}),
    "max_age": ("70", {"max_age"}),
    "risk_levels": ("very high", {"risk_low", "risk_medium", "risk_high", "risk_very_high"}),
    "complexities": ("low", {"complexity_medium", "complexity_high"}),
    "lead_time_days": ("10", {"lead_time_days"}),
    "unit": ("Bed-night", {"unit"}),
    "vat_treatment": ("Standard rate (20%)", {"vat_treatment"}),
    "min_units": ("3", {"min_units"}),
    "max_units": ("31", {"max_units"}),
    "monthly_capacity": ("1,000", {"monthly_capacity"}),
    "unit_price": ("£1,250.50", {"prices"}),
    "price_effective_from": ((TODAY + timedelta(days=3)).strftime("%d/%m/%Y"), {"prices"}),
    "cost_staff": ("95", {"cost_staff_pence"}),
    "cost_overheads": ("26.40", {"cost_overheads_pence"}),
    "cost_other": ("0", {"cost_other_pence"}),
    "social_value": ("Apprenticeships", {"social_value"}),
    "contact_name": ("Housing referrals", {"contact_name"}),
    "contact_email": ("Housing@Hope.example", {"contact_email"}),
    "contact_phone": ("0161 496 0001", {"contact_phone"}),
    "publish": ("yes", {"status"}),
}


@pytest.mark.parametrize("column", EDITABLE)
def test_each_column_changed_changes_that_column_and_nothing_else(world, provider, column):
    organisation, admin = provider
    for code in ("A", "B"):
        make_lot_membership(world.lot_b, organisation, region_code=code)
    status = ListingStatus.DRAFT if column == "publish" else ListingStatus.PUBLISHED
    listing = full_listing(world, organisation, status=status)
    commit()
    before = state(listing.id)
    row = full_row(organisation, listing)
    value, fields = NEW_VALUES[column]
    row[column] = value
    if column == "price_effective_from":
        row["unit_price"] = "150.00"
    result = run(admin, organisation, [row])
    expected_column = "unit_price" if column == "price_effective_from" else column
    assert [c.column for c in result.changes] == [expected_column]
    commit()
    after = state(listing.id)
    changed = {k for k in before if before[k] != after[k]}
    assert changed == fields, changed


def test_the_preview_shows_old_and_new_in_the_files_words(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    row = full_row(organisation, listing)
    row.update(settings="community", cost_staff="(clear)", regions="A; B", max_age="")
    result = run(admin, organisation, [row], dry_run=True)
    assert [(c.reference, c.column, c.old, c.new) for c in result.changes] == [
        (listing.reference, "settings", "community; custody", "community"),
        (listing.reference, "cost_staff", "£90.00", "(empty)"),
        (listing.reference, "regions", "A", "A; B"),
    ]


# ---------------------------------------------------------------------------------------------
# (clear)


@pytest.mark.parametrize("column", sorted(CLEARABLE))
def test_clear_empties_an_optional_field_and_nothing_else(world, provider, column):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    before = state(listing.id)
    row = full_row(organisation, listing)
    row[column] = "(CLEAR)" if column == "outcomes" else "(clear)"
    result = run(admin, organisation, [row])
    assert [c.column for c in result.changes] == [column]
    assert result.changes[0].new in ("(empty)", "any")
    commit()
    after = state(listing.id)
    changed = {k for k in before if before[k] != after[k]}
    field = {"regions": "areas", "pcc_areas": "areas", "cost_staff": "cost_staff_pence",
             "cost_overheads": "cost_overheads_pence", "cost_other": "cost_other_pence",
             "risk_levels": None}.get(column, column)  # fmt: skip
    if field is None:
        assert changed == {"risk_low", "risk_medium", "risk_high"}
        assert not any(after[f"risk_{r}"] for r in ("low", "medium", "high", "very_high"))
    else:
        assert changed == {field}
        assert after[field] in ("", None, "any") or field == "areas"


def test_clearing_both_kinds_of_area_is_refused(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    row = full_row(organisation, listing)
    row.update(regions="(clear)", pcc_areas="(clear)")
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, [row])
    assert [(p.row, p.column) for p in excinfo.value.problems] == [(2, "regions")]


NOT_CLEARABLE = [name for name in KNOWN_COLUMNS if name not in CLEARABLE
                 and name not in INFORMATION_COLUMNS]  # fmt: skip


@pytest.mark.parametrize("column", NOT_CLEARABLE)
def test_clear_is_refused_where_a_value_is_needed_naming_row_and_column(world, provider, column):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    before = state(listing.id)
    good = full_row(organisation, listing)
    bad = {name: "" for name in KNOWN_COLUMNS}
    bad[column] = "(clear)"
    if column != "reference":
        bad["reference"] = listing.reference
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, [dict(good, reference="", price_effective_from=""), bad])
    problems = [(p.row, p.column, p.message) for p in excinfo.value.problems]
    assert [(r, c) for r, c, _ in problems] == [(3, column)], problems
    message = problems[0][2]
    if column in REQUIRED or column in ("unit_price_pence", "lot_code"):
        assert message.startswith(f"A listing needs its {column}, so (clear) is not allowed")
    else:
        assert message.startswith(f"(clear) is not allowed in {column}.")
    db.session.rollback()
    assert state(listing.id) == before and count(Listing) == 1


# ---------------------------------------------------------------------------------------------
# Prices: one versioning rule


def test_a_price_and_date_already_in_the_history_change_nothing(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    past = TODAY - timedelta(days=30)
    rows = [
        {"reference": listing.reference, "unit_price": "125", "price_effective_from": str(past)},
    ]
    assert run(admin, organisation, rows).no_changes
    # The start of the price in force, given with a new price, means "from today".
    rows[0]["unit_price"] = "126"
    result = run(admin, organisation, rows)
    assert [(c.column, c.new) for c in result.changes] == [
        ("unit_price", f"£126.00 from {TODAY.day} {TODAY:%B %Y}")
    ]
    commit()
    assert state(listing.id)["prices"][0] == (12_500, past, TODAY, "")
    assert state(listing.id)["prices"][1][:2] == (12_600, TODAY)
    # Any other past date is refused: the history is never rewritten.
    rows[0].update(unit_price="127", price_effective_from=str(past - timedelta(days=1)))
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, rows)
    assert "not in the past" in excinfo.value.problems[0].message
    assert excinfo.value.problems[0].column == "price_effective_from"
    db.session.rollback()
    assert len(state(listing.id)["prices"]) == 3 == count(ListingPrice)


def test_a_second_price_for_the_same_day_replaces_the_first_as_set_price_does(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    planned = TODAY + timedelta(days=40)
    rows = [{"reference": listing.reference, "unit_price": "135",
             "price_effective_from": str(planned)}]  # fmt: skip
    result = run(admin, organisation, rows)
    assert [(c.old, c.new) for c in result.changes] == [
        ("£130.00", f"£135.00 from {planned.day} {planned:%B %Y}")
    ]
    commit()
    assert state(listing.id)["prices"] == [
        (12_500, TODAY - timedelta(days=30), planned, ""),
        (13_500, planned, None, "Rate card import"),
    ]


def test_the_downloads_two_price_columns_the_one_changed_wins(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    base = {"reference": listing.reference, "unit_price": "125.00", "unit_price_pence": "12500"}
    changed_pounds = run(admin, organisation, [dict(base, unit_price="130.50")], dry_run=True)
    changed_pence = run(admin, organisation, [dict(base, unit_price_pence="13050")], dry_run=True)
    assert changed_pounds.changes == changed_pence.changes
    assert changed_pence.changes[0].new.startswith("£130.50")
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, [dict(base, unit_price="1", unit_price_pence="2")])
    assert [p.column for p in excinfo.value.problems] == ["unit_price"]


def test_a_planned_price_can_be_set_and_not_cleared(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    later = TODAY + timedelta(days=60)
    rows = [{"reference": listing.reference, "next_unit_price_pence": "14000",
             "next_price_effective_from": later.isoformat()}]  # fmt: skip
    result = run(admin, organisation, rows)
    assert [(c.column, c.old) for c in result.changes] == [("unit_price", "£130.00")]
    commit()
    assert state(listing.id)["prices"][-2:] == [
        (13_000, TODAY + timedelta(days=40), later, ""),
        (14_000, later, None, "Rate card import"),
    ]


# ---------------------------------------------------------------------------------------------
# Areas, labels, formats


def test_pcc_areas_and_regions_by_code_or_name(world, provider):
    organisation, admin = provider
    make_lot_membership(world.lot_a, organisation, pcc_area_code="avon-and-somerset")
    listing = full_listing(world, organisation)
    commit()
    row = {"reference": listing.reference, "regions": "North East, B",
           "pcc_areas": "avon-and-somerset; Lancashire"}  # fmt: skip
    result = run(admin, organisation, [row])
    assert [(c.column, c.new) for c in result.changes] == [
        ("regions", "A; B"),
        ("pcc_areas", "avon-and-somerset; lancashire"),
    ]
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, [dict(row, regions="Atlantis", pcc_areas="nowhere")])
    assert [(p.column, p.message) for p in excinfo.value.problems] == [
        ("regions", "Unknown probation region: ATLANTIS"),
        ("pcc_areas", "Unknown PCC area: nowhere"),
    ]


def test_areas_whose_membership_lapsed_stay_as_they_are(world, provider):
    organisation, admin = provider
    make_lot_membership(world.lot_a, organisation, region_code="D")
    listing = full_listing(world, organisation, status=ListingStatus.DRAFT)
    listing.areas.append(type(listing.areas[0])(region_id=world.outside_region.id))
    db.session.flush()
    from marketplace.accreditation.models import LotMembership, MembershipStatus

    lapsed = db.session.scalar(
        db.select(LotMembership).where(
            LotMembership.organisation_id == organisation.id,
            LotMembership.region_id == world.outside_region.id,
        )
    )
    db.session.delete(lapsed)
    commit()
    before = state(listing.id)
    row = full_row(organisation, listing)
    assert row["regions"] == "A"  # the template shows the areas buyers can see, as the rate card
    assert run(admin, organisation, [row]).no_changes
    assert run(admin, organisation, [dict(row, regions="A; D")]).no_changes
    # Publishing would show an area the provider is no longer a member in: refused, as on the page.
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, [dict(row, publish="yes")])
    assert excinfo.value.problems[0].column == "publish"
    assert "Wales" in excinfo.value.problems[0].message
    db.session.rollback()
    assert state(listing.id) == before
    assert MembershipStatus.ACTIVE  # the other memberships are untouched


def test_spreadsheet_formats_of_the_same_values_are_no_changes(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    row = full_row(organisation, listing)
    since = TODAY - timedelta(days=30)
    row.update(
        unit_price="£125", price_effective_from=since.strftime("%d/%m/%Y"),
        vat_treatment="Exempt from VAT", unit="Session", eligibility_sex="Women only",
        settings="In the community, In custody (prisons)", formats="One-to-one; Group",
        risk_levels="Low; Medium; High", complexities="LOW;MEDIUM;HIGH", lot="Accommodation",
        regions="north east", pcc_areas="LANCASHIRE", cost_staff="90", monthly_capacity="45.0",
        publish="TRUE", contact_email="REFERRALS@hope.example",
        description=listing.description.replace("\n", "\r\n"),
    )  # fmt: skip
    result = run(admin, organisation, [row])
    assert result.no_changes, result.changes
    # The same from a workbook whose cells a spreadsheet typed: numbers, dates, booleans.
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(row))
    typed = dict(row, unit_price=125.0, price_effective_from=since, min_age=18, publish=True,
                 cost_overheads=25.000000000000004, max_units=30)  # fmt: skip
    sheet.append(list(typed.values()))
    buffer = io.BytesIO()
    workbook.save(buffer)
    rows = read_rate_card_file("r.xlsx", io.BytesIO(buffer.getvalue()))
    assert run(admin, organisation, rows).no_changes


def test_text_the_download_escaped_comes_back_as_it_was(world, provider):
    organisation, admin = provider
    titles = ["=HYPERLINK(1)", "-Women's group", "'=quoted", "''+twice", "@home", "'plain"]
    listings = [full_listing(world, organisation, title=t, summary="+44 support") for t in titles]
    commit()
    rows = list(csv.DictReader(io.StringIO(template_csv(organisation))))
    by_reference = {r["reference"]: r for r in rows}
    assert by_reference[listings[0].reference]["title"] == "'=HYPERLINK(1)"
    assert by_reference[listings[2].reference]["title"] == "''=quoted"
    assert by_reference[listings[5].reference]["title"] == "'plain"
    assert run(admin, organisation, rows).no_changes
    # Unescaped, a formula is still refused.
    with pytest.raises(ImportRefused):
        run(admin, organisation, [dict(rows[0], title="=HYPERLINK(1)")])


def test_a_past_rate_cards_download_reimports_as_no_changes(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    listing.published_at = listing.published_at - timedelta(days=90)
    gone = full_listing(
        world, organisation, title="Withdrawn since", status=ListingStatus.WITHDRAWN
    )
    gone.published_at = listing.published_at
    commit()
    before = [state(listing.id), state(gone.id)]
    card = rate_cards.rate_card(organisation, TODAY - timedelta(days=10))
    assert [line.listing.title for line in card.lines] == [
        "Move-on accommodation",
        "Withdrawn since",
    ]
    rows = read_rate_card_file("old.csv", io.BytesIO(rate_cards.to_csv(card).encode()))
    assert run(admin, organisation, rows).no_changes
    commit()
    assert [state(listing.id), state(gone.id)] == before
    # A withdrawn listing is still refused anything that would change it.
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, [dict(rows[1], summary="Revived")])
    assert [(p.column, p.message) for p in excinfo.value.problems] == [
        ("reference", f"{gone.reference} has been withdrawn, so it can no longer be changed")
    ]


def test_an_empty_row_between_rows_is_no_row(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    rows = [{"reference": listing.reference, "title": "Renamed"}, {"reference": "", "title": " "},
            {"reference": listing.reference.lower(), "summary": "Again"}]  # fmt: skip
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, rows)
    # The duplicate is named by its row in the file, counting the empty one.
    assert [(p.row, p.column) for p in excinfo.value.problems] == [(4, "reference")]
    assert run(admin, organisation, rows[:2]).updated == 1


# ---------------------------------------------------------------------------------------------
# Bad files: every error, by row and column, nothing written


def test_every_error_of_a_bad_file_is_named_and_nothing_is_written(world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    other, _ = make_provider("Other charity")
    theirs = make_listing(world.lot_a, other)
    commit()
    before = state(listing.id)
    ref = listing.reference
    rows = [
        {"reference": ref, "unit_price": "130"},
        {"reference": "SL-999999", "unit_price": "1"},
        {"reference": theirs.reference, "title": "Taken over"},
        {"reference": ref, "max_units": "many"},
        {"reference": "", "title": "New", "summary": "New", "lot": "ACC", "regions": "A",
         "settings": "community", "formats": "group", "complexities": "low",
         "lead_time_days": "5", "unit": "hour", "vat_treatment": "exempt", "min_units": "1",
         "max_units": "lots", "monthly_capacity": "-3", "unit_price": "12.345",
         "price_effective_from": "31/02/2027"},
        {"reference": listing.reference.lower(), "title": "(clear)"},
    ]  # fmt: skip
    with pytest.raises(ImportRefused) as excinfo:
        run(admin, organisation, rows)
    problems = {(p.row, p.column) for p in excinfo.value.problems}
    assert problems == {
        (3, "reference"),
        (4, "reference"),
        (5, "reference"),  # the same listing twice
        (5, "max_units"),
        (6, "max_units"),
        (6, "monthly_capacity"),
        (6, "unit_price"),
        (6, "price_effective_from"),
        (7, "reference"),
        (7, "title"),
    }, excinfo.value.problems
    messages = {(p.row, p.column): p.message for p in excinfo.value.problems}
    # Another provider's listing reads as a missing one: nothing about it leaks.
    assert messages[(4, "reference")] == messages[(3, "reference")].replace(
        "SL-999999", theirs.reference
    )
    db.session.rollback()
    assert state(listing.id) == before and count(Listing) == 2


def test_wrong_columns_are_refused_by_name():
    table = [["reference", "title", "price", "title"], ["SL-000001", "x", "1", "x"]]
    with pytest.raises(ImportRefused) as excinfo:
        rows_from_table(table)
    message = excinfo.value.errors["file"][0]
    assert "not expected price" in message and "repeated title" in message
    # Without references, the file creates listings: it needs their columns.
    with pytest.raises(ImportRefused) as excinfo:
        rows_from_table([["title", "summary"], ["x", "y"]])
    assert "missing lot, settings" in excinfo.value.errors["file"][0]
    # A header and no rows changes nothing.
    assert rows_from_table([list(COLUMN_NAMES)]) == []


# ---------------------------------------------------------------------------------------------
# Pages: preview, confirmation, email, links


def upload(web, data: bytes, name: str = "rates.csv"):
    return web.post(
        "/catalogue/rate-card/import",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def token_of(page: str) -> str:
    return page.split('name="token" type="hidden" value="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize(
    "download",
    [
        "/catalogue/providers/{id}/rate-card.csv",
        "/catalogue/providers/{id}/rate-card.xlsx",
        "/catalogue/rate-card/template.csv",
        "/catalogue/rate-card/template.xlsx",
    ],
)
def test_an_untouched_download_reimports_as_no_changes(web, world, provider, download):
    organisation, admin = provider
    listings = [
        full_listing(world, organisation),
        full_listing(world, organisation, title="=SUM(1)", status=ListingStatus.PAUSED),
        full_listing(world, organisation, title="Draft", status=ListingStatus.DRAFT),
        make_listing(world.lot_a, organisation, title="Plain", price_pence=999),
    ]
    commit()
    before = [state(listing.id) for listing in listings]
    web.as_user(admin, organisation)
    response = web.get(download.format(id=organisation.id))
    assert response.status_code == 200
    name = "file.xlsx" if download.endswith("xlsx") else "file.csv"
    response = upload(web, response.data, name)
    assert response.status_code == 302, main(response)
    page = main(web.get(response.location))
    assert "No changes." in page and 'id="import-changes"' not in page
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token_of(page)})
    assert response.location.endswith("/catalogue/rate-card/import/done")
    done = main(web.get(response.location))
    assert "Nothing changed" in done
    after = [state(listing.id) for listing in listings]
    assert after == before
    assert count(AuditEvent, AuditEvent.action.in_(("listing.updated", "listing.price_set"))) == 0


def test_change_prices_in_the_download_preview_confirm_and_email(web, world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    other = make_listing(world.lot_a, organisation, title="Mentoring", price_pence=4_000)
    commit()
    before = state(listing.id)
    web.as_user(admin, organisation)
    download = web.get(f"/catalogue/providers/{organisation.id}/rate-card.xlsx")
    sheet = load_workbook(io.BytesIO(download.data)).active
    header = [c.value for c in sheet[1]]
    for cells in sheet.iter_rows(min_row=2):
        if cells[header.index("reference")].value == listing.reference:
            cells[header.index("unit_price")].value = "135.00"
    buffer = io.BytesIO()
    sheet.parent.save(buffer)
    response = upload(web, buffer.getvalue(), "changed.xlsx")
    page = main(web.get(response.location))
    assert 'id="import-changes"' in page
    assert "Move-on accommodation" in page and "<code>unit_price</code>" in page
    assert "£125.00" in page and f"£135.00 from {TODAY.day} {TODAY:%B %Y}" in page
    assert "Mentoring" not in page.split('id="import-changes"')[1]
    assert state(listing.id) == before  # nothing written before the confirmation
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token_of(page)})
    done = main(web.get(response.location))
    assert "Rate card updated" in done and f"£135.00 from {TODAY.day} {TODAY:%B %Y}" in done
    assert f'href="/catalogue/providers/{organisation.id}/rate-card"' in done
    after = state(listing.id)
    assert {k for k in before if before[k] != after[k]} == {"prices"}
    assert state(other.id)["prices"] == [(4_000, date(2026, 1, 1), None, "")]
    email = db.session.scalar(
        db.select(Notification).where(Notification.template == "catalogue_rate_card_imported")
    )
    assert email.to_email == admin.email
    assert (
        f"{listing.reference} Move-on accommodation: unit_price was £125.00, now £135.00 from "
        f"{TODAY.day} {TODAY:%B %Y}"
    ) in email.body
    event = db.session.scalar(db.select(AuditEvent).where(AuditEvent.action == "listing.price_set"))
    assert event.object_id == str(listing.id) and event.after["unit_price_pence"] == 13_500


def test_a_long_preview_is_paginated(web, world, provider):
    organisation, admin = provider
    listings = [make_listing(world.lot_a, organisation, title=f"S{n:03d}") for n in range(120)]
    commit()
    rows = [{"reference": listing.reference, "monthly_capacity": "7"} for listing in listings]
    web.as_user(admin, organisation)
    response = upload(web, as_csv(rows))
    first = main(web.get(response.location))
    assert first.count("<code>monthly_capacity</code>") == 100
    assert "Page 1 of 2" in first
    second = main(web.get("/catalogue/rate-card/import/check?page=2"))
    assert second.count("<code>monthly_capacity</code>") == 20


def test_confirming_after_the_rate_card_changed_shows_the_changes_again(web, world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    web.as_user(admin, organisation)
    response = upload(web, as_csv([{"reference": listing.reference, "title": "Renamed"}]))
    page = main(web.get(response.location))
    listing.title = "Changed meanwhile"
    commit()
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token_of(page)})
    assert response.location.endswith("/catalogue/rate-card/import/check")
    assert state(listing.id)["title"] == "Changed meanwhile"
    page = main(web.get(response.location))
    assert "Changed meanwhile" in page and "Renamed" in page
    web.post("/catalogue/rate-card/import/confirm", data={"token": token_of(page)})
    assert state(listing.id)["title"] == "Renamed"


def test_a_bad_file_lists_every_error_on_the_same_page(web, world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    rows = [
        {"reference": listing.reference, "unit_price": "abc", "summary": "(clear)"},
        {"reference": listing.reference, "price_effective_from": "2027-13-01"},
    ]
    response = upload(web.as_user(admin, organisation), as_csv(rows))
    assert response.status_code == 422
    assert "3 errors" in error_messages(response)[0]
    page = main(response)
    table = page.split('id="import-errors"')[1]
    for row_number, column in ((2, "summary"), (2, "unit_price"), (3, "reference")):
        assert f">{row_number}</td>" in table and f">{column}</td>" in table
    assert state(listing.id)["summary"] == "Help to find and keep a tenancy"


def test_the_rate_card_links_to_import_downloads_and_template(web, client, world, provider):
    organisation, admin = provider
    full_listing(world, organisation)
    commit()
    url = f"/catalogue/providers/{organisation.id}/rate-card"
    page = main(web.as_user(admin, organisation).get(url))
    for href in (
        "/catalogue/rate-card/import",
        "/catalogue/rate-card/template.csv",
        "/catalogue/rate-card/template.xlsx",
        "/catalogue/rate-card/import/help",
        f"{url}.csv",
        f"{url}.xlsx",
    ):
        assert f'href="{href}"' in page, href
    # Another organisation's people (and visitors) see the downloads but not the import.
    other, other_admin = make_provider("Other charity")
    commit()
    for response in (web.as_user(other_admin, other).get(url), client.get(url)):
        page = main(response)
        assert f'href="{url}.csv"' in page and "/catalogue/rate-card/import" not in page


def test_the_providers_listings_link_to_its_rate_card_and_the_import(web, world, provider):
    organisation, admin = provider
    full_listing(world, organisation)
    commit()
    page = main(web.as_user(admin, organisation).get("/catalogue/"))
    assert f'href="/catalogue/providers/{organisation.id}/rate-card"' in page
    assert 'href="/catalogue/rate-card/import"' in page


def test_the_import_pages_link_back_to_the_rate_card(web, world, provider):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    commit()
    back = f'href="/catalogue/providers/{organisation.id}/rate-card"'
    web.as_user(admin, organisation)
    assert back in web.get("/catalogue/rate-card/import").get_data(as_text=True)
    assert back in main(web.get("/catalogue/rate-card/import/help"))
    response = upload(web, as_csv([{"reference": listing.reference, "title": "Renamed"}]))
    page = main(web.get(response.location))
    assert back in page
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token_of(page)})
    assert back in main(web.get(response.location))


def test_the_template_of_a_provider_holds_its_listings_and_others_get_the_header(
    web, client, world, provider
):
    organisation, admin = provider
    listing = full_listing(world, organisation)
    make_listing(world.lot_a, organisation, status=ListingStatus.WITHDRAWN)
    commit()
    rows = list(csv.reader(io.StringIO(client.get("/catalogue/rate-card/template.csv").text)))
    assert rows == [COLUMN_NAMES]
    response = web.as_user(admin, organisation).get("/catalogue/rate-card/template.csv")
    assert response.headers["Cache-Control"] == "private, no-store"
    records = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["reference"] for r in records] == [listing.reference]
    assert records[0]["contact_email"] == "referrals@hope.example"
    assert records[0]["pcc_areas"] == "lancashire"
    assert records[0]["unit_price"] == "125.00"


def test_the_import_pages_need_the_providers_editor(web, world, provider):
    organisation, admin = provider
    other, other_admin = make_provider("Other charity")
    commit()
    # A pending import belongs to the person and organisation that checked it.
    web.as_user(admin, organisation)
    listing = full_listing(world, organisation)
    commit()
    response = upload(web, as_csv([{"reference": listing.reference, "title": "Renamed"}]))
    token = token_of(main(web.get(response.location)))
    web.as_user(other_admin, other)
    response = web.post("/catalogue/rate-card/import/confirm", data={"token": token})
    assert response.status_code == 302
    assert response.location.endswith("/catalogue/rate-card/import")
    assert state(listing.id)["title"] == "Move-on accommodation"
    from marketplace.accounts.models import Role
    from tests.factories import make_member

    buyer = make_member(Role.BUYER)
    commit()
    web.as_user(buyer)
    for url in ("/catalogue/rate-card/import/check", "/catalogue/rate-card/import/done"):
        assert web.get(url).status_code == 403


def test_rate_card_csv_columns_are_all_read():
    assert set(rate_cards.COLUMNS) <= set(KNOWN_COLUMNS)


# ---------------------------------------------------------------------------------------------
# Property: whatever the listings, their downloads re-import as no changes

_PRINTABLE = st.characters(codec="utf-8", exclude_categories=("Cc", "Cs"))
_EDGE = st.sampled_from(["=", "+", "-", "@", "'", "''=", "'-", " ", "£", ";", ",", '"', "é"])


def _text(max_size: int, *, lines: bool = False) -> st.SearchStrategy[str]:
    pieces = st.one_of(st.text(_PRINTABLE, max_size=12), _EDGE)
    if lines:
        pieces = st.one_of(pieces, st.sampled_from(["\n", "\r\n"]))
    return st.lists(pieces, max_size=6).map("".join).map(lambda t: t[:max_size])


def _flags(enum_class, *, at_least_one: bool) -> st.SearchStrategy[list]:
    return st.lists(st.sampled_from(list(enum_class)), min_size=int(at_least_one), unique=True)


@st.composite
def listing_details(draw) -> ServiceDetails:
    low_age = draw(st.none() | st.integers(MIN_AGE, MAX_AGE))
    return ServiceDetails(
        title=draw(_text(TITLE_MAX)),
        summary=draw(_text(SUMMARY_MAX)),
        lot_id=None,
        unit=draw(st.sampled_from(list(Unit))),
        vat_treatment=draw(st.sampled_from(list(VatTreatment))),
        max_units=draw(st.integers(1, MAX_UNITS)),
        monthly_capacity=draw(st.integers(0, MAX_UNITS)),
        description=draw(_text(400, lines=True)),
        outcomes=draw(_text(400, lines=True)),
        settings=draw(_flags(DeliverySetting, at_least_one=True)),
        formats=draw(_flags(DeliveryFormat, at_least_one=True)),
        eligibility_sex=draw(st.sampled_from(list(Sex))),
        min_age=low_age,
        max_age=draw(st.none() | st.integers(low_age or MIN_AGE, MAX_AGE)),
        risk_levels=draw(_flags(RiskLevel, at_least_one=False)),
        complexities=draw(_flags(Complexity, at_least_one=True)),
        lead_time_days=draw(st.integers(0, MAX_LEAD_TIME_DAYS)),
        min_units=1,
        cost_staff_pence=draw(st.none() | st.integers(0, MAX_COST_PENCE)),
        cost_overheads_pence=draw(st.none() | st.integers(0, 10**6)),
        cost_other_pence=draw(st.none() | st.integers(0, 99)),
        social_value=draw(_text(200, lines=True)),
        contact_name=draw(_text(CONTACT_NAME_MAX)),
        contact_email=draw(st.just("") | _text(40).map(lambda t: f"{t}@Example.org")),
        contact_phone=draw(_text(CONTACT_PHONE_MAX)),
    )


@st.composite
def generated_listing(draw) -> dict:
    details = draw(listing_details())
    errors: dict = {}
    values = check_fields(details, errors)
    assume(not errors)
    starts = sorted(draw(st.lists(st.integers(-400, 90), min_size=1, max_size=3, unique=True)))
    prices = [draw(st.integers(0, MAX_UNIT_PRICE_PENCE)) for _ in starts]
    areas = draw(
        st.lists(
            st.sampled_from(["A", "B", "D", "cumbria", "lancashire", "northumbria", "gwent"]),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    status = draw(st.sampled_from([ListingStatus.PUBLISHED, ListingStatus.DRAFT,
                                   ListingStatus.PAUSED]))  # fmt: skip
    return {"values": values, "starts": starts, "prices": prices, "areas": areas,
            "status": status}  # fmt: skip


def _make(world, organisation, spec: dict) -> Listing:
    values = dict(spec["values"])
    region_codes = tuple(a for a in spec["areas"] if len(a) == 1)
    pcc_codes = tuple(a for a in spec["areas"] if len(a) > 1)
    listing = make_listing(
        world.lot_a,
        organisation,
        status=spec["status"],
        price_pence=spec["prices"][0],
        price_from=TODAY + timedelta(days=spec["starts"][0]),
        region_codes=region_codes,
        pcc_area_codes=pcc_codes,
        **values,
    )
    for start, pence in zip(spec["starts"][1:], spec["prices"][1:], strict=True):
        day = TODAY + timedelta(days=start)
        listing.prices[-1].effective_to = day
        listing.prices.append(
            ListingPrice(unit_price_pence=pence, effective_from=day, created_at=listing.created_at)
        )
    db.session.flush()
    return listing


def _downloads(organisation) -> list[tuple[str, bytes]]:
    card = rate_cards.rate_card(organisation)
    return [
        ("rate-card.csv", rate_cards.to_csv(card).encode()),
        ("rate-card.xlsx", rate_cards.to_xlsx(card)),
        ("template.csv", template_csv(organisation).encode()),
        ("template.xlsx", template_xlsx(organisation)),
    ]


@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=st.lists(generated_listing(), min_size=1, max_size=3))
def test_downloads_of_any_listings_reimport_as_no_changes(world, provider, specs):
    organisation, admin = provider
    try:
        listings = [_make(world, organisation, spec) for spec in specs]
        for name, data in _downloads(organisation):
            rows = read_rate_card_file(name, io.BytesIO(data))
            result = import_rows(admin, organisation, rows, dry_run=True)
            assert result.no_changes, (name, result.changes, result.new_listings)
            assert result.unchanged == len(rows)
        # And written: nothing but "confirmed accurate" moves.
        before = {listing.id: state(listing.id) for listing in listings}
        rows = read_rate_card_file("t.csv", io.BytesIO(_downloads(organisation)[2][1]))
        import_rows(admin, organisation, rows)
        assert {listing.id: state(listing.id) for listing in listings} == before
    finally:
        db.session.rollback()
