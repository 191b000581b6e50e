"""Further competition endpoints (OpenAPI): ``blp`` needs a bearer token and acts for the
token's organisation (a buyer runs and awards, a provider asks and bids, an evaluator scores);
``public_blp`` is the public list of open competitions, readable by anyone. Every rule is in
``marketplace.competitions.services``; a competition the organisation may not see is not found
(404), and a bid is refused while bids are sealed (``permissions.bids_are_sealed``).

Each module registers its routes on these blueprints when imported."""

from __future__ import annotations

from marketplace.core.api import api_blueprint

blp = api_blueprint(
    "competitions_api",
    __name__,
    "Further competitions: set-up, clarifications, sealed bids, evaluation and award.",
)
public_blp = api_blueprint(
    "competitions_public_api",
    __name__,
    "The public list of open further competitions.",
    public=True,
)

# Each module registers its routes on the blueprints when imported (lanes add theirs here).
from marketplace.competitions.api import bids, evaluation, setup  # noqa: E402, F401
