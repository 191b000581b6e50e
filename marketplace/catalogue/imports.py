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
import enum
import functools
import hashlib
import io
import re
import zipfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, astuple, dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request
from sqlalchemy.orm import joinedload, selectinload

from marketplace.accounts.models import Organisation, User
from marketplace.accreditation.models import ArrangementLot, LotMembership, MembershipStatus
from marketplace.accreditation.services.applications import provider_admins
from marketplace.accreditation.uploads import EXECUTABLE_SIGNATURES, detect_type
from marketplace.accreditation.uploads import XLSX as XLSX_TYPE
from marketplace.catalogue import rate_cards
from marketplace.catalogue.forms import (
    COMPLEXITY_LABELS,
    FORMAT_LABELS,
    RISK_LABELS,
    SETTING_LABELS,
    UNIT_LABELS,
    VAT_LABELS,
)
from marketplace.catalogue.models import (
    COMPLEXITY_COLUMNS,
    CONTACT_EMAIL_MAX,
    CONTACT_NAME_MAX,
    CONTACT_PHONE_MAX,
    DESCRIPTION_MAX,
    FORMAT_COLUMNS,
    MAX_AGE,
    MAX_LEAD_TIME_DAYS,
    MAX_UNITS,
    MIN_AGE,
    OUTCOMES_MAX,
    REFERENCE_MAX,
    RISK_COLUMNS,
    SETTING_COLUMNS,
    SOCIAL_VALUE_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
    Complexity,
    DeliveryFormat,
    DeliverySetting,
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
    Sex,
    Unit,
)
from marketplace.catalogue.rate_cards import ESCAPED, safe_cell, write_workbook
from marketplace.catalogue.services import (
    ListingDetails,
    check_fields,
    check_price_pence,
    check_vat_registration,
    plan_price_version,
    require_editor,
)
from marketplace.core.audit import AuditEvent, _jsonable
from marketplace.core.clock import london_date, utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.filters import govuk_date, pounds
from marketplace.core.money import VatTreatment
from marketplace.core.notifications.services import queue_email
from marketplace.core.store import insert_many
from marketplace.core.validation import date_horizon_error, has_forbidden_characters
from marketplace.reference.models import PccArea, ProbationRegion

MAX_IMPORT_BYTES = 5 * 1024 * 1024
MAX_IMPORT_ROWS = 20_000
MAX_XLSX_UNCOMPRESSED_BYTES = 100 * 1024 * 1024  # a bigger inflated workbook is a zip bomb
FIRST_DATA_ROW = 2  # row 1 is the header, as a spreadsheet numbers them
ALLOWED_DESCRIPTION = "a CSV file or an Excel workbook (XLSX)"


CLEAR_MARKER = "(clear)"  # the only way a file empties a field: an empty cell leaves it as it is


@dataclass(frozen=True)
class Column:
    name: str
    required: bool  # a new listing needs it; an existing one keeps its value when the cell is empty
    rule: str
    example: str
    clearable: bool = False  # (clear) empties it; refused on the others


COLUMNS: list[Column] = [
    Column("reference", False, "Leave empty to create a new listing; give a listing's reference "
           "(like SL-000123) to update it. Give each listing once.", ""),
    Column("title", True, f"Up to {TITLE_MAX} characters.", "Move-on accommodation support"),
    Column("summary", True, f"Up to {SUMMARY_MAX} characters.",
           "Help to find and keep a tenancy after release"),
    Column("description", False, f"Up to {DESCRIPTION_MAX:,} characters.", "", True),
    Column("outcomes", False, f"Up to {OUTCOMES_MAX:,} characters; separate outcomes with "
           "a new line.", "Settled accommodation within 28 days", True),
    Column("lot", True, "The code or name of a lot you are an active member of, like ACC or "
           "Accommodation.", "ACC"),
    Column("regions", False, "Probation region codes or names, separated by semicolons, like "
           "A; B. A new listing needs regions, PCC areas or both. Areas where your membership "
           "of the lot is no longer active stay as they are.", "A; B", True),
    Column("pcc_areas", False, "PCC area codes or names, separated by semicolons, like "
           "cumbria; lancashire.", "", True),
    Column("settings", True, "One or more of community, custody, remote.", "community"),
    Column("formats", True, "One or both of one_to_one, group.", "one_to_one"),
    Column("eligibility_sex", False, "any (the default for a new listing), male or female. "
           f"{CLEAR_MARKER} sets it back to any.", "any", True),
    Column("min_age", False, f"A whole number from {MIN_AGE} to {MAX_AGE}.", "18", True),
    Column("max_age", False, f"A whole number from {MIN_AGE} to {MAX_AGE}.", "", True),
    Column("risk_levels", False, "Any of low, medium, high, very_high.", "low; medium", True),
    Column("complexities", True, "One or more of low, medium, high.", "medium; high"),
    Column("lead_time_days", True, f"Working days from referral to start, 0 to "
           f"{MAX_LEAD_TIME_DAYS}.", "5"),
    Column("unit", True, "session, hour, day, week, place, programme, bed_night or referral.",
           "week"),
    Column("vat_treatment", True, "standard, reduced, zero, exempt or outside_scope (or the "
           "words the website shows, like Exempt from VAT).", "exempt"),
    Column("min_units", True, "Fewest units per call-off, at least 1.", "1"),
    Column("max_units", True, f"Most units per call-off, up to {MAX_UNITS:,}.", "26"),
    Column("monthly_capacity", True, "Units you can deliver each month.", "40"),
    Column("unit_price", True, "Pounds and pence, excluding VAT, like 125.00. No fractions of "
           "a penny, not negative. A different price from the one in force becomes a new "
           "price from price_effective_from; the price history is kept.", "125.00"),
    Column("price_effective_from", False, "The date the price takes effect, as YYYY-MM-DD or "
           "DD/MM/YYYY: today or later. Empty means today, and so does the date a download "
           "gives for the price in force (the start of that price) when you change the price.",
           ""),
    Column("cost_staff", False, "Optional full-cost breakdown of one unit, in pounds.", "", True),
    Column("cost_overheads", False, "Optional, in pounds.", "", True),
    Column("cost_other", False, "Optional, in pounds.", "", True),
    Column("social_value", False, f"Up to {SOCIAL_VALUE_MAX:,} characters.", "", True),
    Column("contact_name", False, f"Referral contact, up to {CONTACT_NAME_MAX} characters.",
           "Referrals team", True),
    Column("contact_email", False, f"Up to {CONTACT_EMAIL_MAX} characters.",
           "referrals@example.org", True),
    Column("contact_phone", False, f"Up to {CONTACT_PHONE_MAX} characters.", "", True),
    Column("publish", False, "yes to publish the listing (it needs a price in force today); "
           "no or empty to leave it as it is (new listings start as drafts).", "yes"),
]  # fmt: skip
COLUMN_NAMES = [c.name for c in COLUMNS]
CLEARABLE = frozenset(c.name for c in COLUMNS if c.clearable)
REQUIRED = frozenset(c.name for c in COLUMNS if c.required)

