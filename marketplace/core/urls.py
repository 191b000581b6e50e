"""Addresses of pages: fixed ones built once per app, and absolute ones for emails."""

from __future__ import annotations

from flask import current_app, request, url_for


def fixed_url(endpoint: str, **query: str) -> str:
    """The address of a page whose address never changes while the app runs: one that takes no
    arguments, with at most a fixed query (``waiting="yes"``), never a record's id. Each is built
    once per script root. A Jinja global too, for the links in every page's layout."""
    cache = current_app.extensions.setdefault("fixed_urls", {})
    key = (endpoint, request.script_root, *sorted(query.items()))
    href = cache.get(key)
    if href is None:
        if len(cache) >= 1000:  # the callers name a few dozen pages; never grow without end
            cache.clear()
        href = cache[key] = url_for(endpoint, **query)
    return href


def absolute_url(endpoint: str, **values) -> str:
    """A link for an email, built on the configured base URL, never on the request's Host header."""
    base = current_app.config["BASE_URL"].rstrip("/")
    with current_app.test_request_context(base_url=base):
        return base + url_for(endpoint, **values)
