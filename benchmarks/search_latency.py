"""Server-side search latency with a 50,000-listing catalogue, on SQLite or PostgreSQL.

`python benchmarks/search_latency.py sqlite|postgresql [--services 50000] [--searches 300]`:

1. builds a fresh database (SQLite: a file in a temporary folder; PostgreSQL: a throwaway cluster
   on 127.0.0.1, `common.throwaway_postgres`, stopped and deleted after);
2. runs the migrations, `flask demo load`, then `flask demo load --services N --providers N/25`;
3. in one process, runs the search module (the same call the search page makes: counts per filter
   value and one page of results) for a mix of text queries, each with two filters (a lot and a
   region), after a warm-up; and times each call with `time.perf_counter`;
4. prints p50/p95/max in milliseconds, and `search_latency <backend>: p95 <ms> ms` on the last line.

Only the search itself is timed (no HTTP, no templates): it is the server-side cost the target names.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import app_env, run_checked, throwaway_postgres  # noqa: E402

# Words buyers type, from the demo catalogue's vocabulary, and one that matches nothing.
QUERIES = [
    "housing",
    "accommodation support",
    "mentoring",
    "employment",
    "women",
    "drug alcohol",
    "mental health",
    "family",
    "debt advice",
    "education training",
    "peer support",
    "tenancy",
    "gambling",
    "finance benefit",
    "xylophone",
]


def _prepare(env: dict[str, str], services: int) -> None:
    flask = [sys.executable, "-m", "flask"]
    run_checked([*flask, "db", "upgrade"], env, 600)
    run_checked([*flask, "demo", "load"], env, 600)
    run_checked(
        [*flask, "demo", "load", "--services", str(services), "--providers", str(services // 25)],
        env,
        900,
    )


def _measure(env: dict[str, str], searches: int) -> list[float]:
    os.environ.update(env)
    from marketplace import create_app
    from marketplace.catalogue.search.params import SearchParams
    from marketplace.catalogue.search.queries import search
    from marketplace.core.db import db

    app = create_app()
    timings: list[float] = []
    with app.app_context():
        lots = [row.code for row in db.session.execute(_lot_codes())]
        regions = [row.code for row in db.session.execute(_region_codes())]
        combos = [
            SearchParams(text=text, lot=lots[i % len(lots)], region=regions[i % len(regions)])
            for i, text in enumerate(QUERIES * (searches // len(QUERIES) + 1))
        ][:searches]
        for params in combos[:30]:  # warm-up: caches, compiled statements, the page cache of the DB
            search(params)
            db.session.remove()
        for params in combos:
            started = time.perf_counter()
            search(params)
            timings.append((time.perf_counter() - started) * 1000)
            db.session.remove()
    return timings


def _lot_codes():
    import sqlalchemy as sa

    from marketplace.accreditation.models import ArrangementLot
    from marketplace.reference.models import ServiceCategory

    return (
        sa.select(ServiceCategory.code)
        .join(ArrangementLot, ArrangementLot.category_id == ServiceCategory.id)
        .distinct()
        .order_by(ServiceCategory.code)
    )


def _region_codes():
    import sqlalchemy as sa

    from marketplace.reference.models import ProbationRegion

    return sa.select(ProbationRegion.code).order_by(ProbationRegion.code)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("backend", choices=["sqlite", "postgresql"])
    parser.add_argument("--services", type=int, default=50_000)
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marketplace-search-"))
    env = app_env(tmp)
    try:
        with contextlib.ExitStack() as stack:
            if args.backend == "postgresql":
                env["MARKETPLACE_DATABASE_URL"] = stack.enter_context(
                    throwaway_postgres(env, "search")
                )
            else:
                env["MARKETPLACE_DATABASE_URL"] = f"sqlite:///{tmp / 'search.db'}"
            started = time.monotonic()
            _prepare(env, args.services)
            print(
                f"Loaded {args.services:,} listings in {time.monotonic() - started:.0f} s",
                flush=True,
            )
            timings = _measure(env, args.searches)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    p50, p95 = statistics.median(timings), percentile(timings, 0.95)
    print(
        f"{len(timings)} searches (text and two filters): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
        f"max {max(timings):.1f} ms"
    )
    print(f"search_latency {args.backend}: p95 {p95:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
