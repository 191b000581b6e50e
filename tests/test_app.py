"""The app shell: configuration safety, error pages, headers, health check, audit immutability."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace import create_app
from marketplace.accounts.models import Role
from marketplace.config import ConfigurationError, check_production_safety, load_config
from marketplace.core.audit import AuditEvent, AuditRowImmutable, record
from marketplace.core.db import commit, db
from tests.factories import make_member


class TestProductionConfig:
    def test_refuses_default_secret(self, monkeypatch):
        monkeypatch.setenv("MARKETPLACE_ENV", "production")
        monkeypatch.delenv("MARKETPLACE_SECRET_KEY", raising=False)
        with pytest.raises(ConfigurationError):
            create_app()

    def test_refuses_short_secret(self):
        config = load_config({"ENV_NAME": "production", "SECRET_KEY": "short"})
        with pytest.raises(ConfigurationError):
            check_production_safety(config)

    def test_production_cookies_are_secure(self, monkeypatch):
        monkeypatch.setenv("MARKETPLACE_ENV", "production")
        monkeypatch.setenv("MARKETPLACE_SECRET_KEY", "k" * 64)
        config = load_config()
        check_production_safety(config)
        assert config["SESSION_COOKIE_SECURE"] and config["HSTS"]
        assert config["SESSION_COOKIE_HTTPONLY"] and config["SESSION_COOKIE_SAMESITE"] == "Lax"

    def test_environment_variables_are_read(self, monkeypatch):
        monkeypatch.setenv("MARKETPLACE_DATABASE_URL", "postgresql+psycopg://db/x")
        monkeypatch.setenv("MARKETPLACE_EMAIL_BACKEND", "smtp")
        config = load_config()
        assert config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://db/x"
        assert config["EMAIL_BACKEND"] == "smtp"


class TestHeaders:
    def test_security_headers(self, client):
        response = client.get("/sign-in")
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["X-Request-Id"]
        assert "Strict-Transport-Security" not in response.headers  # only in production

    def test_hsts_in_production(self, app, client):
        app.config["HSTS"] = True
        try:
            assert "max-age" in client.get("/").headers["Strict-Transport-Security"]
        finally:
            app.config["HSTS"] = False

    def test_pages_have_no_inline_script(self, client):
        html = client.get("/").get_data(as_text=True)
        assert "<script>" not in html and '<script type="module" src=' in html

    def test_session_cookie_flags(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        response = client.post(
            "/sign-in",
            data={"email": "buyer@example.org", "password": "correct horse battery staple"},
        )
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


class TestErrorPages:
    def test_404_page(self, client):
        response = client.get("/no-such-page")
        assert response.status_code == 404 and "Page not found" in response.get_data(as_text=True)

    def test_405_page(self, client):
        response = client.delete("/sign-in")
        assert response.status_code == 405

    def test_413_when_the_body_is_too_large(self, app, client):
        body = b"x" * (app.config["MAX_CONTENT_LENGTH"] + 1)
        response = client.post("/sign-in", data=body, content_type="application/octet-stream")
        assert response.status_code == 413

    def test_api_errors_are_problem_json(self, client):
        response = client.get("/api/v1/no-such-thing")
        assert response.status_code == 404
        assert response.mimetype == "application/problem+json"
        body = response.get_json()
        assert {"type", "title", "status", "detail"} <= body.keys() and body["status"] == 404

    def test_500_page_for_an_unexpected_error(self, app, monkeypatch):
        def boom():
            raise RuntimeError("boom")

        monkeypatch.setitem(app.view_functions, "pages.cookies", boom)
        monkeypatch.setitem(app.config, "TESTING", False)
        monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
        response = app.test_client().get("/cookies")
        assert response.status_code == 500
        assert "Sorry, there is a problem with the service" in response.get_data(as_text=True)
        assert "boom" not in response.get_data(as_text=True)
        api = app.test_client().get("/cookies", headers={"Accept": "application/json"})
        assert api.status_code == 500 and api.mimetype == "application/problem+json"

    def test_anonymous_user_is_sent_to_sign_in(self, client):
        response = client.get("/account")
        assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


class TestHealth:
    def test_healthz(self, client):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "database": "ok"}


class TestAudit:
    def test_audit_rows_cannot_be_changed_or_deleted(self, app):
        event = record(None, "test.happened", object_type="thing", object_id=1, after={"a": 1})
        commit()
        event.action = "test.changed"
        with pytest.raises(AuditRowImmutable):
            db.session.flush()
        db.session.rollback()
        event = db.session.scalar(sa.select(AuditEvent))
        db.session.delete(event)
        with pytest.raises(AuditRowImmutable):
            db.session.flush()
        db.session.rollback()
        assert db.session.scalar(sa.select(AuditEvent.action)) == "test.happened"

    def test_request_id_and_address_are_recorded(self, client):
        make_member(Role.BUYER, email="buyer@example.org")
        commit()
        client.post(
            "/sign-in",
            data={"email": "buyer@example.org", "password": "wrong password!"},
            headers={"X-Request-Id": "req-1234567890"},
            environ_base={"REMOTE_ADDR": "192.0.2.7"},
        )
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "user.sign_in_failed")
        )
        assert event.request_id == "req-1234567890" and event.ip_address == "192.0.2.7"


class TestProxyFix:
    def test_client_address_comes_from_the_load_balancer_header_when_configured(self, tmp_path):
        from flask import request

        application = create_app(
            {
                "PROXY_FIX_COUNT": 1,
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "INSTANCE_DIR": str(tmp_path),
                "TESTING": True,
            }
        )

        @application.get("/_address")
        def address():
            return request.remote_addr

        response = application.test_client().get(
            "/_address",
            headers={"X-Forwarded-For": "198.51.100.9"},
            environ_base={"REMOTE_ADDR": "10.0.0.1"},
        )
        assert response.get_data(as_text=True) == "198.51.100.9"

    def test_header_is_ignored_without_a_proxy(self, client):
        from marketplace.core.audit import AuditEvent

        client.post(
            "/sign-in",
            data={"email": "x@example.org", "password": "wrong password!"},
            headers={"X-Forwarded-For": "198.51.100.9"},
            environ_base={"REMOTE_ADDR": "192.0.2.1"},
        )
        event = db.session.scalar(
            sa.select(AuditEvent).where(AuditEvent.action == "user.sign_in_failed")
        )
        assert event.ip_address == "192.0.2.1"


class TestIdsOutOfRange:
    """A number too large to be an id is simply not found (PostgreSQL ids are 32-bit)."""

    @pytest.mark.parametrize(
        "path",
        [
            "/api/v1/arrangements/99999999999",
            "/api/v1/arrangements/2147483648/members",
            "/arrangements/99999999999999999999/register",
        ],
    )
    def test_huge_ids_in_paths_are_404(self, client, path):
        assert client.get(path).status_code == 404

    def test_huge_id_in_a_query_string_is_404(self, client, login):
        user = make_member(Role.AUTHORITY_ADMIN)
        commit()
        login(user)
        assert client.get("/team?organisation_id=99999999999").status_code == 404

    def test_parse_id(self):
        from marketplace.core.db import MAX_ID, parse_id

        assert parse_id("42") == 42 and parse_id(str(MAX_ID)) == MAX_ID
        assert parse_id(str(MAX_ID + 1)) is None
        for bad in ["", "0", "-1", "1e3", "12a", None, " ", "9" * 30]:
            assert parse_id(bad) is None


def test_server_database_connections_are_pinged_only_after_being_idle(monkeypatch):
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", "postgresql+psycopg://db/x")
    config = load_config()
    assert config["DATABASE_PING_AFTER_IDLE_SECONDS"] == 1.0
    assert "pool_pre_ping" not in config.get("SQLALCHEMY_ENGINE_OPTIONS", {})
    monkeypatch.setenv("MARKETPLACE_DATABASE_URL", "sqlite:///x.db")
    assert load_config()["DATABASE_PING_AFTER_IDLE_SECONDS"] == 0


class TestCookieSession:
    def test_a_request_without_the_cookie_builds_no_signer(self, app, client, monkeypatch):
        from flask.sessions import SecureCookieSessionInterface

        built = []
        real = SecureCookieSessionInterface.get_signing_serializer

        def counted(interface, application):
            built.append(1)
            return real(interface, application)

        monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", counted)
        app.session_interface._signers.clear()
        assert client.get("/healthz").status_code == 200
        assert client.get("/api/v1/services").status_code == 200
        assert built == []

    def test_the_session_survives_requests_and_key_rotation_with_fallbacks(
        self, app, client, monkeypatch
    ):
        member = make_member(Role.BUYER)
        commit()
        sign_in = client.post(
            "/sign-in", data={"email": member.email, "password": "correct horse battery staple"}
        )
        assert sign_in.status_code == 302
        assert client.get("/account").status_code == 200
        old_key = app.config["SECRET_KEY"]
        # The key rotated with the old one kept as a fallback: still signed in.
        monkeypatch.setitem(app.config, "SECRET_KEY", "n" * 64)
        monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [old_key])
        assert client.get("/account").status_code == 200
        # The old key dropped: the cookie no longer counts, and the person must sign in again.
        monkeypatch.setitem(app.config, "SECRET_KEY_FALLBACKS", [])
        assert client.get("/account").status_code == 302


def test_the_default_database_is_instance_marketplace_db(monkeypatch, tmp_path):
    """Data made by `make run` before the core package moved stays in use: the default SQLite
    file kept its name (a rename of the module db.py must not rename the database file)."""
    monkeypatch.delenv("MARKETPLACE_DATABASE_URL", raising=False)
    monkeypatch.setenv("MARKETPLACE_INSTANCE_PATH", str(tmp_path))
    assert load_config()["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'marketplace.db'}"


def test_building_the_app_freezes_what_starting_made_out_of_the_collectors_reach(tmp_path):
    """Full collections scan only what requests make (see ``_settle_start_up_heap``), and a
    second app thaws the first's objects before freezing, so that they can be collected."""
    import gc

    from marketplace import create_app
    from tests.conftest import test_config

    create_app(test_config(tmp_path))
    frozen = gc.get_freeze_count()
    assert frozen > 10_000
    create_app(test_config(tmp_path))
    assert gc.get_freeze_count() < frozen * 2
