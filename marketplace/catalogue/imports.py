"""Import a rate card from CSV or XLSX: create and update listings and set prices, all or nothing.

``read_rate_card_file`` checks the upload (size first, then type by content, then the header) and
turns it into rows; ``import_rows`` validates every row with the listing rules of
``marketplace.catalogue.services`` and either reports every error (row number and column) or
writes everything. Its cost does not grow with per-row queries: the provider's memberships, lots,
listings (by reference, with areas and prices) and the reference areas are loaded once, and the
rows are written with bulk statements. It flushes and never commits; the caller commits once.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

import sqlalchemy as sa
from flask import g, has_request_context, request
from sqlalchemy.orm import selectinload

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
from marketplace.accreditation.services.applications import london_date
from marketplace.accreditation.uploads import EXECUTABLE_SIGNATURES, detect_type
from marketplace.accreditation.uploads import XLSX as XLSX_TYPE
from marketplace.audit import AuditEvent, _jsonable
from marketplace.catalogue.models import (
    CONTACT_EMAIL_MAX,
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    DESCRIPTION_MAX,
    MAX_AGE,
    MAX_LEAD_TIME_DAYS,
    MAX_UNITS,
    MIN_AGE,
    OUTCOMES_MAX,
    REFERENCE_MAX,
    SOCIAL_VALUE_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
    Sex,
)
from marketplace.catalogue.services import (
    ListingDetails,
    check_fields,
    check_price_pence,
    require_editor,
)
from marketplace.db import db, insert_many, utcnow
from marketplace.errors import BusinessRuleViolation
from marketplace.reference.models import PccArea, ProbationRegion
from marketplace.validation import date_horizon_error, has_forbidden_characters

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
MAX_XLSX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024  # a bigger inflated workbook is a zip bomb
FIRST_DATA_ROW = 2  # row 1 is the header, as a spreadsheet numbers them
ALLOWED_DESCRIPTION = "a CSV file or an Excel workbook (XLSX)"


@dataclass(frozen=True)
class Column:
    name: str
    required: bool
    rule: str
    example: str


COLUMNS: list[Column] = [
    Column("reference", False, "Leave empty to create a new listing; give a listing's reference "
           "(like SL-000123) to update it.", ""),
    Column("title", True, f"Up to {TITLE_MAX} characters.", "Move-on accommodation support"),
    Column("summary", True, f"Up to {SUMMARY_MAX} characters.",
           "Help to find and keep a tenancy after release"),
    Column("description", False, f"Up to {DESCRIPTION_MAX:,} characters.", ""),
    Column("outcomes", False, f"Up to {OUTCOMES_MAX:,} characters; separate outcomes with "
           "a new line.", "Settled accommodation within 28 days"),
    Column("lot", True, "The code of a lot you are an active member of, like ACC.", "ACC"),
    Column("regions", False, "Probation region codes, separated by semicolons, like A; B. "
           "Give regions, PCC areas or both.", "A; B"),
    Column("pcc_areas", False, "PCC area codes, separated by semicolons.", ""),
    Column("settings", True, "One or more of community, custody, remote.", "community"),
    Column("formats", True, "One or both of one_to_one, group.", "one_to_one"),
    Column("eligibility_sex", False, "any (the default), male or female.", "any"),
    Column("min_age", False, f"A whole number from {MIN_AGE} to {MAX_AGE}.", "18"),
    Column("max_age", False, f"A whole number from {MIN_AGE} to {MAX_AGE}.", ""),
    Column("risk_levels", False, "Any of low, medium, high, very_high.", "low; medium"),
    Column("complexities", True, "One or more of low, medium, high.", "medium; high"),
    Column("lead_time_days", True, f"Working days from referral to start, 0 to "
           f"{MAX_LEAD_TIME_DAYS}.", "5"),
    Column("unit", True, "session, hour, day, week, place, programme, bed_night or referral.",
           "week"),
    Column("vat_treatment", True, "standard, reduced, zero, exempt or outside_scope.", "exempt"),
    Column("min_units", True, "Fewest units per call-off, at least 1.", "1"),
    Column("max_units", True, f"Most units per call-off, up to {MAX_UNITS:,}.", "26"),
    Column("monthly_capacity", True, "Units you can deliver each month.", "40"),
    Column("unit_price", True, "Pounds and pence, excluding VAT, like 125.00. No fractions of "
           "a penny, not negative.", "125.00"),
    Column("price_effective_from", False, "The date the price takes effect, as YYYY-MM-DD or "
           "DD/MM/YYYY: today or later. Empty means today.", ""),
    Column("cost_staff", False, "Optional full-cost breakdown of one unit, in pounds.", ""),
    Column("cost_overheads", False, "Optional, in pounds.", ""),
    Column("cost_other", False, "Optional, in pounds.", ""),
    Column("social_value", False, f"Up to {SOCIAL_VALUE_MAX:,} characters.", ""),
    Column("contact_name", False, f"Referral contact, up to {CONTACT_NAME_MAX} characters.",
           "Referrals team"),
    Column("contact_email", False, f"Up to {CONTACT_EMAIL_MAX} characters.",
           "referrals@example.org"),
    Column("contact_phone", False, f"Up to {CONTACT_PHONE_MAX} characters.", ""),
    Column("publish", False, "yes to publish the listing (it needs a price in force today); "
           "no or empty to leave it as it is (new listings start as drafts).", "yes"),
]  # fmt: skip
COLUMN_NAMES = [c.name for c in COLUMNS]

# Service field names → the column that holds them.
FIELD_COLUMNS = {
    "lot_id": "lot",
    "areas": "regions",
    "unit_price_pence": "unit_price",
    "effective_from": "price_effective_from",
    "cost_staff_pence": "cost_staff",
    "cost_overheads_pence": "cost_overheads",
    "cost_other_pence": "cost_other",
    "status": "publish",
}
NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"Row {self.row}, column {self.column}: {self.message}"


class ImportRefused(BusinessRuleViolation):
    """The file, or some of its rows, cannot be imported; nothing was written."""

    def __init__(self, problems: Sequence[RowError] = (), file_error: str | None = None):
        self.problems = list(problems)
        messages = [file_error] if file_error else [str(p) for p in self.problems]
        super().__init__({"file": messages})


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    prices_changed: int = 0
    published: int = 0
    listing_ids: list[int] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged


# ---------------------------------------------------------------------------------------------
# Reading the file


def _refuse(message: str):
    raise ImportRefused(file_error=message)


def _detect(data: bytes) -> str:
    """'csv' or 'xlsx', judged by the content whatever the file is called."""
    if data.startswith(EXECUTABLE_SIGNATURES):
        _refuse(
            f"The selected file is a program, which is not allowed. Upload {ALLOWED_DESCRIPTION}"
        )
    if data.startswith(b"PK\x03\x04"):
        try:
            kind = detect_type(data)
        except BusinessRuleViolation as error:
            _refuse(error.detail)
        if kind == XLSX_TYPE:
            return "xlsx"
        _refuse(f"The selected file must be {ALLOWED_DESCRIPTION}")
    head = data[:4096]
    if b"\x00" in head or head.startswith((b"%PDF-", b"\x89PNG", b"\xff\xd8\xff", b"\xd0\xcf\x11")):
        _refuse(
            f"The selected file must be {ALLOWED_DESCRIPTION}. Its contents do not match "
            "either, whatever its name says"
        )
    return "csv"


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV" in Windows-1252.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError:
            _refuse("The selected file is not readable text. Save it as CSV (UTF-8) and try again")
    raise AssertionError("unreachable")


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _csv_rows(data: bytes) -> list[list[str]]:
    text = _decode(data)
    try:
        return [row for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as error:
        _refuse(f"The CSV file cannot be read: {error}")
    raise AssertionError("unreachable")


def _xlsx_rows(data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        if sum(info.file_size for info in archive.infolist()) > MAX_XLSX_UNCOMPRESSED_BYTES:
            _refuse("The workbook is too large once uncompressed. Split it into smaller files")
    try:
        # Not data_only: a formula comes through as its text ("=…") and is refused below.
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=False)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds on a damaged file
        _refuse("The workbook cannot be read. Save it again as an Excel workbook (XLSX)")
    try:
        sheet = workbook.worksheets[0]
        rows = []
        for values in sheet.iter_rows(values_only=True):
            rows.append([_cell_text(v) for v in values])
            if len(rows) > MAX_IMPORT_ROWS + 1:
                break
        return rows
    finally:
        workbook.close()


def read_rate_card_file(filename: str | None, stream: BinaryIO) -> list[dict[str, str]]:
    """The rows of an uploaded rate card, keyed by column; refuses a bad file or header."""
    data = stream.read(MAX_IMPORT_BYTES + 1)
    if len(data) > MAX_IMPORT_BYTES:
        _refuse(f"The selected file must be smaller than {MAX_IMPORT_BYTES // 1024 // 1024} MB")
    if not data:
        _refuse("The selected file is empty")
    kind = _detect(data)
    table = _xlsx_rows(data) if kind == "xlsx" else _csv_rows(data)
    return rows_from_table(table)


def _header_name(text: str) -> str:
    return re.sub(r"[\s\-]+", "_", (text or "").strip().lower())


def rows_from_table(table: list[list[str]]) -> list[dict[str, str]]:
    """Check the header row against the template's columns and key each data row by column."""
    # Trailing empty rows (spreadsheets keep formatting there) are not rows.
    while table and not any((cell or "").strip() for cell in table[-1]):
        table.pop()
    if not table:
        _refuse("The selected file is empty")
    header = [_header_name(cell) for cell in table[0]]
    while header and header[-1] == "":
        header.pop()
    missing = [name for name in COLUMN_NAMES if name not in header]
    unknown = [name or "(empty)" for name in header if name not in COLUMN_NAMES]
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if missing or unknown or repeated:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing)}")
        if unknown:
            parts.append(f"not expected {', '.join(unknown)}")
        if repeated:
            parts.append(f"repeated {', '.join(repeated)}")
        _refuse(
            "The first row must be the template's column names ("
            + "; ".join(parts)
            + "). Download the template and copy your rows into it"
        )
    data_rows = table[1:]
    if len(data_rows) > MAX_IMPORT_ROWS:
        _refuse(f"The file has more than {MAX_IMPORT_ROWS:,} rows. Split it into smaller files")
    if not data_rows:
        _refuse("The file has a header but no rows")
    rows = []
    for cells in data_rows:
        rows.append(
            {name: (cells[i] if i < len(cells) else "") or "" for i, name in enumerate(header)}
        )
    for number, row in enumerate(rows, start=2):
        # As for any text sent to the service (marketplace.validation): refused, never stored.
        if bad := next(
            (name for name, text in row.items() if has_forbidden_characters(text)), None
        ):
            _refuse(
                f"Row {number}, column {bad}, contains a character that cannot be saved (an "
                "invisible control character or a broken symbol). Remove it and try again"
            )
    return rows


