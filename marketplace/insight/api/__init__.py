"""Commissioning insight endpoints (OpenAPI): ``blp`` needs a bearer token and answers for the
token's organisation (a commissioner its own spend, the authority everyone's); ``public_blp``
is the open data anyone may read (the market map's aggregates, forward plans, OCDS). Numbers
are the same as the pages' and the CSVs' (one query each). Errors are problem+json.

Each module registers its routes on these blueprints when imported."""

from __future__ import annotations

from marketplace.core.api import api_blueprint

blp = api_blueprint(
    "insight_api",
    __name__,
    "Commissioning insight: spend, the VCSE share, classifications, transparency exports.",
)
public_blp = api_blueprint(
    "insight_public_api",
    __name__,
    "Open data: the market map, forward plans and the OCDS feed.",
    public=True,
)

from marketplace.insight.api import (  # noqa: E402, F401
    classification,
    market,
    open_data,
    spend,
    transparency,
)
