"""Accreditation pages for signed-in people: arrangements (authority), applications, assessment.

The public pages (live arrangements and their registers of members) are on the separate
``public_arrangements`` blueprint in ``views/public.py``, which needs no sign-in.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from marketplace.accounts.decorators import roles_required
from marketplace.accounts.models import Role

bp = Blueprint(
    "accreditation", __name__, url_prefix="/accreditation", template_folder="../templates"
)


@bp.get("/")
@roles_required(Role.PROVIDER_ADMIN, Role.ASSESSOR, Role.AUTHORITY_ADMIN)
def index():
    return render_template("accreditation/index.html")


# Each module registers its routes on bp when imported.
from marketplace.accreditation.views import (  # noqa: E402, F401
    applications,
    arrangements,
    assessment,
    evidence_renewals,
    members,
    our_accreditation,
)
