"""`flask insight rebuild-ledger` (derive the spend ledger again) and `flask insight
check-ledger` (the ledger's invariant: entries as derived now, roll-ups as their sums)."""

from __future__ import annotations

import time

import click
from flask.cli import AppGroup

from marketplace.core.db import commit, rollback
from marketplace.insight.services.ledger import catch_up, check_ledger, rebuild_all

insight_cli = AppGroup("insight", help="Commissioning insight: the spend ledger.")


@insight_cli.command("rebuild-ledger")
def rebuild_ledger_command() -> None:
    """Derive every call-off's spend entries and the roll-ups again."""
    started = time.monotonic()
    try:
        call_offs = rebuild_all()
        commit()
    except Exception:
        rollback()
        raise
    seconds = time.monotonic() - started
    click.echo(
        f"Rebuilt the spend ledger from {call_offs:,} call-off(s) in {seconds:.1f} s "
        f"({call_offs / seconds if seconds else 0:,.0f} call-offs a second)."
    )


@insight_cli.command("check-ledger")
def check_ledger_command() -> None:
    """Check the ledger: every call-off's entries as derived now, roll-ups the entries' sums.
    Stale call-offs are brought up to date first. Exits 1 if anything differs."""
    caught_up = catch_up()
    problems = check_ledger()
    rollback()  # it only reads
    for problem in problems[:50]:
        click.echo(problem, err=True)
    if problems:
        raise click.ClickException(f"The spend ledger differs in {len(problems)} place(s).")
    click.echo(f"The spend ledger is consistent ({caught_up} stale call-off(s) brought up first).")
