"""Call-off pages, on the one blueprint ``bp``: buying from a listing (``placing``), the lists,
CSV and budgets (``lists``), one call-off with its timeline and the provider's and buyer's
answers (``call_off``), funding (``funding``), delivery and completion (``delivery``) and
variations (``variations``). Views are thin: the rules are in ``marketplace.orders.services``."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from marketplace.accounts.models import Organisation
from marketplace.accounts.session import current_organisation
from marketplace.core.db import db
from marketplace.orders import permissions
from marketplace.orders.models import CallOff

bp = Blueprint("orders", __name__, url_prefix="/call-offs", template_folder="../templates")

PARTIES = tuple(permissions.PARTY_ROLES)


def own_organisation() -> Organisation:
    """The signed-in person's organisation; none: 403."""
    organisation = current_organisation()
    if organisation is None:
        abort(403)
    return organisation


def visible_call_off(call_off_id: int) -> CallOff:
    """A call-off the current organisation is party to (authority staff see all); else 404."""
    found = db.session.get(CallOff, call_off_id)
    if found is None or not permissions.can_see(current_user, current_organisation(), found):
        abort(404)
    return found


# Each module registers its routes on bp when imported.
from marketplace.orders.views import (  # noqa: E402
    call_off,  # noqa: F401
    delivery,  # noqa: F401
    funding,  # noqa: F401
    lists,  # noqa: F401
    placing,  # noqa: F401
    variations,  # noqa: F401
)
