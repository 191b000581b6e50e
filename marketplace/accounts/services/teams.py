"""Teams and invitations: who works in an organisation, and in which roles."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.accounts.models import (
    ORGANISATION_ADMIN_ROLES,
    ApiToken,
    Invitation,
    InvitationStatus,
    Membership,
    Organisation,
    Role,
    User,
)
from marketplace.accounts.permissions import can_invite, can_manage_team, can_revoke_invitation
from marketplace.accounts.security import hash_password, hash_secret, new_secret
from marketplace.accounts.services.common import (
    INVALID_LINK_MESSAGE,
    USER_FIELDS,
    check_new_password,
    get_user_by_email,
    normalise_email,
)
from marketplace.core import audit
from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.core.errors import BusinessRuleViolation, PermissionDenied
from marketplace.core.notifications.services import queue_email
from marketplace.core.urls import absolute_url


def _admin_count(organisation: Organisation) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(sa.distinct(Membership.user_id)))
            .join(User, User.id == Membership.user_id)
            .where(
                Membership.organisation_id == organisation.id,
                Membership.role.in_(ORGANISATION_ADMIN_ROLES & organisation.allowed_roles),
                User.active.is_(True),
            )
        )
        or 0
    )


def invite_user(
    actor: User, organisation: Organisation, *, email: str, name: str, role: Role
) -> Invitation:
    """Invite a person into an organisation in a role, by an emailed single-use link."""
    if role not in organisation.allowed_roles:
        allowed = ", ".join(sorted(r.label for r in organisation.allowed_roles))
        raise BusinessRuleViolation(
            {"role": [f"People in a {organisation.type.label.lower()} can only be: {allowed}"]}
        )
    if not can_invite(actor, organisation, role):
        raise PermissionDenied()
    if not organisation.active:
        raise BusinessRuleViolation({"email": ["This organisation is not active"]})
    email = normalise_email(email)
    existing_user = get_user_by_email(email)
    if existing_user is not None and role in existing_user.roles_in(organisation):
        raise BusinessRuleViolation(
            {"email": [f"{email} already has this role in {organisation.name}"]}
        )
    pending = db.session.scalars(
        sa.select(Invitation).where(
            Invitation.organisation_id == organisation.id,
            Invitation.email == email,
            Invitation.role == role,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    ).all()
    for old in pending:  # a new invitation replaces an earlier one for the same role
        old.revoked_at = utcnow()
    secret = new_secret()
    invitation = Invitation(
        organisation=organisation,
        email=email,
        name=name.strip(),
        role=role,
        token_hash=hash_secret(secret),
        invited_by_id=actor.id,
        expires_at=utcnow() + timedelta(seconds=current_app.config["INVITATION_LIFETIME_SECONDS"]),
    )
    db.session.add(invitation)
    db.session.flush()
    audit.record(
        actor,
        "invitation.created",
        invitation,
        after={"email": email, "role": role.value, "name": invitation.name},
    )
    queue_email(
        email,
        "invitation",
        invitation=invitation,
        inviter=actor,
        accept_url=absolute_url("accounts.accept_invitation", token=secret),
        days=current_app.config["INVITATION_LIFETIME_SECONDS"] // 86400,
    )
    return invitation


def find_invitation(secret: str) -> Invitation | None:
    """The pending invitation for a link, or None if it is unknown, used, revoked or expired."""
    invitation = db.session.scalar(
        sa.select(Invitation).where(Invitation.token_hash == hash_secret(secret))
    )
    if invitation is None or invitation.status != InvitationStatus.PENDING:
        return None
    return invitation


def accept_invitation(
    secret: str,
    *,
    signed_in_user: User | None = None,
    name: str | None = None,
    password: str | None = None,
) -> User:
    """Accept an invitation: an existing account gains the role; a new person makes an account."""
    invitation = find_invitation(secret)
    if invitation is None:
        raise BusinessRuleViolation({"token": [INVALID_LINK_MESSAGE]})
    if not invitation.organisation.active:
        raise BusinessRuleViolation({"token": ["This organisation is no longer active"]})
    user = get_user_by_email(invitation.email)
    if user is not None:
        if signed_in_user is None or signed_in_user.id != user.id:
            raise BusinessRuleViolation(
                {"token": [f"Sign in as {invitation.email} to accept this invitation"]}
            )
    else:
        if signed_in_user is not None:
            raise BusinessRuleViolation(
                {"token": [f"This invitation is for {invitation.email}: sign out to accept it"]}
            )
        display_name = (name or invitation.name).strip()
        if not password:
            raise BusinessRuleViolation({"password": ["Enter a password"]})
        check_new_password(password, invitation.email, display_name)
        user = User(
            email=invitation.email,
            name=display_name,
            password_hash=hash_password(password),
            session_nonce=new_secret()[:32],
            # The invitation reached this inbox, which proves the address.
            email_confirmed_at=utcnow(),
        )
        db.session.add(user)
        db.session.flush()
        audit.record(
            user,
            "user.created_from_invitation",
            user,
            organisation=invitation.organisation,
            after=audit.snapshot(user, USER_FIELDS),
        )
    if invitation.role not in user.roles_in(invitation.organisation):
        membership = Membership(
            user=user,
            organisation=invitation.organisation,
            role=invitation.role,
            created_by_id=invitation.invited_by_id,
        )
        db.session.add(membership)
        db.session.flush()
        audit.record(
            user,
            "membership.created",
            membership,
            after={"user_id": user.id, "role": invitation.role.value},
        )
    invitation.accepted_at = utcnow()
    invitation.accepted_user_id = user.id
    audit.record(user, "invitation.accepted", invitation)
    return user


def revoke_invitation(actor: User, invitation: Invitation) -> None:
    if not can_revoke_invitation(actor, invitation):
        raise PermissionDenied()
    if invitation.status != InvitationStatus.PENDING:
        raise BusinessRuleViolation({"invitation": ["Only a pending invitation can be withdrawn"]})
    invitation.revoked_at = utcnow()
    audit.record(actor, "invitation.revoked", invitation)


def set_member_roles(
    actor: User, organisation: Organisation, member: User, roles: set[Role]
) -> None:
    """Give a team member exactly these roles in the organisation."""
    if not can_manage_team(actor, organisation):
        raise PermissionDenied()
    if not roles:
        raise BusinessRuleViolation(
            {"roles": ["Choose at least one role, or remove the person instead"]}
        )
    not_allowed = roles - organisation.allowed_roles
    if not_allowed:
        raise BusinessRuleViolation(
            {
                "roles": [
                    f"{', '.join(sorted(r.label for r in not_allowed))} is not a role in this organisation"
                ]
            }
        )
    current = member.roles_in(organisation)
    if not current:
        raise BusinessRuleViolation({"roles": [f"{member.name} is not in {organisation.name}"]})
    admin_roles = ORGANISATION_ADMIN_ROLES & organisation.allowed_roles
    if current & admin_roles and not roles & admin_roles and _admin_count(organisation) <= 1:
        raise BusinessRuleViolation(
            {
                "roles": [
                    f"{organisation.name} needs at least one administrator: make someone else one first"
                ]
            }
        )
    if roles == current:
        return
    for membership in list(member.memberships):
        if membership.organisation_id == organisation.id and membership.role not in roles:
            member.memberships.remove(membership)
            db.session.delete(membership)
    for role in roles - current:
        db.session.add(
            Membership(user=member, organisation=organisation, role=role, created_by_id=actor.id)
        )
    db.session.flush()
    audit.record(
        actor,
        "membership.roles_changed",
        object_type="user",
        object_id=member.id,
        organisation=organisation,
        before={"roles": sorted(r.value for r in current)},
        after={"roles": sorted(r.value for r in roles)},
    )
    queue_email(
        member.email,
        "roles_changed",
        user=member,
        organisation=organisation,
        roles=sorted(r.label for r in roles),
    )


def remove_member(actor: User, organisation: Organisation, member: User) -> None:
    """Take a person out of an organisation (their account stays for their other organisations)."""
    if not can_manage_team(actor, organisation):
        raise PermissionDenied()
    current = member.roles_in(organisation)
    if not current:
        raise BusinessRuleViolation({"member": [f"{member.name} is not in {organisation.name}"]})
    admin_roles = ORGANISATION_ADMIN_ROLES & organisation.allowed_roles
    if current & admin_roles and _admin_count(organisation) <= 1:
        raise BusinessRuleViolation(
            {
                "member": [
                    f"{organisation.name} needs at least one administrator: make someone else one first"
                ]
            }
        )
    for membership in list(member.memberships):
        if membership.organisation_id == organisation.id:
            member.memberships.remove(membership)
            db.session.delete(membership)
    # Tokens acting for this organisation stop working with the membership.
    for token in db.session.scalars(
        sa.select(ApiToken).where(
            ApiToken.user_id == member.id,
            ApiToken.organisation_id == organisation.id,
            ApiToken.revoked_at.is_(None),
        )
    ):
        token.revoked_at = utcnow()
    db.session.flush()
    audit.record(
        actor,
        "membership.removed",
        object_type="user",
        object_id=member.id,
        organisation=organisation,
        before={"roles": sorted(r.value for r in current)},
    )
    queue_email(member.email, "removed_from_organisation", user=member, organisation=organisation)
