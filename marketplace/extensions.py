"""Extensions, created unbound and initialised in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from marketplace.api import API_PREFIX
from marketplace.db import db

migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()


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


__all__ = ["db", "migrate", "login_manager", "csrf", "limiter"]
