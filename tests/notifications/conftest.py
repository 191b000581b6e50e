"""Fixtures for the outbox tests: a real SMTP server, configuration that is put back, and
email templates that belong to the tests rather than to a feature."""

from __future__ import annotations

import jinja2
import pytest

from tests.smtp_sink import SmtpSink

TEST_TEMPLATES = {
    "email/_test_message.txt": (
        "Subject: Your call-off {{ reference }} is ready\n"
        "\n"
        "Dear {{ name }},\n"
        "\n"
        "Call-off {{ reference }} is ready for you to review.\n"
        "\n"
        "Open it here: {{ link }}\n"
    ),
    "email/_test_signed.txt": (
        "Subject: Hello {{ name }}\n\n{{ name }}, from {{ config.SERVICE_NAME }}: "
        "{{ url_for('pages.privacy', _external=True) }}\n"
    ),
    "email/_test_no_subject.txt": "Dear {{ name }},\n\nThis template forgot its subject line.\n",
    "email/_test_padded_subject.txt": (
        "\n\n   Subject:    Spaces around the subject   \n\n\n  Body after blank lines.  \n\n"
    ),
}


@pytest.fixture
def app_config(app):
    """Change ``app.config`` for one test; every key is put back afterwards."""
    saved = dict(app.config)

    def override(**values):
        app.config.update(values)

    yield override
    app.config.clear()
    app.config.update(saved)


@pytest.fixture
def email_templates(app):
    """Make the test email templates available to ``queue_email`` for one test."""
    original = app.jinja_env.loader
    app.jinja_env.loader = jinja2.ChoiceLoader([jinja2.DictLoader(TEST_TEMPLATES), original])
    yield TEST_TEMPLATES
    app.jinja_env.loader = original


@pytest.fixture(scope="module")
def _smtp_server():
    with SmtpSink() as sink:
        yield sink


@pytest.fixture
def smtp_sink(_smtp_server):
    """A real SMTP server on 127.0.0.1, empty at the start of the test."""
    _smtp_server.clear()
    yield _smtp_server
    _smtp_server.clear()


@pytest.fixture
def smtp_app(app, app_config, smtp_sink, email_templates):
    """The app sending through the SMTP sink; delivery only by `flask notifications send`."""
    app_config(
        EMAIL_BACKEND="smtp",
        SMTP_HOST=smtp_sink.host,
        SMTP_PORT=smtp_sink.port,
        SMTP_USERNAME=None,
        SMTP_PASSWORD=None,
        SMTP_STARTTLS=False,
        SMTP_TIMEOUT=5,
        SEND_EMAIL_AFTER_COMMIT=False,
        NOTIFICATION_MAX_ATTEMPTS=8,
    )
    return app
