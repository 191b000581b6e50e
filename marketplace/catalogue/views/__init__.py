"""Catalogue pages. Listings, rate cards and search arrive with the catalogue issue."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.catalogue.permissions import can_manage_listings

bp = Blueprint("catalogue", __name__, url_prefix="/catalogue", template_folder="../templates")


@bp.get("/")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def index():
    # Providers' "Rate card" is their own listings; buyers find services.
    if can_manage_listings(current_user, current_organisation()):
        return listings.your_listings()
    return render_template("catalogue/index.html")


# Each module registers its routes on bp when imported.
from marketplace.catalogue.views import (  # noqa: E402
    listings,
    rate_cards,  # noqa: F401
)
