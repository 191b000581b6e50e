"""Account endpoints: who am I; an organisation's team with its spend and approval limits."""

from __future__ import annotations

from flask import g
from flask.views import MethodView

from marketplace.accounts import queries
from marketplace.accounts.models import Role
from marketplace.accounts.schemas import (
    ApprovalLimitSchema,
    MeSchema,
    SpendLimitSchema,
    TeamMemberSchema,
)
from marketplace.accounts.services.limits import set_limits
from marketplace.core.api import api_blueprint
from marketplace.core.db import commit, rollback
from marketplace.core.errors import DomainError, NotFound, PermissionDenied

blp = api_blueprint(
    "accounts_api",
    __name__,
    "The signed-in user, and (for approvers) the team's spend and approval limits (token needed)",
)


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


def _limits_reader():
    """Only the token organisation's approvers read and set its people's limits."""
    if Role.APPROVER not in g.api_user.roles_in(g.organisation):
        raise PermissionDenied("Only an approver can see and set spend and approval limits")


def _member_answer(organisation, user) -> dict:
    page = queries.team_members_by_id(organisation, [user.id])
    return page[0]


@blp.route("/team/members")
class TeamMemberCollection(MethodView):
    @blp.response(200, TeamMemberSchema(many=True))
    def get(self):
        """List the token organisation's people with their roles and limits (approvers only)."""
        _limits_reader()
        return queries.team_members_by_id(g.organisation, None)


def _set_limit(user_id: int, body: dict) -> dict:
    _limits_reader()
    member = queries.get_member(g.organisation, user_id)
    if member is None:
        raise NotFound("There is nobody with that id in your organisation.")
    try:
        set_limits(g.api_user, g.organisation, member, **body)
    except DomainError:
        rollback()
        raise
    commit()
    return _member_answer(g.organisation, member)


@blp.route("/team/members/<int:user_id>/spend-limit")
class TeamMemberSpendLimit(MethodView):
    @blp.arguments(SpendLimitSchema)
    @blp.response(200, TeamMemberSchema)
    def put(self, body, user_id):
        """Set a buyer's spend limit (null: the service's default); approvers only."""
        return _set_limit(user_id, body)


@blp.route("/team/members/<int:user_id>/approval-limit")
class TeamMemberApprovalLimit(MethodView):
    @blp.arguments(ApprovalLimitSchema)
    @blp.response(200, TeamMemberSchema)
    def put(self, body, user_id):
        """Set an approver's approval limit (null: no limit); approvers only."""
        return _set_limit(user_id, body)
