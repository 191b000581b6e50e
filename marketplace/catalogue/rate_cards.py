"""Rate cards: each provider's published listings with the price in force, today or on a past date.

A rate card is read in a fixed number of statements whatever the number of listings (the
organisation, the listings with their lot and category, their areas, their price history, the
provider's active memberships and, for a past date, the pause and resume events).

"As it stood on a past date" is reconstructed as follows (the approximation is deliberate):

- a listing was on the rate card at the end of that day (Europe/London) if it had been published
  by then (``published_at``), had not been withdrawn by then (``withdrawn_at``), and was not
  paused then: pauses and resumes are read from the audit trail (``listing.paused`` /
  ``listing.resumed``); a listing paused now with no such events counts as paused from its
  ``paused_at``;
- the price is exact: the version in force on that day, from the kept price history;
- the other details (title, areas, eligibility …) are shown as they are now: edits are audited
  but not replayed, and memberships suspended since are not replayed either;
- today's rate card also leaves out listings whose provider holds no active membership of the
  lot in any of their areas (as search does), and shows only the covered areas.

Exports (CSV, XLSX, JSON) carry the same columns; text cells that a spreadsheet would run as a
formula are escaped with a leading apostrophe. Referral contacts are never on a rate card.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import joinedload, selectinload

from marketplace.accounts.models import Organisation
from marketplace.accreditation.models import ArrangementLot
from marketplace.catalogue.models import (
    Listing,
    ListingArea,
    ListingPrice,
    ListingStatus,
)
from marketplace.catalogue.services.areas import load_coverage, uncovered_area_keys
from marketplace.catalogue.services.stale import is_stale
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import LONDON, london_date, utcnow
from marketplace.core.db import db, parse_id
from marketplace.core.validation import date_horizon_error

# Spreadsheet programs run a cell that starts with one of these as a formula.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Text escaped with a leading apostrophe: text that would run as a formula, and text that starts
# with apostrophes before such a character, so that the import can take exactly one off again
# (``imports.cells.unescape_cell``) and get the text back, whatever it was.
NEEDS_ESCAPE = re.compile(r"'*[=+\-@\t\r]")
ESCAPED = re.compile(r"'+[=+\-@\t\r]")
XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

COLUMNS = [
    "reference",
    "title",
    "lot",
    "lot_code",
    "summary",
    "unit",
    "unit_price_pence",
    "unit_price",
    "vat_treatment",
    "price_effective_from",
    "next_unit_price_pence",
    "next_price_effective_from",
    "regions",
    "pcc_areas",
    "settings",
    "formats",
    "eligibility_sex",
    "min_age",
    "max_age",
    "risk_levels",
    "complexities",
    "lead_time_days",
    "min_units",
    "max_units",
    "monthly_capacity",
    "last_confirmed_on",
    "stale",
]


class BadRateCardDate(ValueError):
    """The ``on`` date is not a real date, or is in the future."""


def parse_on(raw: str | None, today: date | None = None) -> date | None:
    """``?on=YYYY-MM-DD`` as a date (None when absent); today or earlier, from 2000 on."""
    if raw is None or raw.strip() == "":
        return None
    today = today or london_date()
    try:
        day = date.fromisoformat(raw.strip())
    except ValueError:
        raise BadRateCardDate("Give the date as YYYY-MM-DD, like 2026-04-01") from None
    if len(raw.strip()) != 10:
        raise BadRateCardDate("Give the date as YYYY-MM-DD, like 2026-04-01")
    if message := date_horizon_error(day, "The date", today=today):
        raise BadRateCardDate(message)
    if day > today:
        raise BadRateCardDate("Choose today or a date in the past")
    return day


def get_provider(provider_id: Any) -> Organisation | None:
    """A provider organisation by id (None if it is not a provider or does not exist)."""
    pk = parse_id(provider_id)
    if pk is None:
        return None
    organisation = db.session.get(Organisation, pk)
    if organisation is None or not organisation.is_provider:
        return None
    return organisation


@dataclass(frozen=True)
class RateCardLine:
    listing: Listing
    price: ListingPrice
    next_price: ListingPrice | None
    region_names: list[str]
    region_codes: list[str]
    pcc_area_names: list[str]
    pcc_area_codes: list[str]
    stale: bool


@dataclass(frozen=True)
class RateCard:
    organisation: Organisation
    on: date
    historical: bool
    lines: list[RateCardLine]


def _end_of_day(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=LONDON) - timedelta(
        microseconds=1
    )


def _paused_ids(organisation: Organisation, listings: list[Listing], moment: datetime) -> set[int]:
    """Listings paused at ``moment``, from the pause and resume events in the audit trail."""
    ids = [listing.id for listing in listings]
    if not ids:
        return set()
    rows = db.session.execute(
        sa.select(AuditEvent.object_id, AuditEvent.action)
        .where(
            AuditEvent.object_type == "listing",
            AuditEvent.organisation_id == organisation.id,
            AuditEvent.action.in_(("listing.paused", "listing.resumed")),
            AuditEvent.occurred_at <= moment,
        )
        .order_by(AuditEvent.occurred_at, AuditEvent.id)
    ).all()
    last: dict[str, str] = {}
    for object_id, action in rows:
        last[object_id] = action
    paused = set()
    for listing in listings:
        action = last.get(str(listing.id))
        if action == "listing.paused" or (
            action is None
            and listing.status == ListingStatus.PAUSED
            and listing.paused_at is not None
            and listing.paused_at <= moment
        ):
            paused.add(listing.id)
    return paused


def rate_card(organisation: Organisation, on: date | None = None) -> RateCard:
    """The provider's rate card today, or as it stood at the end of ``on`` (see module doc)."""
    today = london_date()
    day = on or today
    historical = day < today
    query = (
        sa.select(Listing)
        .where(Listing.organisation_id == organisation.id)
        .options(
            joinedload(Listing.lot).joinedload(ArrangementLot.category),
            selectinload(Listing.areas).options(
                joinedload(ListingArea.region), joinedload(ListingArea.pcc_area)
            ),
            selectinload(Listing.prices),
        )
        .order_by(Listing.title, Listing.id)
    )
    if historical:
        moment = _end_of_day(day)
        query = query.where(
            Listing.published_at.is_not(None),
            Listing.published_at <= moment,
            sa.or_(Listing.withdrawn_at.is_(None), Listing.withdrawn_at > moment),
        )
        listings = list(db.session.scalars(query).unique())
        paused = _paused_ids(organisation, listings, moment)
        listings = [listing for listing in listings if listing.id not in paused]
        coverage = None
    else:
        query = query.where(Listing.status == ListingStatus.PUBLISHED)
        listings = list(db.session.scalars(query).unique())
        coverage = load_coverage(organisation.id, region_codes=(), pcc_codes=())

    now = utcnow()
    lines = []
    for listing in listings:
        price = listing.price_on(day)
        if price is None:
            continue
        areas = listing.areas
        if coverage is not None:
            uncovered = set(
                uncovered_area_keys(
                    [(a.region_id, a.pcc_area_id) for a in areas], listing.lot_id, coverage
                )
            )
            areas = [a for a in areas if (a.region_id, a.pcc_area_id) not in uncovered]
            if not areas:
                continue
        later = [p for p in listing.prices if p.effective_from > day]
        regions = sorted((a.region for a in areas if a.region is not None), key=lambda r: r.code)
        pcc_areas = sorted(
            (a.pcc_area for a in areas if a.pcc_area is not None), key=lambda p: p.name
        )
        lines.append(
            RateCardLine(
                listing=listing,
                price=price,
                next_price=later[0] if later else None,
                region_names=[r.name for r in regions],
                region_codes=[r.code for r in regions],
                pcc_area_names=[p.name for p in pcc_areas],
                pcc_area_codes=[p.code for p in pcc_areas],
                stale=is_stale(listing, now),
            )
        )
    return RateCard(organisation, day, historical, lines)