# Columns of the rate card download (``rate_cards.COLUMNS``) that the template does not have, so
# that a download re-imports as it is. Empty cells leave things as they are here too.
DOWNLOAD_COLUMNS: list[Column] = [
    Column("lot_code", False, "The lot's code, as the download gives it beside the lot's name. "
           "If both are given they must name the same lot.", ""),
    Column("unit_price_pence", False, "The unit price in pence, as the download gives it beside "
           "unit_price. Change either one: the one that differs from the price in force is the "
           "new price.", ""),
    Column("next_unit_price_pence", False, "A planned price in pence, with "
           "next_price_effective_from (today or later). A planned price cannot be removed here: "
           "give the price in force from that date instead.", ""),
    Column("next_price_effective_from", False, "The date of the planned price.", ""),
    Column("last_confirmed_on", False, "For information: not imported. Importing a listing "
           "confirms it as accurate today.", ""),
    Column("stale", False, "For information: not imported.", ""),
]  # fmt: skip
INFORMATION_COLUMNS = frozenset({"last_confirmed_on", "stale"})
KNOWN_COLUMNS = COLUMN_NAMES + [c.name for c in DOWNLOAD_COLUMNS]
# A file with no reference column only creates listings, so it needs every required column
# (or the download's alternative to it).
ALTERNATIVE_COLUMNS = {"lot": "lot_code", "unit_price": "unit_price_pence"}

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


@dataclass(frozen=True, slots=True)
class Change:
    """One thing an import changes on an existing listing: a column, from ``old`` to ``new``."""

    row: int
    reference: str
    title: str
    column: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class NewListing:
    row: int
    title: str
    lot: str
    unit_price: str
    status: str


@dataclass
class ImportResult:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    prices_changed: int = 0
    published: int = 0
    listing_ids: list[int] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    new_listings: list[NewListing] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return self.created + self.updated + self.unchanged

    @property
    def no_changes(self) -> bool:
        return not self.changes and not self.new_listings

    def fingerprint(self) -> str:
        """Names what the import would do: a confirmation writes only what its preview showed."""
        digest = hashlib.sha256()
        for item in (*self.changes, *self.new_listings):
            digest.update(repr(astuple(item)).encode())
        return digest.hexdigest()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("listing_ids")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportResult:
        data = dict(data)
        changes = [Change(**c) for c in data.pop("changes", [])]
        new_listings = [NewListing(**n) for n in data.pop("new_listings", [])]
        return cls(**data, changes=changes, new_listings=new_listings)


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
        # A spreadsheet's arithmetic leaves binary noise (46.349999999999994 for 46.35); it shows
        # 15 significant digits, and so does this.
        value = float(f"{value:.15g}")
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
    """Check the header row against the known columns and key each data row by column.

    Columns may come in any order and any may be left out (an absent column, like an empty cell,
    leaves the listings as they are), so a rate card download is read as it is. A file without the
    reference column only creates listings, so it needs every column a new listing needs. A file
    with a header and no rows changes nothing.
    """
    # Trailing empty rows (spreadsheets keep formatting there) are not rows.
    while table and not any((cell or "").strip() for cell in table[-1]):
        table.pop()
    if not table:
        _refuse("The selected file is empty")
    header = [_header_name(cell) for cell in table[0]]
    while header and header[-1] == "":
        header.pop()
    unknown = [name or "(empty)" for name in header if name not in KNOWN_COLUMNS]
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    missing = []
    if unknown or "reference" not in header:
        missing = [
            name
            for name in COLUMN_NAMES
            if name in REQUIRED
            and name not in header
            and ALTERNATIVE_COLUMNS.get(name) not in header
        ]
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
    rows = []
    for cells in data_rows:
        rows.append(
            {name: (cells[i] if i < len(cells) else "") or "" for i, name in enumerate(header)}
        )
    for number, row in enumerate(rows, start=2):
        # As for any text sent to the service (marketplace.core.validation): refused, never stored.
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


def unescape_cell(text: str) -> str | None:
    """The text of a cell the export escaped (``rate_cards.safe_cell``), or None if it is not one.

    The export puts an apostrophe before text a spreadsheet would run as a formula (and before
    text that already starts with apostrophes and then such a character), so removing exactly one
    gives back the text: the escape and this are inverses."""
    if ESCAPED.match(text):
        return text[1:]
    return None


AREA_SEPARATORS = re.compile(r"[;\n]")
KEY_SEPARATORS = re.compile(r"[\s\-]+")
LIST_SEPARATORS = re.compile(r"[;,\n]")


def _key(text: str) -> str:
    return KEY_SEPARATORS.sub("_", text.strip().lower())


@functools.lru_cache(maxsize=4096)
def _split(text: str) -> tuple[str, ...]:
    return tuple(_key(part) for part in LIST_SEPARATORS.split(text) if part.strip())


def _lookup(*pairs: Iterable[tuple[Any, str]]) -> dict[str, str]:
    """Each choice's value and the words pages show for it, normalised as ``_key`` does."""
    table: dict[str, str] = {}
    for pair in pairs:
        for member, label in pair:
            table[_key(label)] = member.value
            table[_key(member.value)] = member.value
    return table


UNIT_WORDS = _lookup(UNIT_LABELS.items(), ((u, u.label) for u in Unit))
VAT_WORDS = _lookup(VAT_LABELS.items())
SEX_WORDS = _lookup((s, s.label) for s in Sex)
SETTING_WORDS = _lookup(SETTING_LABELS.items())
FORMAT_WORDS = _lookup(FORMAT_LABELS.items())
RISK_WORDS = _lookup(RISK_LABELS.items())
COMPLEXITY_WORDS = _lookup(COMPLEXITY_LABELS.items())


CHOICE_WORDS = {
    "unit": UNIT_WORDS,
    "vat_treatment": VAT_WORDS,
    "eligibility_sex": SEX_WORDS,
    "settings": SETTING_WORDS,
    "formats": FORMAT_WORDS,
    "risk_levels": RISK_WORDS,
    "complexities": COMPLEXITY_WORDS,
}
LIST_COLUMNS = ("settings", "formats", "risk_levels", "complexities")


@functools.lru_cache(maxsize=4096)
def _choice(text: str, column: str) -> str:
    key = _key(text)
    return CHOICE_WORDS[column].get(key, key)  # an unknown word goes on to the service's message


@functools.lru_cache(maxsize=4096)
def _choices(text: str, column: str) -> tuple[str, ...]:
    words = CHOICE_WORDS[column]
    return tuple(words.get(part, part) for part in _split(text))


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


def _whole_pence(errors: dict, name: str, text: str, label: str) -> int | None:
    value = _whole_or_text(text)
    if value is None:
        return None
    if not isinstance(value, int):
        errors[name] = [f"Enter {label} in pence as a whole number, like 4500 for £45.00"]
        return None
    return value


MONTHS = {
    name.lower(): number
    for number in range(1, 13)
    for name in (date(2000, number, 1).strftime("%B"), date(2000, number, 1).strftime("%b"))
}


