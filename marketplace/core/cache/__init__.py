"""Caching and its invalidation: what features use to keep pages, page parts and objects in a
worker, and to declare what data each depends on.

Why per-worker caches: the pages most people load (the signed-in dashboard, search results, the
public register) are read far more often than the data under them changes, and building them (the
ORM loads and the GOV.UK templates) costs more than the queries; a worker's own memory serves them
without a network hop to a shared cache. The decision record in docs/decisions/ says what this
costs. Measured by ``make bench`` (the signed-in dashboard and the search page).

Invariant: a cache is an optimisation, never a source of truth. Everything kept is kept under the
committed generations of the topics whose data it shows (``generations``), read once per request;
the database's triggers move a topic's generation on at the commit of every write to the data it
watches, whatever wrote it (the ORM, a Core bulk write, raw SQL, COPY): invalidation happens by
construction on every write path, and no writer has to remember it. What each topic watches is
declared next to the models (``watch``); a migration makes the triggers, and the test-time guard
(tests/cache_guard.py) fails any test whose committed write did not move its topics on. Money and
state are read in the transaction that uses them, never from a worker's copy.

The modules, by concern:

- ``declarations``: ``watch`` and what it declared;
- ``triggers``: the triggers the declarations need (the plan, its DDL, what the database has);
- ``writes``: which topics a statement's SQL moves on;
- ``written``: whether this transaction has itself written under a topic;
- ``generations``: the topics' generations, read once per request on a connection of their own;
- ``pages``: rendered page parts and whole pages kept under generations (``page_cache``,
  ``kept_page``);
- ``objects``: ORM objects kept under generations (``kept``, ``kept_copy``);
- ``fragments``: rendered template fragments that depend only on their key (``FragmentCache``).
"""

from __future__ import annotations

from marketplace.core.cache.declarations import watch
from marketplace.core.cache.fragments import FragmentCache
from marketplace.core.cache.generations import CacheGeneration, Topic, generation, read_committed
from marketplace.core.cache.objects import kept, kept_copy
from marketplace.core.cache.pages import PageCache, kept_page, page_cache
from marketplace.core.cache.written import written_here

__all__ = [
    "CacheGeneration",
    "FragmentCache",
    "PageCache",
    "Topic",
    "generation",
    "init_app",
    "kept",
    "kept_copy",
    "kept_page",
    "page_cache",
    "read_committed",
    "watch",
    "written_here",
]


def init_app(app) -> None:
    """The worker's caches of page parts and of objects, bounded by the app's settings."""
    app.extensions["page_cache"] = PageCache(app.config.get("PAGE_CACHE_ENTRIES", 256))
    # Detached copies of objects (``kept``): signed-in people, API tokens, services.
    app.extensions["object_cache"] = PageCache(app.config.get("OBJECT_CACHE_ENTRIES", 2048))
