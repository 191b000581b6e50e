"""The spend ledger (``insight.models``): deriving a call-off's entries from its source rows,
and bringing stale call-offs up to date before any report reads the ledger.

FOUNDATION: the ledger lane fills this module in. Its public interface:

- ``catch_up() -> int``: bring every stale call-off (``spend_stale_call_offs``) up to date,
  entries and roll-ups, exactly once under concurrent callers; the number refreshed. Every
  reader calls it before reading ``spend_entries``, ``spend_months`` or ``spend_provider_years``.
- ``rebuild_all() -> int``: derive the whole ledger again (for bulk loads and ``flask insight
  rebuild-ledger``).
"""

from __future__ import annotations


def catch_up() -> int:
    return 0


def rebuild_all() -> int:
    return 0
