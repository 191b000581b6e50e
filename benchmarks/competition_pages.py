"""Server-side time of the further competition's evaluation and ranking pages, on PostgreSQL.

`python benchmarks/competition_pages.py [--invited 500] [--bids 200] [--requests 200]`:

1. starts a throwaway PostgreSQL cluster on 127.0.0.1 (`common.throwaway_postgres`), runs the
   migrations and `flask demo load`;
2. adds a competition on the demo arrangement's first lot in one region with ``--invited``
   member providers (each with an active membership, all on the frozen invited list) and
   ``--bids`` submitted bids with an answer to every question, closes it, has both evaluators
   declare and score every bid, moderates every bid and ranks them (through the services);
3. in one process, requests each page through the app (the Flask test client: routing, the
   queries, the templates; no network) as the evaluator or the buyer, after a warm-up, and
   times each request with `time.perf_counter`;
4. prints p50/p95 per page, and `competition_pages: <page> p95 <ms> ms` lines at the end.
"""

from __future__ import annotations

import argparse
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


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def _prepare(env: dict[str, str]) -> None:
    flask = [sys.executable, "-m", "flask"]
    run_checked([*flask, "db", "upgrade"], env, 600)
    run_checked([*flask, "demo", "load"], env, 600)


def _timed(client, url: str, requests: int) -> list[float]:
    for _ in range(20):  # warm-up: compiled statements, templates, the database's own caches
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invited", type=int, default=500)
    parser.add_argument("--bids", type=int, default=200)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marketplace-competition-"))
    env = app_env(tmp)
    results: dict[str, list[float]] = {}
    try:
        with throwaway_postgres(env, "competition") as url:
            env["MARKETPLACE_DATABASE_URL"] = url
            _prepare(env)
            os.environ.update(env)
            from benchmark_competition import (
                build_competition,
                finish,
                pages_when_evaluated,
                pages_while_closed,
            )

            from marketplace import create_app

            app = create_app()
            with app.app_context():
                started = time.monotonic()
                world = build_competition(args.invited, args.bids)
                print(
                    f"Built a competition with {args.invited} invited and {args.bids} bids "
                    f"in {time.monotonic() - started:.0f} s",
                    flush=True,
                )
                for name, (client, url) in pages_while_closed(app, world).items():
                    results[name] = _timed(client, url, args.requests)
                finish(world)
                for name, (client, url) in pages_when_evaluated(app, world).items():
                    results[name] = _timed(client, url, args.requests)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for name, timings in results.items():
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        print(f"{name}: {len(timings)} requests, p50 {p50:.1f} ms, p95 {p95:.1f} ms")
    for name, timings in results.items():
        print(f"competition_pages: {name} p95 {percentile(timings, 0.95):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
