"""Extensions, created unbound and initialised in ``create_app``."""

from __future__ import annotations

import threading
from collections import OrderedDict

from flask import current_app, g, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect
from flask_wtf.csrf import generate_csrf

from marketplace.core.api import API_PREFIX
from marketplace.core.db import db

migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()


class SignedCsrfTokens:
    """``csrf_token()`` in templates: Flask-WTF's signed token, signed once per worker for each
    session's token rather than on every page (every signed-in page has a form, to sign out).

    A signed token is the session's own token, a timestamp and an HMAC of both. With
    ``WTF_CSRF_TIME_LIMIT`` None (config.py: a token lives as long as its session) the
    timestamp is never checked, so the token signed earlier for the same session token and key
    is exactly as valid as a new one. With a time limit, every call signs afresh.
    """

    def __init__(self, max_entries: int = 10_000) -> None:
        self.max_entries = max_entries
        self._signed: OrderedDict[tuple, str] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self) -> str:
        config = current_app.config
        if config["WTF_CSRF_TIME_LIMIT"] is not None:
            return generate_csrf()
        field = config.get("WTF_CSRF_FIELD_NAME", "csrf_token")
        if field in g:  # signed already in this request (or a kept page's placeholder)
            return g.get(field)
        secret = config.get("WTF_CSRF_SECRET_KEY") or current_app.secret_key
        session_token = session.get(field)
        if isinstance(session_token, str):
            with self._lock:
                signed = self._signed.get((secret, session_token))
            if signed is not None:
                # The page's other forms (FlaskForm's hidden field) then use the same token.
                setattr(g, field, signed)
                return signed
        signed = generate_csrf()
        with self._lock:
            self._signed[(secret, session[field])] = signed
            if len(self._signed) > self.max_entries:
                self._signed.popitem(last=False)
        return signed


signed_csrf_token = SignedCsrfTokens()


def client_address() -> str:
    """The caller's address as seen by the app (behind a proxy, configure ProxyFix)."""
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=True)


@limiter.request_filter
def _only_form_submissions_are_limited() -> bool:
    """Every limit here guards a form submission (methods=["POST"] on the sign-in, two-factor,
    password and registration pages), so reads and API calls skip the check: the API has no
    limit of its own (its callers hold tokens too long to guess), and looking for one on every
    call costs time for nothing."""
    return request.method in ("GET", "HEAD", "OPTIONS") or request.path.startswith(API_PREFIX + "/")


__all__ = ["db", "migrate", "login_manager", "csrf", "limiter", "signed_csrf_token"]
