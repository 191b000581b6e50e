"""Reading an uploaded rate card: size first, then the type by its content (CSV or XLSX, never a
program), then the header against the known columns; the rows keyed by column."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import date, datetime
from typing import Any, BinaryIO

from marketplace.accreditation.uploads import EXECUTABLE_SIGNATURES, detect_type
from marketplace.accreditation.uploads import XLSX as XLSX_TYPE
from marketplace.catalogue.imports.columns import (
    ALLOWED_DESCRIPTION,
    ALTERNATIVE_COLUMNS,
    COLUMN_NAMES,
    KNOWN_COLUMNS,
    MAX_IMPORT_BYTES,
    MAX_IMPORT_ROWS,
    MAX_XLSX_UNCOMPRESSED_BYTES,
    REQUIRED,
    ImportRefused,
)
from marketplace.core.errors import BusinessRuleViolation
from marketplace.core.validation import has_forbidden_characters


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
    # Not a cycle: openpyxl is a heavy import that only workbook uploads need, so a worker
    # loads it on the first one rather than at start-up.
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