def _day(text: str) -> date | None | str:
    """YYYY-MM-DD, DD/MM/YYYY (as spreadsheets in the UK write dates) or 1 April 2026."""
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
    match = re.fullmatch(r"(\d{1,2})[\s\-]+([A-Za-z]+)[\s\-]+(\d{4})", text)
    if match and match.group(2).lower() in MONTHS:
        try:
            return date(int(match.group(3)), MONTHS[match.group(2).lower()], int(match.group(1)))
        except ValueError:
            return "bad"
    return "bad"


@dataclass
class _Context:
    """What every row is checked against, loaded once."""

    organisation: Organisation
    lots_by_code: dict[str, list[ArrangementLot]]
    lots_by_id: dict[int, ArrangementLot]
    lot_codes_by_name: dict[str, str]  # a category's name, casefolded → its code
    regions: dict[str, ProbationRegion]
    pcc_areas: dict[str, PccArea]
    covered_regions: dict[int, set[int]]  # lot id → region ids
    covered_pcc: dict[int, set[int]]  # lot id → PCC area ids (including those of covered regions)
    listings: dict[str, Listing]
    region_codes_by_name: dict[str, str] = field(default_factory=dict)
    pcc_codes_by_name: dict[str, str] = field(default_factory=dict)
    region_codes_by_id: dict[int, str] = field(default_factory=dict)
    pcc_codes_by_id: dict[int, str] = field(default_factory=dict)
    # A rate card repeats the same area cells: each is read once per import.
    area_cells: dict[tuple[str, bool], list[str]] = field(default_factory=dict)


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
        lot_codes_by_name={lot.category.name.casefold(): lot.category.code.upper() for lot in lots},
        regions=regions,
        pcc_areas=pcc_areas,
        covered_regions=covered_regions,
        covered_pcc=covered_pcc,
        listings={listing.reference: listing for listing in existing},
        region_codes_by_name={r.name.casefold(): code for code, r in regions.items()},
        pcc_codes_by_name={p.name.casefold(): code for code, p in pcc_areas.items()},
        region_codes_by_id={r.id: code for code, r in regions.items()},
        pcc_codes_by_id={p.id: code for code, p in pcc_areas.items()},
    )


def _area_codes(text: str, ctx: _Context, *, upper: bool) -> list[str]:
    """Area codes from a cell of codes or names separated by semicolons, commas or lines:
    region codes and names when ``upper``, else PCC area codes and names."""
    key = (text, upper)
    if key not in ctx.area_cells:
        if upper:
            ctx.area_cells[key] = _read_areas(text, ctx.regions, ctx.region_codes_by_name, upper)
        else:
            ctx.area_cells[key] = _read_areas(text, ctx.pcc_areas, ctx.pcc_codes_by_name, upper)
    return list(ctx.area_cells[key])


def _read_areas(text: str, codes: dict, names: dict[str, str], upper: bool) -> list[str]:
    """A name with a comma in it ("Kent, Surrey and Sussex") is found before the cell is split at
    commas. What is neither a code nor a name is kept as it is, for the unknown-area message."""

    def find(part: str) -> str | None:
        code = part.upper() if upper else part.lower()
        if code in codes:
            return code
        if not upper and code.replace("_", "-") in codes:
            return code.replace("_", "-")
        return names.get(part.casefold())

    found = []
    for part in (p.strip() for p in AREA_SEPARATORS.split(text)):
        if not part:
            continue
        code = find(part)
        if code is not None:
            found.append(code)
            continue
        for piece in (p.strip() for p in part.split(",")):
            if piece:
                found.append(find(piece) or piece)
    return found


def check_details(
    details: ListingDetails, lot: ArrangementLot | None, ctx: _Context, errors: dict
) -> tuple[dict, list[tuple[int | None, int | None]]]:
    """The services' listing rules: their own field checks, and the lot and areas against
    preloaded data instead of a query per row.

    Returns the column values and the (region id, PCC area id) pairs; adds to ``errors``.
    """
    values = check_fields(details, errors)
    check_vat_registration(ctx.organisation, values, errors)
    if lot is not None:
        values["lot_id"] = lot.id
    return values, _areas(details, lot, ctx, errors)


def _areas(
    details: ListingDetails,
    lot: ArrangementLot | None,
    ctx: _Context,
    errors: dict,
    *,
    keep: frozenset[tuple[int | None, int | None]] = frozenset(),
    region_field: str = "areas",
    pcc_field: str = "areas",
) -> list[tuple[int | None, int | None]]:
    """The areas, checked as ``services._listing_areas`` checks them (one message under
    ``areas``), or with a message per column when the fields differ.

    Areas in ``keep`` (those the listing has already) are allowed where the membership has
    lapsed: the file only repeats them."""
    region_codes = sorted({(c or "").strip().upper() for c in details.region_codes} - {""})
    pcc_codes = sorted({(c or "").strip().lower() for c in details.pcc_area_codes} - {""})
    unknown_regions = [c for c in region_codes if c not in ctx.regions]
    unknown_pcc = [c for c in pcc_codes if c not in ctx.pcc_areas]
    if unknown_regions or unknown_pcc:
        if region_field == pcc_field:
            unknown = sorted(unknown_regions + unknown_pcc)
            errors[region_field] = [f"Unknown region or PCC area: {', '.join(unknown)}"]
        else:
            if unknown_regions:
                errors[region_field] = [f"Unknown probation region: {', '.join(unknown_regions)}"]
            if unknown_pcc:
                errors[pcc_field] = [f"Unknown PCC area: {', '.join(unknown_pcc)}"]
        return []
    if not region_codes and not pcc_codes:
        errors[region_field] = [
            "Choose at least one region or PCC area where you deliver this service"
        ]
        return []
    if lot is None:
        return []
    regions = [ctx.regions[c] for c in region_codes]
    pcc_areas = [ctx.pcc_areas[c] for c in pcc_codes]
    covered_regions, covered_pcc = ctx.covered_regions[lot.id], ctx.covered_pcc[lot.id]
    outside_regions = [
        r.name for r in regions if r.id not in covered_regions and (r.id, None) not in keep
    ]
    outside_pcc = [
        p.name for p in pcc_areas if p.id not in covered_pcc and (None, p.id) not in keep
    ]

    def outside_message(names: list[str]) -> list[str]:
        return [
            f"You are not an active member of {lot.category.name} in {', '.join(names)}. "
            "You can only offer a service where you hold an active membership of its lot."
        ]

    if outside_regions or outside_pcc:
        if region_field == pcc_field:
            errors[region_field] = outside_message(outside_regions + outside_pcc)
        else:
            if outside_regions:
                errors[region_field] = outside_message(outside_regions)
            if outside_pcc:
                errors[pcc_field] = outside_message(outside_pcc)
        return []
    return [(r.id, None) for r in regions] + [(None, p.id) for p in pcc_areas]


@dataclass(slots=True)
class _Version:
    """A price version as the import plans it: an existing row (``id``) or a new one (None)."""

    id: int | None
    unit_price_pence: int
    effective_from: date
    effective_to: date | None
    replaced: bool = False  # an existing version whose price this import replaces (same day)

    def in_force_on(self, day: date) -> bool:
        return self.effective_from <= day and (self.effective_to is None or day < self.effective_to)


