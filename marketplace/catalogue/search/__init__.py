"""Catalogue search: full text, filters, facets, sorting and pages over the visible listings.

Two backends, the same results for the same data:

- SQLite (the embedded default): an FTS5 virtual table ``listing_search`` keyed by ``rowid`` =
  listing id, ranked with ``bm25``;
- PostgreSQL: a ``document`` tsvector column of ``listing_search_rows`` with a GIN index, ranked
  with ``ts_rank``.

Both index text that the app has already folded into plain terms (``terms``), and queries are the
same terms, each quoted: so a word matches the same listings on both databases, and no input can
reach either query language.

The modules, by concern:

- ``terms``: text as search terms, and search text as groups of words;
- ``schema``: the index's tables (written by hand in a migration, not mapped) and its cache topic;
- ``params``: what a buyer asks for, and the reference data the filters name;
- ``queries``: the search the page and the API run (``search``);
- ``statements``: the one statement per search shape that ``queries`` runs (``matches``);
- ``index``: writing the index rows (``reindex_listings``, ``reindex_all``, ``refresh_prices``);
- ``hooks``: the session hooks and cache declarations that keep the index and cached pages in
  step with every write (registered with the models, ``marketplace/models.py``).

Invariant: a listing has index rows only while it is published and has at least one area that an
active membership of its lot covers, and the rows are rewritten in the transaction that changes
what they hold. Speed is measured by ``make bench`` (the search page, and the search p95 of
``benchmarks/search_latency.py``).
"""
