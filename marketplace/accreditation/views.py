"""Accreditation pages. Arrangements, applications and assessment arrive with the accreditation issue."""

from __future__ import annotations

from flask import Blueprint, render_template

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role

bp = Blueprint("accreditation", __name__, url_prefix="/accreditation", template_folder="templates")


@bp.get("/")
@roles_required(Role.PROVIDER_ADMIN, Role.ASSESSOR, Role.AUTHORITY_ADMIN)
def index():
    return render_template("accreditation/index.html")
