"""Bad input never gives a 500 and never writes: a sweep over every form page and API operation.

Text that cannot be saved (a NUL byte, another C0 control character, an unpaired surrogate) is
refused on every path with the field named (``marketplace.core.validation``). These tests send it
the way a client can: in a form as raw bytes and percent-encoded (a browser sends what a page's
script puts in a field), in JSON as escapes, in query strings; and JSON nested deep.

The page sweep loads the demo world, signs in as each demo person in each of their
organisations, follows the links from their home page to find every form (GET), and posts each
form with the bad text in every text field and a valid choice in every other. Each answer must
be a 4xx (a form answered with its error summary is a 422) and the database must be unchanged.
It runs on PostgreSQL too (`make test`), where a NUL byte reaching the database is an error.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import quote_from_bytes, urljoin, urlsplit

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Membership, Organisation, OrganisationType, Role, User
from marketplace.accounts.security import hash_password
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from marketplace.demo import organisations as demo_organisations
from marketplace.demo import people as demo_people
from marketplace.demo.catalogue import reindex_search
from marketplace.demo.world import load_demo_data
from tests.conftest import REFERENCE_TABLES, sign_in_as
from tests.factories import make_member, make_organisation
from tests.test_schemathesis import SPEC

# ---------------------------------------------------------------------------------------------
# Reading pages


@dataclass
class Form:
    action: str
    method: str
    enctype: str
    # (name, kind, value): kind is "text" (any field a person types into, hidden ones too),
    # "choice" (a radio, checkbox or select: its first offered value) or "file".
    fields: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def text_fields(self) -> list[str]:
        return [name for name, kind, _ in self.fields if kind == "text" and name != "csrf_token"]


TEXT_INPUTS = {"text", "email", "password", "search", "tel", "url", "number", "hidden", "date"}


class PageReader(HTMLParser):
    """The links and forms of a page (the standard library's parser: no new dependency)."""

    def __init__(self, url: str):
        super().__init__(convert_charrefs=True)
        self.url = url
        self.links: list[str] = []
        self.forms: list[Form] = []
        self._form: Form | None = None
        self._select: str | None = None
        self._chosen: set[str] = set()
        self._textarea: str | None = None

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        if tag == "a" and a.get("href"):
            self.links.append(urljoin(self.url, a["href"]))
        elif tag == "form":
            self._form = Form(
                action=urljoin(self.url, a.get("action") or self.url),
                method=(a.get("method") or "get").lower(),
                enctype=a.get("enctype") or "application/x-www-form-urlencoded",
            )
            self.forms.append(self._form)
        elif self._form is None or not a.get("name") and tag != "option":
            return
        elif tag == "input":
            kind = (a.get("type") or "text").lower()
            name = a["name"]
            if kind in TEXT_INPUTS:
                self._form.fields.append((name, "text", a.get("value", "")))
            elif kind in ("radio", "checkbox") and (name, "choice") not in self._chosen:
                self._chosen.add((name, "choice"))
                self._form.fields.append((name, "choice", a.get("value", "on")))
            elif kind == "file":
                self._form.fields.append((name, "file", ""))
        elif tag == "textarea":
            self._form.fields.append((a["name"], "text", ""))
        elif tag == "select":
            self._select = a["name"]
        elif (
            tag == "option"
            and self._select
            and a.get("value")
            and (self._select, "choice") not in self._chosen
        ):
            self._chosen.add((self._select, "choice"))
            self._form.fields.append((self._select, "choice", a["value"]))

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
            self._chosen = set()
        elif tag == "select":
            self._select = None


def read_page(url: str, html: str) -> PageReader:
    reader = PageReader(url)
    reader.feed(html)
    return reader


# ---------------------------------------------------------------------------------------------
# What is in the database


def database_fingerprint() -> dict[str, str]:
    """A digest of every table but the reference data, by table: any write changes one."""
    digests = {}
    db.session.expire_all()
    with db.engine.connect() as connection:
        for table in db.metadata.sorted_tables:
            if table.name in REFERENCE_TABLES:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(sa.select(table).order_by(*order)).all()
            text = f"{len(rows)}:{rows!r}".encode("utf-8", "surrogatepass")
            digests[table.name] = hashlib.sha256(text).hexdigest()
    return digests


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(name for name in after if before.get(name) != after[name])


# ---------------------------------------------------------------------------------------------
# The bad text, as a client sends it

NUL = b"Bad\x00text"
SURROGATE = b"Bad\xed\xa0\x80text"  # U+D800 written as UTF-8 would write it: not UTF-8
CONTROL = b"Bad\x1btext"  # ESC: a control character other than tab, newline and return
PAYLOADS = {"NUL": NUL, "surrogate": SURROGATE, "control": CONTROL}


def urlencoded(pairs: list[tuple[str, bytes]]) -> bytes:
    return "&".join(
        f"{quote_from_bytes(name.encode())}={quote_from_bytes(value)}" for name, value in pairs
    ).encode("ascii")


def multipart(pairs: list[tuple[str, bytes]], boundary: str = "sweep-boundary") -> bytes:
    body = b""
    for name, value in pairs:
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value
            + b"\r\n"
        )
    return body + f"--{boundary}--\r\n".encode()