# ---------------------------------------------------------------------------------------------
# Exports


def pounds(pence: int | None) -> str:
    """``4500`` → ``"45.00"`` (plain, for spreadsheets)."""
    if pence is None:
        return ""
    return f"{pence // 100}.{pence % 100:02d}"


def line_record(line: RateCardLine) -> dict[str, Any]:
    """One rate card line as plain values (numbers, dates, lists)."""
    listing = line.listing
    return {
        "reference": listing.reference,
        "title": listing.title,
        "lot": listing.lot.category.name,
        "lot_code": listing.lot.category.code,
        "summary": listing.summary,
        "unit": listing.unit.value,
        "unit_price_pence": line.price.unit_price_pence,
        "unit_price": pounds(line.price.unit_price_pence),
        "vat_treatment": listing.vat_treatment.value,
        "price_effective_from": line.price.effective_from,
        "next_unit_price_pence": line.next_price.unit_price_pence if line.next_price else None,
        "next_price_effective_from": line.next_price.effective_from if line.next_price else None,
        "regions": line.region_codes,
        "pcc_areas": line.pcc_area_codes,
        "settings": [s.value for s in listing.settings],
        "formats": [f.value for f in listing.formats],
        "eligibility_sex": listing.eligibility_sex.value,
        "min_age": listing.min_age,
        "max_age": listing.max_age,
        "risk_levels": [r.value for r in listing.risk_levels],
        "complexities": [c.value for c in listing.complexities],
        "lead_time_days": listing.lead_time_days,
        "min_units": listing.min_units,
        "max_units": listing.max_units,
        "monthly_capacity": listing.monthly_capacity,
        "last_confirmed_on": (
            listing.confirmed_at.astimezone(LONDON).date() if listing.confirmed_at else None
        ),
        "stale": line.stale,
    }


