"""Further competition pages, on the one blueprint ``bp`` (``/competitions``). Each module
registers its routes when imported. Views are thin: the rules are in
``marketplace.competitions.services``; a competition a person may not see is 404."""

from __future__ import annotations

from flask import Blueprint, abort
from flask_login import current_user

from marketplace.accounts.session import current_organisation
from marketplace.competitions import permissions
from marketplace.competitions.models import Competition
from marketplace.core.db import db

bp = Blueprint("competitions", __name__, url_prefix="/competitions", template_folder="../templates")


def visible_competition(competition_id: int) -> Competition:
    """A competition the signed-in person (or a visitor) may see; else 404."""
    found = db.session.get(Competition, competition_id)
    user = current_user if current_user.is_authenticated else None
    if found is None or (
        found.status.value == "draft"
        and (user is None or not permissions.can_see(user, current_organisation(), found))
    ):
        abort(404)
    return found


# Each module registers its routes on bp when imported (lanes add theirs here).
from marketplace.competitions.views import (  # noqa: E402, F401
    bids,
    call_offs,
    clarifications,
    evaluation,
    public,
    setup,
)
