"""What every page's request does the same each time, done once: the CSRF token signed once per
session token, the layout's fixed links built once per script root, and Flask's question "is
this view a coroutine function?" answered once per function. Each must give what doing it
afresh gives."""

from __future__ import annotations

import gc
import re

import pytest

from marketplace.accounts.models import Role
from marketplace.core.db import commit
from marketplace.core.extensions import signed_csrf_token
from tests.conftest import sign_in_as
from tests.factories import make_member

HEADER_TOKEN = re.compile(
    r'action="[^"]*/sign-out" novalidate>\s*<input type="hidden" name="csrf_token" value="([^"]+)"'
)


def header_token(client, path: str = "/") -> str:
    html = client.get(path).get_data(as_text=True)
    found = HEADER_TOKEN.search(html)
    assert found, html[:2000]
    return found.group(1)


class TestCsrfTokenSignedOnce:
    def test_the_header_token_is_the_same_on_every_page_and_signs_the_person_out(
        self, client, login, csrf_enabled
    ):
        buyer = make_member(Role.BUYER)
        commit()
        login(buyer)
        first = header_token(client)
        assert header_token(client) == first
        # The page's own form (Flask-WTF's hidden field) carries the same token as the header.
        account = client.get("/account").get_data(as_text=True)
        assert first in account
        response = client.post("/sign-out", data={"csrf_token": first})
        assert response.status_code == 302
        assert client.get("/account").status_code == 302  # signed out

    def test_another_session_gets_its_own_token_and_cannot_use_the_first(
        self, app, login, csrf_enabled
    ):
        first_person, second_person = make_member(Role.BUYER), make_member(Role.BUYER)
        commit()
        first, second = app.test_client(), app.test_client()
        sign_in_as(first, first_person)
        sign_in_as(second, second_person)
        first_token, second_token = header_token(first), header_token(second)
        assert first_token != second_token
        refused = second.post("/sign-out", data={"csrf_token": first_token})
        assert refused.status_code == 400
        assert second.get("/account").status_code == 200  # still signed in
        assert second.post("/sign-out", data={"csrf_token": second_token}).status_code == 302

    def test_a_forged_token_is_refused(self, client, login, csrf_enabled):
        buyer = make_member(Role.BUYER)
        commit()
        login(buyer)
        token = header_token(client)
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        assert client.post("/sign-out", data={"csrf_token": forged}).status_code == 400
        assert client.get("/account").status_code == 200

    def test_with_a_time_limit_every_page_signs_afresh(self, app, client, login, csrf_enabled):
        app.config["WTF_CSRF_TIME_LIMIT"] = 3600
        try:
            buyer = make_member(Role.BUYER)
            commit()
            login(buyer)
            before = dict(signed_csrf_token._signed)
            token = header_token(client)
            assert signed_csrf_token._signed == before  # nothing kept: the timestamp matters
            assert client.post("/sign-out", data={"csrf_token": token}).status_code == 302
        finally:
            app.config["WTF_CSRF_TIME_LIMIT"] = None


class TestFixedLinks:
    def test_links_follow_the_script_root_each_request_is_served_under(self, client, login):
        """A second site mounted under /market (one worker, two script roots) gets its own."""
        buyer = make_member(Role.BUYER)
        commit()
        login(buyer)
        at_root = client.get("/").get_data(as_text=True)
        assert 'href="/account"' in at_root and 'href="/accessibility"' in at_root
        assert 'href="/call-offs/?waiting=yes"' in at_root or 'href="/call-offs/"' in at_root
        under = client.get("/", base_url="http://localhost/market/").get_data(as_text=True)
        assert 'href="/market/account"' in under and 'href="/market/accessibility"' in under
        assert 'action="/market/sign-out"' in under
        assert 'href="/account"' not in under
        # And back: the links built under /market did not replace those built at the root.
        again = client.get("/").get_data(as_text=True)
        assert 'href="/account"' in again and "/market/" not in again


class TestCoroutineCheckRemembered:
    def test_a_view_is_asked_about_once_and_runs_as_before(self, app):
        def plain_view():
            return "plain"

        assert app.ensure_sync(plain_view) is plain_view
        assert plain_view in app._plain_functions
        assert app.ensure_sync(plain_view) is plain_view

    def test_a_function_made_on_the_fly_is_not_kept_alive(self, app):
        def made_for_one_request():
            return "once"

        app.ensure_sync(made_for_one_request)
        before = len(app._plain_functions)
        del made_for_one_request
        gc.collect()
        assert len(app._plain_functions) == before - 1

    def test_a_coroutine_function_still_takes_flasks_own_path(self, app):
        async def coroutine_view():
            return "async"

        try:
            wrapped = app.ensure_sync(coroutine_view)
        except RuntimeError as error:  # Flask without its async extra says so, as before
            assert "async" in str(error).lower()
        else:
            assert wrapped is not coroutine_view and wrapped() == "async"
        assert coroutine_view not in app._plain_functions


@pytest.mark.parametrize("role", [Role.BUYER, Role.PROVIDER_ADMIN, Role.AUTHORITY_ADMIN])
def test_home_page_links_match_url_for(app, client, login, role):
    """Every fixed link on the home page is what url_for builds for it."""
    from flask import url_for

    user = make_member(role)
    commit()
    login(user)
    html = client.get("/").get_data(as_text=True)
    with app.test_request_context("/"):
        for endpoint in ("accounts.account", "pages.accessibility", "pages.cookies"):
            assert f'href="{url_for(endpoint)}"' in html
