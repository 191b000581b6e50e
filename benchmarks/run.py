"""`make bench`: throughput and latency of named pages against a bare Flask "hello world".

What it does, all on 127.0.0.1 and bounded in time:

1. builds a fresh SQLite database in a temporary directory (`flask db upgrade`, `flask demo load`),
   then adds a large data set to the demo's live arrangement (`benchmarks/large_data.py`: 5,000
   applications and 20,000 lot memberships) and a large catalogue (`flask demo load --services
   50000 --providers 2000`);
2. starts gunicorn (2 sync workers) serving the marketplace, and a second gunicorn serving
   `benchmarks/hello.py`, each on a free port;
3. signs in as a demo buyer, and as the demo assessor (with the two-factor page, the code made
   with pyotp from the demo TOTP secret), through the real forms (CSRF tokens from the pages) to
   get session cookies;
4. runs `wrk -t2 -c20 -d10s --latency` on each target, reading p50/p95/p99 from a Lua `done` hook,
   with hello world before the first target and after each: a target's ratio uses the mean of
   the hello world runs either side of it (this machine's speed drifts by a third in minutes);
5. measures what needs no server: server-side search latency with 50,000 listings on SQLite and
   on a throwaway PostgreSQL cluster (`benchmarks/search_latency.py`), and the import of a
   10,000-row rate card (`benchmarks/import_rate_card.py`), and placing call-offs through the
   API on PostgreSQL with 32 clients (`benchmarks/place_call_offs.py`), the invoice run, the
   further competition pages, and the insight pages and OCDS bulk export on a national
   five-year data set (`benchmarks/insight_national.py`: building the data set and the ledger
   takes the longest part of the run);
6. prints a table with the ratio of each target's throughput to hello world's, and each target's
   verdict, and writes `benchmarks/RESULTS.md`;
7. stops both servers and deletes the temporary directory, whatever happened.

Run with the project's virtualenv: `.venv/bin/python benchmarks/run.py [--duration 10]`.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import http.client
import json
import os
import platform
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from common import HOST, app_env, free_port  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"
WORKERS = 2
# The target for the signed-in dashboard, at 20 connections.
TARGET_RATIO = 0.25
TARGET_P95_MS = 50.0
# Issue 3, acceptance 6: with the large data set, the assessor queue and the public register.
LARGE_DATA = {"applications": 5000, "memberships": 20000}
LARGE_DATA_TARGET_RATIO = 0.15
# Issue 4: a 50,000-listing catalogue (`flask demo load --services`); the search page (a text query
# and two filters) reaches 20% of hello world; server-side search p95 under 30 ms on both
# databases; a 10,000-row rate card imports in under 5 s.
CATALOGUE = {"services": 50_000, "providers": 2_000}
SEARCH_PATH = "/services?q=housing&lot=ACC&region=A"
SEARCH_TARGET_RATIO = 0.20
SEARCH_P95_TARGET_MS = 30.0
IMPORT_ROWS = 10_000
IMPORT_TARGET_SECONDS = 5.0
# Issue 5: placing call-offs through the API on PostgreSQL with 32 clients, at least 150 a second,
# with no errors and no overbooking or overspending found afterwards.
ORDERS_TARGET_RPS = 150
INVOICE_RUN_TARGET_SECONDS = 60
COMPETITION_PAGE_TARGET_MS = 100
# Issue 22, acceptance 4: on PostgreSQL with a national five-year data set, the spend dashboard
# and the VCSE-share page p95 under 150 ms server-side; the OCDS bulk export at least 5,000
# releases a second with memory flat, the serving process's peak RSS under 300 MB.
INSIGHT_DATA = {"call_offs": 1_000_000, "lines": 3_000_000, "providers": 2_000}
INSIGHT_PAGE_TARGET_MS = 150
OCDS_BULK_TARGET_RATE = 5_000
OCDS_BULK_TARGET_PEAK_MB = 300

WRK_SCRIPT = r"""
-- Prints one machine-readable line when wrk finishes (latencies in microseconds).
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"connect\":%d,\"read\":%d,\"write\":%d," ..
    "\"status\":%d,\"timeout\":%d,\"p50\":%.0f,\"p95\":%.0f,\"p99\":%.0f,\"max\":%.0f,\"mean\":%.0f}\n",
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.status, summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""


class BenchError(RuntimeError):
    """The benchmark could not run (not a slow result: a broken set-up)."""


@dataclass
class Target:
    name: str
    server: str  # "app" or "hello"
    path: str  # may name {arrangement_id}, the demo arrangement's id
    signed_in: str | None = None  # who: "buyer" or "assessor"
    expect: tuple[int, ...] = (200,)