@dataclass(slots=True)
class _PriceChange:
    old: int | None  # the price in force on the date before the change
    new: int
    effective_from: date


@dataclass(slots=True)
class _Plan:
    row: int
    listing: Listing | None  # None: a new listing
    values: dict[str, Any]
    areas: list[tuple[int | None, int | None]]
    versions: list[_Version]  # the price history after the import
    price_changes: list[_PriceChange]
    publish: bool

    @property
    def price(self) -> int:
        """A new listing's price today (or its first, if that is later)."""
        today_version = self.versions[0]
        return today_version.unit_price_pence

    @property
    def effective_from(self) -> date:
        return self.versions[0].effective_from


def _apply_price(versions: list[_Version], price: int, day: date) -> _PriceChange | None:
    """A price from ``day`` among ``versions`` by the services' one versioning rule (None when
    that price is already in force on that day)."""
    if not versions:  # a new listing's first price
        versions.append(_Version(None, price, day, None))
        return _PriceChange(None, price, day)
    in_force = next((v for v in versions if v.in_force_on(day)), None)
    if in_force is not None and in_force.unit_price_pence == price:
        return None
    old = in_force.unit_price_pence if in_force is not None else None
    plan = plan_price_version(versions, day)  # type: ignore[arg-type]
    if plan.replaces is not None:
        plan.replaces.unit_price_pence = price
        plan.replaces.replaced = True
    else:
        versions.append(_Version(None, price, day, plan.effective_to))
        if plan.closes is not None:
            plan.closes.effective_to = day
        versions.sort(key=lambda v: v.effective_from)
    return _PriceChange(old, price, day)


def _current_details(listing: Listing) -> ListingDetails:
    """What the listing says now, as the services take it (areas are handled apart)."""
    return ListingDetails(
        title=listing.title,
        summary=listing.summary,
        lot_id=listing.lot_id,
        unit=listing.unit,
        vat_treatment=listing.vat_treatment,
        max_units=listing.max_units,
        monthly_capacity=listing.monthly_capacity,
        description=listing.description,
        outcomes=listing.outcomes,
        settings=listing.settings,
        formats=listing.formats,
        eligibility_sex=listing.eligibility_sex,
        min_age=listing.min_age,
        max_age=listing.max_age,
        risk_levels=listing.risk_levels,
        complexities=listing.complexities,
        lead_time_days=listing.lead_time_days,
        min_units=listing.min_units,
        cost_staff_pence=listing.cost_staff_pence,
        cost_overheads_pence=listing.cost_overheads_pence,
        cost_other_pence=listing.cost_other_pence,
        social_value=listing.social_value,
        contact_name=listing.contact_name,
        contact_email=listing.contact_email,
        contact_phone=listing.contact_phone,
    )


def _new_details() -> ListingDetails:
    """A new listing before its cells: what is required is missing, the rest is empty."""
    return ListingDetails(
        title="", summary="", lot_id=None, unit="", vat_treatment="", max_units=None,
        monthly_capacity=None, lead_time_days=None, min_units=None,  # type: ignore[arg-type]
    )  # fmt: skip


def _neutral_details() -> ListingDetails:
    """Valid stand-ins, so that a row whose reference is wrong is checked for its own cells only."""
    return ListingDetails(
        title="-", summary="-", lot_id=None, unit=Unit.SESSION, vat_treatment=VatTreatment.EXEMPT,
        max_units=MAX_UNITS, monthly_capacity=0, settings=[DeliverySetting.COMMUNITY],
        formats=[DeliveryFormat.ONE_TO_ONE], complexities=[Complexity.LOW], lead_time_days=0,
        min_units=1,
    )  # fmt: skip


TEXT_FIELDS = ("title", "summary", "description", "outcomes", "social_value", "contact_name",
               "contact_email", "contact_phone")  # fmt: skip
WHOLE_FIELDS = ("min_age", "max_age", "lead_time_days", "min_units", "max_units",
                "monthly_capacity")  # fmt: skip
COST_FIELDS = (("cost_staff_pence", "cost_staff", "the staff cost"),
               ("cost_overheads_pence", "cost_overheads", "the overheads"),
               ("cost_other_pence", "cost_other", "the other costs"))  # fmt: skip
PUBLISH_WORDS = {"yes": True, "y": True, "true": True, "1": True,
                 "no": False, "n": False, "false": False, "0": False}  # fmt: skip


KNOWN = frozenset(KNOWN_COLUMNS) - INFORMATION_COLUMNS


def _row_cells(number: int, row: dict[str, str]) -> tuple[dict[str, str], set[str], list[RowError]]:
    """The row's non-empty cells (escaped text unescaped), the columns holding the clear
    marker, and the formulas (errors)."""
    cells: dict[str, str] = {}
    cleared: set[str] = set()
    problems = []
    for name, raw in row.items():
        if not raw or name not in KNOWN:
            continue
        text = raw.strip()
        if not text:
            continue
        first = text[0]
        if first == "'" and ESCAPED.match(text):
            cells[name] = text[1:]  # what the export escaped is text, whatever it starts with
        elif first in "=@+-" and looks_like_formula(text):
            problems.append(
                RowError(
                    number,
                    name,
                    "This looks like a spreadsheet formula, which is not "
                    "allowed. Remove the leading =, +, - or @",
                )  # fmt: skip
            )
        else:
            cells[name] = text
            if first == "(" and text.lower() == CLEAR_MARKER:
                cleared.add(name)
    problems.sort(key=lambda p: _column_order(p.column))
    return cells, cleared, problems


def _resolve_lot(
    text: str, listing: Listing | None, ctx: _Context
) -> tuple[ArrangementLot | None, str | None]:
    """The lot a cell names by code or name (the listing's own lot even if its membership has
    lapsed), or why not."""
    code = ctx.lot_codes_by_name.get(text.casefold(), text.upper())
    if listing is not None:
        current = ctx.lots_by_id.get(listing.lot_id)
        if current is not None and current.category.code.upper() == code:
            return current, None
    lots = ctx.lots_by_code.get(code, [])
    if not lots:
        return None, f"You are not an active member of a lot with the code {text}"
    if len(lots) > 1:
        return None, (
            f"You are a member of {code} in more than one arrangement: create this listing "
            "on the website"
        )
    return lots[0], None


