"""Personal API token pages: list, create (shown once), revoke."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import ApiToken, OrganisationType, Role
from marketplace.accounts.security import hash_secret
from marketplace.accounts.services.tokens import (
    API_TOKEN_PREFIX,
    authenticate_api_token,
    create_api_token,
    revoke_api_token,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.db import db
from marketplace.core.notifications.models import Notification
from tests.factories import add_membership, make_member, make_organisation, make_user
from tests.pages import count, error_messages, main, text

ALL_ROLES = list(Role)


def state() -> tuple:
    return (
        sorted(
            db.session.execute(sa.select(ApiToken.id, ApiToken.name, ApiToken.revoked_at)).all()
        ),
        count(AuditEvent),
        count(Notification),
    )


def shown_secret(response) -> str:
    return re.search(r'id="api-token-secret"[^>]*value="([^"]+)"', text(response)).group(1)


class TestList:
    @pytest.mark.parametrize("role", ALL_ROLES)
    def test_every_role_sees_their_own_tokens(self, web, role):
        user = make_member(role)
        organisation = user.organisations[0]
        token, _ = create_api_token(user, organisation, "Nightly export")
        revoked, _ = create_api_token(user, organisation, "Old script")
        revoke_api_token(user, revoked)
        someone_else = make_member(role, organisation)
        create_api_token(someone_else, organisation, "Not yours")
        response = web.as_user(user, organisation).get("/account/api-tokens")
        assert response.status_code == 200
        page = main(response)
        assert page.count("<h1") == 1
        assert "Nightly export" in page and "Old script" in page and "Not yours" not in page
        assert token.token_prefix in page and organisation.name in page
        assert "Revoked" in page and "Active" in page and "Never" in page
        assert f"/account/api-tokens/{token.id}/revoke" in page
        assert f"/account/api-tokens/{revoked.id}/revoke" not in page

    def test_signed_out_visitors_sign_in_first(self, web):
        for method, path in [
            ("GET", "/account/api-tokens"),
            ("GET", "/account/api-tokens/new"),
            ("POST", "/account/api-tokens/new"),
            ("GET", "/account/api-tokens/1/revoke"),
            ("POST", "/account/api-tokens/1/revoke"),
        ]:
            response = web.open(path, method=method)
            assert response.status_code == 302 and "/sign-in" in response.headers["Location"]

    def test_linked_from_your_account(self, web):
        user = make_member(Role.BUYER)
        assert 'href="/account/api-tokens"' in text(web.as_user(user).get("/account"))


class TestCreate:
    @pytest.mark.parametrize("role", ALL_ROLES)
    def test_secret_is_shown_once_and_stored_hashed(self, web, role):
        user = make_member(role)
        organisation = user.organisations[0]
        web.as_user(user, organisation)
        assert web.get("/account/api-tokens/new").status_code == 200
        response = web.post("/account/api-tokens/new", data={"name": "Case export"})
        assert response.status_code == 200
        assert "Copy the token now" in text(response)
        secret = shown_secret(response)
        assert secret.startswith(API_TOKEN_PREFIX)
        token = db.session.scalar(sa.select(ApiToken))
        assert token.token_hash == hash_secret(secret) and secret not in (
            token.token_hash,
            token.token_prefix,
        )
        assert (token.user_id, token.organisation_id, token.name) == (
            user.id,
            organisation.id,
            "Case export",
        )
        assert count(AuditEvent, AuditEvent.action == "api_token.created") == 1
        assert count(Notification, Notification.template == "api_token_created") == 1
        assert secret not in text(web.get("/account/api-tokens"))
        assert authenticate_api_token(secret).id == token.id

    def test_acts_for_the_current_organisation(self, web):
        user = make_member(Role.BUYER)
        second = make_organisation(OrganisationType.PROVIDER_VCSE, name="Second Org")
        add_membership(user, second, Role.PROVIDER_EDITOR)
        web.as_user(user, second)
        assert "Second Org" in main(web.get("/account/api-tokens/new"))
        web.post("/account/api-tokens/new", data={"name": "For the second"})
        assert db.session.scalar(sa.select(ApiToken.organisation_id)) == second.id

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({}, "Enter a name for the token"),
            ({"name": "   "}, "Enter a name for the token"),
            ({"name": "n" * 81}, "Token name must be 80 characters or fewer"),
        ],
    )
    def test_bad_input_shows_errors_and_changes_nothing(self, web, data, message):
        user = make_member(Role.PROVIDER_EDITOR)
        web.as_user(user, user.organisations[0])
        before = state()
        response = web.post("/account/api-tokens/new", data=data)
        assert response.status_code == 422
        assert message in error_messages(response)
        assert "<title>Error: " in text(response)
        assert 'id="api-token-secret"' not in text(response)
        assert state() == before

    def test_html_in_the_name_is_stored_as_text_and_shown_escaped(self, web):
        user = make_member(Role.BUYER)
        evil = "<script>alert(1)</script>"
        created = web.as_user(user).post("/account/api-tokens/new", data={"name": evil})
        assert db.session.scalar(sa.select(ApiToken.name)) == evil
        for response in (created, web.get("/account/api-tokens")):
            assert "<script>alert(1)</script>" not in text(response)
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text(response)

    def test_someone_without_an_organisation_is_refused(self, web):
        user = make_user()
        web.as_user(user)
        before = state()
        assert "You need to belong to an active organisation" in main(
            web.get("/account/api-tokens")
        )
        assert web.get("/account/api-tokens/new").status_code == 403
        assert web.post("/account/api-tokens/new", data={"name": "x"}).status_code == 403
        assert state() == before

    def test_post_without_csrf_token_is_refused(self, web, csrf_enabled):
        user = make_member(Role.BUYER)
        assert (
            web.as_user(user).post("/account/api-tokens/new", data={"name": "x"}).status_code == 400
        )
        assert count(ApiToken) == 0


class TestRevoke:
    def test_confirm_then_revoke(self, web):
        user = make_member(Role.PROVIDER_ADMIN)
        token, secret = create_api_token(user, user.organisations[0], "Nightly export")
        web.as_user(user)
        page = web.get(f"/account/api-tokens/{token.id}/revoke")
        assert page.status_code == 200
        assert "Are you sure you want to revoke this token?" in main(
            page
        ) and "Nightly export" in main(page)
        assert db.session.get(ApiToken, token.id).revoked_at is None
        response = web.post(f"/account/api-tokens/{token.id}/revoke")
        assert response.status_code == 302 and response.headers["Location"] == "/account/api-tokens"
        assert db.session.get(ApiToken, token.id).revoked_at is not None
        assert count(AuditEvent, AuditEvent.action == "api_token.revoked") == 1
        assert authenticate_api_token(secret) is None
        assert "has been revoked" in main(web.get("/account/api-tokens"))

    def test_another_persons_token_is_not_found(self, web):
        owner = make_member(Role.BUYER)
        organisation = owner.organisations[0]
        token, _ = create_api_token(owner, organisation, "Theirs")
        colleague = make_member(Role.APPROVER, organisation)
        web.as_user(colleague, organisation)
        before = state()
        assert web.get(f"/account/api-tokens/{token.id}/revoke").status_code == 404
        assert web.post(f"/account/api-tokens/{token.id}/revoke").status_code == 404
        assert web.post("/account/api-tokens/999999/revoke").status_code == 404
        assert state() == before

    def test_revoking_twice_changes_nothing(self, web):
        user = make_member(Role.BUYER)
        token, _ = create_api_token(user, user.organisations[0], "Once")
        revoke_api_token(user, token)
        web.as_user(user)
        before = state()
        assert web.get(f"/account/api-tokens/{token.id}/revoke").status_code == 302
        response = web.post(f"/account/api-tokens/{token.id}/revoke")
        assert response.status_code == 422
        assert "This token has already been revoked" in error_messages(response)
        assert state() == before

    def test_post_without_csrf_token_is_refused(self, web, csrf_enabled):
        user = make_member(Role.BUYER)
        token, _ = create_api_token(user, user.organisations[0], "Kept")
        assert web.as_user(user).post(f"/account/api-tokens/{token.id}/revoke").status_code == 400
        assert db.session.get(ApiToken, token.id).revoked_at is None
