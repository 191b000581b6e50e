"""Placing call-offs through the API on PostgreSQL, with 32 concurrent clients (issue 5).

`python benchmarks/place_call_offs.py [--connections 32] [--duration 10]`:

1. starts a throwaway PostgreSQL cluster on 127.0.0.1 (`scripts/test-postgres.sh`, its own
   folder and port), runs the migrations and `flask demo load`;
2. gives every demo buyer an API token and picks the visible services that can be bought in one
   unit; the funders' budgets and the direct-award limit are the demo's own;
3. serves the app with gunicorn (4 sync workers forked from one preloaded app, 127.0.0.1), waits
   until it answers, and drives `POST /api/v1/orders` with wrk (2 threads, 32 connections), each
   request for another service from one of the buyers' tokens: 5 s to warm up at full load,
   then the measured run (the steady state, not the workers' first requests);
4. checks the database afterwards: one call-off per 201 answer, every budget's committed total
   equal to its funders' parts and within its allocation, every buyer's total with a provider in
   a lot within the direct-award limit, and no month of any service over its capacity;
5. prints `place_call_offs: <n> requests/s, <errors> errors, <k> invariant breaches` last.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import app_env, free_port, run_checked, throwaway_postgres  # noqa: E402

HOST = "127.0.0.1"
WORKERS = 4
WARM_UP_SECONDS = 5

LUA = r"""
-- Each request: the next token and service from the lists, one unit, a fresh PO number.
local tokens = {TOKENS}
local services = {SERVICES}
-- Globals: wrk's done() reads each thread's own with thread:get.
counter = 0
created, refused, other = 0, 0, 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  counter = id * 100000
end

