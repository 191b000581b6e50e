"""The insight pages and the OCDS bulk export on a national five-year data set, on PostgreSQL
(issue 22, acceptance 4).

`python benchmarks/insight_national.py [--call-offs 1000000] [--lines 3000000]
[--providers 2000] [--requests 200] [--database-url URL]`:

1. starts a throwaway PostgreSQL cluster on 127.0.0.1 (`common.throwaway_postgres`), runs the
   migrations and `flask demo load` (or, with ``--database-url``, uses that database as it is:
   migrated, demo and data set loaded);
2. builds the national data set (`benchmarks/insight_data.py`: 1,000,000 call-offs over five
   financial years, 3,000,000 invoice lines, 2,000 providers with classification histories),
   timed, then the spend ledger from it with `insight.services.ledger.rebuild_all()`, timed
   (the call-offs a second it derives are printed);
3. in one process, requests the spend dashboard and the VCSE-share page through the app (the
   Flask test client: routing, the queries, the templates; no network), signed in as the
   authority (the national figures) and as a region's commissioner (its own), 20 times to warm
   up and then ``--requests`` times each, timing each with `time.perf_counter`; the queries one
   request makes are counted with an SQLAlchemy cursor event;
4. serves the app with gunicorn (one sync worker, no worker timeout, 127.0.0.1) and streams
   `/api/v1/ocds/bulk/releases.jsonl.gz` through it to the end, gunzipping as it arrives and
   counting the releases (every thousandth parsed and checked to have an ocid; with
   ``--bulk-limit N`` only the first N, then the connection is closed), while the
   worker's resident memory is sampled from `/proc/<pid>/status` (VmRSS) every 0.2 s; its peak
   (VmHWM, the kernel's high-water mark for the process) is read at the end;
5. prints `insight_national: …` lines last, one per figure; a page or the export that answers
   404 is reported as not built yet, not as a failure.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import HOST, app_env, free_port, run_checked, throwaway_postgres  # noqa: E402

PAGES = (
    ("spend dashboard", "/insight/spend"),
    ("VCSE-share page", "/insight/vcse-share"),
)
BULK_PATH = "/api/v1/ocds/bulk/releases.jsonl.gz"
WARM_UP = 20
RSS_SAMPLE_SECONDS = 0.2


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


# ---------------------------------------------------------------------------------------------
# Data set and ledger


def build_data(env: dict[str, str], args) -> float:
    """The national data set, built in its own process; its seconds."""
    began = time.monotonic()
    out = run_checked(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "insight_data.py"),
            "--call-offs",
            str(args.call_offs),
            "--lines",
            str(args.lines),
            "--providers",
            str(args.providers),
        ],
        env,
        7200,
    )
    seconds = time.monotonic() - began
    print(out.strip(), flush=True)
    return seconds


def rebuild_ledger(app) -> tuple[int, float, int]:
    """``rebuild_all()`` timed: (what it returned, seconds, call-offs still stale after)."""
    import sqlalchemy as sa

    from marketplace.core.db import db
    from marketplace.insight.services import ledger

    with app.app_context():
        began = time.monotonic()
        derived = ledger.rebuild_all()
        db.session.commit()
        seconds = time.monotonic() - began
        stale = db.session.execute(sa.text("SELECT count(*) FROM spend_stale_call_offs")).scalar()
        months = db.session.execute(sa.text("SELECT count(*) FROM spend_months")).scalar()
        entries = db.session.execute(sa.text("SELECT count(*) FROM spend_entries")).scalar()
    print(
        f"rebuild_all(): returned {derived:,} in {seconds:.1f} s; {entries:,} spend entries, "
        f"{months:,} monthly roll-up rows, {stale:,} call-offs still stale",
        flush=True,
    )
    return derived, seconds, stale


# ---------------------------------------------------------------------------------------------
# Pages


def people(app) -> dict[str, tuple[int, int, str]]:
    """Who reads the pages: the demo authority's administrator (national figures) and a buyer
    of a region's probation service (its own): (user id, organisation id, organisation name)."""
    import sqlalchemy as sa

    from marketplace.accounts.models import Membership, Organisation, OrganisationType, Role
    from marketplace.core.db import db

    found = {}
    with app.app_context():
        for who, kind, role in (
            ("authority", OrganisationType.AUTHORITY, Role.AUTHORITY_ADMIN),
            ("commissioner", OrganisationType.PROBATION_REGION, Role.BUYER),
        ):
            row = db.session.execute(
                sa.select(Membership.user_id, Organisation.id, Organisation.name)
                .join(Organisation, Organisation.id == Membership.organisation_id)
                .where(Organisation.type == kind, Membership.role == role)
                .order_by(Organisation.id, Membership.id)
                .limit(1)
            ).first()
            if row is None:
                raise SystemExit(f"the demo has no {role.value} in a {kind.value} organisation")
            found[who] = (row[0], row[1], row[2])
    return found


