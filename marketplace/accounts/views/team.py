"""Team pages: the people in an organisation and its pending invitations; invite, change roles,
remove, withdraw an invitation.

An organisation admin manages their current organisation's team. The authority admin may also
manage a commissioning organisation's team by adding ``?organisation_id=`` to these pages.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from marketplace.accounts import queries
from marketplace.accounts.forms.team import (
    ConfirmForm,
    InviteForm,
    LimitsForm,
    MemberRolesForm,
    ordered_roles,
)
from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.permissions import (
    can_manage_organisations,
    can_manage_team,
    can_set_limits,
)
from marketplace.accounts.services import limits, teams
from marketplace.accounts.session import current_organisation
from marketplace.accounts.views import bp
from marketplace.core.db import commit
from marketplace.core.errors import BusinessRuleViolation, DomainError, NotFound
from marketplace.core.views_helpers import apply_errors

TEAM_PAGE_SIZE = 25


def manageable_team(organisation: Organisation | None) -> Organisation:
    """The organisation if the signed-in person manages its team.

    Otherwise 403 where they work in it (they may know it exists) and 404 where they do not.
    """
    if organisation is None:
        abort(404)
    if can_manage_team(current_user, organisation):
        return organisation
    if current_user.roles_in(organisation):
        abort(403)
    abort(404)


def _team_organisation() -> Organisation:
    """The organisation whose team this request is about: the current one or ``organisation_id``."""
    raw = request.args.get("organisation_id")
    current = current_organisation()
    if raw is None or raw == "" or (current is not None and raw == str(current.id)):
        if not can_manage_team(current_user, current):
            abort(403)
        return current
    return manageable_team(queries.get_organisation(raw))


def team_args(organisation: Organisation) -> dict:
    """Query arguments that keep a team page on ``organisation`` (none for the current one)."""
    current = current_organisation()
    if current is not None and current.id == organisation.id:
        return {}
    return {"organisation_id": organisation.id}


def team_home(organisation: Organisation) -> str:
    """Where to go back to after a change to a team."""
    args = team_args(organisation)
    if args and can_manage_organisations(current_user):
        return url_for("accounts.organisation", organisation_id=organisation.id)
    return url_for("accounts.team", **args)


def rule_errors(error: BusinessRuleViolation) -> dict[str, list[str]]:
    """A rule violation's messages for the error summary of a page that has no fields."""
    return {"": [message for messages in error.errors.values() for message in messages]}


def _member_or_404(organisation: Organisation, user_id: int) -> User:
    member = queries.get_member(organisation, user_id)
    if member is None:
        abort(404)
    return member


@bp.get("/team")
@login_required
def team():
    organisation = _team_organisation()
    args = team_args(organisation)
    members = queries.team_members(
        organisation,
        queries.page_number(request.args.get("page")),
        TEAM_PAGE_SIZE,
        url_for_page=lambda n: url_for("accounts.team", page=n, **args),
    )
    return render_template(
        "accounts/team.html",
        organisation=organisation,
        members=members,
        invitations=queries.pending_invitations(organisation),
        org_args=args,
        back_url=team_home(organisation) if args else None,
        withdraw_form=ConfirmForm(),
        can_set_limits=can_set_limits(current_user, organisation),
    )


@bp.route("/team/invite", methods=["GET", "POST"])
@login_required
def invite():
    organisation = _team_organisation()
    args = team_args(organisation)
    form = InviteForm(roles=organisation.allowed_roles)
    if form.validate_on_submit():
        try:
            invitation = teams.invite_user(
                current_user,
                organisation,
                email=form.email.data,
                name=form.name.data,
                role=Role(form.role.data),
            )
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            days = current_app.config["INVITATION_LIFETIME_SECONDS"] // 86400
            flash(
                f"Invitation sent. We have emailed {invitation.email} a link to join "
                f"{organisation.name}. The link works for {days} days.",
                "success",
            )
            return redirect(team_home(organisation))
    return render_template(
        "accounts/team_invite.html",
        form=form,
        organisation=organisation,
        org_args=args,
        back_url=team_home(organisation),
    )