request = function()
  counter = counter + 1
  local token = tokens[(counter % #tokens) + 1]
  local service = services[(counter % #services) + 1]
  local body = string.format(
    '{"listing_id": %d, "quantity": %d, "start_date": "%s", "end_date": "%s", ' ..
    '"crn": "B%06d", "pdu": "Bench", "po_number": "BENCH-%d", ' ..
    '"choice_reason": "lowest_price_with_capacity"}',
    service[1], service[2], service[3], service[3], counter % 1000000, counter)
  return wrk.format("POST", "/api/v1/orders",
    {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"}, body)
end

response = function(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 422 then refused = refused + 1
  else other = other + 1 end
end

done = function(summary, latency, requests)
  local c, r, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    c = c + thread:get("created"); r = r + thread:get("refused"); o = o + thread:get("other")
  end
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"socket_errors\":%d,\"created\":%d," ..
    "\"refused\":%d,\"other\":%d,\"p50\":%.0f,\"p95\":%.0f}\n",
    summary.requests, summary.duration,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    c, r, o, latency:percentile(50), latency:percentile(95)))
end
"""


def _prepare(env: dict[str, str]) -> tuple[list[str], list[tuple[int, int, str]]]:
    """Tokens for every demo buyer, and (listing id, units, start date) of buyable services."""
    os.environ.update(env)
    import sqlalchemy as sa

    from marketplace import create_app
    from marketplace.accounts.models import Membership, Role, User
    from marketplace.accounts.services.tokens import create_api_token
    from marketplace.catalogue.search.params import SearchParams, SortOrder
    from marketplace.catalogue.search.queries import search
    from marketplace.core.clock import add_working_days, london_date
    from marketplace.core.db import commit, db

    app = create_app()
    with app.app_context():
        tokens = []
        for membership in db.session.scalars(
            sa.select(Membership).where(Membership.role == Role.BUYER).order_by(Membership.id)
        ):
            user = db.session.get(User, membership.user_id)
            _, secret = create_api_token(user, membership.organisation, "bench")
            tokens.append(secret)
        commit()
        today = london_date()
        found = search(SearchParams(per_page=100, sort=SortOrder.PRICE))
        services = []
        for hit in found.page.items:
            listing = hit.listing
            if hit.unit_price_pence and hit.unit_price_pence * listing.min_units <= 20_000:
                start = add_working_days(today, listing.lead_time_days + 1)
                services.append((listing.id, listing.min_units, start.isoformat()))
        db.session.remove()
    if not tokens or not services:
        raise SystemExit("the demo has no buyers or no cheap visible services to buy")
    return tokens, services[:40]


def _check(env: dict[str, str], created: int, slack: int) -> list[str]:
    """Invariants after the run; each breach as a line."""
    import sqlalchemy as sa

    from marketplace import create_app
    from marketplace.accreditation.models import Arrangement
    from marketplace.catalogue.models import CapacityCommitment, Listing
    from marketplace.core.db import db
    from marketplace.orders.models import Budget, CallOff, CallOffFunder

    breaches: list[str] = []
    app = create_app()
    with app.app_context():
        bench_call_offs = db.session.scalar(
            sa.select(sa.func.count()).select_from(CallOff).where(CallOff.po_number.like("BENCH-%"))
        )
        if not created <= bench_call_offs <= created + slack:
            breaches.append(f"{bench_call_offs} call-offs for {created} answers of 201")
        parts = dict(
            db.session.execute(
                sa.select(
                    CallOffFunder.budget_id, sa.func.sum(CallOffFunder.committed_pence)
                ).group_by(CallOffFunder.budget_id)
            ).all()
        )
        for budget in db.session.scalars(sa.select(Budget)):
            if budget.committed_pence != int(parts.get(budget.id) or 0):
                breaches.append(f"budget {budget.id}: committed differs from its funders' parts")
            if budget.committed_pence + budget.spent_pence > budget.allocated_pence:
                breaches.append(f"budget {budget.id}: overspent")
        # Each buyer's live total with a provider in a lot (the demo arrangement's rule) against
        # its arrangement's limit, in one query.
        group = (
            CallOff.lead_buyer_id,
            CallOff.provider_id,
            CallOff.arrangement_id,
            CallOff.category_id,
        )
        over_limit = db.session.execute(
            sa.select(*group)
            .join(Arrangement, Arrangement.id == CallOff.arrangement_id)
            .where(CallOff.status.notin_(["declined", "expired", "cancelled"]))
            .group_by(*group)
            .having(
                sa.func.sum(CallOff.gross_pence) > sa.func.max(Arrangement.direct_award_limit_pence)
            )
        ).all()
        breaches += [
            f"buyer {lead}, provider {provider} in lot {category} of arrangement {arrangement}: "
            "over the direct-award limit"
            for lead, provider, arrangement, category in over_limit
        ]
        overbooked = db.session.execute(
            sa.select(CapacityCommitment.listing_id, CapacityCommitment.month)
            .join(Listing, Listing.id == CapacityCommitment.listing_id)
            .group_by(CapacityCommitment.listing_id, CapacityCommitment.month)
            .having(sa.func.sum(CapacityCommitment.units) > sa.func.max(Listing.monthly_capacity))
        ).all()
        breaches += [f"service {pk} overbooked in {month}" for pk, month in overbooked]
        db.session.remove()
    return breaches


def _wait_until_serving(port: int) -> None:
    """Until the app answers GET /healthz with 200 (up to 60 s)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection(HOST, port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the app did not answer GET /healthz within 60 s")


def _wrk(url: str, script: Path, seconds: int, connections: int) -> dict:
    result = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=False,
    )
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed:\n{result.stdout}\n{result.stderr}")
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def _measure(
    database_url: str, env: dict[str, str], tmp: Path, args, fresh: bool
) -> tuple[dict, list[str], list[tuple[int, int, str]], list[str]]:
    """Load the demo (into a fresh database), serve it, drive it with wrk and check the
    database afterwards: (wrk's figures, tokens, services, invariant breaches)."""
    env["MARKETPLACE_DATABASE_URL"] = database_url
    if fresh:
        flask = [sys.executable, "-m", "flask"]
        run_checked([*flask, "db", "upgrade"], env, 600)
        run_checked([*flask, "demo", "load"], env, 600)
    server = None
    try:
        tokens, services = _prepare(env)
        script = tmp / "orders.lua"
        script.write_text(
            LUA.replace("{TOKENS}", "{" + ", ".join(json.dumps(t) for t in tokens) + "}").replace(
                "{SERVICES}",
                "{"
                + ", ".join(f'{{{pk}, {units}, "{start}"}}' for pk, units, start in services)
                + "}",
            )
        )
        port = free_port()
        server_env = dict(env, MARKETPLACE_ENV="production")
        log = (tmp / "gunicorn.log").open("wb")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "--workers",
                str(WORKERS),
                "--bind",
                f"{HOST}:{port}",
                # The app is imported once, before the workers fork: they serve from the start
                # instead of each importing it while the clock runs. (It opens no connection
                # at import, so no worker inherits one.)
                "--preload",
                "--log-level",
                "warning",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=server_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_until_serving(port)
        url = f"http://{HOST}:{port}/api/v1/orders"
        # Measure the steady state: every worker has served requests (its caches filled, its
        # connections open and their statements prepared) before the clock starts.
        warm = _wrk(url, script, WARM_UP_SECONDS, args.connections)
        stats = _wrk(url, script, args.duration, args.connections)
        # Stop the server first: SIGTERM lets each worker finish the request it is on, so
        # nothing commits while the database is checked. Requests in flight when each wrk run
        # (warm-up and measure) stopped may still have placed a call-off: at most one per
        # connection and run.
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        server = None
        created = warm["created"] + stats["created"]
        breaches = _check(env, created, slack=2 * args.connections)
    finally:
        if server is not None:
            os.killpg(server.pid, 15)
            server.wait(timeout=20)
    return stats, tokens, services, breaches


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument(
        "--database-url",
        help="use this database (migrated, demo loaded) instead of a throwaway cluster",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marketplace-orders-bench-"))
    env = app_env(
        tmp,
        MARKETPLACE_SEND_EMAIL_AFTER_COMMIT="false",  # the outbox keeps them; nothing is sent
        MARKETPLACE_RATELIMIT_ENABLED="false",
        MARKETPLACE_LOG_LEVEL="WARNING",
    )
    try:
        if args.database_url:
            stats, tokens, services, breaches = _measure(args.database_url, env, tmp, args, False)
        else:
            with throwaway_postgres(env, "orders") as url:
                stats, tokens, services, breaches = _measure(url, env, tmp, args, True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    errors = stats["socket_errors"] + stats["other"]
    print(
        f"{stats['requests']} requests in {args.duration} s from {args.connections} clients "
        f"({len(tokens)} buyer tokens, {len(services)} services): {stats['created']} placed, "
        f"{stats['refused']} refused by a rule, {errors} errors; p50 {stats['p50'] / 1000:.1f} ms, "
        f"p95 {stats['p95'] / 1000:.1f} ms"
    )
    for breach in breaches:
        print(f"BREACH: {breach}")
    print(
        f"place_call_offs: {stats['rps']:.0f} requests/s, {errors} errors, "
        f"{stats['refused']} refused, {len(breaches)} invariant breaches"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
