"""View decorators: sign-in and role checks against the current organisation."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation


def roles_required(*roles: Role):
    """Allow the view only to people holding one of ``roles`` in their current organisation."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.roles_in(current_organisation()) & set(roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator
