"""Rendered pages and page parts kept by the worker under their topics' generations.

``page_cache().fetch(topic, key, build)`` keeps a part (the public register, search results);
``kept_page`` keeps a whole signed-in page. Every value a part depends on besides its topics'
data (page number, filters, today's date, the person) must be in the key.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from flask import current_app, g, request
from flask import session as flask_session
from flask_wtf.csrf import generate_csrf

from marketplace.core.cache.generations import Topic, generation, generation_key


class PageCache:
    """A bounded, thread-safe LRU of page parts, each kept under its topic's generation.

    Every value the part depends on besides the topic's data (page number, filters, today's
    date) must be in the key. Keys may come from the query string, so the size is bounded.
    """

    def __init__(self, max_entries: int = 256):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()

    def fetch(self, topic: Topic, key: tuple, build: Callable[[], Any]) -> Any:
        """The cached part for ``key``, or ``build()`` (which runs the queries) stored for later."""
        full_key = (str(topic), generation(topic), *key)
        found, value = self.get(full_key)
        if not found:
            value = build()
            self.put(full_key, value)
        return value

    def get(self, full_key: tuple) -> tuple[bool, Any]:
        """(True, value) if ``full_key`` is cached, else (False, None)."""
        with self._lock:
            if full_key in self._entries:
                self._entries.move_to_end(full_key)
                return True, self._entries[full_key]
        return False, None

    def put(self, full_key: tuple, value: Any) -> None:
        with self._lock:
            self._entries[full_key] = value
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def page_cache() -> PageCache:
    return current_app.extensions["page_cache"]


# Stands for the CSRF token in a kept page; each request's own token replaces it (below).
_CSRF_HOLE = f"csrf-hole-{secrets.token_hex(16)}"


def kept_page(key: tuple, topics: Iterable[Topic | str], render: Callable[[], str]) -> str:
    """A whole page as ``render()`` made it for this key, path and generations of ``topics``,
    kept by this worker: for a signed-in page many people reload.

    ``key`` must name everything the page shows besides the data under ``topics`` and the
    path: the person, the organisation they act for, the page number, today's date. The header
    shows the person, their organisations and their navigation, so ``Topic.PRINCIPALS`` belongs
    in ``topics`` of every signed-in page. Two things differ from one request to the next:
    the CSRF token of the header's forms is rendered as a placeholder and each request's own
    token is put in its place; and a page with a message to flash is rendered afresh (the
    message shows once, and is then gone).
    """
    if flask_session.get("_flashes"):
        return render()
    cache: PageCache = current_app.extensions["page_cache"]
    full_key = ("page", request.path, *generation_key(key, topics))
    found, page = cache.get(full_key)
    if not found:
        field = current_app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        own_token = g.pop(field, None)
        setattr(g, field, _CSRF_HOLE)
        try:
            page = render()
        finally:
            g.pop(field, None)
            if own_token is not None:
                setattr(g, field, own_token)
        cache.put(full_key, page)
    if _CSRF_HOLE not in page:
        return page
    return page.replace(_CSRF_HOLE, generate_csrf())
