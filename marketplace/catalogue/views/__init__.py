"""Catalogue pages. Listings, rate cards and search arrive with the catalogue issue."""

from __future__ import annotations

from flask import Blueprint, render_template

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role

bp = Blueprint("catalogue", __name__, url_prefix="/catalogue", template_folder="../templates")


@bp.get("/")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def index():
    return render_template("catalogue/index.html")
