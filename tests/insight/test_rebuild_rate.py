"""``rebuild_all`` and ``catch_up`` agree on a synthetic world (random co-funding, cancellations,
partial delivery, invoices paid and unpaid, credit notes before and after payment, providers
reclassified), and the rebuild's rate: ``LEDGER_CALL_OFFS=50000`` measures it at scale (the
default is small, for the suite)."""

from __future__ import annotations

import os
import time

import sqlalchemy as sa

from marketplace.core.db import commit, db
from marketplace.insight.models import SpendEntry
from marketplace.insight.services import ledger
from tests.insight.synthetic import load_synthetic

CALL_OFFS = int(os.environ.get("LEDGER_CALL_OFFS", "400"))


def test_rebuild_all_equals_catch_up_on_a_synthetic_world(app):
    started = time.monotonic()
    load_synthetic(CALL_OFFS)
    commit()
    print(f"\nloaded {CALL_OFFS:,} call-offs in {time.monotonic() - started:.1f} s")
    if CALL_OFFS <= 5_000:
        assert ledger.catch_up() == CALL_OFFS
        kept = sorted(map(repr, ledger._stored_all(db.session)))
    started = time.monotonic()
    assert ledger.rebuild_all() == CALL_OFFS
    commit()
    seconds = time.monotonic() - started
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(SpendEntry))
    print(
        f"\nrebuild_all ({db.engine.dialect.name}): {CALL_OFFS:,} call-offs, {entries:,} "
        f"entries in {seconds:.1f} s: {CALL_OFFS / seconds:,.0f} call-offs/s, "
        f"{entries / seconds:,.0f} entries/s"
    )
    if CALL_OFFS <= 5_000:
        assert sorted(map(repr, ledger._stored_all(db.session))) == kept
        assert ledger.check_ledger() == []