def signed_in_client(app, user_id: int, organisation_id: int):
    """A test client with the session a sign-in leaves (as benchmark_competition does)."""
    from marketplace.accounts.models import User
    from marketplace.core.db import db

    client = app.test_client()
    with app.app_context():
        user = db.session.get(User, user_id)
        with client.session_transaction() as session:
            session["_user_id"] = user.get_id()
            session["_fresh"] = True
            session["organisation_id"] = organisation_id
    return client


def count_queries(app, client, url: str) -> int:
    import sqlalchemy as sa

    from marketplace.core.db import db

    with app.app_context():
        engine = db.engine
    seen = []

    def counter(*_args, **_kwargs):
        seen.append(1)

    sa.event.listen(engine, "before_cursor_execute", counter)
    try:
        client.get(url)
    finally:
        sa.event.remove(engine, "before_cursor_execute", counter)
    return len(seen)


def time_page(app, client, url: str, requests: int) -> dict:
    first = client.get(url)
    if first.status_code == 404:
        return {"status": 404}
    if first.status_code != 200:
        raise SystemExit(f"{url} answered {first.status_code}:\n{first.get_data(True)[:2000]}")
    for _ in range(WARM_UP):
        client.get(url)
    timings = []
    for _ in range(requests):
        began = time.perf_counter()
        response = client.get(url)
        timings.append((time.perf_counter() - began) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return {
        "status": 200,
        "p50": statistics.median(timings),
        "p95": percentile(timings, 0.95),
        "max": max(timings),
        "queries": count_queries(app, client, url),
        "bytes": len(first.get_data()),
    }


def measure_pages(app, requests: int) -> list[tuple[str, str, dict]]:
    results = []
    readers = people(app)
    for who in ("authority", "commissioner"):
        user_id, organisation_id, name = readers[who]
        client = signed_in_client(app, user_id, organisation_id)
        for page, url in PAGES:
            label = f"{page} as the {who}" + (f" ({name})" if who == "commissioner" else "")
            result = time_page(app, client, url, requests)
            results.append((label, url, result))
            if result["status"] == 404:
                print(f"{label}: {url} not built yet (404)", flush=True)
            else:
                print(
                    f"{label}: {requests} requests, p50 {result['p50']:.1f} ms, p95 "
                    f"{result['p95']:.1f} ms, max {result['max']:.1f} ms, "
                    f"{result['queries']} queries",
                    flush=True,
                )
    return results


# ---------------------------------------------------------------------------------------------
# The OCDS bulk export


def _status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


def _worker_pid(master: int) -> int:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{master}/task/{master}/children") as children:
                pids = [int(p) for p in children.read().split()]
        except OSError:
            pids = []
        if pids:
            return pids[0]
        time.sleep(0.1)
    raise SystemExit("gunicorn started no worker")


def measure_bulk(env: dict[str, str], tmp: Path, limit: int | None = None) -> dict:
    """Stream the bulk file through a real server; the releases, the time, and the worker's
    memory as it went."""
    port = free_port()
    log = (tmp / "gunicorn-bulk.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            "1",
            "--worker-class",
            "sync",
            # The stream takes minutes: a sync worker busy that long is not a hung one.
            "--timeout",
            "0",
            "--bind",
            f"{HOST}:{port}",
            "--log-level",
            "warning",
            "wsgi:app",
        ],
        cwd=ROOT,
        env=env
        | {"MARKETPLACE_ENV": "production", "MARKETPLACE_BASE_URL": f"http://{HOST}:{port}"},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        worker = _worker_pid(server.pid)
        deadline = time.monotonic() + 60
        while True:
            try:
                connection = http.client.HTTPConnection(HOST, port, timeout=5)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    connection.close()
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(
                    f"the server did not start:\n{(tmp / 'gunicorn-bulk.log').read_text()}"
                )
            time.sleep(0.2)
        rss_before = _status_kb(worker, "VmRSS")
        samples: list[tuple[float, int, int]] = []  # (seconds, releases so far, VmRSS kB)
        releases = 0
        stop = threading.Event()

        def sample(began: float) -> None:
            while not stop.wait(RSS_SAMPLE_SECONDS):
                try:
                    samples.append(
                        (time.monotonic() - began, releases, _status_kb(worker, "VmRSS"))
                    )
                except (OSError, RuntimeError):
                    return

        connection = http.client.HTTPConnection(HOST, port, timeout=600)
        began = time.monotonic()
        sampler = threading.Thread(target=sample, args=(began,), daemon=True)
        sampler.start()
        connection.request("GET", BULK_PATH, headers={"Accept-Encoding": "identity"})
        response = connection.getresponse()
        if response.status == 404:
            stop.set()
            return {"status": 404}
        if response.status != 200:
            stop.set()
            raise SystemExit(f"{BULK_PATH} answered {response.status}: {response.read(2000)!r}")
        first_byte = time.monotonic() - began
        # The body is gzip (the file is .jsonl.gz), whatever Content-Encoding says.
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)
        tail = b""
        wire = 0
        checked = 0
        partial = False
        while True:
            if limit and releases >= limit:
                partial = True
                break
            chunk = response.read1(256 * 1024)
            if not chunk:
                break
            wire += len(chunk)
            data = tail + inflate.decompress(chunk)
            lines = data.split(b"\n")
            tail = lines.pop()
            for line in lines:
                releases += 1
                if releases % 1000 == 1:
                    release = json.loads(line)
                    if not release.get("ocid"):
                        raise SystemExit(f"release {releases} has no ocid: {line[:300]!r}")
                    checked += 1
        if not partial:
            data = tail + inflate.flush()
            if data.strip():
                releases += len(data.strip().split(b"\n"))
        seconds = time.monotonic() - began
        stop.set()
        sampler.join()
        peak = _status_kb(worker, "VmHWM")
        rss_after = _status_kb(worker, "VmRSS")
        connection.close()
    finally:
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    timeline = []
    for step in range(1, 11):
        reached = [s for s in samples if s[1] >= releases * step / 10]
        if reached:
            timeline.append(f"{reached[0][1]:,} releases {reached[0][2] / 1024:.0f} MB")
    print(f"worker RSS as the stream went: {'; '.join(timeline)}", flush=True)
    rss = [kb for _, _, kb in samples] or [rss_after]
    # Flat: the resident memory once the stream is under way (after its first tenth) against
    # its end; a stream that held releases in memory would grow with them.
    tenth = [kb for _, done, kb in samples if done >= releases / 10] or rss
    return {
        "status": 200,
        "partial": partial,
        "releases": releases,
        "checked": checked,
        "seconds": seconds,
        "first_byte": first_byte,
        "rate": releases / seconds if seconds else 0.0,
        "gzip_mb": wire / 1e6,
        "rss_before_mb": rss_before / 1024,
        "rss_min_mb": min(rss) / 1024,
        "rss_max_mb": max(rss) / 1024,
        "rss_at_tenth_mb": tenth[0] / 1024,
        "rss_end_mb": rss_after / 1024,
        "peak_mb": peak / 1024,
        "samples": len(samples),
    }


