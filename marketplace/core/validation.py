"""What any input must be, checked the same way by every form, schema, service and command.

Text: a NUL byte, any other C0 control character but tab, newline and carriage return, or an
unpaired UTF-16 surrogate is refused, on every path (forms, JSON bodies, query strings, imported
files), with the field named; nothing is silently cleaned. PostgreSQL cannot store a NUL in text,
no encoder can write a lone surrogate, and the other control characters are invisible on a page
and break CSV files, emails and logs; a person cannot type any of them, so refusing them loses
nothing anyone meant to send.

JSON: a body nested more than ``MAX_JSON_DEPTH`` levels deep is refused (400) before anything
walks it; the parser would otherwise recurse until Python gives up.

Dates: a date before ``DATE_EARLIEST`` or more than ``DATE_HORIZON_YEARS`` after today (an end
date: after its start) is a typing mistake (9999 for 2029, 0225 for 2025), and only breaks
things that count months or years; every date a form, schema, service or command takes is
checked by :func:`date_horizon_error`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import parse_qsl

from flask import current_app, has_app_context
from werkzeug import formparser

from marketplace.core.clock import london_date
from marketplace.core.errors import BusinessRuleViolation

# NUL and the C0 controls except \t \n \r, and every UTF-16 surrogate: a Python string that
# holds one holds it unpaired (a pair from JSON's "\ud83d\ude00" is decoded into one character).
FORBIDDEN_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")

MAX_JSON_DEPTH = 32

DATE_EARLIEST_YEAR = 2000
DATE_HORIZON_YEARS = 5


# ---------------------------------------------------------------------------------------------
# Text


def has_forbidden_characters(value: object) -> bool:
    """Whether ``value`` is text holding a character that cannot be stored (see the module)."""
    return isinstance(value, str) and FORBIDDEN_CHARACTERS.search(value) is not None


def forbidden_characters_message(label: str | None = None) -> str:
    """The one message for text that holds such a character, naming the field if it can."""
    subject = label.strip().rstrip("?:") if label and len(label) <= 60 else "This answer"
    return (
        f"{subject} contains a character that cannot be saved (an invisible control "
        "character or a broken symbol): remove it and try again"
    )


# The API's message for such text: a client program, not a person typing, sent it.
API_TEXT_MESSAGE = (
    "Contains a NUL byte, another control character (only tab, newline and carriage return are "
    "allowed) or an unpaired UTF-16 surrogate, which cannot be saved"
)


def text_errors(data: Any, message: str = API_TEXT_MESSAGE) -> dict:
    """Errors for each string (key or value) in ``data`` that holds a forbidden character.

    Shaped as marshmallow shapes its errors, so the API reports them like any other field
    error: ``{"shares": {0: {"pdu": [message]}}}``. Empty when all is well. Walks iteratively:
    the data may come from a client (its depth is limited by :func:`load_json`)."""
    errors: dict = {}
    stack: list[tuple[Any, dict, Any]] = [(data, errors, None)]
    while stack:
        value, parent, key = stack.pop()
        if isinstance(value, str):
            if FORBIDDEN_CHARACTERS.search(value):
                parent[key if key is not None else "_schema"] = [message]
            continue
        if isinstance(value, Mapping):
            items: Iterable = _mapping_items(value)
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            continue
        here: dict = errors if key is None else {}
        for item_key, item in items:
            if isinstance(item_key, str) and FORBIDDEN_CHARACTERS.search(item_key):
                # The key itself cannot be repeated back as it is: name it without the character.
                here[FORBIDDEN_CHARACTERS.sub("?", item_key)] = [message]
                continue
            stack.append((item, here, item_key))
        if key is not None:
            parent[key] = here
    return _prune(errors)


def _mapping_items(value: Mapping) -> Iterable:
    lists = getattr(value, "lists", None)  # a werkzeug MultiDict: every value of each key
    if lists is not None:
        return ((key, values if len(values) != 1 else values[0]) for key, values in lists())
    return value.items()


def _prune(errors: dict) -> dict:
    """Drop the empty branches that the walk left for containers holding nothing wrong."""
    pruned = {}
    for key, value in errors.items():
        if isinstance(value, dict):
            value = _prune(value)
            if not value:
                continue
        pruned[key] = value
    return pruned


def first_forbidden(values: Mapping) -> str | None:
    """The name of the first parameter of a MultiDict (query string, form) whose name or any
    of whose values holds a forbidden character, or None."""
    for key, items in values.lists():
        if has_forbidden_characters(key):
            return FORBIDDEN_CHARACTERS.sub("?", key)
        if any(has_forbidden_characters(item) for item in items):
            return key
    return None


# ---------------------------------------------------------------------------------------------
# JSON


class JSONInputError(ValueError):
    """A request body is not JSON this service accepts (too deep, or not JSON at all)."""


def load_json(data: str | bytes) -> Any:
    """Parse a JSON document sent by a client, refusing one nested deeper than MAX_JSON_DEPTH.

    Raises JSONInputError (a ValueError, so Flask's ``get_json`` answers 400) with a message
    fit for the client. Duplicate keys keep the last value, as ``json.loads`` does."""
    if isinstance(data, bytes | bytearray):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise JSONInputError(
                f"The request body is not valid UTF-8 (byte {error.start})"
            ) from None
    try:
        parsed = json.loads(data)
    except RecursionError:
        raise JSONInputError(too_deep_message()) from None
    except json.JSONDecodeError as error:
        raise JSONInputError(
            f"The request body is not valid JSON: {error.msg} (line {error.lineno}, "
            f"column {error.colno})"
        ) from None
    if json_depth_exceeds(parsed, MAX_JSON_DEPTH):
        raise JSONInputError(too_deep_message())
    return parsed


def too_deep_message() -> str:
    return f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep, which is not accepted"


def json_depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects in ``value`` nest more than ``limit`` levels (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# ---------------------------------------------------------------------------------------------
# Dates


def london_today() -> date:
    return london_date()


def _setting(name: str, default: int) -> int:
    if has_app_context():
        return int(current_app.config.get(name, default))
    return default


def earliest_date() -> date:
    return date(_setting("DATE_EARLIEST_YEAR", DATE_EARLIEST_YEAR), 1, 1)


def horizon_years() -> int:
    return _setting("DATE_HORIZON_YEARS", DATE_HORIZON_YEARS)


def add_years(day: date, years: int) -> date:
    """The same day ``years`` later (29 February becomes 28 February); date.max if past it."""
    try:
        return day.replace(year=day.year + years)
    except ValueError:
        if day.year + years > date.max.year:
            return date.max
        return day.replace(year=day.year + years, day=28)


def date_horizon_error(
    day: date | None,
    label: str,
    *,
    start: date | None = None,
    start_label: str = "the start date",
    today: date | None = None,
    earliest: date | None = None,
) -> str | None:
    """The message for a date outside the service's horizon, or None if it is inside.

    Every date must be in ``DATE_EARLIEST_YEAR`` or later and no more than
    ``DATE_HORIZON_YEARS`` years after today; an end date given with its ``start``, no more than
    that many years after the start instead. ``earliest`` widens the lower bound for a date
    that records a fact from the past (an answer to an application's question)."""
    if not isinstance(day, date):
        return None
    if isinstance(day, datetime):
        day = day.date()
    earliest = earliest or earliest_date()
    if day < earliest:
        return f"{label} must be in {earliest.year} or later"
    years = horizon_years()
    if isinstance(start, date) and start >= earliest:
        latest = add_years(start, years)
        if day > latest:
            return (
                f"{label} must be no more than {years} years after {start_label} "
                f"(on or before {_govuk(latest)})"
            )
        return None
    latest = add_years(today or london_today(), years)
    if day > latest:
        return (
            f"{label} must be no more than {years} years from today (on or before {_govuk(latest)})"
        )
    return None


def _govuk(day: date) -> str:
    return f"{day.day} {day:%B %Y}"


def check_date_horizon(field: str, day: date | None, label: str, **kwargs: Any) -> None:
    """Raise BusinessRuleViolation naming ``field`` if ``day`` is outside the horizon (for
    services and commands; keyword arguments as for :func:`date_horizon_error`)."""
    message = date_horizon_error(day, label, **kwargs)
    if message:
        raise BusinessRuleViolation({field: [message]})


class ClientJSON:
    """The JSON module of requests (``Request.json_module``): ``request.get_json()`` refuses a
    body nested too deep or holding text that cannot be saved, with a ValueError naming where,
    which Flask answers with 400. Only requests use it; Flask's own JSON (sessions, responses)
    is untouched."""

    @staticmethod
    def loads(data: str | bytes, **kwargs: Any) -> Any:
        parsed = load_json(data)
        errors = text_errors(parsed)
        if errors:
            raise JSONInputError(
                f"The JSON has text that cannot be saved at {_first_path(errors)}: "
                + API_TEXT_MESSAGE[0].lower()
                + API_TEXT_MESSAGE[1:]
            )
        return parsed

    @staticmethod
    def dumps(value: Any, **kwargs: Any) -> str:
        return json.dumps(value, **kwargs)


def _first_path(errors: dict) -> str:
    parts = []
    while isinstance(errors, dict) and errors:
        key = next(iter(errors))
        parts.append(str(key))
        errors = errors[key]
    return ".".join(parts)


# ---------------------------------------------------------------------------------------------
# Requests: bytes that are not UTF-8 become lone surrogates, which the checks above refuse


def parse_query(query: bytes) -> list[tuple[str, str]]:
    """Decode a query string or urlencoded body as Werkzeug does, except that bytes which are
    not UTF-8 (sent raw, or percent-encoded like %ED%A0%80) become lone surrogates, refused by
    the text checks, instead of an error (raw bytes: a 500) or text kept percent-encoded."""
    return parse_qsl(
        query.decode("utf-8", "surrogateescape"), keep_blank_values=True, errors="surrogateescape"
    )


class FormDataParser(formparser.FormDataParser):
    """Werkzeug's form parser, with urlencoded bodies decoded by :func:`parse_query`.

    Multipart bodies stay as Werkzeug parses them: it replaces bytes that are not UTF-8 with
    U+FFFD, a character that can be saved, so nothing unsavable arrives that way either."""

    def parse(self, stream, mimetype, content_length, options=None):
        if mimetype != "application/x-www-form-urlencoded":
            return super().parse(stream, mimetype, content_length, options)
        # The stream is already limited to MAX_CONTENT_LENGTH, as for Werkzeug's own parser.
        return stream, self.cls(parse_query(stream.read())), self.cls()
