"""Helpers for reading pages in tests: text, the main content, the GOV.UK error summary."""

from __future__ import annotations

import re
from html import unescape

import sqlalchemy as sa

from marketplace.core.db import db


def text(response) -> str:
    return response.get_data(as_text=True)


def main(response) -> str:
    """The page's <main> content, without the header and footer."""
    return text(response).split('id="main-content"', 1)[1].split("</main>", 1)[0]


def error_messages(response) -> list[str]:
    """The messages in the GOV.UK error summary, as a person reads them."""
    page = text(response)
    if "govuk-error-summary__list" not in page:
        return []
    items = page.split("govuk-error-summary__list", 1)[1].split("</ul>", 1)[0]
    return [
        unescape(re.sub(r"<[^>]+>", "", item)).strip()
        for item in re.findall(r"<li>(.*?)</li>", items, re.DOTALL)
    ]


def hidden_value(response, name: str) -> str:
    """The value of the page's hidden field ``name``, as its form sends it back ("" if none)."""
    found = re.search(rf'name="{re.escape(name)}" type="hidden" value="([^"]*)"', text(response))
    return unescape(found[1]) if found else ""


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))