# The app's targets. Hello world is measured before the first and after each of them, and
# each target is compared with the mean of the two runs on either side of it: on a machine whose
# speed drifts during the run, a target is compared with hello world as fast as it then was.
HELLO = Target("hello world (bare Flask)", "hello", "/")
TARGETS = [
    Target("/healthz", "app", "/healthz"),
    Target("/ signed out", "app", "/", expect=(200, 302)),
    Target("/sign-in", "app", "/sign-in"),
    Target("/ signed in (buyer dashboard)", "app", "/", signed_in="buyer"),
    Target("/api/v1/regions", "app", "/api/v1/regions"),
    Target(
        "/accreditation/assessments (assessor queue, large data)",
        "app",
        "/accreditation/assessments",
        signed_in="assessor",
    ),
    Target(
        "/arrangements/<id>/register signed out (large data)",
        "app",
        "/arrangements/{arrangement_id}/register",
    ),
    Target("search: text and two filters, signed out (50,000 listings)", "app", SEARCH_PATH),
]
DASHBOARD = "/ signed in (buyer dashboard)"
LARGE_DATA_TARGETS = (
    "/accreditation/assessments (assessor queue, large data)",
    "/arrangements/<id>/register signed out (large data)",
)
SEARCH_TARGET = "search: text and two filters, signed out (50,000 listings)"


@dataclass
class Result:
    target: Target
    status: int
    rps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    errors: dict[str, int] = field(default_factory=dict)
    non_2xx_3xx: int = 0
    # Hello world's requests/s measured just before and just after this target.
    hello_around: tuple[float, float] = (0.0, 0.0)

    @property
    def hello_rps(self) -> float:
        return sum(self.hello_around) / 2

    @property
    def ratio(self) -> float:
        return self.rps / self.hello_rps


# ---------------------------------------------------------------------------------------------
# Processes


def run(
    cmd: list[str], env: dict[str, str], timeout: float, **kwargs
) -> subprocess.CompletedProcess:
    result = subprocess.run(
        cmd,
        cwd=ROOT,
        env=env,
        timeout=timeout,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )
    if result.returncode != 0:
        raise BenchError(
            f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


class Server:
    """A gunicorn in its own process group, so that stopping it stops its workers too."""

    def __init__(self, name: str, app: str, port: int, env: dict[str, str], log: Path, chdir: Path):
        self.name, self.port, self.log = name, port, log
        self.cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{port}",
            "--chdir",
            str(chdir),
            "--log-level",
            "warning",
            "--timeout",
            "30",
            "--graceful-timeout",
            "5",
            app,
        ]
        self.env = env
        self.process: subprocess.Popen | None = None

    def start(self, ready_path: str) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"{self.name} exited at start:\n{self.log.read_text()[-3000:]}")
            try:
                status, _, _ = request(self.port, "GET", ready_path)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise BenchError(f"{self.name} did not answer within 30 s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)


# ---------------------------------------------------------------------------------------------
# HTTP


def request(
    port: int,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> tuple[int, http.client.HTTPMessage, str]:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.headers, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def remember_cookies(jar: dict[str, str], headers: http.client.HTTPMessage) -> None:
    for header in headers.get_all("Set-Cookie") or []:
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            jar[name] = morsel.value


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{name}={value}" for name, value in jar.items())


def csrf_token(page: str, what: str) -> str:
    for tag in re.findall(r"<input[^>]*>", page):
        if re.search(r'name="csrf_token"', tag):
            match = re.search(r'value="([^"]*)"', tag)
            if match:
                return match.group(1)
    raise BenchError(f"no csrf_token field on the {what} page")


def post_form(
    port: int, path: str, jar: dict[str, str], fields: dict[str, str]
) -> tuple[int, http.client.HTTPMessage, str]:
    return request(
        port,
        "POST",
        path,
        body=urllib.parse.urlencode(fields),
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookie_header(jar),
            "Origin": f"http://{HOST}:{port}",
            "Referer": f"http://{HOST}:{port}{path}",
        },
    )


def sign_in(port: int, email: str, password: str, totp_secret: str | None = None) -> str:
    """Sign in through the real forms, as a browser would; return the Cookie header to send.

    With ``totp_secret`` the two-factor page follows, answered with the current code.
    """
    jar: dict[str, str] = {}
    status, headers, page = request(port, "GET", "/sign-in")
    if status != 200:
        raise BenchError(f"GET /sign-in answered {status}")
    remember_cookies(jar, headers)
    token = csrf_token(page, "sign-in")
    status, headers, page = post_form(
        port, "/sign-in", jar, {"csrf_token": token, "email": email, "password": password}
    )
    location = urllib.parse.urlsplit(headers.get("Location", "")).path
    remember_cookies(jar, headers)
    if status in (302, 303) and location == "/sign-in/two-factor":
        if not totp_secret:
            raise BenchError(f"{email} needs a two-factor code and no TOTP secret was given")
        import pyotp

        status, headers, page = request(
            port, "GET", location, headers={"Cookie": cookie_header(jar)}
        )
        if status != 200:
            raise BenchError(f"GET {location} answered {status}")
        remember_cookies(jar, headers)
        token = csrf_token(page, "two-factor")
        status, headers, page = post_form(
            port, location, jar, {"csrf_token": token, "code": pyotp.TOTP(totp_secret).now()}
        )
        location = urllib.parse.urlsplit(headers.get("Location", "")).path
        remember_cookies(jar, headers)
    if status not in (302, 303) or "sign-in" in location:
        raise BenchError(f"signing in as {email} failed: {status} {location}\n{page[:1500]}")
    status, headers, page = request(port, "GET", "/", headers={"Cookie": cookie_header(jar)})
    if status != 200 or "sign-out" not in page:
        raise BenchError(f"after signing in, / answered {status} without a sign-out button")
    # Kept as a browser keeps it: the first signed-in page adds the CSRF token of the header's
    # sign-out form to the session. Without it every measured request would make a new token
    # and send a new session cookie, which no browser's second request does.
    remember_cookies(jar, headers)
    return cookie_header(jar)


# ---------------------------------------------------------------------------------------------
# Demo data


def demo_user(env: dict[str, str], role: str = "buyer") -> tuple[str, str, str | None]:
    """The email of a demo user in ``role``, the demo password and the TOTP secret if any."""
    out = run([sys.executable, "-m", "flask", "demo", "users", "--json"], env, timeout=120).stdout
    try:
        data = json.loads(out)
    except ValueError as error:
        raise BenchError(
            f"`flask demo users --json` printed no JSON ({error}):\n{out[:2000]}"
        ) from None
    users = data if isinstance(data, list) else data.get("users", [])
    password = data.get("password") if isinstance(data, dict) else None
    buyer = next((u for u in users if u.get("role") == role), None)
    if buyer is None:
        raise BenchError(f"`flask demo users --json` lists no {role}:\n{out[:2000]}")
    password = buyer.get("password") or password
    if not password:
        from marketplace.demo.people import DEMO_PASSWORD

        password = DEMO_PASSWORD
    if not password:
        raise BenchError(
            "cannot find the demo password (neither in the JSON nor in marketplace.demo.people)"
        )
    return buyer["email"], password, buyer.get("totp_secret")


def demo_arrangement_id(database: Path) -> int:
    """The id of the demo's live arrangement, read straight from the benchmark database."""
    from marketplace.demo.accreditation import DEMO_ARRANGEMENT_REFERENCE

    with contextlib.closing(sqlite3.connect(database)) as connection:
        row = connection.execute(
            "SELECT id FROM arrangements WHERE reference = ?", (DEMO_ARRANGEMENT_REFERENCE,)
        ).fetchone()
    if row is None:
        raise BenchError(f"no arrangement {DEMO_ARRANGEMENT_REFERENCE} after `flask demo load`")
    return row[0]


# ---------------------------------------------------------------------------------------------
# wrk


def run_wrk(url: str, script: Path, duration: int, connections: int, cookie: str | None) -> dict:
    cmd = [
        "wrk",
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--latency",
        "--timeout",
        "5s",
        "-s",
        str(script),
    ]
    if cookie:
        cmd += ["-H", f"Cookie: {cookie}"]
    cmd.append(url)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30, check=False)
    if result.returncode != 0:
        raise BenchError(f"wrk failed: {result.stderr or result.stdout}")
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("BENCH_JSON ")), None)
    if line is None:
        raise BenchError(f"wrk printed no BENCH_JSON line:\n{result.stdout}")
    stats = json.loads(line.removeprefix("BENCH_JSON "))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    stats["rps"] = float(rps.group(1)) if rps else stats["requests"] / (stats["duration_us"] / 1e6)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", result.stdout)
    stats["non_2xx_3xx"] = int(non2xx.group(1)) if non2xx else 0
    return stats


