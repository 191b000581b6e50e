"""Card-payment fixtures: a localstripe server started by the test run, Stripe keys pointing at it,
and a validated invoice to pay.

localstripe runs in a subprocess (``python -m tests.stripe_server``) on 127.0.0.1 on a free port,
one per test session (so one per pytest-xdist worker), and is emptied before each test with
``DELETE /_config/data``. It is never skipped: if it cannot start, the tests fail.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.invoices.models import Invoice
from marketplace.invoices.services import issuing, monthly_run
from tests.factories import after_month
from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of
from tests.orders.factories import build_orders_world

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "sk_test_marketplace_localstripe"
PUBLISHABLE_KEY = "pk_test_marketplace_localstripe"
WEBHOOK_SECRET = "whsec_marketplace_test_secret"
START_TIMEOUT = 20.0


class LocalStripe:
    """A localstripe server of our own, and the calls the tests make to it directly."""

    def __init__(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.stripe_server", "--port", "0"],
            cwd=PROJECT_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        port: list[int] = []
        reader = threading.Thread(target=lambda: port.append(self._read_port()), daemon=True)
        reader.start()
        reader.join(START_TIMEOUT)
        if not port or port[0] is None:
            self.stop()
            pytest.fail("localstripe did not start (python -m tests.stripe_server)")
        self.url = f"http://127.0.0.1:{port[0]}"
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {SECRET_KEY}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                self.session.get(f"{self.url}/v1/customers", timeout=2).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"localstripe at {self.url} does not answer")
                time.sleep(0.05)

    def _read_port(self) -> int | None:
        line = self.process.stdout.readline()
        return int(line.split()[1]) if line.startswith("PORT ") else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def reset(self) -> None:
        self.session.delete(f"{self.url}/_config/data", timeout=5).raise_for_status()

    def register_webhook(self, name: str, url: str, secret: str = WEBHOOK_SECRET) -> None:
        response = self.session.post(
            f"{self.url}/_config/webhooks/{name}", data={"url": url, "secret": secret}, timeout=5
        )
        response.raise_for_status()

    def list(self, kind: str, **params) -> list[dict]:
        response = self.session.get(f"{self.url}/v1/{kind}", params=params, timeout=5)
        response.raise_for_status()
        return response.json()["data"]

    def events(self, type: str | None = None) -> list[dict]:  # noqa: A002 - Stripe's name
        return self.list("events", **({"type": type} if type else {}))

    @property
    def js_url(self) -> str:
        """Where localstripe serves its test double of Stripe.js."""
        return f"{self.url}/js.stripe.com/v3/"

    # What Stripe.js does in the browser, with the publishable key only (as localstripe's own
    # Stripe.js double sends it), for tests that drive the pages without a browser.

    def _as_stripe_js(self, path: str, body: dict) -> dict:
        response = requests.post(
            f"{self.url}{path}", data=json.dumps({"key": PUBLISHABLE_KEY, **body}), timeout=5
        )
        return response.json()

    def confirm_card_setup(
        self, client_secret: str, number: str = "4242424242424242", *, authenticate: bool = True
    ) -> dict:
        """confirmCardSetup with a card typed into the card element; a card that asks for 3-D
        Secure is then confirmed (``authenticate``) or cancelled, as the buyer chooses."""
        intent_id = client_secret.split("_secret_")[0]
        card = {"number": number, "exp_month": "12", "exp_year": "2031", "cvc": "123"}
        answer = self._as_stripe_js(
            f"/v1/setup_intents/{intent_id}/confirm",
            {
                "use_stripe_sdk": True,
                "client_secret": client_secret,
                "payment_method_data": {"type": "card", "card": card},
            },
        )
        if answer.get("status") == "requires_action":
            action = "confirm" if authenticate else "cancel"
            answer = self._as_stripe_js(
                f"/v1/setup_intents/{intent_id}/{action}",
                {"use_stripe_sdk": True, "client_secret": client_secret},
            )
        return answer

    def confirm_card_payment(self, client_secret: str, *, success: bool = True) -> dict:
        """confirmCardPayment of an intent waiting for 3-D Secure: the buyer passes or fails."""
        intent_id = client_secret.split("_secret_")[0]
        flag = "true" if success else "false"
        return self._as_stripe_js(
            f"/v1/payment_intents/{intent_id}/_authenticate?success={flag}",
            {"client_secret": client_secret},
        )

    def payment_method(self, number: str) -> str:
        """A card payment method made directly (real Stripe refuses raw numbers from a server;
        the test double does not), for cards no canonical pm_card_* id stands for."""
        response = self.session.post(
            f"{self.url}/v1/payment_methods",
            data={
                "type": "card",
                "card[number]": number,
                "card[exp_month]": "12",
                "card[exp_year]": "2031",
                "card[cvc]": "123",
            },
            timeout=5,
        )
        response.raise_for_status()
        return response.json()["id"]


def signed(payload: bytes, secret: str = WEBHOOK_SECRET, at: int | None = None) -> str:
    """A Stripe-Signature header for ``payload``, as Stripe (and localstripe) make it."""
    at = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{at}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={at},v1={mac}"


def post_event(client, event: dict, secret: str = WEBHOOK_SECRET):
    """Deliver an event to the app's webhook as Stripe would: its JSON, signed."""
    payload = json.dumps(event, indent=2, sort_keys=True).encode()
    return client.post(
        "/webhooks/stripe",
        data=payload,
        headers={"Stripe-Signature": signed(payload, secret), "Content-Type": "application/json"},
    )


STRIPE_SETTINGS = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "STRIPE_JS_URL",
)


def stripe_settings(server: LocalStripe) -> dict[str, str]:
    """The app's Stripe settings pointing at ``server``: the SDK, and Stripe.js in the pages."""
    return {
        "STRIPE_SECRET_KEY": SECRET_KEY,
        "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": server.url,
        "STRIPE_JS_URL": server.js_url,
    }


@pytest.fixture(scope="session")
def localstripe():
    server = LocalStripe()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def stripe_on(app, localstripe):
    """Card payments configured, against an empty localstripe."""
    localstripe.reset()
    saved = {k: app.config.get(k) for k in STRIPE_SETTINGS}
    app.config.update(stripe_settings(localstripe))
    yield localstripe
    app.config.update(saved)


@dataclass
class CardWorld:
    world: object
    invoice: Invoice

    def __getattr__(self, name):
        return getattr(self.world, name)


@pytest.fixture
def card_world(app):
    """A validated invoice of £740.70 from Harbour Housing to North East Probation."""
    world = build_orders_world(price_pence=12_345, vat_treatment="standard")
    call_off = accepted_call_off(world)
    deliver(world, call_off, call_off.start_date, 5)
    monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
    invoice = db.session.scalars(sa.select(Invoice)).one()
    issuing.issue(world.provider_admin, invoice)
    issuing.validate(world.buyer, invoice)
    db.session.flush()
    return CardWorld(world, invoice)