def local(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + ("?" + parts.query if parts.query else "")


def submit(client, form: Form, bad: bytes):
    pairs = []
    for name, kind, value in form.fields:
        if kind == "text":
            pairs.append((name, bad))
        elif kind == "choice":
            pairs.append((name, value.encode()))
    if form.enctype == "multipart/form-data":
        return client.post(
            local(form.action),
            data=multipart(pairs),
            content_type="multipart/form-data; boundary=sweep-boundary",
        )
    return client.post(
        local(form.action),
        data=urlencoded(pairs),
        content_type="application/x-www-form-urlencoded",
    )


# ---------------------------------------------------------------------------------------------
# Finding every form


def route_of(app, url: str, method: str) -> str | None:
    adapter = app.url_map.bind("marketplace.test")
    try:
        endpoint, _ = adapter.match(urlsplit(url).path, method=method)
    except Exception:
        return None
    return endpoint


def pattern(url: str) -> str:
    """A page's kind: its path with the numbers taken out, and its query's names."""
    parts = urlsplit(url)
    keys = sorted({pair.split("=")[0] for pair in parts.query.split("&") if pair})
    return re.sub(r"\d+", "N", parts.path) + "?" + "&".join(keys)


SKIPPED_PREFIXES = ("/static", "/assets", "/api/", "/favicon.ico", "/healthz")
# Pages that only change something when followed (GET) or that download a file: never needed to
# find a form, and following them as a crawler would is not what a person looking does.
SKIPPED_ENDPOINTS = {"accounts.sign_out"}


def index_pages(app) -> list[str]:
    """Every page of the URL map that takes no parameters: where crawling starts, besides the
    home page, so that a page no link reaches yet is still swept."""
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods
        and not rule.arguments
        and not rule.rule.startswith(SKIPPED_PREFIXES)
        and rule.endpoint not in SKIPPED_ENDPOINTS
    )


def crawl(
    client,
    app,
    starts: list[str],
    visited: dict[str, int],
    per_pattern: int = 4,
    in_all: int = 40,
    limit: int = 600,
) -> tuple[list[Form], set[str]]:
    """The POST forms with text fields on the pages reachable by links from ``starts`` (same
    site only), and the endpoints of POST forms without any (buttons: nothing to type in).

    Pages of one kind (``pattern``) are read at most ``per_pattern`` times here and ``in_all``
    times over all crawls (``visited`` counts them): more of the same finds no new form."""
    seen_urls: set[str] = set()
    by_pattern: dict[str, int] = defaultdict(int)
    queue = [urljoin("http://marketplace.test/", start) for start in starts]
    forms: dict[tuple[str, tuple], Form] = {}
    buttons: set[str] = set()
    while queue and len(seen_urls) < limit:
        url = queue.pop(0).split("#")[0]
        parts = urlsplit(url)
        if url in seen_urls or parts.netloc not in ("", "marketplace.test"):
            continue
        if parts.path.startswith(SKIPPED_PREFIXES):
            continue
        endpoint = route_of(app, url, "GET")
        if endpoint is None or endpoint in SKIPPED_ENDPOINTS:
            continue
        kind = pattern(url)
        if by_pattern[kind] >= per_pattern or visited[kind] >= in_all:
            continue
        by_pattern[kind] += 1
        visited[kind] += 1
        seen_urls.add(url)
        response = client.get(local(url))
        assert response.status_code < 500, (url, response.status_code)
        html = response.get_data(as_text=True) if response.mimetype == "text/html" else ""
        response.close()  # a download (evidence, a rate card) holds its file open until closed
        if response.status_code != 200 or not html:
            continue
        page = read_page(url, html)
        for form in page.forms:
            if form.method != "post":
                continue
            if form.text_fields:
                key = (pattern(form.action), tuple(n for n, _, _ in form.fields))
                forms.setdefault(key, form)
            else:
                buttons.add(route_of(app, form.action, "POST"))
        queue.extend(page.links)
    return list(forms.values()), buttons


_PASSWORD_HASH: list[str] = []