# ---------------------------------------------------------------------------------------------
# Checking rows


# The cell parsers below are pure and a rate card repeats the same cells (lots, regions, settings)
# row after row, so each distinct cell is parsed once per process.
@functools.lru_cache(maxsize=4096)
def looks_like_formula(text: str) -> bool:
    """A cell a spreadsheet would run: starts with = or @, or + or - and is not a plain number."""
    text = text.strip()
    if not text:
        return False
    if text[0] in "=@":
        return True
    return text[0] in "+-" and not NUMBER.match(text)


@functools.lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, ...]:
    return tuple(
        re.sub(r"[\s\-]+", "_", part.strip().lower())
        for part in re.split(r"[;,\n]", text)
        if part.strip()
    )


@functools.lru_cache(maxsize=4096)
def _whole_or_text(text: str) -> int | str | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?\d+\.0+", text):
        return int(text.split(".")[0])
    return text  # the service's check says it must be a whole number


def _pence(errors: dict, name: str, text: str, label: str, *, required: bool) -> int | None:
    text = text.strip().replace("£", "").replace(",", "")
    if not text:
        if required:
            errors[name] = [f"Enter {label}"]
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        errors[name] = [f"Enter {label} in pounds and pence, like 45.00"]
        return None
    if not amount.is_finite():
        errors[name] = [f"Enter {label} in pounds and pence, like 45.00"]
        return None
    pence = amount * 100
    if pence != pence.to_integral_value():
        errors[name] = [f"Enter {label} in whole pence, like 45.00, not fractions of a penny"]
        return None
    return int(pence)


