"""The open-data page (``/insight/open-data``): what the OCDS feed publishes, in plain English,
with links to its endpoints and the bulk download. Public; linked from every page's footer."""

from __future__ import annotations

from flask import render_template

from marketplace.insight.identifiers import dynamic_market_ocid, ocid_prefix
from marketplace.insight.ocds.common import EXTENSIONS
from marketplace.insight.ocds.feed import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE
from marketplace.insight.views import bp

EXTENSION_NAMES = {
    "ocds_lots_extension": "Lots",
    "ocds_techniques_extension": "Techniques (dynamic purchasing system)",
    "ocds_partyDetails_scale_extension": "Organisation scale (SME or large)",
    "ocds_subcontracting_extension": "Subcontracting",
    "ocds_uk_extension": "United Kingdom (VCSE status, bid statistics, gross amounts)",
}


@bp.get("/open-data")
def open_data() -> str:
    """Explain the open-data feed and link to it."""
    return render_template(
        "insight/open_data.html",
        prefix=ocid_prefix(),
        market_ocid=dynamic_market_ocid(),
        extensions=[(url, EXTENSION_NAMES[name]) for url, name in EXTENSIONS.items()],
        default_page_size=DEFAULT_PAGE_SIZE,
        max_page_size=MAX_PAGE_SIZE,
    )