@pytest.fixture
def demo_world(app, monkeypatch):
    def cached_hash(password: str) -> str:
        if not _PASSWORD_HASH:
            _PASSWORD_HASH.append(hash_password(password))
        return _PASSWORD_HASH[0]

    monkeypatch.setattr(demo_organisations, "hash_password", cached_hash)
    load_demo_data()
    commit()
    reindex_search()
    commit()


def sweeper_sessions() -> list[tuple[int, int]]:
    """For every organisation, a person holding every role it may give:
    signed in as each in turn, every page that some role of some organisation can reach is
    reached, whether or not a demo person works there."""
    sessions = []
    organisations = db.session.scalars(sa.select(Organisation).order_by(Organisation.id)).all()
    for organisation in organisations:
        user = User(
            email=f"sweeper-{organisation.id}@demo.example",
            name="Sweeper",
            password_hash=_PASSWORD_HASH[0],
            session_nonce="sweeper-session-nonce",
            email_confirmed_at=utcnow(),
        )
        if not organisation.type.is_provider:
            # Two-factor on (its pages to turn it off are reached), and off for providers
            # (the page to set it up is reached).
            user.totp_secret, user.totp_enabled_at = demo_people.DEMO_TOTP_SECRET, utcnow()
        db.session.add(user)
        for role in sorted(organisation.allowed_roles):
            db.session.add(Membership(user=user, organisation=organisation, role=role))
        sessions.append((user, organisation))
    commit()
    return [(user.id, organisation.id) for user, organisation in sessions]


# Form pages no crawl reaches from the demo world, and why. Each is covered by its own tests.
UNREACHED = {
    "accounts.reactivate_organisation": "the demo world has no deactivated organisation",
    "accounts.revoke_api_token": "the demo world has no API token",
    "accreditation.answer_clarification": "no assessor has asked a question in the demo world",
    "accreditation.declare_conflict": "the demo assessor has declared on every application",
    "accreditation.redeclare": "no renewed declaration is asked for in the demo world",
    "accreditation.renew_evidence": "no demo evidence is near its expiry",
    # Swept in tests/competitions/test_bid_pages.py until the demo world has a competition.
    "competitions.ask_question": "the demo world has no published further competition",
    "competitions.edit_bid": "the demo world has no published further competition",
    "competitions.check_bid": "the demo world has no published further competition",
    "competitions.answer_clarification": "the demo world has no clarification question",
    "competitions.award_decision": "the demo world has no evaluated further competition",
    "competitions.declare": "the demo world has no competition past its bid deadline",
    "competitions.moderate": "the demo world has no competition past its bid deadline",
    "competitions.no_award": "the demo world has no competition past its bid deadline",
    "competitions.score": "the demo world has no competition past its bid deadline",
    "orders.check": "reached only by placing a call-off (its draft token)",
    "orders.reject_variation": "no variation is waiting for a decision in the demo world",
    "outcomes.reject": "no outcome claim is waiting for a decision in the demo world",
    "outcomes.reject_term": "no outcome term is waiting for a decision in the demo world",
    "payments.card": "card payments are off unless Stripe is configured",
    "payments.pay_invoice": "card payments are off unless Stripe is configured",
    "payments.enter_card": "card payments are off unless Stripe is configured",
    "payments.confirm_payment": "card payments are off unless Stripe is configured",
}


def links_in_emails(sweepers: list[tuple[int, int]]) -> list[str]:
    """The links of the emails a signed-out person follows (reset a password, confirm an
    address, accept an invitation), sent to sweepers: the pages of those links have forms."""
    from marketplace.accounts.services.passwords import request_password_reset
    from marketplace.accounts.services.registration import send_confirmation_email
    from marketplace.accounts.services.teams import invite_user

    authority = next(
        (db.session.get(User, u), db.session.get(Organisation, o))
        for u, o in sweepers
        if db.session.get(Organisation, o).type == OrganisationType.AUTHORITY
    )
    request_password_reset(authority[0].email)
    send_confirmation_email(authority[0])
    invite_user(
        authority[0], authority[1], email="invited@demo.example", name="Invited", role=Role.ASSESSOR
    )
    commit()
    bodies = db.session.scalars(sa.select(Notification.body)).all()
    return sorted(
        {m for body in bodies for m in re.findall(r"http://marketplace\.test(/\S+)", body)}
    )


