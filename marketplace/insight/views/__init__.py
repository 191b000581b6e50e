"""Commissioning insight pages, on the one blueprint ``bp`` (``/insight``): classifications,
spend and the VCSE share, the market map and forward plans, transparency exports, open data.
Views are thin: the rules are in ``marketplace.insight.services`` and the reads in
``marketplace.insight.queries``. Another organisation's detail is 404."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("insight", __name__, url_prefix="/insight", template_folder="../templates")

# Each module registers its routes on bp when imported.
from marketplace.insight.views import (  # noqa: E402, F401
    classification,
    market,
    open_data,
    spend,
    transparency,
)