def _day(text: str) -> date | None | str:
    text = text.strip()
    if not text:
        return None
    for pattern in (r"(\d{4})-(\d{1,2})-(\d{1,2})", r"(\d{1,2})/(\d{1,2})/(\d{4})"):
        match = re.fullmatch(pattern, text)
        if match:
            a, b, c = (int(x) for x in match.groups())
            try:
                return date(a, b, c) if pattern.startswith(r"(\d{4})") else date(c, b, a)
            except ValueError:
                return "bad"
    return "bad"


def details_from_row(row: dict[str, str]) -> ListingDetails:
    """The row's listing details, in the shape the services take (lot resolved later)."""
    return ListingDetails(
        title=row["title"],
        summary=row["summary"],
        lot_id=None,
        unit=re.sub(r"[\s\-]+", "_", row["unit"].strip().lower()),
        vat_treatment=re.sub(r"[\s\-]+", "_", row["vat_treatment"].strip().lower()),
        max_units=_whole_or_text(row["max_units"]),
        monthly_capacity=_whole_or_text(row["monthly_capacity"]),
        description=row["description"],
        outcomes=row["outcomes"],
        region_codes=[c.upper() for c in _split(row["regions"])],
        pcc_area_codes=list(_split(row["pcc_areas"])),
        settings=list(_split(row["settings"])),
        formats=list(_split(row["formats"])),
        eligibility_sex=row["eligibility_sex"].strip().lower() or Sex.ANY,
        min_age=_whole_or_text(row["min_age"]),
        max_age=_whole_or_text(row["max_age"]),
        risk_levels=list(_split(row["risk_levels"])),
        complexities=list(_split(row["complexities"])),
        lead_time_days=_whole_or_text(row["lead_time_days"]),
        min_units=_whole_or_text(row["min_units"]),
        social_value=row["social_value"],
        contact_name=row["contact_name"],
        contact_email=row["contact_email"],
        contact_phone=row["contact_phone"],
    )