def test_every_form_refuses_text_that_cannot_be_saved_and_writes_nothing(app, client, demo_world):
    failures: list[str] = []
    submitted: set[tuple] = set()
    buttons: set[str] = set()
    visited: dict[str, int] = defaultdict(int)
    sweepers = sweeper_sessions()
    signed_out = ["/", *index_pages(app), *links_in_emails(sweepers)]
    assert any("/reset-password/" in url for url in signed_out)
    # Signed out, then half signed in (the second factor asked for), then as each organisation.
    sessions = [(None, None, signed_out), ("2fa", None, ["/sign-in/two-factor"])]
    sessions += [
        (user_id, organisation_id, ["/", *index_pages(app)])
        for user_id, organisation_id in sweepers
    ]
    for user_id, organisation_id, starts in sessions:
        client.delete_cookie("session")
        if user_id == "2fa":
            authority_user = db.session.get(User, sweepers[0][0])
            assert authority_user.totp_enabled_at is not None
            answer = client.post(
                "/sign-in",
                data={"email": authority_user.email, "password": demo_people.DEMO_PASSWORD},
            )
            assert answer.status_code == 302 and "two-factor" in answer.location
        elif user_id is not None:
            sign_in_as(
                client,
                db.session.get(User, user_id),
                db.session.get(Organisation, organisation_id),
            )
        forms, found_buttons = crawl(client, app, starts, visited)
        buttons |= found_buttons
        for form in forms:
            endpoint = route_of(app, form.action, "POST")
            key = (endpoint, tuple(name for name, _, _ in form.fields))
            if key in submitted:
                continue
            submitted.add(key)
            # Taken here: finding the form (GET) may write (a two-factor secret being set up).
            before = database_fingerprint()
            for label, bad in PAYLOADS.items():
                response = submit(client, form, bad)
                status = response.status_code
                problem = None
                if status >= 500 or status < 400:
                    problem = f"answered {status}"
                elif status in (200, 422) and b"govuk-error-summary" not in response.data:
                    problem = "answered without an error summary"
                after = database_fingerprint()
                if changed := changed_tables(before, after):
                    problem = f"{problem or 'refused'} but wrote to {', '.join(changed)}"
                    before = after
                if problem:
                    failures.append(
                        f"{endpoint} ({form.action}) as user {user_id}, {label}: {problem}"
                    )
    assert not failures, "\n".join(failures)
    # Every form page of the URL map was found and swept, but those that are only buttons and
    # those the demo world cannot reach (UNREACHED, with the reason).
    covered = {endpoint for endpoint, _ in submitted}
    form_pages = {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if {"GET", "POST"} <= rule.methods and not rule.rule.startswith("/api")
    }
    assert len(covered) >= 40
    assert form_pages - covered - buttons - set(UNREACHED) == set()


# ---------------------------------------------------------------------------------------------
# The API: every operation that takes a body


def _resolve(schema: dict) -> dict:
    while "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def bad_body(schema: dict, bad: str) -> tuple[object, list[tuple]]:
    """A body with ``bad`` in every string field of ``schema`` (through nested objects and
    arrays), and the paths of those fields."""
    schema = _resolve(schema)
    if schema.get("type") == "array":
        item, paths = bad_body(schema.get("items", {}), bad)
        return [item], [(0, *path) for path in paths]
    if schema.get("type") == "object" or "properties" in schema:
        body, paths = {}, []
        for name, prop in schema.get("properties", {}).items():
            prop = _resolve(prop)
            if prop.get("readOnly"):
                continue
            if prop.get("type") == "string" or "enum" in prop:
                body[name] = bad
                paths.append((name,))
            elif prop.get("type") in ("array", "object") or "properties" in prop:
                value, inner = bad_body(prop, bad)
                if inner:
                    body[name] = value
                    paths.extend((name, *path) for path in inner)
        return body, paths
    return bad, [()]


def body_operations() -> list[tuple[str, str, str, dict]]:
    operations = []
    for path, item in SPEC["paths"].items():
        for method, operation in item.items():
            if method not in ("post", "put", "patch"):
                continue
            content = operation.get("requestBody", {}).get("content", {})
            for media_type, body in content.items():
                url = re.sub(r"\{[^}]+\}", "1", path)
                operations.append((method, url, media_type, body["schema"]))
    return operations


def error_at(errors: dict, path: tuple) -> bool:
    for key in path:
        if not isinstance(errors, dict):
            return False
        errors = errors.get(str(key), errors.get(key))
        if errors is None:
            return False
    return bool(errors)


@pytest.fixture
def api_headers(app):
    organisation = make_organisation(OrganisationType.PROBATION_REGION, name="Probation – Wales")
    user = make_member(Role.BUYER, organisation)
    _, secret = create_api_token(user, organisation, "bad input sweep")
    commit()
    return {"Authorization": f"Bearer {secret}"}


