"""The home page: a landing page when signed out, each role's next actions when signed in."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from marketplace.accounts.session import current_organisation
from marketplace.dashboard.queries import next_actions

bp = Blueprint("dashboard", __name__)


@bp.get("/")
def index():
    if not current_user.is_authenticated:
        return render_template("dashboard/landing.html")
    organisation = current_organisation()
    return render_template(
        "dashboard/index.html",
        organisation=organisation,
        actions=next_actions(current_user._get_current_object(), organisation),
    )