def measure(target: Target, port: int, script: Path, args, cookie: str | None) -> Result:
    headers = {"Cookie": cookie} if cookie else {}
    status, answer_headers, _ = request(port, "GET", target.path, headers=headers)
    if status not in target.expect:
        raise BenchError(
            f"{target.name}: GET {target.path} answered {status}, expected {target.expect}"
        )
    if cookie and answer_headers.get_all("Set-Cookie"):
        # wrk sends the same cookie every time: a page that keeps changing the session would be
        # measured doing work (signing a new cookie) that a browser's requests do not repeat.
        raise BenchError(f"{target.name}: GET {target.path} changes the session cookie each time")
    url = f"http://{HOST}:{port}{target.path}"
    if args.warmup:
        run_wrk(url, script, args.warmup, 4, cookie)
    stats = run_wrk(url, script, args.duration, args.connections, cookie)
    errors = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout") if stats[k]}
    return Result(
        target=target,
        status=status,
        rps=stats["rps"],
        requests=stats["requests"],
        p50_ms=stats["p50"] / 1000,
        p95_ms=stats["p95"] / 1000,
        p99_ms=stats["p99"] / 1000,
        errors=errors,
        non_2xx_3xx=stats["non_2xx_3xx"],
    )


# ---------------------------------------------------------------------------------------------
# Report