@bp.route("/team/members/<int:user_id>/roles", methods=["GET", "POST"])
@login_required
def member_roles(user_id: int):
    organisation = _team_organisation()
    member = _member_or_404(organisation, user_id)
    form = MemberRolesForm(roles=organisation.allowed_roles)
    if request.method == "GET":
        form.roles.data = [role.value for role in member.roles_in(organisation)]
    if form.validate_on_submit():
        try:
            teams.set_member_roles(
                current_user, organisation, member, {Role(value) for value in form.roles.data}
            )
        except BusinessRuleViolation as error:
            apply_errors(form, error)
        else:
            commit()
            flash(f"{member.name}'s roles have been changed", "success")
            if not can_manage_team(current_user, organisation):
                return redirect(url_for("dashboard.index"))
            return redirect(team_home(organisation))
    return render_template(
        "accounts/team_member_roles.html",
        form=form,
        organisation=organisation,
        member=member,
        org_args=team_args(organisation),
        back_url=team_home(organisation),
    )


def _pounds_text(pence: int | None) -> str:
    if pence is None:
        return ""
    pounds, rest = divmod(pence, 100)
    return f"{pounds}.{rest:02d}" if rest else str(pounds)


@bp.route("/team/members/<int:user_id>/limits", methods=["GET", "POST"])
@login_required
def member_limits(user_id: int):
    """An approver sets a buyer's spend limit and an approver's approval limit."""
    organisation = _team_organisation()
    member = _member_or_404(organisation, user_id)
    if not can_set_limits(current_user, organisation):
        abort(404 if not current_user.roles_in(organisation) else 403)
    member_roles = member.roles_in(organisation)
    if not member_roles & {Role.BUYER, Role.APPROVER}:
        abort(404)
    rows = {m.role: m for m in member.memberships if m.organisation_id == organisation.id}
    form = LimitsForm()
    if request.method == "GET":
        if Role.BUYER in rows:
            form.spend_limit_pence.data = _pounds_text(rows[Role.BUYER].spend_limit_pence)
        if Role.APPROVER in rows:
            form.approval_limit_pence.data = _pounds_text(rows[Role.APPROVER].approval_limit_pence)
    if form.validate_on_submit():
        given = {}
        if Role.BUYER in member_roles:
            given["spend_limit_pence"] = form.pence(form.spend_limit_pence)
        if Role.APPROVER in member_roles:
            given["approval_limit_pence"] = form.pence(form.approval_limit_pence)
        try:
            changed = limits.set_limits(current_user, organisation, member, **given)
        except NotFound:
            abort(404)
        except DomainError as error:
            apply_errors(form, error)
        else:
            commit()
            flash(
                f"{member.name}'s limits have been changed" if changed else "Nothing changed",
                "success",
            )
            return redirect(team_home(organisation))
    return render_template(
        "accounts/team_member_limits.html",
        form=form,
        organisation=organisation,
        member=member,
        member_roles=member_roles,
        default_spend_limit=current_app.config["BUYER_SPEND_LIMIT_PENCE"],
        org_args=team_args(organisation),
        back_url=team_home(organisation),
    )


@bp.route("/team/members/<int:user_id>/remove", methods=["GET", "POST"])
@login_required
def remove_member(user_id: int):
    organisation = _team_organisation()
    member = _member_or_404(organisation, user_id)
    form = ConfirmForm()
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            teams.remove_member(current_user, organisation, member)
        except BusinessRuleViolation as error:
            errors = rule_errors(error)
        else:
            commit()
            flash(f"{member.name} has been removed from {organisation.name}", "success")
            if not can_manage_team(current_user, organisation):
                return redirect(url_for("dashboard.index"))
            return redirect(team_home(organisation))
    return render_template(
        "accounts/team_member_remove.html",
        form=form,
        errors=errors,
        page_has_errors=bool(errors),
        organisation=organisation,
        member=member,
        roles=ordered_roles(member.roles_in(organisation)),
        org_args=team_args(organisation),
        back_url=team_home(organisation),
    )


@bp.post("/team/invitations/<int:invitation_id>/withdraw")
@login_required
def withdraw_invitation(invitation_id: int):
    invitation = queries.get_invitation(invitation_id)
    organisation = manageable_team(invitation.organisation if invitation else None)
    form = ConfirmForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        teams.revoke_invitation(current_user, invitation)
    except BusinessRuleViolation as error:
        flash(error.detail, "info")
    else:
        commit()
        flash(f"The invitation to {invitation.email} has been withdrawn", "success")
    return redirect(team_home(organisation))