API_BAD_TEXT = {"NUL": "Bad\x00text", "surrogate": "Bad\ud800text", "control": "Bad\x1btext"}


def api_fingerprint() -> dict[str, str]:
    # The token's last use is noted on each request: that is not the body being written.
    return {k: v for k, v in database_fingerprint().items() if k != "api_tokens"}


def test_every_api_body_refuses_text_that_cannot_be_saved_naming_the_field(client, api_headers):
    operations = body_operations()
    assert len(operations) >= 15  # the spec is read: the call-off, listing and invoice bodies
    failures = []
    before = api_fingerprint()
    for method, url, media_type, schema in operations:
        for label, bad in API_BAD_TEXT.items():
            body, paths = bad_body(schema, bad)
            if media_type == "application/json":
                # json.dumps writes the surrogate as the escape "\ud800", as a client would.
                response = client.open(
                    url,
                    method=method.upper(),
                    data=json.dumps(body),
                    content_type="application/json",
                    headers=api_headers,
                )
            else:
                pairs = [
                    (name, value.encode("utf-8", "surrogatepass")) for name, value in body.items()
                ]
                response = client.open(
                    url,
                    method=method.upper(),
                    data=multipart(pairs),
                    content_type="multipart/form-data; boundary=sweep-boundary",
                    headers=api_headers,
                )
            where = f"{method.upper()} {url} ({label})"
            if response.status_code != 422 or response.mimetype != "application/problem+json":
                failures.append(f"{where}: answered {response.status_code}")
                continue
            errors = response.json.get("errors", {})
            missing = [path for path in paths if path and not error_at(errors, path)]
            if media_type == "application/json" and missing:
                failures.append(f"{where}: no error for {missing}")
    assert api_fingerprint() == before
    assert not failures, "\n".join(failures)


def test_every_api_body_refuses_json_nested_too_deep(client, api_headers):
    deep = "[" * 40 + "]" * 40
    very_deep = '{"a": ' + "[" * 100_000 + "]" * 100_000 + "}"
    for method, url, media_type, _ in body_operations():
        if media_type != "application/json":
            continue
        for body in (deep, very_deep):
            response = client.open(
                url,
                method=method.upper(),
                data=body,
                content_type="application/json",
                headers=api_headers,
            )
            assert response.status_code == 400, (method, url, response.data)
            assert response.mimetype == "application/problem+json"
            assert "nested more than 32 levels" in response.json["detail"]


# ---------------------------------------------------------------------------------------------
# One of each, in detail


def test_a_form_names_the_field_in_its_error_summary_and_keeps_the_rest(web, app):
    user = make_member(Role.BUYER, name="Ada Lovelace")
    commit()
    web.as_user(user)
    for bad in (NUL, SURROGATE, CONTROL):
        response = web.post(
            "/account/name",
            data=urlencoded([("name", bad)]),
            content_type="application/x-www-form-urlencoded",
        )
        assert response.status_code == 422
        html = response.get_data(as_text=True)
        assert 'class="govuk-error-summary' in html and 'href="#name"' in html
        assert "Full name contains a character that cannot be saved" in html
    db.session.expire_all()
    assert db.session.get(User, user.id).name == "Ada Lovelace"
    # Tab, newline and carriage return are text a person can type: not refused.
    response = web.post("/account/name", data={"name": "Ada\tKing"})
    assert response.status_code == 302
    assert db.session.get(User, user.id).name == "Ada King"


def test_a_query_string_with_text_that_cannot_be_saved_is_refused_naming_it(client, app):
    for query in ("q=%00housing", "q=housing%ED%A0%80", "region=%1B"):
        response = client.get(f"/services?{query}")
        assert response.status_code == 400
        name = query.split("=")[0]
        assert f"The address has a parameter, {name}," in response.get_data(as_text=True)
    environ = {"QUERY_STRING": "q=a\xed\xa0\x80b"}  # raw bytes that are not UTF-8 (was a 500)
    assert client.get("/services", environ_overrides=environ).status_code == 400
    assert client.get("/confirm-email/a%00b").status_code == 404


def test_get_json_refuses_deep_nesting_and_unsavable_text(app):
    for body in ("[" * 40 + "]" * 40, '{"a": "\\u0000"}', '{"a": ["\\ud800"]}'):
        with app.test_request_context(
            "/", method="POST", data=body, content_type="application/json"
        ):
            from flask import request

            assert request.get_json(silent=True) is None
    with app.test_request_context(
        "/", method="POST", data='{"a": "\\ud83d\\ude00"}', content_type="application/json"
    ):
        from flask import request

        assert request.get_json() == {"a": "\U0001f600"}  # a surrogate pair is one character