def machine_info() -> list[str]:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB memory"
    except (OSError, ValueError, IndexError):
        pass

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return "unknown"

    from importlib.metadata import version as package_version

    commit = version(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
    status = version(["git", "-C", str(ROOT), "status", "--porcelain"])
    dirty = status not in ("", "unknown")
    return [
        f"- CPU: {cpu}, {os.cpu_count()} cores{memory}",
        f"- OS: {platform.platform()}",
        (
            f"- Python {platform.python_version()}, Flask {package_version('flask')}, "
            f"gunicorn {package_version('gunicorn')} ({WORKERS} sync workers), "
            f"SQLAlchemy {package_version('sqlalchemy')}, SQLite {sqlite3.sqlite_version}"
        ),
        f"- {version(['wrk', '--version']).split(' [')[0]}, on the same machine as the servers",
        f"- Code: commit {commit}{' with uncommitted changes' if dirty else ''}",
    ]


def table(results: list[Result]) -> list[str]:
    rows = [
        "| target | status | requests/s | p50 ms | p95 ms | p99 ms | hello world before / after "
        "| vs hello world |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        note = ""
        if r.errors or r.non_2xx_3xx:
            parts = [f"{k} {v}" for k, v in r.errors.items()]
            if r.non_2xx_3xx:
                parts.append(f"non-2xx/3xx {r.non_2xx_3xx}")
            note = f" ({', '.join(parts)})"
        before, after = r.hello_around
        rows.append(
            f"| {r.target.name}{note} | {r.status} | {r.rps:,.0f} | {r.p50_ms:.1f} "
            f"| {r.p95_ms:.1f} | {r.p99_ms:.1f} | {before:,.0f} / {after:,.0f} | {r.ratio:.1%} |"
        )
    return rows


def drift(hellos: list[float]) -> str:
    gap = (max(hellos) - min(hellos)) / max(hellos)
    return (
        f"Hello world was measured {len(hellos)} times, before the first target and after each: "
        f"{min(hellos):,.0f} to {max(hellos):,.0f} requests/s. Each target is compared with the "
        "mean of the runs just before and after it"
        + (
            " (they differ by over 15%: the machine's speed drifted during the run, which the "
            "neighbouring runs follow more closely than one mean would)."
            if gap > 0.15
            else "."
        )
    )


def large_data_verdicts(results: list[Result]) -> list[str]:
    lines = []
    for name in LARGE_DATA_TARGETS:
        result = next(r for r in results if r.target.name == name)
        ratio = result.ratio
        lines.append(
            f"{name}: {result.rps:,.0f} requests/s = {ratio:.1%} of hello world "
            f"(target ≥ {LARGE_DATA_TARGET_RATIO:.0%}), p95 {result.p95_ms:.1f} ms: "
            f"{'target met' if ratio >= LARGE_DATA_TARGET_RATIO else 'TARGET MISSED'}."
        )
    return lines


def catalogue_verdicts(results: list[Result], offline: dict) -> list[str]:
    """Issue 4's targets: the search page's throughput, search latency, the import's time."""
    page = next(r for r in results if r.target.name == SEARCH_TARGET)
    ratio = page.ratio
    lines = [
        f"Search page ({SEARCH_PATH}): {page.rps:,.0f} requests/s = {ratio:.1%} of hello world "
        f"(target ≥ {SEARCH_TARGET_RATIO:.0%}), p95 {page.p95_ms:.1f} ms: "
        f"{'target met' if ratio >= SEARCH_TARGET_RATIO else 'TARGET MISSED'}."
    ]
    for backend in ("sqlite", "postgresql"):
        p95 = offline.get(f"search_{backend}")
        if p95 is None:
            lines.append(f"Search latency on {backend}: not measured ({offline.get('why', '')}).")
            continue
        lines.append(
            f"Search latency on {backend}, server-side, text and two filters, 50,000 listings: "
            f"p95 {p95:.1f} ms (target < {SEARCH_P95_TARGET_MS:.0f} ms): "
            f"{'target met' if p95 < SEARCH_P95_TARGET_MS else 'TARGET MISSED'}."
        )
    seconds = offline.get("import_seconds")
    if seconds is not None:
        lines.append(
            f"Rate card import of {IMPORT_ROWS:,} rows: {seconds:.2f} s "
            f"(target < {IMPORT_TARGET_SECONDS:.0f} s): "
            f"{'target met' if seconds < IMPORT_TARGET_SECONDS else 'TARGET MISSED'}."
        )
    return lines


def offline_measures(env: dict[str, str]) -> dict:
    """Measures that need no server: search latency on both databases and the import's time.

    Each script builds its own database (and, for PostgreSQL, a throwaway cluster on loopback).
    """
    found: dict = {}
    for backend in ("sqlite", "postgresql"):
        out = run(
            [sys.executable, str(ROOT / "benchmarks" / "search_latency.py"), backend],
            env,
            timeout=1200,
        ).stdout
        print(f"  {out.strip().splitlines()[-2]}", flush=True)
        match = re.search(r"search_latency \w+: p95 ([0-9.]+) ms", out)
        if match:
            found[f"search_{backend}"] = float(match.group(1))
    out = run(
        [sys.executable, str(ROOT / "benchmarks" / "import_rate_card.py"), str(IMPORT_ROWS)],
        env,
        timeout=600,
    ).stdout
    match = re.search(r"import_rate_card: \d+ rows in ([0-9.]+) s", out)
    if match:
        found["import_seconds"] = float(match.group(1))
        print(f"  rate card import: {IMPORT_ROWS:,} rows in {found['import_seconds']:.2f} s")
    out = run(
        [sys.executable, str(ROOT / "benchmarks" / "place_call_offs.py")], env, timeout=1200
    ).stdout
    print(f"  {out.strip().splitlines()[0]}", flush=True)
    match = re.search(
        r"place_call_offs: (\d+) requests/s, (\d+) errors, (\d+) refused, (\d+) invariant", out
    )
    if match:
        found["orders"] = tuple(int(group) for group in match.groups())
        found["orders_breaches"] = [ln for ln in out.splitlines() if ln.startswith("BREACH")]
    out = run(
        [sys.executable, str(ROOT / "benchmarks" / "invoice_run.py")], env, timeout=1800
    ).stdout
    match = re.search(r"invoice_run: (\d+) call-offs in ([0-9.]+) s, (\d+) problems", out)
    if match:
        found["invoices"] = (int(match.group(1)), float(match.group(2)), int(match.group(3)))
        print(f"  {match.group(0)}", flush=True)
    out = run(
        [sys.executable, str(ROOT / "benchmarks" / "competition_pages.py")], env, timeout=1200
    ).stdout
    found["competition_pages"] = {
        match.group(1): float(match.group(2))
        for match in re.finditer(r"competition_pages: (.+) p95 ([0-9.]+) ms", out)
    }
    for name, p95 in found["competition_pages"].items():
        print(f"  {name}: p95 {p95:.1f} ms", flush=True)
    out = run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "insight_national.py"),
            "--call-offs",
            str(INSIGHT_DATA["call_offs"]),
            "--lines",
            str(INSIGHT_DATA["lines"]),
            "--providers",
            str(INSIGHT_DATA["providers"]),
        ],
        env,
        timeout=3 * 3600,
    ).stdout
    found["insight"] = parse_insight(out)
    for line in out.splitlines():
        if line.startswith("insight_national: "):
            print(f"  {line.removeprefix('insight_national: ')}", flush=True)
    return found


