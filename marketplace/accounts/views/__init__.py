"""Account pages, one module per area; they all register on the ``accounts`` blueprint."""

from flask import Blueprint

bp = Blueprint("accounts", __name__, template_folder="../templates")

from marketplace.accounts.views import (  # noqa: E402,F401  (modules register their routes on bp)
    account,
    admin,
    auth,
    settings,
    team,
    tokens,
)
