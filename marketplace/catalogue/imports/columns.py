"""The rate card file's columns and what an import answers: the template's columns with their
rules, the download's extra columns, the refusal (every bad row and column) and the result
(every change as listing, column, old → new, and every new listing)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import asdict, astuple, dataclass, field
from typing import Any

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
    SOCIAL_VALUE_MAX,
    SUMMARY_MAX,
    TITLE_MAX,
)
from marketplace.core.errors import BusinessRuleViolation

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


READING_RULES = [
    "A row with a reference updates that listing; a row without one creates a listing.",
    "An empty cell, or a column left out of the file, leaves the listing's value as it is.",
    f"To empty an optional field, write {CLEAR_MARKER} in its cell. It is refused in a column "
    "that a listing needs (marked required).",
    "A price different from the one in force becomes a new price from its date (today if the "
    "date is empty, or is the start of the price in force); earlier prices are kept.",
    "You see every change before anything is saved. If any row has an error, nothing is saved.",
]


def column_order(name: str) -> int:
    """Where a column comes in the template (unknown names last), to list problems in order."""
    return KNOWN_COLUMNS.index(name) if name in KNOWN_COLUMNS else len(KNOWN_COLUMNS)