def parse_insight(out: str) -> dict:
    """The figures of `insight_national.py`'s last lines."""
    found: dict = {"pages": []}
    for line in out.splitlines():
        if match := re.match(r"insight_(?:national: data set|data:) .* in ([0-9.]+) s", line):
            found["data_seconds"] = float(match.group(1))
        elif match := re.match(
            r"insight_national: ledger rebuild_all (\d+) in ([0-9.]+) s, (\d+) stale", line
        ):
            found["ledger"] = (int(match.group(1)), float(match.group(2)), int(match.group(3)))
        elif match := re.match(
            r"insight_national: page (.+) \| (\S+) p95 ([0-9.]+) ms, p50 ([0-9.]+) ms, "
            r"(\d+) queries",
            line,
        ):
            found["pages"].append(
                (match.group(1), match.group(2), float(match.group(3)), int(match.group(5)))
            )
        elif match := re.match(r"insight_national: page (.+) \| (\S+) not built yet", line):
            found["pages"].append((match.group(1), match.group(2), None, None))
        elif match := re.match(
            r"insight_national: bulk (\d+) releases in ([0-9.]+) s, (\d+)/s, peak RSS (\d+) MB, "
            r"RSS (\d+) MB at a tenth, (\d+) MB at most, (\d+) MB at the end",
            line,
        ):
            found["bulk"] = {
                "releases": int(match.group(1)),
                "seconds": float(match.group(2)),
                "rate": int(match.group(3)),
                "peak_mb": int(match.group(4)),
                "tenth_mb": int(match.group(5)),
                "max_mb": int(match.group(6)),
                "end_mb": int(match.group(7)),
                "partial": "stopped at --bulk-limit" in line,
            }
        elif "insight_national: bulk" in line and "not built yet" in line:
            found["bulk"] = None
    return found


def insight_verdicts(offline: dict) -> list[str]:
    """Issue 22's targets on the national data set."""
    insight = offline.get("insight")
    if not insight:
        return ["Insight on the national data set: not measured."]
    lines = []
    if "data_seconds" in insight:
        lines.append(f"Building the national data set: {insight['data_seconds']:.0f} s.")
    if "ledger" in insight:
        derived, seconds, stale = insight["ledger"]
        rate = f" ({derived / seconds:,.0f} call-offs a second)" if seconds and derived else ""
        lines.append(
            f"Deriving the spend ledger (`rebuild_all()`) for {derived:,} call-offs: "
            f"{seconds:.0f} s{rate}, {stale} call-offs left stale."
        )
    for label, url, p95, queries in insight["pages"]:
        if p95 is None:
            lines.append(f"{label[0].upper()}{label[1:]} (`{url}`): not built yet (404).")
            continue
        ok = p95 < INSIGHT_PAGE_TARGET_MS
        lines.append(
            f"{label[0].upper()}{label[1:]} (`{url}`), PostgreSQL, server-side: p95 {p95:.1f} ms "
            f"(target < {INSIGHT_PAGE_TARGET_MS} ms), {queries} queries: "
            f"{'target met' if ok else 'TARGET MISSED'}."
        )
    bulk = insight.get("bulk", "missing")
    if bulk is None:
        lines.append("OCDS bulk export: not built yet (404).")
    elif bulk == "missing":
        lines.append("OCDS bulk export: not measured.")
    else:
        ok = bulk["rate"] >= OCDS_BULK_TARGET_RATE and bulk["peak_mb"] < OCDS_BULK_TARGET_PEAK_MB
        what = (
            f"the first {bulk['releases']:,} releases of the file (the stream stopped there)"
            if bulk["partial"]
            else f"{bulk['releases']:,} releases, the whole file,"
        )
        lines.append(
            f"OCDS bulk export (`/api/v1/ocds/bulk/releases.jsonl.gz`) through gunicorn: "
            f"{what} in {bulk['seconds']:.0f} s = {bulk['rate']:,} a "
            f"second (target ≥ {OCDS_BULK_TARGET_RATE:,}); the worker's resident memory "
            f"{bulk['tenth_mb']} MB a tenth of the way in, {bulk['max_mb']} MB at most while "
            f"streaming, {bulk['end_mb']} MB at the end, peak (VmHWM) {bulk['peak_mb']} MB "
            f"(target < {OCDS_BULK_TARGET_PEAK_MB} MB): "
            f"{'target met' if ok else 'TARGET MISSED'}."
        )
    return lines


