"""Call-off pages. Placing and managing call-offs arrives with the call-offs issue."""

from __future__ import annotations

from flask import Blueprint, render_template

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role

bp = Blueprint("orders", __name__, url_prefix="/call-offs", template_folder="templates")


@bp.get("/")
@roles_required(Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
def index():
    return render_template("orders/index.html")
