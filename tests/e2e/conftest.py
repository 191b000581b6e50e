"""Browser tests: headless Chromium (Playwright) against a live server on 127.0.0.1.

The live server is an app of its own with its own SQLite file (built by the migrations), real
forms (CSRF on), rate limits on, and email sent over SMTP to a local aiosmtpd sink straight after
each commit, so a test reads the emails a person would get. It does not use the shared ``app``
fixture or its database.

Every page a test visits is checked with axe-core: use ``ui.goto()`` to open a page and
``ui.click_and_wait()`` / ``ui.audit()`` after anything that loads a new one. Serious and critical
violations fail the test (all of them are listed at the end); a page loaded without a check
fails it too. Set ``E2E_AXE_REPORT=/path/file.jsonl`` to also write every violation, of any impact.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path

import pytest
from flask_migrate import upgrade
from werkzeug.serving import make_server

from marketplace import create_app
from marketplace.core.db import db
from tests.e2e.browser import JourneyUi, LiveServer, Ui
from tests.smtp_sink import HOST, SmtpSink, free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
AXE_PATH = PROJECT_ROOT / "node_modules" / "axe-core" / "axe.min.js"
CHROMIUM = os.environ.get("MARKETPLACE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 15_000


@pytest.fixture(autouse=True)
def _isolated():
    """Browser tests do not use the shared app or its database (this replaces tests/conftest.py's)."""
    yield


# --- the live server ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def smtp_sink():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def live_server(smtp_sink):
    werkzeug_logger = logging.getLogger("werkzeug")
    saved_level = werkzeug_logger.level
    werkzeug_logger.setLevel(logging.WARNING)  # no line per request
    with tempfile.TemporaryDirectory(prefix="marketplace-e2e-") as tmp:
        tmp_dir = Path(tmp)
        port = free_port()
        app = create_app(
            {
                "ENV_NAME": "testing",
                "TESTING": False,  # behave like the real thing (errors become pages, not exceptions)
                "SECRET_KEY": "e2e-secret-key-" + "x" * 32,
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_dir / 'e2e.db'}",
                "INSTANCE_DIR": str(tmp_dir / "instance"),
                "BASE_URL": f"http://{HOST}:{port}",
                "EMAIL_BACKEND": "smtp",
                "SMTP_HOST": smtp_sink.host,
                "SMTP_PORT": smtp_sink.port,
                "SMTP_USERNAME": None,
                "SMTP_PASSWORD": None,
                "SMTP_STARTTLS": False,
                "SMTP_TIMEOUT": 5,
                "SEND_EMAIL_AFTER_COMMIT": True,
                "WTF_CSRF_ENABLED": True,
                "RATELIMIT_ENABLED": True,
                "RATELIMIT_STORAGE_URI": "memory://",
                "LOG_LEVEL": "WARNING",
            }
        )
        with app.app_context():
            upgrade()
            db.session.remove()
        server = make_server(HOST, port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
        thread.start()
        try:
            yield LiveServer(app=app, url=app.config["BASE_URL"], smtp=smtp_sink)
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()
            with app.app_context():
                db.engine.dispose()
            werkzeug_logger.setLevel(saved_level)


@pytest.fixture
def card_payments(live_server):
    """localstripe of our own, the live server's Stripe settings pointing at it (the SDK, and
    localstripe's test double of Stripe.js in the card pages), and its webhook registered to the
    live server."""
    from tests.payments.conftest import STRIPE_SETTINGS, LocalStripe, stripe_settings

    server = LocalStripe()
    config = live_server.app.config
    saved = {key: config.get(key) for key in STRIPE_SETTINGS}
    config.update(stripe_settings(server))
    server.register_webhook("marketplace", f"{live_server.url}/webhooks/stripe")
    try:
        yield server
    finally:
        config.update(saved)
        server.stop()


# --- the browser -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install the Debian package 'chromium' "
            "(never `playwright install`)"
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()
    finally:
        playwright.stop()


@pytest.fixture(scope="session")
def axe_source() -> str:
    if not AXE_PATH.exists():
        pytest.fail(f"{AXE_PATH} is missing: run `npm ci` (axe-core is in package.json)")
    return AXE_PATH.read_text(encoding="utf-8")


@pytest.fixture
def ui(browser, live_server, axe_source):
    yield from _tab(Ui, browser, live_server, axe_source)


@pytest.fixture
def journey(browser, live_server, axe_source):
    """A tab for the journeys of JOURNEYS.md: it opens only the home page and links from emails."""
    yield from _tab(JourneyUi, browser, live_server, axe_source)


@pytest.fixture
def other_journey(browser, live_server, axe_source):
    """A second person's tab, in a browser context of its own (its own cookies and session), for
    journeys where two people take turns: each stays signed in, as on their own computers."""
    yield from _tab(JourneyUi, browser, live_server, axe_source)


def _tab(tab_class, browser, live_server, axe_source):
    # The app's Content-Security-Policy (script-src 'self') would block the injected axe-core.
    context = browser.new_context(bypass_csp=True, base_url=live_server.url)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    console_errors: list[str] = []
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    broken_assets: list[str] = []  # a stylesheet, script or image that failed to load

    def _response(response) -> None:
        # 402 is Stripe's answer (Stripe.js's call from the page) to a declined card, never an
        # asset that failed: the page shows the decline.
        if response.request.resource_type != "document" and response.status >= 400:
            if response.status == 402 and response.request.resource_type == "fetch":
                return
            broken_assets.append(f"{response.status} {response.url}")

    page.on("response", _response)
    tab = tab_class(page, live_server, axe_source)
    try:
        yield tab
    finally:
        tab.check_every_page_was_audited()
        context.close()
        _write_axe_report(tab)
    problems = []
    if tab.violations:
        problems.append(
            f"axe-core found {len(tab.violations)} serious or critical violation(s):\n\n"
            + "\n\n".join(v.describe() for v in tab.violations)
        )
    if tab.unaudited:
        problems.append(
            "pages loaded without an accessibility check (use ui.goto / "
            f"ui.click_and_wait / ui.audit): {tab.unaudited}"
        )
    if console_errors:
        problems.append(f"JavaScript errors on the pages: {console_errors}")
    if broken_assets:
        problems.append(f"assets that failed to load: {sorted(set(broken_assets))}")
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _write_axe_report(tab: Ui) -> None:
    target = os.environ.get("E2E_AXE_REPORT")
    if not target:
        return
    with open(target, "a", encoding="utf-8") as report:
        report.writelines(
            json.dumps(violation.__dict__) + "\n"
            for violation in tab.violations + tab.minor_violations
        )
