"""Account endpoints: who am I."""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from marketplace.accounts.schemas import MeSchema
from marketplace.api import api_blueprint

blp = api_blueprint("accounts_api", __name__, "The signed-in user (token needed)")


@blp.route("/me")
class MeItem(MethodView):
    @blp.response(200, MeSchema)
    def get(self):
        """Describe the token's user, the organisation it acts for, and all their memberships."""
        user = g.api_user
        return {
            "id": user.id,
            "email": user.email,
            "name": user.name,
            "two_factor_enabled": user.two_factor_enabled,
            "organisation": g.organisation,
            "roles": sorted(user.roles_in(g.organisation)),
            "memberships": sorted(
                (m for m in user.memberships if m.organisation.active),
                key=lambda m: (m.organisation.name.lower(), m.role.value),
            ),
        }
