"""England-and-Wales working days."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from marketplace.core.clock import add_working_days, is_working_day, working_days_between


@pytest.mark.parametrize(
    "day,expected",
    [
        (date(2026, 12, 25), False),  # Christmas Day
        (date(2026, 12, 28), False),  # Boxing Day substitute (26th is a Saturday)
        (date(2026, 8, 31), False),  # summer bank holiday (England, not Scotland)
        (date(2026, 11, 21), False),  # Saturday
        (date(2026, 11, 23), True),
    ],
)
def test_is_working_day(day, expected):
    assert is_working_day(day) is expected


def test_ten_working_days_over_christmas():
    # Submitted Friday 18 December 2026: 25th, 28th and 1 January are bank holidays.
    assert add_working_days(date(2026, 12, 18), 10) == date(2027, 1, 6)


def test_negative_days_refused():
    with pytest.raises(ValueError):
        add_working_days(date(2026, 1, 1), -1)


@given(
    start=st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)),
    days=st.integers(min_value=0, max_value=60),
)
def test_add_and_count_agree(start, days):
    end = add_working_days(start, days)
    assert working_days_between(start, end) == days
    assert days == 0 or is_working_day(end)
    assert working_days_between(end, start) == -days
    assert end - start <= timedelta(days=days * 2 + 14)