def _check_row(
    number: int, row: dict[str, str], ctx: _Context, today: date, seen: dict[str, int]
) -> tuple[_Plan | None, list[RowError]]:
    """Check one row and say what it would do: an empty cell keeps the listing's value,
    ``(clear)`` empties an optional one, anything else is the new value, checked by the
    listing services' rules against the listing as the import would leave it."""
    cells, cleared, problems = _row_cells(number, row)
    if problems or not cells:
        return None, problems  # an empty row (a spreadsheet's gap) is no row
    errors: dict[str, list[str]] = {}  # by column
    for name in sorted(cleared - CLEARABLE, key=KNOWN_COLUMNS.index):
        if name in REQUIRED or name in ALTERNATIVE_COLUMNS.values():
            errors[name] = [
                f"A listing needs its {name}, so {CLEAR_MARKER} is not allowed here. Give a "
                "value, or leave the cell empty to keep the one the listing has"
            ]
        else:
            errors[name] = [
                f"{CLEAR_MARKER} is not allowed in {name}. Leave the cell empty to keep it as it is"
            ]
    for name in cleared:
        if name in CLEARABLE:
            cells[name] = ""
        else:
            del cells[name]  # refused above; checked as if left empty, so said once

    reference = cells.get("reference", "").upper()
    listing = None
    bad_reference = False
    if reference and "reference" not in errors:
        if reference in seen:
            errors["reference"] = [f"{reference} is also on row {seen[reference]}: give each "
                                   "listing once"]  # fmt: skip
            bad_reference = True
        else:
            seen[reference] = number
            # Another provider's listing is not in ctx.listings: it answers as a missing one.
            listing = ctx.listings.get(reference) if len(reference) <= REFERENCE_MAX else None
            if listing is None:
                errors["reference"] = [
                    f"There is no listing {reference} on your rate card. Leave the reference "
                    "empty to create a new listing"
                ]
                bad_reference = True
            # A withdrawn listing is checked like the others and refused below only if the
            # row would change it: a past rate card's download may still list it.
    elif "reference" in errors:
        bad_reference = True

    # The lot: from lot or lot_code (the download gives both), else the listing's own.
    lot = None
    lot_cells = [(name, cells[name]) for name in ("lot", "lot_code") if cells.get(name)]
    found = []
    for name, text in lot_cells:
        candidate, problem = _resolve_lot(text, listing, ctx)
        if problem:
            errors.setdefault(name, []).append(problem)
        else:
            found.append(candidate)
    if found:
        if len({candidate.id for candidate in found}) > 1:
            errors["lot"] = ["lot and lot_code name different lots: give one lot"]
        elif not any(name in errors for name in ("lot", "lot_code")):
            lot = found[0]
    elif not lot_cells:
        if listing is not None:
            lot = ctx.lots_by_id.get(listing.lot_id)
        elif not bad_reference:
            errors["lot"] = ["Choose the lot this service belongs to"]

    # The details as the import would leave them.
    if listing is not None:
        details = _current_details(listing)
    elif bad_reference:
        details = _neutral_details()
    else:
        details = _new_details()
    for name in TEXT_FIELDS:
        if name in cells:
            setattr(details, name, cells[name])
    for name in WHOLE_FIELDS:
        if name in cells:
            setattr(details, name, _whole_or_text(cells[name]))
    for name in LIST_COLUMNS:
        if name in cells:
            setattr(details, name, list(_choices(cells[name], name)))
    if "unit" in cells:
        details.unit = _choice(cells["unit"], "unit")
    if "vat_treatment" in cells:
        details.vat_treatment = _choice(cells["vat_treatment"], "vat_treatment")
    if "eligibility_sex" in cells:
        details.eligibility_sex = _choice(cells["eligibility_sex"], "eligibility_sex") or Sex.ANY
    for field_name, column, label in COST_FIELDS:
        if column in cells:
            setattr(details, field_name, _pence(errors, column, cells[column], label,
                                                required=False))  # fmt: skip
    field_errors: dict[str, list[str]] = {}
    values = check_fields(details, field_errors)
    check_vat_registration(ctx.organisation, values, field_errors)
    if lot is not None:
        values["lot_id"] = lot.id

    # Areas: each column replaces its kind of area; areas whose membership has lapsed stay.
    current = (
        {(a.region_id, a.pcc_area_id) for a in listing.areas} if listing is not None else set()
    )
    region_given, pcc_given = "regions" in cells, "pcc_areas" in cells
    details.region_codes = (
        _area_codes(cells["regions"], ctx, upper=True)
        if region_given
        else [ctx.region_codes_by_id[r] for r, _ in current if r is not None]
    )
    details.pcc_area_codes = (
        _area_codes(cells["pcc_areas"], ctx, upper=False)
        if pcc_given
        else [ctx.pcc_codes_by_id[p] for _, p in current if p is not None]
    )
    areas: list[tuple[int | None, int | None]] = []
    if not bad_reference or region_given or pcc_given:
        # Lapsed areas stay only in the lot they lapsed in: moving to another lot checks all.
        same_lot = listing is not None and lot is not None and lot.id == listing.lot_id
        if not same_lot:
            current = set()
        if lot is not None:
            covered_regions, covered_pcc = ctx.covered_regions[lot.id], ctx.covered_pcc[lot.id]
            lapsed = {
                (r, p)
                for r, p in current
                if (r is not None and r not in covered_regions)
                or (p is not None and p not in covered_pcc)
            }
        else:
            lapsed = set()
        kept = [ctx.region_codes_by_id[r] for r, p in lapsed if r is not None and region_given]
        kept_pcc = [ctx.pcc_codes_by_id[p] for r, p in lapsed if p is not None and pcc_given]
        details.region_codes = [*details.region_codes, *kept]
        details.pcc_area_codes = [*details.pcc_area_codes, *kept_pcc]
        area_errors: dict[str, list[str]] = {}
        areas = _areas(
            details, lot, ctx, area_errors, keep=frozenset(current),
            region_field="regions", pcc_field="pcc_areas",
        )  # fmt: skip
        if bad_reference:
            # Only what the cells themselves get wrong: there is no listing to check them with.
            if not region_given:
                area_errors.pop("regions", None)
            if not pcc_given:
                area_errors.pop("pcc_areas", None)
        for name, messages in area_errors.items():
            errors.setdefault(name, []).extend(messages)

    # Prices: unit_price (or the download's unit_price_pence) from price_effective_from, and the
    # download's planned price; each a new version by the services' rule, history kept.
    versions = (
        [_Version(p.id, p.unit_price_pence, p.effective_from, p.effective_to)
         for p in sorted(listing.prices, key=lambda p: p.effective_from)]
        if listing is not None else []
    )  # fmt: skip
    day = _day(cells.get("price_effective_from", ""))
    if day == "bad":
        errors["price_effective_from"] = ["Enter a real date as YYYY-MM-DD or DD/MM/YYYY"]
    elif message := date_horizon_error(day, "The price's date", today=today):
        errors["price_effective_from"] = [message]
        day = "bad"  # checked no further
    pounds_price = None
    if cells.get("unit_price"):
        pounds_price = _pence(errors, "unit_price", cells["unit_price"], "the unit price",
                              required=True)  # fmt: skip
        if pounds_price is not None:
            pounds_price = _check_price(errors, "unit_price", pounds_price)
    pence_price = None
    if cells.get("unit_price_pence"):
        pence_price = _whole_pence(errors, "unit_price_pence", cells["unit_price_pence"],
                                   "the unit price")  # fmt: skip
        if pence_price is not None:
            pence_price = _check_price(errors, "unit_price_pence", pence_price)
    price = pounds_price if pounds_price is not None else pence_price
    if pounds_price is not None and pence_price is not None and pounds_price != pence_price:
        # A download gives the price twice: the one that differs from the listing's is the change.
        shown = _shown_price(versions, day, today)
        if pence_price == shown:
            price = pounds_price
        elif pounds_price == shown:
            price = pence_price
        else:
            errors["unit_price"] = [
                f"unit_price ({pounds_price / 100:.2f}) and unit_price_pence ({pence_price}) "
                "give different prices: change one of them, or leave unit_price_pence empty"
            ]
            price = None
    wanted: list[tuple[int, date, str]] = []  # (price, date, column of the date)
    price_problem = any(n in errors for n in ("unit_price", "unit_price_pence"))
    if price is None:
        if listing is None and not bad_reference and not price_problem:
            errors["unit_price"] = ["Enter the unit price"]
        elif (
            isinstance(day, date)
            and listing is not None
            and not price_problem
            and not any(v.effective_from == day for v in versions)
        ):
            errors["price_effective_from"] = [
                "Give the unit price that takes effect on this date, or leave the date empty"
            ]
    elif day != "bad":
        when = _price_date(day, price, versions, today, errors, "price_effective_from")
        if when is not None:
            wanted.append((price, when, "price_effective_from"))
    next_text = cells.get("next_unit_price_pence", "")
    next_day_text = cells.get("next_price_effective_from", "")
    if next_text or next_day_text:
        next_price = _whole_pence(errors, "next_unit_price_pence", next_text, "the planned price")
        if next_price is not None:
            next_price = _check_price(errors, "next_unit_price_pence", next_price)
        next_day = _day(next_day_text)
        if next_day == "bad":
            errors["next_price_effective_from"] = ["Enter a real date as YYYY-MM-DD or DD/MM/YYYY"]
        elif message := date_horizon_error(next_day, "The planned price's date", today=today):
            errors["next_price_effective_from"] = [message]
            next_day = "bad"
        elif not next_text and "next_unit_price_pence" not in errors:
            errors["next_unit_price_pence"] = ["Give the planned price with its date"]
        elif next_day is None:
            errors["next_price_effective_from"] = ["Give the date of the planned price"]
        elif next_price is not None:
            when = _price_date(next_day, next_price, versions, today, errors,
                               "next_price_effective_from", planned=True)  # fmt: skip
            if when is not None:
                wanted.append((next_price, when, "next_price_effective_from"))
    if len({when for _, when, _ in wanted}) < len(wanted):
        errors["next_price_effective_from"] = [
            "The planned price has the same date as the unit price: give one price for a date"
        ]
        wanted = []
    price_changes = []
    for new_price, when, _column in sorted(wanted, key=lambda w: w[1]):
        change = _apply_price(versions, new_price, when)
        if change is not None:
            price_changes.append(change)

    publish_text = cells.get("publish", "").lower()
    if publish_text and publish_text not in PUBLISH_WORDS:
        errors["publish"] = ["Enter yes or no"]
    publish = PUBLISH_WORDS.get(publish_text, False)
    if publish and not errors:
        if listing is None:
            if not any(v.in_force_on(today) for v in versions):
                errors["publish"] = [
                    "A new listing can only be published with a price in force today: leave "
                    "the date empty, or publish it later"
                ]
        elif listing.status in (ListingStatus.DRAFT, ListingStatus.PAUSED):
            if not any(v.in_force_on(today) for v in versions):
                errors["publish"] = ["Set a price in force today before publishing"]
            elif lot is not None:
                covered_regions, covered_pcc = ctx.covered_regions[lot.id], ctx.covered_pcc[lot.id]
                uncovered = [
                    ctx.regions[ctx.region_codes_by_id[r]].name
                    if r is not None
                    else ctx.pcc_areas[ctx.pcc_codes_by_id[p]].name
                    for r, p in areas
                    if (r is not None and r not in covered_regions)
                    or (p is not None and p not in covered_pcc)
                ]
                if uncovered:
                    errors["publish"] = [
                        f"This listing cannot be published: your membership of "
                        f"{lot.category.name} is not active in {', '.join(sorted(uncovered))}. "
                        "Remove those areas on the listing's page, or publish once the "
                        "membership is active again."
                    ]

    for name, messages in field_errors.items():
        errors.setdefault(FIELD_COLUMNS.get(name, name), []).extend(messages)
    if (
        not errors
        and listing is not None
        and listing.status == ListingStatus.WITHDRAWN
        and (
            _changed_values(listing, values)
            or price_changes
            or {(a.region_id, a.pcc_area_id) for a in listing.areas} != set(areas)
        )
    ):
        errors["reference"] = [f"{reference} has been withdrawn, so it can no longer be changed"]
    if errors:
        return None, [
            RowError(number, name, message)
            for name in sorted(errors, key=_column_order)
            for message in errors[name]
        ]
    return _Plan(number, listing, values, areas, versions, price_changes, publish), []


