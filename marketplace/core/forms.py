"""Form helpers every feature shares: reading the dates people type.

Field classes and builders with GOV.UK wording live in ``accounts/forms/fields.py`` (they use
the accounts' limits); these helpers depend on nothing but the standard library."""

from __future__ import annotations

import re
from datetime import date

DATE_HINT = "For example, 31 3 2027 or 2027-03-31"

# ASCII digits only: \d alone also matches other scripts' digits, which int() reads.
_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$", re.ASCII)
_STRICT_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}$", re.ASCII)
_DAY_MONTH_YEAR = re.compile(r"^(\d{1,2})[\s/.-]+(\d{1,2})[\s/.-]+(\d{4})$", re.ASCII)


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
