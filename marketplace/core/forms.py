"""Form helpers every feature shares: reading the dates, whole numbers and percentages people type.

Field classes and builders with GOV.UK wording live in ``accounts/forms/fields.py`` (they use
the accounts' limits); these helpers depend on nothing but the standard library."""

from __future__ import annotations

import re
from datetime import date, time

DATE_HINT = "For example, 31 3 2027 or 2027-03-31"

# ASCII digits only: \d alone also matches other scripts' digits, which int() reads.
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", re.ASCII)
_STRICT_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})[\s/.-]+(\d{1,2})[\s/.-]+(\d{4})$", re.ASCII)
_TIME = re.compile(r"^(\d{1,2})(?:[:.](\d{2}))?\s*([ap]\.?m\.?)?$", re.ASCII | re.IGNORECASE)
_WHOLE = re.compile(r"(-?)(\d+)", re.ASCII)
_PERCENT = re.compile(r"(-?)(\d+)(?:\.(\d{1,2}))?", re.ASCII)


def parse_day(text: str | None) -> date | None:
    """A calendar date written as 2027-03-31 or 31 3 2027 (or 31/3/2027), else None."""
    text = (text or "").strip()
    if match := _ISO.match(text):
        year, month, day = (int(part) for part in match.groups())
    elif match := _DAY_MONTH_YEAR.match(text):
        day, month, year = (int(part) for part in match.groups())
    else:
        return None
    try:
        return date(year, month, day)
    except ValueError:
        return None


def parse_time_of_day(text: str | None) -> time | None:
    """A time of day as people type it: 17:30, 17.30, 9, 5pm, 5:30 pm, 12am, noon or midday;
    None if it is blank or not one."""
    text = (text or "").strip().lower()
    if text in ("noon", "midday"):
        return time(12)
    match = _TIME.match(text)
    if match is None:
        return None
    hours, minutes = int(match[1]), int(match[2] or 0)
    if match[3]:  # the 12-hour clock: 12am is midnight, 12pm is noon
        if not 1 <= hours <= 12:
            return None
        hours = hours % 12 + (12 if match[3].startswith("p") else 0)
    try:
        return time(hours, minutes)
    except ValueError:
        return None


def parse_iso_date(text: str | None) -> date | None:
    """A real date written exactly as YYYY-MM-DD (filters and the arrangement's dates, whose
    hints say so), or None if it is empty or not one."""
    text = (text or "").strip()
    if not _STRICT_ISO.match(text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def parse_whole_number(
    text: str | None, *, max_digits: int = 9, negative: bool = False
) -> int | None:
    """A whole number as typed ("12", "1,200"), or None if it is blank, not one, longer than
    ``max_digits`` digits, or negative where ``negative`` is not allowed. The service checks the
    range the rules allow; nine digits stay inside a 32-bit integer column."""
    cleaned = (text or "").strip().replace(",", "")
    match = _WHOLE.fullmatch(cleaned)
    if match is None or len(match[2]) > max_digits or (match[1] and not negative):
        return None
    return int(cleaned)


def basis_points_from_percent(
    text: str | None, *, max_whole_digits: int = 4, negative: bool = False
) -> int | None:
    """A percentage as typed ("40", "33.33", "12.5%") as exact basis points (4000, 3333, 1250),
    or None if it is blank, not one, has more than two decimals or too many whole digits, or is
    negative where ``negative`` is not allowed (a price uplift may be a cut; a share may not)."""
    cleaned = (text or "").strip().removesuffix("%").strip()
    match = _PERCENT.fullmatch(cleaned)
    if match is None or len(match[2]) > max_whole_digits or (match[1] and not negative):
        return None
    points = int(match[2]) * 100 + int((match[3] or "0").ljust(2, "0"))
    return -points if match[1] else points