@dataclass
class _Context:
    """What every row is checked against, loaded once."""

    organisation: Organisation
    lots_by_code: dict[str, list[ArrangementLot]]
    lots_by_id: dict[int, ArrangementLot]
    regions: dict[str, ProbationRegion]
    pcc_areas: dict[str, PccArea]
    covered_regions: dict[int, set[int]]  # lot id → region ids
    covered_pcc: dict[int, set[int]]  # lot id → PCC area ids (including those of covered regions)
    listings: dict[str, Listing]


def _load_context(organisation: Organisation, references: Iterable[str]) -> _Context:
    memberships = db.session.execute(
        sa.select(LotMembership.lot_id, LotMembership.region_id, LotMembership.pcc_area_id).where(
            LotMembership.organisation_id == organisation.id,
            LotMembership.status == MembershipStatus.ACTIVE,
        )
    ).all()
    regions = {r.code: r for r in db.session.scalars(sa.select(ProbationRegion))}
    pcc_areas = {p.code: p for p in db.session.scalars(sa.select(PccArea))}
    pcc_by_region: dict[int, set[int]] = defaultdict(set)
    for area in pcc_areas.values():
        pcc_by_region[area.region_id].add(area.id)
    covered_regions: dict[int, set[int]] = defaultdict(set)
    covered_pcc: dict[int, set[int]] = defaultdict(set)
    for lot_id, region_id, pcc_area_id in memberships:
        if region_id is not None:
            covered_regions[lot_id].add(region_id)
            covered_pcc[lot_id] |= pcc_by_region[region_id]
        if pcc_area_id is not None:
            covered_pcc[lot_id].add(pcc_area_id)
    references = sorted(set(references))
    existing = (
        list(
            db.session.scalars(
                sa.select(Listing)
                .where(Listing.organisation_id == organisation.id)
                .options(selectinload(Listing.areas), selectinload(Listing.prices))
            )
        )
        if references
        else []
    )
    lot_ids = {m.lot_id for m in memberships} | {listing.lot_id for listing in existing}
    lots = (
        list(
            db.session.scalars(
                sa.select(ArrangementLot)
                .where(ArrangementLot.id.in_(lot_ids))
                .options(selectinload(ArrangementLot.category))
            )
        )
        if lot_ids
        else []
    )
    lots_by_code: dict[str, list[ArrangementLot]] = defaultdict(list)
    active_lots = {m.lot_id for m in memberships}
    for lot in lots:
        if lot.id in active_lots:
            lots_by_code[lot.category.code.upper()].append(lot)
    return _Context(
        organisation=organisation,
        lots_by_code=lots_by_code,
        lots_by_id={lot.id: lot for lot in lots},
        regions=regions,
        pcc_areas=pcc_areas,
        covered_regions=covered_regions,
        covered_pcc=covered_pcc,
        listings={listing.reference: listing for listing in existing},
    )