def rate_card_record(card: RateCard) -> dict[str, Any]:
    """The whole rate card as plain data (dates as ``date``; ``to_json`` writes them ISO)."""
    return {
        "provider": {"id": card.organisation.id, "name": card.organisation.name},
        "on": card.on,
        "historical": card.historical,
        "listings": [line_record(line) for line in card.lines],
    }


def safe_cell(value: Any) -> Any:
    """A text cell that a spreadsheet would run as a formula gets a leading apostrophe (see
    ``NEEDS_ESCAPE``)."""
    if isinstance(value, str) and NEEDS_ESCAPE.match(value):
        return "'" + value
    return value


def _flat(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "; ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def export_rows(card: RateCard) -> list[list[Any]]:
    """The header and one row per line, cells flattened and escaped."""
    rows: list[list[Any]] = [list(COLUMNS)]
    for line in card.lines:
        record = line_record(line)
        rows.append([safe_cell(_flat(record[name])) for name in COLUMNS])
    return rows


def to_csv(card: RateCard) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    for row in export_rows(card):
        writer.writerow(["" if cell is None else cell for cell in row])
    return buffer.getvalue()


def write_xlsx(rows: list[list[Any]], title: str) -> bytes:
    """A one-sheet workbook of ``rows`` (already escaped), every text cell stored as text."""
    return write_workbook([(title, rows)])


def write_workbook(sheets: list[tuple[str, list[list[Any]]]]) -> bytes:
    """A workbook of (title, rows) sheets (rows already escaped), every text cell stored as text."""
    # Not a cycle: openpyxl is a heavy import that only workbook downloads need, so a worker
    # loads it on the first one rather than at start-up.
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    for title, rows in sheets:
        sheet = workbook.create_sheet(title[:31] or "Sheet1")
        for row in rows:
            cells = []
            for value in row:
                cell = WriteOnlyCell(sheet, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # never a formula, whatever it starts with
                cells.append(cell)
            sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def to_xlsx(card: RateCard) -> bytes:
    return write_xlsx(export_rows(card), "Rate card")


def to_json(card: RateCard) -> str:
    return json.dumps(
        rate_card_record(card),
        ensure_ascii=False,
        default=lambda v: v.isoformat() if isinstance(v, date) else str(v),
    )


def file_stem(card: RateCard) -> str:
    return f"rate-card-{card.organisation.id}-{card.on.isoformat()}"
