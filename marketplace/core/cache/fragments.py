"""A small cache of rendered template fragments that are the same for many requests.

The GOV.UK macros are costly to render (the service navigation, footer and phase banner take
longer than the rest of a dashboard), yet their output depends only on a few values. Templates
wrap such a fragment in ``{% call fragment_cache("name", key…) %}…{% endcall %}``; every value
the fragment depends on must be part of the key.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from markupsafe import Markup


class FragmentCache:
    def __init__(self, max_entries: int = 1024):
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple, Markup] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, *key: Any, caller: Callable[[], str]) -> Markup:
        with self._lock:
            cached = self._entries.get(key)
            if cached is not None:
                self._entries.move_to_end(key)
                return cached
        # The caller is a Jinja block, whose output autoescaping has already made safe.
        rendered = Markup(caller())  # noqa: S704
        with self._lock:
            self._entries[key] = rendered
            if len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return rendered

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
