"""The service's clock: the time now, dates in England, working days and financial years.

Every rule that depends on "now" (respond-by dates, evidence expiry, invoice months, budgets by
financial year) reads it here, through ``utcnow`` and ``london_date``, so a test or a tool can move
the whole service's time in one place: ``frozen_at`` (time stands still), ``travelled_to`` (time
runs on from another moment) or ``set_source``. The service itself never moves it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

LONDON = ZoneInfo("Europe/London")

# Where "now" comes from when a test or tool has moved the clock; None is the real time. One for
# the process, not per thread: a live server under test runs in threads of the test's process.
_source: Callable[[], datetime] | None = None


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    if _source is not None:
        return _source().astimezone(UTC)
    return datetime.now(UTC)


def set_source(source: Callable[[], datetime] | None) -> None:
    """Read "now" from ``source`` (a callable giving an aware datetime) from here on, or the real
    time again with None. For tests and tools only."""
    global _source
    _source = source


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("the clock is set to an aware datetime (with a time zone)")
    return moment


@contextmanager
def frozen_at(moment: datetime) -> Iterator[None]:
    """Inside the block "now" is ``moment`` and does not move."""
    moment = _aware(moment)
    previous = _source
    set_source(lambda: moment)
    try:
        yield
    finally:
        set_source(previous)


def moving_from(moment: datetime) -> Callable[[], datetime]:
    """A source whose time is ``moment`` now and runs on at the real pace."""
    offset = _aware(moment) - datetime.now(UTC)
    return lambda: datetime.now(UTC) + offset


@contextmanager
def travelled_to(moment: datetime) -> Iterator[None]:
    """Inside the block "now" starts at ``moment`` and runs on, as if the time between had
    passed."""
    previous = _source
    set_source(moving_from(moment))
    try:
        yield
    finally:
        set_source(previous)


def london_date(at: datetime | None = None) -> date:
    """The calendar date in England at ``at`` (now by default)."""
    return (at or utcnow()).astimezone(LONDON).date()


def financial_year(day: date) -> int:
    """The year the financial year containing ``day`` starts in (1 April to 31 March)."""
    return day.year if day.month >= 4 else day.year - 1


def financial_year_label(year: int) -> str:
    return f"{year}-{str(year + 1)[-2:]}"


# ---------------------------------------------------------------------------------------------
# Working days in England and Wales: weekends and bank holidays (from the `holidays` library).


@lru_cache(maxsize=64)
def _bank_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("GB", subdiv="ENG", years=year).keys())


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in _bank_holidays(day.year)


def add_working_days(start: date, days: int) -> date:
    """The date ``days`` working days after ``start`` (``start`` itself is not counted)."""
    if days < 0:
        raise ValueError("days must not be negative")
    current = start
    remaining = days
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current):
            remaining -= 1
    return current


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (negative if ``end`` is earlier)."""
    if end < start:
        return -working_days_between(end, start)
    return sum(
        1 for n in range(1, (end - start).days + 1) if is_working_day(start + timedelta(days=n))
    )