# ---------------------------------------------------------------------------------------------


def run(env: dict[str, str], args, tmp: Path, *, fresh: bool) -> dict:
    found: dict = {}
    flask = [sys.executable, "-m", "flask"]
    if fresh:
        run_checked([*flask, "db", "upgrade"], env, 600)
        run_checked([*flask, "demo", "load"], env, 600)
        found["data_seconds"] = build_data(env, args)
    os.environ.update(env)
    from marketplace import create_app

    app = create_app()
    if "ledger" not in args.skip:
        found["ledger"] = rebuild_ledger(app)
    if "pages" not in args.skip:
        found["pages"] = measure_pages(app, args.requests)
    with app.app_context():
        from marketplace.core.db import db

        db.engine.dispose()
    if "bulk" not in args.skip:
        found["bulk"] = measure_bulk(env, tmp, args.bulk_limit)
    return found


def report(found: dict, args) -> None:
    if "data_seconds" in found:
        print(
            f"insight_national: data set {args.call_offs} call-offs, {args.lines} invoice lines, "
            f"{args.providers} providers in {found['data_seconds']:.1f} s"
        )
    if "ledger" in found:
        derived, seconds, stale = found["ledger"]
        print(f"insight_national: ledger rebuild_all {derived} in {seconds:.1f} s, {stale} stale")
    for label, url, result in found.get("pages", []):
        if result["status"] == 404:
            print(f"insight_national: page {label} | {url} not built yet")
        else:
            print(
                f"insight_national: page {label} | {url} p95 {result['p95']:.1f} ms, "
                f"p50 {result['p50']:.1f} ms, {result['queries']} queries"
            )
    bulk = found.get("bulk")
    if bulk is None:
        return
    if bulk["status"] == 404:
        print(f"insight_national: bulk {BULK_PATH} not built yet")
    else:
        print(
            f"insight_national: bulk {bulk['releases']} releases in {bulk['seconds']:.1f} s, "
            f"{bulk['rate']:.0f}/s, peak RSS {bulk['peak_mb']:.0f} MB, RSS "
            f"{bulk['rss_at_tenth_mb']:.0f} MB at a tenth, {bulk['rss_max_mb']:.0f} MB at most, "
            f"{bulk['rss_end_mb']:.0f} MB at the end, {bulk['gzip_mb']:.0f} MB gzipped, "
            f"{bulk['rss_before_mb']:.0f} MB before, first byte {bulk['first_byte']:.1f} s"
            + (", stopped at --bulk-limit" if bulk["partial"] else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call-offs", type=int, default=1_000_000)
    parser.add_argument("--lines", type=int, default=3_000_000)
    parser.add_argument("--providers", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--database-url", help="use this database (migrated, demo and data set loaded)"
    )
    parser.add_argument(
        "--bulk-limit",
        type=int,
        help="stop the bulk stream after this many releases (default: the whole file)",
    )
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        choices=("ledger", "pages", "bulk"),
        help="leave out a step (with --database-url: the ledger may be built already)",
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="marketplace-insight-"))
    env = app_env(tmp, MARKETPLACE_LOG_LEVEL="WARNING")
    try:
        if args.database_url:
            env["MARKETPLACE_DATABASE_URL"] = args.database_url
            found = run(env, args, tmp, fresh=False)
        else:
            with throwaway_postgres(env, "insight") as url:
                env["MARKETPLACE_DATABASE_URL"] = url
                found = run(env, args, tmp, fresh=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report(found, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
