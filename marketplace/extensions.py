"""Extensions, created unbound and initialised in ``create_app``."""

from __future__ import annotations

from flask import request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf import CSRFProtect

from marketplace.db import db

migrate = Migrate(compare_type=True, render_as_batch=True)
login_manager = LoginManager()
csrf = CSRFProtect()


def client_address() -> str:
    """The caller's address as seen by the app (behind a proxy, configure ProxyFix)."""
    return get_remote_address() or request.remote_addr or "unknown"


limiter = Limiter(key_func=client_address, default_limits=[], headers_enabled=True)


@limiter.request_filter
def _reads_are_not_limited() -> bool:
    """Every limit here guards a form submission (methods=["POST"]), so reads skip the check."""
    return request.method in ("GET", "HEAD", "OPTIONS")


__all__ = ["db", "migrate", "login_manager", "csrf", "limiter"]