def _column_order(name: str) -> int:
    return KNOWN_COLUMNS.index(name) if name in KNOWN_COLUMNS else len(KNOWN_COLUMNS)


def _check_price(errors: dict, column: str, pence: int) -> int | None:
    field_errors: dict[str, list[str]] = {}
    checked = check_price_pence(pence, field_errors)
    if field_errors:
        errors[column] = field_errors["unit_price_pence"]
    return checked


def _shown_price(versions: list[_Version], day: date | None | str, today: date) -> int | None:
    """The price a download showed: the version starting on its date, else today's."""
    if isinstance(day, date):
        starting = next((v for v in versions if v.effective_from == day), None)
        if starting is not None:
            return starting.unit_price_pence
    in_force = next((v for v in versions if v.in_force_on(today)), None)
    return in_force.unit_price_pence if in_force else None


def _price_date(
    day: date | None,
    price: int,
    versions: list[_Version],
    today: date,
    errors: dict,
    column: str,
    *,
    planned: bool = False,
) -> date | None:
    """The date a price in the file takes effect, or None when the file only repeats the history.

    A date and price that match a version already kept change nothing (a download gives them);
    the start date of today's price, given with a different price, means today (the person
    changed the price in a download and left its date); any other past date is refused.
    """
    if day is not None and any(
        v.effective_from == day and v.unit_price_pence == price for v in versions
    ):
        return None
    if day is None:
        return today
    if day >= today:
        return day
    in_force = next((v for v in versions if v.in_force_on(today)), None)
    if not planned and in_force is not None and in_force.effective_from == day:
        return today
    errors[column] = [
        "The planned price must take effect today or later, not in the past"
        if planned
        else "The new price must take effect today or later, not in the past"
    ]
    return None


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