def competition_verdicts(offline: dict) -> list[str]:
    """Issue 21's target: a competition with 500 invited and 200 bids, on PostgreSQL."""
    pages = offline.get("competition_pages")
    if not pages:
        return ["Further competition pages: not measured."]
    return [
        f"{name.capitalize()}, 500 invited and 200 bids, PostgreSQL, server-side: p95 "
        f"{p95:.1f} ms (target < {COMPETITION_PAGE_TARGET_MS} ms): "
        f"{'target met' if p95 < COMPETITION_PAGE_TARGET_MS else 'TARGET MISSED'}."
        for name, p95 in pages.items()
    ]


def invoices_verdict(offline: dict) -> str:
    """Issue 6's target: the monthly invoice run for 100,000 call-offs on PostgreSQL."""
    if "invoices" not in offline:
        return "Invoice run: not measured."
    call_offs, seconds, problems = offline["invoices"]
    ok = seconds < INVOICE_RUN_TARGET_SECONDS and problems == 0
    return (
        f"`flask invoices run` for {call_offs:,} call-offs with delivery in the month (2 lines "
        f"each) on PostgreSQL: {seconds:.1f} s (target < {INVOICE_RUN_TARGET_SECONDS} s), "
        f"{problems} problems found afterwards (one draft per call-off, a line per delivery, "
        f"totals the sum of their lines, nothing new on a second run): "
        f"{'target met' if ok else 'TARGET MISSED'}."
    )


def orders_verdict(offline: dict) -> str:
    """Issue 5's target: call-offs placed through the API on PostgreSQL, 32 clients."""
    if "orders" not in offline:
        return "Placing call-offs: not measured."
    rps, errors, refused, breaches = offline["orders"]
    ok = rps >= ORDERS_TARGET_RPS and errors == 0 and breaches == 0
    return (
        f"Placing call-offs through the API on PostgreSQL, 32 clients: {rps} requests/s "
        f"(target ≥ {ORDERS_TARGET_RPS}), {errors} errors, {refused} refused by a rule, "
        f"{breaches} overbooking, overspending or count breaches found afterwards: "
        f"{'target met' if ok else 'TARGET MISSED'}."
    )


def verdict(results: list[Result]) -> str:
    dashboard = next(r for r in results if r.target.name == DASHBOARD)
    ratio = dashboard.ratio
    ok = ratio >= TARGET_RATIO and dashboard.p95_ms < TARGET_P95_MS
    return (
        f"Signed-in dashboard: {dashboard.rps:,.0f} requests/s = {ratio:.1%} of hello world "
        f"(target ≥ {TARGET_RATIO:.0%}), p95 {dashboard.p95_ms:.1f} ms "
        f"(target < {TARGET_P95_MS:.0f} ms): {'target met' if ok else 'TARGET MISSED'}."
    )


INSIGHT_HEADING = "## Insight and open data"


def insight_section(offline: dict, note: str = "") -> list[str]:
    """The RESULTS.md section of issue 22's figures (heading to the blank line after it)."""
    return [
        INSIGHT_HEADING,
        "",
        "`benchmarks/insight_national.py`: a throwaway PostgreSQL cluster with the demo data and "
        "a national five-year data set (`benchmarks/insight_data.py`, set-based SQL: "
        f"{INSIGHT_DATA['call_offs']:,} call-offs placed over the financial years 2021-22 to "
        f"2025-26 in all 12 regions, one in ten co-funded by a PCC, {INSIGHT_DATA['lines']:,} "
        f"invoice lines on monthly invoices, nearly all paid, {INSIGHT_DATA['providers']:,} "
        "providers, three in four VCSE, with dated classification histories), the spend ledger "
        "derived from it by `rebuild_all()`; each page requested 200 times through the app in "
        "one process (the test client: routing, queries, templates; no network) after 20 to warm "
        "up, as the authority (national figures) and as a region's commissioner (its own); the "
        "queries of one request counted. The bulk file is streamed to the end through gunicorn "
        "(one sync worker) and gunzipped as it arrives, the releases counted, the worker's "
        "resident memory read from `/proc/<pid>/status` every 0.2 s and its peak (VmHWM) at the "
        "end." + (f" {note}" if note else ""),
        "",
        *(f"{line}  " for line in insight_verdicts(offline)),
        "",
    ]


