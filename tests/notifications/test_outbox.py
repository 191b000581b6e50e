"""The outbox: queue_email renders a template whose first line is its subject, the console sender
prints, and the sender is chosen by configuration."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import jinja2
import pytest
import sqlalchemy as sa
from flask import g, url_for

import marketplace
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification, NotificationStatus
from marketplace.core.notifications.senders import ConsoleSender, SmtpSender, get_sender
from marketplace.core.notifications.services import (
    backoff_for,
    email_environment,
    queue_email,
    send_pending,
)

pytestmark = pytest.mark.usefixtures("email_templates")


def test_queue_email_splits_the_subject_line_from_the_body(app):
    before = utcnow()
    notification = queue_email(
        "jo@example.org",
        "_test_message",
        name="Jo",
        reference="CO-1",
        link="http://marketplace.test/x",
    )

    # Added to the caller's unit of work, written with its next flush.
    assert notification in db.session.new
    db.session.flush()
    assert notification.id is not None
    assert notification.to_email == "jo@example.org"
    assert notification.subject == "Your call-off CO-1 is ready"
    assert notification.body == (
        "Dear Jo,\n\nCall-off CO-1 is ready for you to review.\n\nOpen it here: http://marketplace.test/x\n"
    )
    assert notification.template == "_test_message"
    assert notification.status == NotificationStatus.PENDING
    assert notification.attempts == 0
    assert notification.sent_at is None
    assert before <= notification.next_attempt_at <= utcnow()


def test_queue_email_trims_the_subject_and_the_body(app):
    notification = queue_email("jo@example.org", "_test_padded_subject")

    assert notification.subject == "Spaces around the subject"
    assert notification.body == "Body after blank lines.\n"


def test_a_template_without_a_subject_line_is_refused(app):
    with pytest.raises(ValueError, match="must start with a 'Subject: ' line"):
        queue_email("jo@example.org", "_test_no_subject", name="Jo")

    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0


def test_plain_text_email_is_not_html_escaped(app):
    notification = queue_email(
        "jo@example.org",
        "_test_message",
        name="O'Brien & <Sons>",
        reference="CO-2",
        link="http://marketplace.test/?a=1&b=2",
    )

    assert "Dear O'Brien & <Sons>," in notification.body
    assert "http://marketplace.test/?a=1&b=2" in notification.body


def test_an_email_queued_on_a_signed_in_page_has_the_app_globals_but_no_page_context(
    app, monkeypatch
):
    from flask_login import login_user

    from marketplace import navigation
    from marketplace.accounts.models import OrganisationType, Role
    from tests.factories import make_member, make_organisation

    person = make_member(Role.BUYER, make_organisation(OrganisationType.PCC), name="Jo")

    def no_navigation(*args, **kwargs):
        raise AssertionError("an email worked out the page's navigation")

    monkeypatch.setattr(navigation, "navigation_items", no_navigation)
    with app.test_request_context("/call-offs"):
        login_user(person)
        notification = queue_email(person.email, "_test_signed", name="Jo")
        privacy = url_for("pages.privacy", _external=True)
    assert notification.subject == "Hello Jo"
    assert notification.body == f"Jo, from {app.config['SERVICE_NAME']}: {privacy}\n"


def test_the_email_is_written_in_the_callers_transaction(app):
    queue_email("jo@example.org", "_test_message", name="Jo", reference="CO-3", link="x")
    db.session.rollback()

    assert db.session.scalar(sa.select(sa.func.count(Notification.id))) == 0


def test_no_after_commit_delivery_unless_configured(app, app_config):
    app_config(SEND_EMAIL_AFTER_COMMIT=False)
    queue_email("jo@example.org", "_test_message", name="Jo", reference="CO-4", link="x")
    assert g.get("_after_commit_hooks", []) == []

    app_config(SEND_EMAIL_AFTER_COMMIT=True, EMAIL_BACKEND="console")
    queue_email("jo@example.org", "_test_message", name="Jo", reference="CO-5", link="x")
    assert len(g.get("_after_commit_hooks", [])) == 1
    db.session.rollback()
    g.pop("_after_commit_hooks", None)


def test_console_sender_prints_the_email(capsys):
    ConsoleSender().send("jo@example.org", "Hello", "First line\nSecond line\n")

    printed = capsys.readouterr().out
    assert "--- email to jo@example.org ---" in printed
    assert "Subject: Hello" in printed
    assert "First line\nSecond line" in printed
    assert "--- end of email ---" in printed


def test_send_pending_with_the_console_backend_prints_and_marks_sent(app, app_config, capsys):
    app_config(EMAIL_BACKEND="console", SEND_EMAIL_AFTER_COMMIT=False)
    notification = queue_email(
        "jo@example.org",
        "_test_message",
        name="Jo",
        reference="CO-6",
        link="http://marketplace.test/co-6",
    )
    commit()
    notification_id = notification.id

    assert send_pending() == (1, 0)

    printed = capsys.readouterr().out
    assert "--- email to jo@example.org ---" in printed
    assert "Subject: Your call-off CO-6 is ready" in printed
    assert "Open it here: http://marketplace.test/co-6" in printed
    db.session.expire_all()
    notification = db.session.get(Notification, notification_id)
    assert notification.status == NotificationStatus.SENT
    assert notification.sent_at is not None
    assert send_pending() == (0, 0)


def test_the_sender_is_chosen_by_configuration(app, app_config):
    app_config(EMAIL_BACKEND="console")
    assert isinstance(get_sender(), ConsoleSender)

    app_config(EMAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=2525)
    sender = get_sender()
    assert isinstance(sender, SmtpSender)
    assert (sender.host, sender.port, sender.sender) == ("127.0.0.1", 2525, app.config["MAIL_FROM"])

    app_config(EMAIL_BACKEND="notify", NOTIFY_API_KEY=None, NOTIFY_TEMPLATE_ID=None)
    with pytest.raises(RuntimeError, match="NOTIFY_API_KEY"):
        get_sender()

    app_config(EMAIL_BACKEND="carrier-pigeon")
    with pytest.raises(RuntimeError, match="unknown MARKETPLACE_EMAIL_BACKEND"):
        get_sender()


def test_backoff_doubles_up_to_six_hours():
    assert [backoff_for(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert backoff_for(9) == timedelta(minutes=256)
    assert backoff_for(10) == timedelta(hours=6)
    assert backoff_for(50) == timedelta(hours=6)


# Every email the application queues must have a template that starts with its subject line.
_QUEUE_CALL = re.compile(r"queue_email\(\s*[^,()]+(?:\([^()]*\))?\s*,\s*[\"']([a-z0-9_]+)[\"']")


def _templates_queued_by_the_code() -> set[str]:
    package = Path(marketplace.__file__).parent
    names = set()
    for source in package.rglob("*.py"):
        names.update(_QUEUE_CALL.findall(source.read_text(encoding="utf-8")))
    return names


def test_every_email_the_code_sends_has_a_template_with_a_subject_line(app):
    names = _templates_queued_by_the_code()
    assert "confirm_email" in names  # the scan finds the calls

    problems = []
    with app.test_request_context():
        # The environment emails are rendered in (its globals include absolute_url).
        lenient = email_environment().overlay(undefined=jinja2.ChainableUndefined)
        # Links need real objects to build on; this test gives none, so any link will do.
        lenient.globals = {**lenient.globals, "absolute_url": lambda *args, **values: "link"}
        for name in sorted(names):
            try:
                rendered = lenient.get_template(f"email/{name}.txt").render().strip()
            except jinja2.TemplateNotFound:
                problems.append(f"email/{name}.txt is missing")
                continue
            first_line = rendered.partition("\n")[0]
            if (
                not first_line.startswith("Subject: ")
                or not first_line.removeprefix("Subject: ").strip()
            ):
                problems.append(f"email/{name}.txt starts with {first_line!r}, not 'Subject: …'")
    assert problems == []
