"""Reading a row's cells: formulas refused, the export's escapes undone, the clear marker, and
the words a person writes for choices, amounts and dates turned into what the listing rules take.

The cell parsers are pure and a rate card repeats the same cells (lots, regions, settings) row
after row, so each distinct cell is parsed once per process (``functools.lru_cache``).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from marketplace.catalogue.forms import (
    COMPLEXITY_LABELS,
    FORMAT_LABELS,
    RISK_LABELS,
    SETTING_LABELS,
    UNIT_LABELS,
    VAT_LABELS,
)
from marketplace.catalogue.imports.columns import (
    CLEAR_MARKER,
    INFORMATION_COLUMNS,
    KNOWN_COLUMNS,
    RowError,
    column_order,
)
from marketplace.catalogue.models import Sex, Unit
from marketplace.catalogue.rate_cards import ESCAPED

NUMBER = re.compile(r"^[+-]?\d+(\.\d+)?$")


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
def choice(text: str, column: str) -> str:
    key = _key(text)
    return CHOICE_WORDS[column].get(key, key)  # an unknown word goes on to the service's message


@functools.lru_cache(maxsize=4096)
def choices(text: str, column: str) -> tuple[str, ...]:
    words = CHOICE_WORDS[column]
    return tuple(words.get(part, part) for part in _split(text))


@functools.lru_cache(maxsize=4096)
def whole_or_text(text: str) -> int | str | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    if re.fullmatch(r"[+-]?\d+\.0+", text):
        return int(text.split(".")[0])
    return text  # the service's check says it must be a whole number


def cell_pence(errors: dict, name: str, text: str, label: str, *, required: bool) -> int | None:
    """Pounds and pence (a £ sign and thousands commas allowed) as whole pence."""
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


def whole_pence(errors: dict, name: str, text: str, label: str) -> int | None:
    """A whole number of pence, as the download's ``*_pence`` columns give it."""
    value = whole_or_text(text)
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


def cell_date(text: str) -> date | None | str:
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


def row_cells(number: int, row: dict[str, str]) -> tuple[dict[str, str], set[str], list[RowError]]:
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
    problems.sort(key=lambda p: column_order(p.column))
    return cells, cleared, problems