def check_details(
    details: ListingDetails, lot: ArrangementLot | None, ctx: _Context, errors: dict
) -> tuple[dict, list[tuple[int | None, int | None]]]:
    """The services' listing rules: their own field checks, and the lot and areas against
    preloaded data instead of a query per row.

    Returns the column values and the (region id, PCC area id) pairs; adds to ``errors``.
    """
    values = check_fields(details, errors)
    if lot is not None:
        values["lot_id"] = lot.id
    return values, _areas(details, lot, ctx, errors)


def _areas(
    details: ListingDetails, lot: ArrangementLot | None, ctx: _Context, errors: dict
) -> list[tuple[int | None, int | None]]:
    region_codes = sorted({(c or "").strip().upper() for c in details.region_codes} - {""})
    pcc_codes = sorted({(c or "").strip().lower() for c in details.pcc_area_codes} - {""})
    unknown = [c for c in region_codes if c not in ctx.regions] + [
        c for c in pcc_codes if c not in ctx.pcc_areas
    ]
    if unknown:
        errors["areas"] = [f"Unknown region or PCC area: {', '.join(sorted(unknown))}"]
        return []
    if not region_codes and not pcc_codes:
        errors["areas"] = ["Choose at least one region or PCC area where you deliver this service"]
        return []
    if lot is None:
        return []
    regions = [ctx.regions[c] for c in region_codes]
    pcc_areas = [ctx.pcc_areas[c] for c in pcc_codes]
    covered_regions, covered_pcc = ctx.covered_regions[lot.id], ctx.covered_pcc[lot.id]
    outside = [r.name for r in regions if r.id not in covered_regions] + [
        p.name for p in pcc_areas if p.id not in covered_pcc
    ]
    if outside:
        errors["areas"] = [
            f"You are not an active member of {lot.category.name} in {', '.join(outside)}. "
            "You can only offer a service where you hold an active membership of its lot."
        ]
        return []
    return [(r.id, None) for r in regions] + [(None, p.id) for p in pcc_areas]


@dataclass
class _Plan:
    row: int
    listing: Listing | None  # None: a new listing
    values: dict[str, Any]
    areas: list[tuple[int | None, int | None]]
    price: int
    effective_from: date
    publish: bool


def _check_row(
    number: int, row: dict[str, str], ctx: _Context, today: date, seen: dict[str, int]
) -> tuple[_Plan | None, list[RowError]]:
    problems: list[RowError] = []
    for name in COLUMN_NAMES:
        if looks_like_formula(row.get(name, "")):
            problems.append(
                RowError(
                    number,
                    name,
                    "This looks like a spreadsheet formula, which is not "
                    "allowed. Remove the leading =, +, - or @",
                )  # fmt: skip
            )
    if problems:
        return None, problems
    errors: dict[str, list[str]] = {}
    reference = row["reference"].strip().upper()
    listing = None
    if reference:
        if reference in seen:
            errors["reference"] = [f"{reference} is also on row {seen[reference]}: give each "
                                   "listing once"]  # fmt: skip
        else:
            seen[reference] = number
            listing = ctx.listings.get(reference) if len(reference) <= REFERENCE_MAX else None
            if listing is None:
                errors["reference"] = [
                    f"There is no listing {reference} on your rate card. Leave the reference "
                    "empty to create a new listing"
                ]
            elif listing.status == ListingStatus.WITHDRAWN:
                errors["reference"] = [
                    f"{reference} has been withdrawn, so it can no longer be changed"
                ]
    code = row["lot"].strip().upper()
    lot = None
    if not code:
        errors["lot_id"] = ["Choose the lot this service belongs to"]
    else:
        lots = ctx.lots_by_code.get(code, [])
        if listing is not None:
            same = [candidate for candidate in lots if candidate.id == listing.lot_id]
            lots = same or lots
        if not lots:
            errors["lot_id"] = [f"You are not an active member of a lot with the code {code}"]
        elif len(lots) > 1:
            errors["lot_id"] = [
                f"You are a member of {code} in more than one arrangement: create this listing "
                "on the website"
            ]
        else:
            lot = lots[0]
    details = details_from_row(row)
    for name, column, label in (
        ("cost_staff_pence", "cost_staff", "the staff cost"),
        ("cost_overheads_pence", "cost_overheads", "the overheads"),
        ("cost_other_pence", "cost_other", "the other costs"),
    ):
        setattr(details, name, _pence(errors, name, row[column], label, required=False))
    values, areas = check_details(details, lot, ctx, errors)
    price = _pence(errors, "unit_price_pence", row["unit_price"], "the unit price", required=True)
    if "unit_price_pence" not in errors:
        price = check_price_pence(price, errors)
    day = _day(row["price_effective_from"])
    if day == "bad":
        errors["effective_from"] = ["Enter a real date as YYYY-MM-DD or DD/MM/YYYY"]
    elif message := date_horizon_error(day, "The price's date", today=today):
        errors["effective_from"] = [message]
    elif day is not None and day < today:
        errors["effective_from"] = [
            "The new price must take effect today or later, not in the past"
        ]
    effective_from = day if isinstance(day, date) else today
    publish_text = row["publish"].strip().lower()
    if publish_text not in ("", "yes", "no", "y", "n", "true", "false"):
        errors["status"] = ["Enter yes or no"]
    publish = publish_text in ("yes", "y", "true")
    if publish and listing is None and effective_from > today and "effective_from" not in errors:
        errors["status"] = [
            "A new listing can only be published with a price in force today: leave the date "
            "empty, or publish it later"
        ]
    if errors:
        return None, [
            RowError(number, FIELD_COLUMNS.get(name, name), message)
            for name, messages in errors.items()
            for message in messages
        ]
    return _Plan(number, listing, values, areas, price, effective_from, publish), []


