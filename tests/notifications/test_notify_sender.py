"""The GOV.UK Notify sender, against a stand-in Notify API on loopback that checks the signed JWT."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
import sqlalchemy as sa

from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.core.notifications.senders import DeliveryError, NotifySender
from marketplace.core.notifications.services import queue_email, send_pending

SERVICE_ID = str(uuid.uuid4())
SECRET = str(uuid.uuid4())
API_KEY = f"marketplace_test-{SERVICE_ID}-{SECRET}"
TEMPLATE_ID = str(uuid.uuid4())


class FakeNotify:
    """Accepts POST /v2/notifications/email when the bearer JWT is signed with the key's secret."""

    def __init__(self):
        self.received: list[dict] = []
        self.fail_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                try:
                    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
                    authorised = claims["iss"] == SERVICE_ID
                except jwt.PyJWTError:
                    authorised = False
                if not authorised:
                    return self._reply(403, {"errors": [{"error": "AuthError"}]})
                if fake.fail_with:
                    return self._reply(fake.fail_with, {"errors": [{"error": "BadRequestError"}]})
                if self.path != "/v2/notifications/email":
                    return self._reply(404, {})
                fake.received.append(body)
                return self._reply(201, {"id": str(uuid.uuid4())})

            def _reply(self, status, payload):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def notify(app, monkeypatch):
    with FakeNotify() as fake:
        monkeypatch.setitem(app.config, "EMAIL_BACKEND", "notify")
        monkeypatch.setitem(app.config, "NOTIFY_API_KEY", API_KEY)
        monkeypatch.setitem(app.config, "NOTIFY_TEMPLATE_ID", TEMPLATE_ID)
        monkeypatch.setitem(app.config, "NOTIFY_BASE_URL", fake.url)
        yield fake


def test_sends_subject_and_body_as_personalisation(notify):
    NotifySender(API_KEY, TEMPLATE_ID, notify.url).send("a@example.org", "Hello", "Body text")
    assert notify.received == [
        {
            "email_address": "a@example.org",
            "template_id": TEMPLATE_ID,
            "personalisation": {"subject": "Hello", "body": "Body text"},
        }
    ]


def test_outbox_delivers_through_notify(notify):
    queue_email(
        "person@example.org",
        "password_changed",
        user=type("U", (), {"name": "Ali"})(),
        reset_url="http://x.test/reset",
    )
    commit()
    assert send_pending() == (1, 0)
    assert notify.received[0]["personalisation"]["subject"] == "Your password has been changed"
    assert db.session.scalar(sa.select(Notification.status)) == NotificationStatus.SENT


def test_a_refusal_is_retried_later(notify):
    notify.fail_with = 400
    with pytest.raises(DeliveryError):
        NotifySender(API_KEY, TEMPLATE_ID, notify.url).send("a@example.org", "S", "B")
    queue_email(
        "person@example.org",
        "password_changed",
        user=type("U", (), {"name": "Ali"})(),
        reset_url="http://x.test/reset",
    )
    commit()
    assert send_pending() == (0, 1)
    notification = db.session.scalar(sa.select(Notification))
    assert notification.status == NotificationStatus.PENDING and notification.attempts == 1
    assert "Notify" in notification.last_error


def test_wrong_key_is_refused(notify):
    wrong = f"marketplace_test-{SERVICE_ID}-{uuid.uuid4()}"
    with pytest.raises(DeliveryError):
        NotifySender(wrong, TEMPLATE_ID, notify.url).send("a@example.org", "S", "B")
    assert notify.received == []