def update_insight_section(offline: dict, note: str) -> None:
    """Rewrite only the insight section of RESULTS.md (before ``## Machine`` if it is new)."""
    text = RESULTS.read_text()
    section = "\n".join(insight_section(offline, note)) + "\n"
    if INSIGHT_HEADING in text:
        start = text.index(INSIGHT_HEADING)
        end = text.find("\n## ", start + len(INSIGHT_HEADING))
        text = text[:start] + section + (text[end + 1 :] if end >= 0 else "")
    else:
        at = text.index("## Machine")
        text = text[:at] + section + text[at:]
    RESULTS.write_text(text)


def write_results(
    results: list[Result], hellos: list[float], args, when: dt.datetime, offline: dict
) -> None:
    lines = [
        "# Benchmark results",
        "",
        (
            f"Written by `make bench` on {when:%Y-%m-%d %H:%M %Z}. Each target: "
            f"`wrk -t2 -c{args.connections} -d{args.duration}s --latency` after a {args.warmup} s "
            f"warm-up, against gunicorn with {WORKERS} sync workers on 127.0.0.1, on a fresh "
            "SQLite database with the demo data (`flask demo load`) and a large data set on the "
            f"demo arrangement (`benchmarks/large_data.py`: {LARGE_DATA['applications']:,} "
            f"applications, {LARGE_DATA['memberships']:,} lot memberships). The hello world is a "
            "bare Flask app served the same way, measured before the first target and after "
            "each."
        ),
        "",
        *table(results),
        "",
        drift(hellos),
        "",
        verdict(results),
        "",
        *(f"{line}  " for line in large_data_verdicts(results)),
        "",
        "## Catalogue",
        "",
        (
            f"The search target runs against the same server after `flask demo load --services "
            f"{CATALOGUE['services']} --providers {CATALOGUE['providers']}`. Search latency is the "
            "search module's own time in one process (`benchmarks/search_latency.py`, 300 searches "
            "with a text query, a lot and a region, after a warm-up), on a fresh SQLite database "
            "and on a throwaway PostgreSQL cluster. The import is `benchmarks/import_rate_card.py`: "
            "read, check and write a new rate card, then commit."
        ),
        "",
        *(f"{line}  " for line in catalogue_verdicts(results, offline)),
        "",
        "## Call-offs",
        "",
        "`benchmarks/place_call_offs.py`: a throwaway PostgreSQL cluster with the demo data, "
        "gunicorn with 4 sync workers forked from one preloaded app, and wrk driving "
        "`POST /api/v1/orders` with 32 connections for 10 s (after 5 s at the same load to warm "
        "up, so the steady state is measured), each request from one of the demo buyers' tokens "
        "for one of 40 services; then, with the server stopped, the database is checked.",
        "",
        f"{orders_verdict(offline)}  ",
        "",
        "## Invoices",
        "",
        "`benchmarks/invoice_run.py`: a throwaway PostgreSQL cluster with the demo data, one "
        "demo call-off copied into 100,000 with two deliveries each in one month (in SQL), then "
        "`flask invoices run --period` timed as its own process, progress bar and all.",
        "",
        f"{invoices_verdict(offline)}  ",
        "",
        "## Further competitions",
        "",
        "`benchmarks/competition_pages.py`: a throwaway PostgreSQL cluster with the demo data and "
        "a competition on the demo arrangement with 500 member providers invited and 200 bids, "
        "closed, scored by two evaluators and moderated (`benchmarks/benchmark_competition.py`); "
        "each page requested 200 times through the app in one process (routing, queries, "
        "templates; no network) after a warm-up, as the evaluator or the buyer. The number of "
        "queries each page makes does not grow with the bids (asserted in "
        "`tests/competitions/test_evaluation_pages.py`).",
        "",
        *(f"{line}  " for line in competition_verdicts(offline)),
        "",
        *insight_section(offline),
        "## Machine",
        "",
        *machine_info(),
        "",
        (
            "wrk runs on the same cores as the servers, so the absolute numbers are lower than "
            "with a separate load generator; the ratio to hello world is the figure to compare "
            "between runs."
        ),
        "",
    ]
    RESULTS.write_text("\n".join(lines))


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per target (default 10)")
    parser.add_argument("--connections", type=int, default=20, help="wrk connections (default 20)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="warm-up seconds per target (default 2)"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="do not write benchmarks/RESULTS.md"
    )
    parser.add_argument(
        "--insight-output",
        type=Path,
        metavar="FILE",
        help="only rewrite RESULTS.md's insight section, from a saved output of "
        "benchmarks/insight_national.py (and insight_data.py) instead of running the benches",
    )
    parser.add_argument(
        "--insight-note", default="", help="with --insight-output: how the figures were taken"
    )
    args = parser.parse_args()
    if args.insight_output:
        offline = {"insight": parse_insight(args.insight_output.read_text())}
        print("\n".join(insight_verdicts(offline)))
        commit = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        when = dt.datetime.now(dt.UTC)
        update_insight_section(
            offline,
            f"This section was measured on its own at commit {commit} and written on "
            f"{when:%Y-%m-%d %H:%M %Z} (`benchmarks/run.py --insight-output`); the rest of this "
            "file is from the last full `make bench`."
            + (f" {args.insight_note}" if args.insight_note else ""),
        )
        print(f"\nWrote the insight section of {RESULTS.relative_to(ROOT)}")
        return 0
    if not shutil.which("wrk"):
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2

    # A SIGTERM (from make or a CI timeout) unwinds like Ctrl+C, so the servers are stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    when = dt.datetime.now(dt.UTC)
    tmp = Path(tempfile.mkdtemp(prefix="marketplace-bench-"))
    app_port, hello_port = free_port(), free_port()
    env = app_env(
        tmp,
        PYTHONDONTWRITEBYTECODE="1",
        MARKETPLACE_ENV="production",
        MARKETPLACE_DATABASE_URL=f"sqlite:///{tmp / 'bench.db'}",
        MARKETPLACE_BASE_URL=f"http://{HOST}:{app_port}",
    )
    servers = [
        Server("marketplace", "wsgi:app", app_port, env, tmp / "app.log", ROOT),
        Server("hello world", "hello:app", hello_port, env, tmp / "hello.log", ROOT / "benchmarks"),
    ]
    ports = {"app": app_port, "hello": hello_port}
    script = tmp / "report.lua"
    script.write_text(WRK_SCRIPT)
    try:
        print(f"Preparing a fresh SQLite database in {tmp} …", flush=True)
        # `flask demo load` refuses production mode (well-known passwords); the servers run in it.
        setup_env = env | {"MARKETPLACE_ENV": "development"}
        run([sys.executable, "-m", "flask", "db", "upgrade"], setup_env, timeout=300)
        run([sys.executable, "-m", "flask", "demo", "load"], setup_env, timeout=600)
        loaded = run(
            [
                sys.executable,
                str(ROOT / "benchmarks" / "large_data.py"),
                str(LARGE_DATA["applications"]),
                str(LARGE_DATA["memberships"]),
            ],
            setup_env,
            timeout=600,
        )
        print(f"Large data set: {loaded.stdout.strip()}", flush=True)
        scaled = run(
            [
                sys.executable,
                "-m",
                "flask",
                "demo",
                "load",
                "--services",
                str(CATALOGUE["services"]),
                "--providers",
                str(CATALOGUE["providers"]),
            ],
            setup_env,
            timeout=900,
        )
        # The demo is already loaded by then, so the line that counts is the one about the
        # large catalogue, not the first.
        added = [
            ln for ln in scaled.stdout.splitlines() if ln.startswith("Added a large catalogue")
        ]
        if not added:
            raise BenchError(f"the large catalogue was not built:\n{scaled.stdout[-2000:]}")
        print(f"Catalogue: {added[0]}", flush=True)
        arrangement_id = demo_arrangement_id(tmp / "bench.db")
        people = {role: demo_user(setup_env, role) for role in ("buyer", "assessor")}
        servers[0].start("/healthz")
        servers[1].start("/")
        cookies = {role: sign_in(app_port, *person) for role, person in people.items()}
        print(
            f"Signed in as {', '.join(person[0] for person in people.values())}. Measuring "
            f"{len(TARGETS)} targets and hello world around each, "
            f"{args.warmup + args.duration} s each …",
            flush=True,
        )
        results: list[Result] = []

        def hello_world() -> float:
            hello = measure(HELLO, ports["hello"], script, args, None)
            print(f"  {HELLO.name}: {hello.rps:,.0f} requests/s", flush=True)
            return hello.rps

        hellos = [hello_world()]
        for target in TARGETS:
            target.path = target.path.format(arrangement_id=arrangement_id)
            result = measure(
                target,
                ports[target.server],
                script,
                args,
                cookies[target.signed_in] if target.signed_in else None,
            )
            print(
                f"  {target.name}: {result.rps:,.0f} requests/s, p95 {result.p95_ms:.1f} ms",
                flush=True,
            )
            hellos.append(hello_world())
            result.hello_around = (hellos[-2], hellos[-1])
            results.append(result)
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"\nbench failed: {error}", file=sys.stderr)
        for server in servers:
            if server.log.exists() and server.log.stat().st_size:
                print(
                    f"--- {server.name} log (end) ---\n{server.log.read_text()[-2000:]}",
                    file=sys.stderr,
                )
        return 1
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("Search latency on both databases and the rate card import …", flush=True)
    try:
        offline = offline_measures(env | {"MARKETPLACE_ENV": "development"})
    except (BenchError, subprocess.TimeoutExpired) as error:
        print(f"\nbench failed: {error}", file=sys.stderr)
        return 1
    print()
    print("\n".join(table(results)))
    print()
    print(drift(hellos))
    print(verdict(results))
    print("\n".join(large_data_verdicts(results)))
    print("\n".join(catalogue_verdicts(results, offline)))
    print(orders_verdict(offline))
    print("\n".join(insight_verdicts(offline)))
    if not args.no_write:
        write_results(results, hellos, args, when, offline)
        print(f"\nWrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