# ---------------------------------------------------------------------------------------------
# Writing


def _next_references(count: int) -> list[str]:
    """``count`` unused references SL-nnnnnn after the highest listing id (a few queries)."""
    latest = db.session.scalar(sa.select(sa.func.max(Listing.id))) or 0
    start, result = latest + 1, []
    while len(result) < count:
        candidates = [f"SL-{n:06d}" for n in range(start, start + (count - len(result)) + 100)]
        taken: set[str] = set()
        for i in range(0, len(candidates), 5000):
            chunk = candidates[i : i + 5000]
            taken |= set(db.session.scalars(sa.select(Listing.reference).where(
                Listing.reference.in_(chunk))))  # fmt: skip
        result.extend(c for c in candidates if c not in taken)
        start += len(candidates)
    return result[:count]


class _Audit:
    """Audit events collected for one bulk insert (the same rows ``audit.record`` writes)."""

    def __init__(self, actor: User, organisation: Organisation, now: datetime):
        self.rows: list[dict[str, Any]] = []
        self.base = {
            "occurred_at": now,
            "actor_id": actor.id,
            "organisation_id": organisation.id,
            "request_id": g.get("request_id") if has_request_context() else None,
            "ip_address": request.remote_addr if has_request_context() else None,
        }

    def add(self, action: str, object_type: str, object_id: Any, before=None, after=None) -> None:
        self.rows.append(
            {
                **self.base,
                "action": action,
                "object_type": object_type,
                "object_id": str(object_id),
                "before": _jsonable(before) if before is not None else None,
                "after": _jsonable(after) if after is not None else None,
            }
        )

    def write(self) -> None:
        if self.rows:
            insert_many(db.session.connection(), AuditEvent.__table__, self.rows)


