"""Template filters: dates in Europe/London, money in pounds."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask
from jinja2 import Undefined

from marketplace.core.clock import LONDON


def london_datetime(value: datetime | None) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    local = value.astimezone(LONDON)
    return f"{local.day} {local:%B %Y} at {local:%-I:%M%p}".replace("AM", "am").replace("PM", "pm")


def govuk_date(value: date | datetime | None) -> str:
    if value is None or isinstance(value, Undefined):
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(LONDON).date()
    return f"{value.day} {value:%B %Y}"


def pounds(pence: int | None) -> str:
    if pence is None or isinstance(pence, Undefined):
        return ""
    sign = "-" if pence < 0 else ""
    pounds_part, pence_part = divmod(abs(pence), 100)
    return f"{sign}£{pounds_part:,}.{pence_part:02d}"


def per_unit(unit) -> str:
    """A unit with its article, after a price: "£67.50 an hour" (``Unit.per``)."""
    if unit is None or isinstance(unit, Undefined):
        return ""
    return unit.per


def units(number: int | None, unit) -> str:
    """A number of units in words: "1 session", "3 bed-nights" (``Unit.count``)."""
    if number is None or unit is None or isinstance(number, Undefined):
        return ""
    return unit.count(number)


def register(app: Flask) -> None:
    app.jinja_env.filters["london_datetime"] = london_datetime
    app.jinja_env.filters["govuk_date"] = govuk_date
    app.jinja_env.filters["pounds"] = pounds
    app.jinja_env.filters["per_unit"] = per_unit
    app.jinja_env.filters["units"] = units
