"""The monthly invoice run for 100,000 call-offs with delivery in the month, on PostgreSQL (issue 6).

`python benchmarks/invoice_run.py [--call-offs 100000] [--database-url URL]`:

1. starts a throwaway PostgreSQL cluster on 127.0.0.1 (`scripts/test-postgres.sh`, its own
   folder and port), runs the migrations and `flask demo load`;
2. copies one of the demo's call-offs in delivery into ``--call-offs`` call-offs (each with its
   own reference and purchase order number) and records two deliveries for each in a month with
   no other delivery, in SQL, so that the set-up takes seconds;
3. times `flask invoices run --period YYYY-MM` as a separate process, as an operator would run it
   (its progress bar goes to the terminal);
4. checks the result: one draft invoice per call-off, a line per delivery, totals that are the
   sum of their lines; then runs the month again and checks that nothing new was made;
5. prints `invoice_run: <n> call-offs in <s> s, <k> problems` last.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import app_env, run_checked, throwaway_postgres  # noqa: E402

HOST = "127.0.0.1"
# A month that has ended (the run bills only those) and that the demo has no delivery in.
PERIOD = "2025-01"
FIRST_DAY, SECOND_DAY = "2025-01-08", "2025-01-22"
COPY_PREFIX = "CO-BENCH-"  # the copies' references, apart from the service's own


def _engine(url: str):
    import sqlalchemy as sa

    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def _copy_call_offs(url: str, count: int) -> None:
    """``count`` copies of a demo call-off in delivery, each with two deliveries in PERIOD."""
    import sqlalchemy as sa

    engine = _engine(url)
    with engine.begin() as conn:
        template = conn.execute(
            sa.text("SELECT id FROM call_offs WHERE status = 'in_delivery' ORDER BY id LIMIT 1")
        ).scalar_one()
        columns = [
            name
            for name in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'call_offs' ORDER BY ordinal_position"
                )
            ).scalars()
            if name not in ("id", "reference", "po_number")
        ]
        listed = ", ".join(columns)
        from_template = ", ".join(f"t.{name}" for name in columns)
        conn.execute(
            sa.text(
                # Column names come from the schema itself, not from input.
                f"INSERT INTO call_offs ({listed}, reference, po_number) "  # noqa: S608
                f"SELECT {from_template}, :prefix || lpad(n::text, 6, '0'), "
                "'PO-BENCH-' || n FROM call_offs t, generate_series(1, :count) AS n "
                "WHERE t.id = :template"
            ),
            {"count": count, "template": template, "prefix": COPY_PREFIX},
        )
        delivery_columns = [
            name
            for name in conn.execute(
                sa.text(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_name = 'call_off_deliveries' ORDER BY ordinal_position"
                )
            ).scalars()
            if name not in ("id", "call_off_id", "delivered_on", "units")
        ]
        # Each copy gets two deliveries shaped like one of the template's (or defaults).
        sample = conn.execute(
            sa.text("SELECT id FROM call_off_deliveries ORDER BY id LIMIT 1")
        ).scalar_one()
        listed = ", ".join(delivery_columns)
        from_sample = ", ".join(f"d.{name}" for name in delivery_columns)
        for day in (FIRST_DAY, SECOND_DAY):
            conn.execute(
                sa.text(
                    f"INSERT INTO call_off_deliveries (call_off_id, delivered_on, units, {listed}) "  # noqa: S608
                    f"SELECT c.id, CAST(:day AS date), 1, {from_sample} "
                    "FROM call_offs c, call_off_deliveries d "
                    "WHERE c.reference LIKE :copies AND d.id = :sample"
                ),
                {"day": day, "sample": sample, "copies": COPY_PREFIX + "%"},
            )
        conn.execute(sa.text("ANALYZE"))
    engine.dispose()


def _check(url: str, count: int) -> list[str]:
    import sqlalchemy as sa

    problems = []
    engine = _engine(url)
    with engine.connect() as conn:
        conn.execute(sa.text("ANALYZE invoices, invoice_lines"))
        start = {"start": f"{PERIOD}-01"}
        invoices = conn.execute(
            sa.text("SELECT count(*) FROM invoices WHERE period_start = CAST(:start AS date)"),
            start,
        ).scalar_one()
        per_invoice = conn.execute(
            sa.text(
                "SELECT i.gross_pence, sum(l.gross_pence), count(l.id) FROM invoices i "
                "JOIN invoice_lines l ON l.invoice_id = i.id "
                "WHERE i.period_start = CAST(:start AS date) GROUP BY i.id, i.gross_pence"
            ),
            start,
        ).all()
        if invoices != count:
            problems.append(f"{invoices} invoices for {count} call-offs")
        lines = sum(row[2] for row in per_invoice)
        if lines != 2 * count:
            problems.append(f"{lines} lines for {2 * count} deliveries")
        wrong = sum(1 for gross, summed, _ in per_invoice if gross != summed)
        if wrong:
            problems.append(f"{wrong} invoices whose total is not the sum of their lines")
    engine.dispose()
    return problems


def _measure(url: str, env: dict[str, str], call_offs: int, *, fresh: bool):
    """Set up ``call_offs`` call-offs with delivery, time the run, check it and run it again."""
    env = dict(env, MARKETPLACE_DATABASE_URL=url)
    flask = [sys.executable, "-m", "flask"]
    if fresh:
        run_checked([*flask, "db", "upgrade"], env, 600)
        run_checked([*flask, "demo", "load"], env, 600)
    began = time.monotonic()
    _copy_call_offs(url, call_offs)
    print(
        f"set-up: {call_offs:,} call-offs with 2 deliveries each in {PERIOD} "
        f"({time.monotonic() - began:.1f} s)",
        flush=True,
    )
    began = time.monotonic()
    # The progress bar is drawn on the terminal, if there is one; its last lines are kept.
    run = subprocess.run(
        [*flask, "invoices", "run", "--period", PERIOD],
        cwd=ROOT,
        env=env,
        capture_output=not sys.stdout.isatty(),
        text=True,
        timeout=1800,
        check=False,
    )
    seconds = time.monotonic() - began
    if run.returncode != 0:
        raise SystemExit(f"flask invoices run failed:\n{run.stdout}\n{run.stderr}")
    if run.stdout:
        print("\n".join(run.stdout.strip().splitlines()[-2:]), flush=True)
    problems = _check(url, call_offs)
    again = run_checked([*flask, "invoices", "run", "--period", PERIOD], env, 600)
    if "0 new draft" not in again:
        problems.append(f"the second run made something: {again.strip()[-200:]}")
    problems += _check(url, call_offs)
    return seconds, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call-offs", type=int, default=100_000)
    parser.add_argument(
        "--database-url", help="use this database (migrated, demo loaded) instead of a cluster"
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marketplace-invoice-bench-"))
    env = app_env(tmp, MARKETPLACE_LOG_LEVEL="WARNING")
    try:
        if args.database_url:
            seconds, problems = _measure(args.database_url, env, args.call_offs, fresh=False)
        else:
            with throwaway_postgres(env, "invoice") as url:
                seconds, problems = _measure(url, env, args.call_offs, fresh=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(f"invoice_run: {args.call_offs} call-offs in {seconds:.1f} s, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