def import_rows(
    actor: User,
    organisation: Organisation,
    rows: Sequence[dict[str, str]],
    *,
    at: datetime | None = None,
    dry_run: bool = False,
    first_row: int = FIRST_DATA_ROW,
) -> ImportResult:
    """Validate every row, then create or update the listings and set their prices, all or none.

    Raises ``ImportRefused`` naming every bad row and column; writes nothing then. With
    ``dry_run`` it only says what would happen (the preview).
    """
    require_editor(actor, organisation)
    now = at or utcnow()
    today = london_date(now)
    for row in rows:
        for name in COLUMN_NAMES:
            row.setdefault(name, "")
    ctx = _load_context(
        organisation, (r["reference"].strip().upper() for r in rows if r["reference"].strip())
    )
    plans, problems, seen = [], [], {}
    for offset, row in enumerate(rows):
        plan, row_problems = _check_row(first_row + offset, row, ctx, today, seen)
        if plan is not None:
            plans.append(plan)
        problems.extend(row_problems)
    if problems:
        raise ImportRefused(problems)

    result = ImportResult()
    audit = _Audit(actor, organisation, now)
    new_plans = [p for p in plans if p.listing is None]
    result.created = len(new_plans)
    result.published = sum(1 for p in new_plans if p.publish)
    update_rows, area_deletes, area_inserts, price_inserts, price_updates = [], [], [], [], []
    for plan in plans:
        listing = plan.listing
        if listing is None:
            continue
        changed = {
            name: value for name, value in plan.values.items() if getattr(listing, name) != value
        }
        current = {(a.region_id, a.pcc_area_id): a.id for a in listing.areas}
        wanted = set(plan.areas)
        areas_changed = set(current) != wanted
        row = {"id": listing.id, "confirmed_at": now, "stale_notified_at": None, "updated_at": now}
        publish = plan.publish and listing.status in (ListingStatus.DRAFT, ListingStatus.PAUSED)
        if publish:
            result.published += 1
            row["status"] = ListingStatus.PUBLISHED
            row["paused_at"] = None
            row["published_at"] = listing.published_at or now
            if listing.price_on(today) is None and plan.effective_from > today:
                raise ImportRefused(
                    [RowError(plan.row, "publish", "Set a price in force today before publishing")]
                )
        if changed or areas_changed or publish:
            result.updated += 1
        else:
            result.unchanged += 1
        result.listing_ids.append(listing.id)
        update_rows.append({**row, **changed})
        if changed or areas_changed:
            before = {name: getattr(listing, name) for name in changed}
            after = dict(changed)
            if areas_changed:
                before["areas"] = sorted(str(k) for k in current)
                after["areas"] = sorted(str(k) for k in wanted)
            audit.add(
                "listing.updated", "listing", listing.id, before, {**after, "source": "import"}
            )
        if publish:
            action = (
                "listing.published" if listing.status == ListingStatus.DRAFT else "listing.resumed"
            )
            audit.add(action, "listing", listing.id, {"status": listing.status},
                      {"status": ListingStatus.PUBLISHED, "source": "import"})  # fmt: skip
        area_deletes.extend(area_id for key, area_id in current.items() if key not in wanted)
        area_inserts.extend(
            {"listing_id": listing.id, "region_id": r, "pcc_area_id": p}
            for r, p in sorted(wanted - set(current), key=str)
        )
        # A new price version, as services.set_price makes it (same day: replaced).
        in_force = listing.price_on(plan.effective_from)
        if in_force is not None and in_force.unit_price_pence == plan.price:
            continue
        result.prices_changed += 1
        versions = sorted(listing.prices, key=lambda p: p.effective_from)
        same_day = next((p for p in versions if p.effective_from == plan.effective_from), None)
        if same_day is not None:
            price_updates.append({"id": same_day.id, "unit_price_pence": plan.price,
                                  "created_at": now, "created_by_id": actor.id,
                                  "reason": "Rate card import"})  # fmt: skip
        else:
            earlier = [p for p in versions if p.effective_from < plan.effective_from]
            later = [p for p in versions if p.effective_from > plan.effective_from]
            price_inserts.append(
                {
                    "listing_id": listing.id,
                    "unit_price_pence": plan.price,
                    "effective_from": plan.effective_from,
                    "effective_to": later[0].effective_from if later else None,
                    "reason": "Rate card import",
                    "created_at": now,
                    "created_by_id": actor.id,
                }
            )
            if earlier:
                price_updates.append({"id": earlier[-1].id, "effective_to": plan.effective_from})
        audit.add("listing.price_set", "listing", listing.id,
                  {"unit_price_pence": in_force.unit_price_pence} if in_force else None,
                  {"unit_price_pence": plan.price, "effective_from": plan.effective_from,
                   "reason": "Rate card import"})  # fmt: skip
    if dry_run:
        return result

    if new_plans:
        references = _next_references(len(new_plans))
        listing_rows = []
        for plan, reference in zip(new_plans, references, strict=True):
            listing_rows.append(
                {
                    **plan.values,
                    "reference": reference,
                    "organisation_id": organisation.id,
                    "status": ListingStatus.PUBLISHED if plan.publish else ListingStatus.DRAFT,
                    "created_by_id": actor.id,
                    "copied_from_id": None,
                    "published_at": now if plan.publish else None,
                    "paused_at": None,
                    "withdrawn_at": None,
                    "confirmed_at": now,
                    "stale_notified_at": None,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        # Plain executemany (RETURNING would go row by row on SQLite), then the new ids by
        # their references, which are unique: a few statements whatever the number of rows.
        table = Listing.__table__
        insert_many(db.session.connection(), table, listing_rows)
        id_by_reference: dict[str, int] = {}
        for i in range(0, len(references), 5000):
            chunk = references[i : i + 5000]
            id_by_reference.update(
                db.session.execute(
                    sa.select(table.c.reference, table.c.id).where(table.c.reference.in_(chunk))
                ).all()
            )
        new_ids = [id_by_reference[reference] for reference in references]
        for plan, listing_id, listing_row in zip(new_plans, new_ids, listing_rows, strict=True):
            area_inserts.extend(
                {"listing_id": listing_id, "region_id": r, "pcc_area_id": p} for r, p in plan.areas
            )
            price_inserts.append(
                {
                    "listing_id": listing_id,
                    "unit_price_pence": plan.price,
                    "effective_from": plan.effective_from,
                    "effective_to": None,
                    "reason": "First price",
                    "created_at": now,
                    "created_by_id": actor.id,
                }
            )
            audit.add("listing.created", "listing", listing_id, None,
                      {"reference": listing_row["reference"], "title": listing_row["title"],
                       "unit_price_pence": plan.price, "effective_from": plan.effective_from,
                       "status": listing_row["status"], "source": "import"})  # fmt: skip
        result.listing_ids.extend(new_ids)

    if update_rows:
        # Each group has the same keys, so each is one executemany.
        by_keys: dict[tuple, list[dict]] = defaultdict(list)
        for row in update_rows:
            by_keys[tuple(sorted(row))].append(row)
        table = Listing.__table__
        for keys, group in by_keys.items():
            statement = (
                table.update()
                .where(table.c.id == sa.bindparam("_id"))
                .values({k: sa.bindparam(k) for k in keys if k != "id"})
            )
            db.session.execute(statement, [{**r, "_id": r["id"]} for r in group])
    if area_deletes:
        area_table = ListingArea.__table__
        for i in range(0, len(area_deletes), 5000):
            db.session.execute(
                area_table.delete().where(area_table.c.id.in_(area_deletes[i : i + 5000]))
            )
    if price_updates:
        price_table = ListingPrice.__table__
        by_keys = defaultdict(list)
        for row in price_updates:
            by_keys[tuple(sorted(row))].append(row)
        for keys, group in by_keys.items():
            statement = (
                price_table.update()
                .where(price_table.c.id == sa.bindparam("_id"))
                .values({k: sa.bindparam(k) for k in keys if k != "id"})
            )
            db.session.execute(statement, [{**r, "_id": r["id"]} for r in group])
    if area_inserts:
        insert_many(db.session.connection(), ListingArea.__table__, area_inserts)
    if price_inserts:
        insert_many(db.session.connection(), ListingPrice.__table__, price_inserts)
    audit.add(
        "rate_card.imported",
        "organisation",
        organisation.id,
        None,
        {
            "created": result.created,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "prices_changed": result.prices_changed,
            "published": result.published,
        },
    )
    audit.write()
    # The rows were written without the ORM: what the session holds is out of date.
    db.session.expire_all()
    return result


def refresh_search(listing_ids: Sequence[int]) -> None:
    """Bring the search index up to date after the bulk writes, in the import's transaction.

    The rows were written with SQLAlchemy Core, which the search module's flush hook does not see.
    """
    from marketplace.catalogue import search

    search.reindex_listings(db.session.connection(), list(listing_ids))


# ---------------------------------------------------------------------------------------------
# The template


def template_rows() -> list[list[str]]:
    """The template: the header and one example row."""
    return [COLUMN_NAMES, [c.example for c in COLUMNS]]


def template_csv() -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(template_rows())
    return buffer.getvalue()


def template_xlsx() -> bytes:
    from marketplace.catalogue.rate_cards import write_xlsx

    rules = [["column", "required", "rule"]] + [
        [c.name, "yes" if c.required else "no", c.rule] for c in COLUMNS
    ]
    from openpyxl import load_workbook

    data = write_xlsx(template_rows(), "Rate card")
    workbook = load_workbook(io.BytesIO(data))
    sheet = workbook.create_sheet("Column rules")
    for row in rules:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
