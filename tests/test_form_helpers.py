"""The form helpers every feature shares (marketplace/core/forms.py): dates, whole numbers and
percentages as people type them, and what each refuses. Money: tests/test_money.py."""

from __future__ import annotations

from datetime import date

import pytest

from marketplace.core.forms import (
    basis_points_from_percent,
    parse_day,
    parse_iso_date,
    parse_whole_number,
)


@pytest.mark.parametrize(
    "typed,day",
    [
        ("2027-03-31", date(2027, 3, 31)),
        ("31 3 2027", date(2027, 3, 31)),
        ("31/3/2027", date(2027, 3, 31)),
        (" 1.4.2026 ", date(2026, 4, 1)),
        ("2027-3-1", date(2027, 3, 1)),
        ("31 2 2027", None),  # no such day
        ("2027-02-30", None),
        ("31 3 27", None),
        ("tomorrow", None),
        ("", None),
        (None, None),
        ("٣١ ٣ ٢٠٢٧", None),  # digits of another script are not a date
    ],
)
def test_parse_day(typed, day):
    assert parse_day(typed) == day


@pytest.mark.parametrize(
    "typed,day",
    [
        ("2026-04-01", date(2026, 4, 1)),
        (" 2026-04-01 ", date(2026, 4, 1)),
        ("2026-4-1", None),  # the filters and the arrangement ask for YYYY-MM-DD
        ("1 4 2026", None),
        ("2026-02-30", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_iso_date(typed, day):
    assert parse_iso_date(typed) == day


@pytest.mark.parametrize(
    "typed,kwargs,number",
    [
        ("12", {}, 12),
        ("1,200", {}, 1200),
        (" 0 ", {}, 0),
        ("999999999", {}, 999_999_999),
        ("1000000000", {}, None),  # ten digits: more than a 32-bit column holds
        ("1000000000", {"max_digits": 12}, 1_000_000_000),
        ("-5", {}, None),
        ("-5", {"negative": True}, -5),
        ("1.5", {}, None),
        ("1e3", {}, None),
        ("twelve", {}, None),
        ("", {}, None),
        (None, {}, None),
        ("١٢", {}, None),
    ],
)
def test_parse_whole_number(typed, kwargs, number):
    assert parse_whole_number(typed, **kwargs) == number


@pytest.mark.parametrize(
    "typed,kwargs,points",
    [
        ("40", {}, 4000),
        ("33.33", {}, 3333),
        ("12.5%", {}, 1250),
        ("2.50", {}, 250),
        ("3 %", {}, 300),
        ("2.555", {}, None),  # a fraction of a basis point
        ("-1.25", {}, None),
        ("-1.25", {"negative": True}, -125),
        ("1000", {"max_whole_digits": 3}, None),
        ("100", {"max_whole_digits": 3}, 10_000),
        ("12.", {}, None),
        ("%", {}, None),
        ("", {}, None),
        (None, {}, None),
    ],
)
def test_basis_points_from_percent(typed, kwargs, points):
    assert basis_points_from_percent(typed, **kwargs) == points