# What each column holds, to say what an import changes in the file's own words.
COLUMN_FIELDS: dict[str, tuple[str, ...]] = {
    "title": ("title",),
    "summary": ("summary",),
    "description": ("description",),
    "outcomes": ("outcomes",),
    "lot": ("lot_id",),
    "settings": tuple(SETTING_COLUMNS.values()),
    "formats": tuple(FORMAT_COLUMNS.values()),
    "eligibility_sex": ("eligibility_sex",),
    "min_age": ("min_age",),
    "max_age": ("max_age",),
    "risk_levels": tuple(RISK_COLUMNS.values()),
    "complexities": tuple(COMPLEXITY_COLUMNS.values()),
    "lead_time_days": ("lead_time_days",),
    "unit": ("unit",),
    "vat_treatment": ("vat_treatment",),
    "min_units": ("min_units",),
    "max_units": ("max_units",),
    "monthly_capacity": ("monthly_capacity",),
    "cost_staff": ("cost_staff_pence",),
    "cost_overheads": ("cost_overheads_pence",),
    "cost_other": ("cost_other_pence",),
    "social_value": ("social_value",),
    "contact_name": ("contact_name",),
    "contact_email": ("contact_email",),
    "contact_phone": ("contact_phone",),
}
FLAG_COLUMNS = {
    "settings": SETTING_COLUMNS,
    "formats": FORMAT_COLUMNS,
    "risk_levels": RISK_COLUMNS,
    "complexities": COMPLEXITY_COLUMNS,
}
EMPTY = "(empty)"
SHOWN_TEXT_MAX = 300  # a long description is shortened on the preview; the audit keeps it all


def _changed_values(listing: Listing, values: dict[str, Any]) -> dict[str, Any]:
    """The column values that differ from the listing's."""
    return {
        name: value for name, value in values.items() if not _same(getattr(listing, name), value)
    }


@functools.lru_cache(maxsize=1024)
def _shown_date(day: date) -> str:
    return govuk_date(day)  # most rows of a file share a few dates


def _same(old: Any, new: Any) -> bool:
    """Equal, counting text that differs only in its line endings (Windows, spreadsheets) as equal."""
    if isinstance(old, str) and isinstance(new, str):
        return old.replace("\r\n", "\n") == new.replace("\r\n", "\n")
    return old == new


def _shown(column: str, values: dict[str, Any], ctx: _Context) -> str:
    """A column's value as the preview, confirmation and email show it."""
    if column in FLAG_COLUMNS:
        chosen = [member.value for member, name in FLAG_COLUMNS[column].items() if values[name]]
        return "; ".join(chosen) or EMPTY
    (name,) = COLUMN_FIELDS[column]
    value = values[name]
    if value is None or value == "":
        return EMPTY
    if column == "lot":
        lot = ctx.lots_by_id.get(value)
        return f"{lot.category.name} ({lot.category.code})" if lot else str(value)
    if name.endswith("_pence"):
        return pounds(value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, str) and len(value) > SHOWN_TEXT_MAX:
        return value[: SHOWN_TEXT_MAX - 1].rstrip() + "…"
    return str(value)


def _area_list(keys: Iterable[tuple[int | None, int | None]], ctx: _Context) -> tuple[str, str]:
    regions = sorted(ctx.region_codes_by_id[r] for r, _ in keys if r is not None)
    pcc = sorted(ctx.pcc_codes_by_id[p] for _, p in keys if p is not None)
    return "; ".join(regions) or EMPTY, "; ".join(pcc) or EMPTY


def _changes(
    plan: _Plan,
    changed: dict[str, Any],
    current_areas: Iterable[tuple[int | None, int | None]],
    publish: bool,
    ctx: _Context,
) -> list[Change]:
    """Every change a plan makes to its listing, column by column, in the template's order."""
    listing = plan.listing
    assert listing is not None
    found: list[Change] = []

    def add(column: str, old: str, new: str) -> None:
        found.append(Change(plan.row, listing.reference, listing.title, column, old, new))

    if changed:
        old_values = {name: getattr(listing, name) for names in COLUMN_FIELDS.values()
                      for name in names}  # fmt: skip
        new_values = {**old_values, **changed}
        for column, names in COLUMN_FIELDS.items():
            if any(name in changed for name in names):
                add(column, _shown(column, old_values, ctx), _shown(column, new_values, ctx))
    old_regions, old_pcc = _area_list(current_areas, ctx)
    new_regions, new_pcc = _area_list(plan.areas, ctx)
    if old_regions != new_regions:
        add("regions", old_regions, new_regions)
    if old_pcc != new_pcc:
        add("pcc_areas", old_pcc, new_pcc)
    for change in plan.price_changes:
        add(
            "unit_price",
            pounds(change.old) if change.old is not None else "(no price then)",
            f"{pounds(change.new)} from {_shown_date(change.effective_from)}",
        )
    if publish:
        add("publish", listing.status.label, ListingStatus.PUBLISHED.label)
    return found


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

    An empty cell (or a column the file leaves out) keeps what the listing has; ``(clear)``
    empties an optional field. Raises ``ImportRefused`` naming every bad row and column; writes
    nothing then. With ``dry_run`` it only says what would happen (the preview): every change as
    listing, column, old and new, and every new listing. The same rows give the same result
    (``ImportResult.fingerprint``) until the rate card changes.
    """
    require_editor(actor, organisation)
    now = at or utcnow()
    today = london_date(now)
    ctx = _load_context(
        organisation,
        (
            (r.get("reference") or "").strip().upper()
            for r in rows
            if (r.get("reference") or "").strip()
        ),
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
    for plan in new_plans:
        first = plan.versions[0]
        lot = ctx.lots_by_id[plan.values["lot_id"]]
        result.new_listings.append(
            NewListing(
                plan.row,
                plan.values["title"],
                f"{lot.category.name} ({lot.category.code})",
                f"{pounds(first.unit_price_pence)} from {_shown_date(first.effective_from)}",
                ListingStatus.PUBLISHED.label if plan.publish else ListingStatus.DRAFT.label,
            )
        )
    update_rows, area_deletes, area_inserts, price_inserts, price_updates = [], [], [], [], []
    for plan in plans:
        listing = plan.listing
        if listing is None:
            continue
        if listing.status == ListingStatus.WITHDRAWN:
            result.unchanged += 1  # _check_row let it through because nothing changes
            continue
        changed = _changed_values(listing, plan.values)
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
        changes = _changes(plan, changed, current, publish, ctx)
        result.changes.extend(changes)
        if changes:
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
        # The price history as _check_row planned it with services.plan_price_version: new
        # versions inserted, the one before each closed, a same-day version's price replaced.
        originals = {p.id: p for p in listing.prices}
        for version in plan.versions:
            if version.id is None:
                price_inserts.append(
                    {
                        "listing_id": listing.id,
                        "unit_price_pence": version.unit_price_pence,
                        "effective_from": version.effective_from,
                        "effective_to": version.effective_to,
                        "reason": "Rate card import",
                        "created_at": now,
                        "created_by_id": actor.id,
                    }
                )
                continue
            update: dict[str, Any] = {}
            if version.replaced:
                update.update(unit_price_pence=version.unit_price_pence, created_at=now,
                              created_by_id=actor.id, reason="Rate card import")  # fmt: skip
            if version.effective_to != originals[version.id].effective_to:
                update["effective_to"] = version.effective_to
            if update:
                price_updates.append({"id": version.id, **update})
        for change in plan.price_changes:
            result.prices_changed += 1
            audit.add("listing.price_set", "listing", listing.id,
                      {"unit_price_pence": change.old} if change.old is not None else None,
                      {"unit_price_pence": change.new, "effective_from": change.effective_from,
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
            price_inserts.extend(
                {
                    "listing_id": listing_id,
                    "unit_price_pence": version.unit_price_pence,
                    "effective_from": version.effective_from,
                    "effective_to": version.effective_to,
                    "reason": "First price" if n == 0 else "Rate card import",
                    "created_at": now,
                    "created_by_id": actor.id,
                }
                for n, version in enumerate(plan.versions)
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
            db.session.execute(statement, _by_id(group))
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
            db.session.execute(statement, _by_id(group))
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
    _email_result(actor, organisation, result)
    return result


def _by_id(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """UPDATE parameters with the key as ``_id``: an ``id`` among them would also be SET, and
    setting a primary key, even to itself, makes SQLite check every table that refers to it."""
    return [{**{k: v for k, v in row.items() if k != "id"}, "_id": row["id"]} for row in rows]


EMAIL_LINES = 50  # the email lists this many changes and new listings; the page lists them all


def _email_result(actor: User, organisation: Organisation, result: ImportResult) -> None:
    """Tell the person who imported, and the provider's administrators, what the import did."""
    recipients = {user.id: user for user in provider_admins(organisation)}
    recipients.setdefault(actor.id, actor)
    base_url = current_app.config["BASE_URL"].rstrip("/")
    for user in recipients.values():
        queue_email(
            user.email,
            "catalogue_rate_card_imported",
            user=user,
            actor=actor,
            organisation=organisation,
            result=result,
            changes=result.changes[:EMAIL_LINES],
            new_listings=result.new_listings[:EMAIL_LINES],
            link=f"{base_url}/catalogue/providers/{organisation.id}/rate-card",
        )


def refresh_search(listing_ids: Sequence[int]) -> None:
    """Bring the search index up to date after the bulk writes, in the import's transaction.

    The rows were written with SQLAlchemy Core, which the search module's flush hook does not see.
    """
    from marketplace.catalogue import search

    search.reindex_listings(db.session.connection(), list(listing_ids))


# ---------------------------------------------------------------------------------------------
# The template


def template_rows(organisation: Organisation | None = None) -> list[list[Any]]:
    """The template: the header, then each of the provider's listings that is not withdrawn,
    every column as the import reads it, so that the file re-imports as no changes.

    The price is the one in force today (or the first planned, for a listing whose first price
    is still to come) with its start date. Areas are those the rate card shows: where the
    provider's membership of the lot is active (the import keeps the others as they are).
    """
    rows: list[list[Any]] = [list(COLUMN_NAMES)]
    if organisation is None:
        return rows
    listings = db.session.scalars(
        sa.select(Listing)
        .where(
            Listing.organisation_id == organisation.id,
            Listing.status != ListingStatus.WITHDRAWN,
        )
        .options(
            joinedload(Listing.lot).joinedload(ArrangementLot.category),
            selectinload(Listing.areas),
            selectinload(Listing.prices),
        )
        .order_by(Listing.title, Listing.id)
    ).unique()
    covered_regions, covered_pcc = rate_cards.covered_areas(organisation)
    region_codes = dict(
        db.session.execute(sa.select(ProbationRegion.id, ProbationRegion.code)).all()
    )
    pcc_rows = db.session.execute(sa.select(PccArea.id, PccArea.code, PccArea.region_id)).all()
    pcc_codes = {row.id: row.code for row in pcc_rows}
    pcc_region = {row.id: row.region_id for row in pcc_rows}
    today = london_date(utcnow())
    for listing in listings:
        lot = listing.lot_id
        regions = sorted(
            region_codes[a.region_id]
            for a in listing.areas
            if a.region_id is not None and (lot, a.region_id) in covered_regions
        )
        pcc = sorted(
            pcc_codes[a.pcc_area_id]
            for a in listing.areas
            if a.pcc_area_id is not None
            and (
                (lot, a.pcc_area_id) in covered_pcc
                or (lot, pcc_region[a.pcc_area_id]) in covered_regions
            )
        )
        price = listing.price_on(today) or next(
            (p for p in listing.prices if p.effective_from > today), None
        )
        record: dict[str, Any] = {
            "reference": listing.reference,
            "title": listing.title,
            "summary": listing.summary,
            "description": listing.description,
            "outcomes": listing.outcomes,
            "lot": listing.lot.category.code,
            "regions": "; ".join(regions),
            "pcc_areas": "; ".join(pcc),
            "settings": "; ".join(s.value for s in listing.settings),
            "formats": "; ".join(f.value for f in listing.formats),
            "eligibility_sex": listing.eligibility_sex.value,
            "min_age": listing.min_age,
            "max_age": listing.max_age,
            "risk_levels": "; ".join(r.value for r in listing.risk_levels),
            "complexities": "; ".join(c.value for c in listing.complexities),
            "lead_time_days": listing.lead_time_days,
            "unit": listing.unit.value,
            "vat_treatment": listing.vat_treatment.value,
            "min_units": listing.min_units,
            "max_units": listing.max_units,
            "monthly_capacity": listing.monthly_capacity,
            "unit_price": rate_cards.pounds(price.unit_price_pence) if price else "",
            "price_effective_from": price.effective_from.isoformat() if price else "",
            "cost_staff": rate_cards.pounds(listing.cost_staff_pence),
            "cost_overheads": rate_cards.pounds(listing.cost_overheads_pence),
            "cost_other": rate_cards.pounds(listing.cost_other_pence),
            "social_value": listing.social_value,
            "contact_name": listing.contact_name,
            "contact_email": listing.contact_email,
            "contact_phone": listing.contact_phone,
            "publish": "yes" if listing.status == ListingStatus.PUBLISHED else "no",
        }
        rows.append([safe_cell(record[name]) for name in COLUMN_NAMES])
    return rows


def template_csv(organisation: Organisation | None = None) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        ["" if cell is None else cell for cell in row] for row in template_rows(organisation)
    )
    return buffer.getvalue()


def rules_rows() -> list[list[str]]:
    """The template's second sheet: how a file is read, then what each column needs."""
    return [
        ["column", "required for a new listing", f"{CLEAR_MARKER} allowed", "rule", "example"],
        *(
            [c.name, "yes" if c.required else "no", "yes" if c.clearable else "no", c.rule,
             c.example]
            for c in COLUMNS
        ),
        [],
        ["How the file is read"],
        *([line] for line in READING_RULES),
        [],
        ["Columns of the rate card download, also read"],
        *([c.name, "no", "no", c.rule, ""] for c in DOWNLOAD_COLUMNS),
    ]  # fmt: skip


READING_RULES = [
    "A row with a reference updates that listing; a row without one creates a listing.",
    "An empty cell, or a column left out of the file, leaves the listing's value as it is.",
    f"To empty an optional field, write {CLEAR_MARKER} in its cell. It is refused in a column "
    "that a listing needs (marked required).",
    "A price different from the one in force becomes a new price from its date (today if the "
    "date is empty, or is the start of the price in force); earlier prices are kept.",
    "You see every change before anything is saved. If any row has an error, nothing is saved.",
]


def template_xlsx(organisation: Organisation | None = None) -> bytes:
    return write_workbook([("Rate card", template_rows(organisation)),
                           ("Column rules", rules_rows())])  # fmt: skip
