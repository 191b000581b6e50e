"""Account use cases. Each takes the acting user, enforces the rules, audits, flushes, never commits."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from marketplace.accounts.models import (
    ACCOUNT_NAME_MAX,
    ACCOUNT_NUMBER_PATTERN,
    COMMISSIONER_TYPES,
    ENDPOINT_ID_MAX,
    ENDPOINT_SCHEMES,
    LIMIT_MAX_PENCE,
    ORGANISATION_ADMIN_ROLES,
    PROVIDER_TYPES,
    SORT_CODE_PATTERN,
    VAT_NUMBER_PATTERN,
    ApiToken,
    Invitation,
    InvitationStatus,
    Membership,
    OneTimeToken,
    Organisation,
    OrganisationType,
    RecoveryCode,
    Role,
    TokenPurpose,
    User,
)
from marketplace.accounts.permissions import (
    can_create_api_token,
    can_edit_invoicing_details,
    can_edit_organisation,
    can_invite,
    can_manage_organisations,
    can_manage_team,
    can_revoke_api_token,
    can_revoke_invitation,
    can_set_limits,
)
from marketplace.accounts.queries import people_with_roles
from marketplace.accounts.security import (
    hash_password,
    hash_secret,
    matching_totp_counter,
    new_recovery_codes,
    new_secret,
    new_totp_secret,
    normalise_recovery_code,
    password_needs_rehash,
    password_problems,
    verify_password,
)
from marketplace.accounts.session import note_token_use, token_principal
from marketplace.core import audit, sealed
from marketplace.core.clock import utcnow
from marketplace.core.db import db, lock_rows
from marketplace.core.errors import BusinessRuleViolation, NotFound, PermissionDenied
from marketplace.core.notifications.services import queue_email
from marketplace.core.urls import absolute_url
from marketplace.reference.models import PccArea

ORGANISATION_FIELDS = [
    "name",
    "type",
    "charity_number",
    "companies_house_number",
    "region_id",
    "pcc_area_id",
    "active",
]
USER_FIELDS = ["email", "name", "active"]


def normalise_email(email: str) -> str:
    return email.strip().lower()


def email_people(organisation_id: int, roles: Iterable[Role], template: str, **context) -> None:
    """Queue ``template`` to each active person holding any of ``roles`` in the organisation."""
    for user in people_with_roles(organisation_id, roles):
        queue_email(user.email, template, user=user, **context)


def get_user_by_email(email: str) -> User | None:
    return db.session.scalar(sa.select(User).where(User.email == normalise_email(email)))


def _check_new_password(password: str, email: str, name: str, field: str = "password") -> None:
    problems = password_problems(
        password, min_length=current_app.config["PASSWORD_MIN_LENGTH"], email=email, name=name
    )
    if problems:
        raise BusinessRuleViolation({field: problems})


def _issue_token(user: User, purpose: TokenPurpose, lifetime_seconds: int) -> str:
    # A new link replaces any earlier unused one for the same purpose.
    for old in db.session.scalars(
        sa.select(OneTimeToken).where(
            OneTimeToken.user_id == user.id,
            OneTimeToken.purpose == purpose,
            OneTimeToken.used_at.is_(None),
        )
    ):
        old.used_at = utcnow()
    secret = new_secret()
    db.session.add(
        OneTimeToken(
            purpose=purpose,
            user_id=user.id,
            token_hash=hash_secret(secret),
            expires_at=utcnow() + timedelta(seconds=lifetime_seconds),
        )
    )
    return secret


INVALID_LINK_MESSAGE = (
    "This link has expired or has already been used. "
    "Ask for a new one and use it within the time shown."
)


def _redeem_token(secret: str, purpose: TokenPurpose) -> OneTimeToken:
    token = db.session.scalar(
        sa.select(OneTimeToken).where(
            OneTimeToken.token_hash == hash_secret(secret), OneTimeToken.purpose == purpose
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        raise BusinessRuleViolation({"token": [INVALID_LINK_MESSAGE]})
    token.used_at = utcnow()
    return token


def check_token(secret: str, purpose: TokenPurpose) -> User | None:
    """The user a still-valid link belongs to, without using it up (for showing the form)."""
    token = db.session.scalar(
        sa.select(OneTimeToken).where(
            OneTimeToken.token_hash == hash_secret(secret), OneTimeToken.purpose == purpose
        )
    )
    if token is None or token.used_at is not None or token.expires_at <= utcnow():
        return None
    return token.user


# ---------------------------------------------------------------------------------------------
# Registration and email confirmation


@dataclass
class ProviderRegistration:
    organisation_name: str
    organisation_type: OrganisationType
    charity_number: str | None
    companies_house_number: str | None
    region_id: int | None
    name: str
    email: str
    password: str


def register_provider(details: ProviderRegistration) -> User | None:
    """Register a provider organisation and its first admin, and email a confirmation link.

    If the email address already has an account, nothing is created and the owner is told by
    email instead, so the page a visitor sees never reveals who is registered.
    """
    if details.organisation_type not in PROVIDER_TYPES:
        raise BusinessRuleViolation(
            {"organisation_type": ["Choose the kind of provider your organisation is"]}
        )
    email = normalise_email(details.email)
    _check_new_password(details.password, email, details.name)
    existing = get_user_by_email(email)
    if existing is not None:
        queue_email(
            existing.email,
            "already_registered",
            user=existing,
            sign_in_url=absolute_url("accounts.sign_in"),
            reset_url=absolute_url("accounts.forgot_password"),
        )
        return None
    organisation = Organisation(
        name=details.organisation_name.strip(),
        type=details.organisation_type,
        charity_number=details.charity_number or None,
        companies_house_number=details.companies_house_number or None,
        region_id=details.region_id,
    )
    user = User(
        email=email,
        name=details.name.strip(),
        password_hash=hash_password(details.password),
        session_nonce=new_secret()[:32],
    )
    db.session.add_all([organisation, user])
    db.session.flush()
    db.session.add(Membership(user=user, organisation=organisation, role=Role.PROVIDER_ADMIN))
    db.session.flush()
    audit.record(
        user,
        "organisation.registered",
        organisation,
        after=audit.snapshot(organisation, ORGANISATION_FIELDS),
    )
    audit.record(
        user,
        "user.registered",
        user,
        organisation=organisation,
        after=audit.snapshot(user, USER_FIELDS),
    )
    send_confirmation_email(user)
    return user


def send_confirmation_email(user: User) -> None:
    secret = _issue_token(
        user, TokenPurpose.CONFIRM_EMAIL, current_app.config["CONFIRM_LINK_LIFETIME_SECONDS"]
    )
    queue_email(
        user.email,
        "confirm_email",
        user=user,
        confirm_url=absolute_url("accounts.confirm_email", token=secret),
        days=current_app.config["CONFIRM_LINK_LIFETIME_SECONDS"] // 86400,
    )


def confirm_email(secret: str) -> User:
    """Use a confirmation link: the account can sign in from now on."""
    token = _redeem_token(secret, TokenPurpose.CONFIRM_EMAIL)
    user = token.user
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
        audit.record(user, "user.email_confirmed", user, organisation=_home_organisation(user))
    return user


def _home_organisation(user: User) -> Organisation | None:
    return user.organisations[0] if user.organisations else None


# ---------------------------------------------------------------------------------------------
# Signing in


class EmailNotConfirmed(Exception):
    """The password was right but the email address has not been confirmed yet."""

    def __init__(self, user: User):
        self.user = user


def authenticate(email: str, password: str) -> User | None:
    """The user these credentials belong to, or None; same cost whether or not the email exists."""
    user = get_user_by_email(email) if len(email) <= 320 else None
    if not verify_password(user.password_hash if user else None, password):
        return None
    if user is None or not user.active:
        return None
    if user.email_confirmed_at is None:
        raise EmailNotConfirmed(user)
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    return user


def record_sign_in(user: User) -> None:
    user.last_sign_in_at = utcnow()
    audit.record(user, "user.signed_in", user, organisation=_home_organisation(user))


def record_failed_sign_in(email: str) -> None:
    user = get_user_by_email(email) if len(email) <= 320 else None
    audit.record(
        None,
        "user.sign_in_failed",
        object_type="user",
        object_id=user.id if user else None,
        after={"email": normalise_email(email)[:254]},
    )


# ---------------------------------------------------------------------------------------------
# Passwords


def request_password_reset(email: str) -> None:
    """Email a reset link if the account exists; say nothing either way."""
    user = get_user_by_email(email) if len(email) <= 320 else None
    if user is None or not user.active:
        return
    secret = _issue_token(
        user, TokenPurpose.RESET_PASSWORD, current_app.config["RESET_LINK_LIFETIME_SECONDS"]
    )
    queue_email(
        user.email,
        "password_reset",
        user=user,
        reset_url=absolute_url("accounts.reset_password", token=secret),
        minutes=current_app.config["RESET_LINK_LIFETIME_SECONDS"] // 60,
    )
    audit.record(user, "user.password_reset_requested", user, organisation=_home_organisation(user))


def _set_password(user: User, password: str) -> None:
    user.password_hash = hash_password(password)
    user.session_nonce = new_secret()[:32]  # signs out every other session


def reset_password(secret: str, new_password: str) -> User:
    """Use a reset link to set a new password; it also confirms the email address."""
    user = check_token(secret, TokenPurpose.RESET_PASSWORD)
    if user is None:
        raise BusinessRuleViolation({"token": [INVALID_LINK_MESSAGE]})
    _check_new_password(new_password, user.email, user.name)
    _redeem_token(secret, TokenPurpose.RESET_PASSWORD)
    _set_password(user, new_password)
    if user.email_confirmed_at is None:
        user.email_confirmed_at = utcnow()
    audit.record(user, "user.password_reset", user, organisation=_home_organisation(user))
    queue_email(
        user.email,
        "password_changed",
        user=user,
        reset_url=absolute_url("accounts.forgot_password"),
    )
    return user


def change_password(actor: User, current_password: str, new_password: str) -> None:
    if not verify_password(actor.password_hash, current_password):
        raise BusinessRuleViolation({"current_password": ["Your current password is not right"]})
    _check_new_password(new_password, actor.email, actor.name, field="new_password")
    if verify_password(actor.password_hash, new_password):
        raise BusinessRuleViolation(
            {"new_password": ["Your new password must be different from your current one"]}
        )
    _set_password(actor, new_password)
    audit.record(actor, "user.password_changed", actor, organisation=_home_organisation(actor))
    queue_email(
        actor.email,
        "password_changed",
        user=actor,
        reset_url=absolute_url("accounts.forgot_password"),
    )


def update_profile(actor: User, name: str) -> None:
    before = audit.snapshot(actor, ["name"])
    actor.name = name.strip()
    audit.record(
        actor,
        "user.updated",
        actor,
        organisation=_home_organisation(actor),
        before=before,
        after=audit.snapshot(actor, ["name"]),
    )


# ---------------------------------------------------------------------------------------------
# Two-factor authentication


def begin_two_factor_setup(actor: User) -> str:
    """Give the user a new TOTP secret to add to their app (not in force until confirmed)."""
    if actor.two_factor_enabled:
        raise BusinessRuleViolation({"code": ["Two-factor authentication is already set up"]})
    if not actor.totp_secret:
        actor.totp_secret = new_totp_secret()
    return actor.totp_secret


def _replace_recovery_codes(user: User) -> list[str]:
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    codes = new_recovery_codes()
    db.session.add_all(
        RecoveryCode(user_id=user.id, code_hash=hash_secret(normalise_recovery_code(code)))
        for code in codes
    )
    return codes


def confirm_two_factor_setup(actor: User, code: str, *, at: float | None = None) -> list[str]:
    """Turn on two-factor once the user proves their app works; return the recovery codes."""
    if actor.two_factor_enabled or not actor.totp_secret:
        raise BusinessRuleViolation({"code": ["Start setting up two-factor authentication again"]})
    # The real time, not the service's clock: the code comes from the person's authenticator app,
    # which reads the real time whatever a test has set the service's clock to.
    counter = matching_totp_counter(actor.totp_secret, code, None, at or time.time())
    if counter is None:
        raise BusinessRuleViolation(
            {"code": ["The code is not right: enter the 6-digit code your app shows now"]}
        )
    actor.totp_enabled_at = utcnow()
    actor.totp_last_counter = counter
    codes = _replace_recovery_codes(actor)
    audit.record(actor, "user.two_factor_enabled", actor, organisation=_home_organisation(actor))
    queue_email(actor.email, "two_factor_enabled", user=actor)
    return codes


def verify_second_factor(user: User, code: str, *, at: float | None = None) -> bool:
    """Check a TOTP code (once per time-step) or use up a recovery code."""
    if not user.two_factor_enabled or not user.totp_secret:
        return False
    # The real time, as in confirm_two_factor_setup: the authenticator app reads the real time.
    counter = matching_totp_counter(
        user.totp_secret, code, user.totp_last_counter, at or time.time()
    )
    if counter is not None:
        user.totp_last_counter = counter
        return True
    normalised = normalise_recovery_code(code)
    if len(normalised) != 12:
        return False
    recovery = db.session.scalar(
        sa.select(RecoveryCode).where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == hash_secret(normalised),
            RecoveryCode.used_at.is_(None),
        )
    )
    if recovery is None:
        return False
    recovery.used_at = utcnow()
    audit.record(user, "user.recovery_code_used", user, organisation=_home_organisation(user))
    return True


def regenerate_recovery_codes(actor: User) -> list[str]:
    if not actor.two_factor_enabled:
        raise BusinessRuleViolation({"code": ["Set up two-factor authentication first"]})
    codes = _replace_recovery_codes(actor)
    audit.record(
        actor, "user.recovery_codes_regenerated", actor, organisation=_home_organisation(actor)
    )
    return codes


def unused_recovery_code_count(user: User) -> int:
    return (
        db.session.scalar(
            sa.select(sa.func.count(RecoveryCode.id)).where(
                RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)
            )
        )
        or 0
    )


def disable_two_factor(actor: User, password: str) -> None:
    if actor.requires_two_factor:
        raise BusinessRuleViolation(
            {"password": ["Your role needs two-factor authentication, so it cannot be turned off"]}
        )
    if not verify_password(actor.password_hash, password):
        raise BusinessRuleViolation({"password": ["Your password is not right"]})
    actor.totp_secret = None
    actor.totp_enabled_at = None
    actor.totp_last_counter = None
    db.session.execute(sa.delete(RecoveryCode).where(RecoveryCode.user_id == actor.id))
    audit.record(actor, "user.two_factor_disabled", actor, organisation=_home_organisation(actor))
    queue_email(actor.email, "two_factor_disabled", user=actor)


# ---------------------------------------------------------------------------------------------
# Organisations


def _check_area_links(
    type: OrganisationType, region_id: int | None, pcc_area_id: int | None
) -> None:
    """A PCC belongs to a PCC area and a probation region organisation to a region."""
    if type == OrganisationType.PCC and pcc_area_id is None:
        raise BusinessRuleViolation({"pcc_area_id": ["Choose the PCC area"]})
    if type == OrganisationType.PROBATION_REGION and region_id is None:
        raise BusinessRuleViolation({"region_id": ["Choose the probation region"]})


def create_organisation(
    actor: User,
    *,
    name: str,
    type: OrganisationType,
    charity_number: str | None = None,
    companies_house_number: str | None = None,
    region_id: int | None = None,
    pcc_area_id: int | None = None,
) -> Organisation:
    """The authority creates a commissioning organisation (providers register themselves)."""
    if not can_manage_organisations(actor):
        raise PermissionDenied()
    _check_area_links(type, region_id, pcc_area_id)
    organisation = Organisation(
        name=name.strip(),
        type=type,
        charity_number=charity_number or None,
        companies_house_number=companies_house_number or None,
        region_id=region_id,
        pcc_area_id=pcc_area_id,
    )
    if organisation.type == OrganisationType.PCC and pcc_area_id is not None and region_id is None:
        area = db.session.get(PccArea, pcc_area_id)
        organisation.region_id = area.region_id if area else None
    db.session.add(organisation)
    db.session.flush()
    audit.record(
        actor,
        "organisation.created",
        organisation,
        after=audit.snapshot(organisation, ORGANISATION_FIELDS),
    )
    return organisation


def update_organisation(actor: User, organisation: Organisation, **changes) -> Organisation:
    """Change an organisation's details (not its type once people work in it)."""
    if not can_edit_organisation(actor, organisation):
        raise PermissionDenied()
    new_type = changes.get("type", organisation.type)
    if new_type != organisation.type and (
        (organisation.is_provider and new_type not in PROVIDER_TYPES)
        or (organisation.is_commissioner and new_type not in COMMISSIONER_TYPES)
        or organisation.is_authority
    ):
        raise BusinessRuleViolation(
            {"type": ["An organisation cannot move between provider, commissioner and authority"]}
        )
    _check_area_links(
        new_type,
        changes.get("region_id", organisation.region_id),
        changes.get("pcc_area_id", organisation.pcc_area_id),
    )
    before = audit.snapshot(organisation, ORGANISATION_FIELDS)
    # Every audited field but the active flag, which has its own service.
    for field in (f for f in ORGANISATION_FIELDS if f != "active"):
        if field in changes:
            value = changes[field]
            setattr(organisation, field, value.strip() if isinstance(value, str) else value)
    organisation.charity_number = organisation.charity_number or None
    organisation.companies_house_number = organisation.companies_house_number or None
    after = audit.snapshot(organisation, ORGANISATION_FIELDS)
    if before != after:
        audit.record(actor, "organisation.updated", organisation, before=before, after=after)
    return organisation


def set_organisation_active(actor: User, organisation: Organisation, active: bool) -> None:
    if not can_manage_organisations(actor):
        raise PermissionDenied()
    if organisation.is_authority and not active:
        raise BusinessRuleViolation({"active": ["The contracting authority cannot be deactivated"]})
    if organisation.active == active:
        return
    organisation.active = active
    audit.record(
        actor,
        "organisation.activated" if active else "organisation.deactivated",
        organisation,
        before={"active": not active},
        after={"active": active},
    )


# ---------------------------------------------------------------------------------------------
# Teams and invitations


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
        _check_new_password(password, invitation.email, display_name)
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


# ---------------------------------------------------------------------------------------------
# Spend and approval limits

# Which limit each role carries, the field it is given in, and how it reads in a sentence.
LIMIT_OF_ROLE = {
    Role.BUYER: ("spend_limit_pence", "spend limit"),
    Role.APPROVER: ("approval_limit_pence", "approval limit"),
}
_UNCHANGED = object()


def _pounds(pence: int) -> str:
    pounds, rest = divmod(pence, 100)
    return f"£{pounds:,}.{rest:02d}"


def limit_error(value: object, what: str) -> str | None:
    """Why ``value`` (pence, or None for the default) cannot be a limit, if it cannot."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return f"Enter the {what} as an amount in pounds and pence, like 500 or 1250.50"
    if value < 0:
        return f"The {what} cannot be negative"
    if value > LIMIT_MAX_PENCE:
        return f"The {what} must be {_pounds(LIMIT_MAX_PENCE)} or less"
    return None


def set_limits(
    actor: User,
    organisation: Organisation,
    member: User,
    *,
    spend_limit_pence: object = _UNCHANGED,
    approval_limit_pence: object = _UNCHANGED,
) -> bool:
    """An approver of a commissioning organisation sets a buyer's spend limit (None: the
    service's default) and an approver's approval limit (None: no limit). Returns whether
    anything changed; the member is emailed when their limit does."""
    roles = actor.roles_in(organisation) if organisation is not None else set()
    if organisation is None or not roles:
        raise NotFound("Organisation not found")
    if not can_set_limits(actor, organisation):
        raise PermissionDenied("Only an approver can set spend and approval limits")
    member_roles = member.roles_in(organisation)
    if not member_roles:
        raise NotFound("Person not found")
    given = {
        role: value
        for role, value in (
            (Role.BUYER, spend_limit_pence),
            (Role.APPROVER, approval_limit_pence),
        )
        if value is not _UNCHANGED
    }
    errors: dict[str, list[str]] = {}
    for role, value in given.items():
        field, what = LIMIT_OF_ROLE[role]
        if role not in member_roles:
            errors[field] = [
                f"{member.name} is not {'a buyer' if role == Role.BUYER else 'an approver'} "
                f"in {organisation.name}, so they cannot have a {what}"
            ]
        elif message := limit_error(value, what):
            errors[field] = [message]
    if errors:
        raise BusinessRuleViolation(errors)
    # The rows locked, so that of two changes at once the second reads (and audits) the first.
    rows = {
        m.role: m
        for m in lock_rows(
            Membership,
            [
                m.id
                for m in member.memberships
                if m.organisation_id == organisation.id and m.role in given
            ],
        )
    }
    before, after = {}, {}
    for role, value in given.items():
        field, _ = LIMIT_OF_ROLE[role]
        row = rows[role]
        if getattr(row, field) != value:
            before[field], after[field] = getattr(row, field), value
            setattr(row, field, value)
    if not after:
        return False
    db.session.flush()
    audit.record(
        actor,
        "membership.limits_changed",
        object_type="user",
        object_id=member.id,
        organisation=organisation,
        before=before,
        after=after,
    )
    default = current_app.config["BUYER_SPEND_LIMIT_PENCE"]
    queue_email(
        member.email,
        "limits_changed",
        user=member,
        organisation=organisation,
        changed_by=actor,
        spend_limit=(
            None
            if "spend_limit_pence" not in after
            else _pounds(
                default if after["spend_limit_pence"] is None else after["spend_limit_pence"]
            )
        ),
        spend_limit_is_default="spend_limit_pence" in after and after["spend_limit_pence"] is None,
        approval_limit=(
            None
            if "approval_limit_pence" not in after
            else "no limit"
            if after["approval_limit_pence"] is None
            else _pounds(after["approval_limit_pence"])
        ),
    )
    return True


# ---------------------------------------------------------------------------------------------
# API tokens

API_TOKEN_PREFIX = "rsm_"  # noqa: S105 - marks our tokens so secret scanners can spot them


def create_api_token(actor: User, organisation: Organisation, name: str) -> tuple[ApiToken, str]:
    """Make a personal API token acting for ``actor`` in ``organisation``; return it and its secret once."""
    if not can_create_api_token(actor, organisation):
        raise PermissionDenied()
    secret = API_TOKEN_PREFIX + new_secret()
    token = ApiToken(
        user_id=actor.id,
        organisation_id=organisation.id,
        name=name.strip(),
        token_hash=hash_secret(secret),
        token_prefix=secret[:10],
    )
    db.session.add(token)
    db.session.flush()
    audit.record(
        actor,
        "api_token.created",
        token,
        organisation=organisation,
        after={"name": token.name, "prefix": token.token_prefix},
    )
    queue_email(
        actor.email, "api_token_created", user=actor, token=token, organisation=organisation
    )
    return token, secret


def revoke_api_token(actor: User, token: ApiToken) -> None:
    if not can_revoke_api_token(actor, token):
        raise PermissionDenied()
    if token.revoked_at is not None:
        raise BusinessRuleViolation({"token": ["This token has already been revoked"]})
    token.revoked_at = utcnow()
    audit.record(actor, "api_token.revoked", token, organisation=token.organisation)


def authenticate_api_token(secret: str) -> ApiToken | None:
    """The active token for a bearer secret whose user and organisation are still in good standing."""
    if not secret.startswith(API_TOKEN_PREFIX) or len(secret) > 100:
        return None
    # The token with its user, their memberships (which every permission check reads) and the
    # organisation: from this worker's copy while none of them has changed, else in two queries.
    token = token_principal(hash_secret(secret))
    if token is None or token.revoked_at is not None:
        return None
    if not token.user.active or not token.organisation.active:
        return None
    if not token.user.roles_in(token.organisation):
        return None
    now = utcnow()
    # Record use at most once a minute, so reads do not write on every request.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        note_token_use(token, now)
    return token


# ---------------------------------------------------------------------------------------------
# Organisation settings: what e-invoices need (electronic address, VAT registration, bank account)


@dataclass(frozen=True)
class BankDetails:
    account_name: str
    sort_code: str  # six digits
    account_number: str  # eight digits

    @property
    def last4(self) -> str:
        return self.account_number[-4:]


def _require_invoicing_admin(actor: User, organisation: Organisation, *, provider: bool) -> None:
    if not can_edit_invoicing_details(actor, organisation):
        raise PermissionDenied("Only the organisation's administrators can do that")
    if provider and not organisation.is_provider:
        raise PermissionDenied("Only a provider records that")


def set_electronic_address(
    actor: User, organisation: Organisation, scheme: str | None, identifier: str | None
) -> None:
    """Record (or clear, with both empty) the organisation's electronic address: the EndpointID
    its e-invoices carry, in a scheme from Peppol's code list, checked against that scheme."""
    _require_invoicing_admin(actor, organisation, provider=False)
    scheme = (scheme or "").strip() or None
    identifier = re.sub(r"\s+", "", identifier or "").upper() or None
    errors: dict[str, list[str]] = {}
    if scheme is None and identifier is not None:
        errors["endpoint_scheme"] = ["Choose the kind of electronic address"]
    elif scheme is not None and scheme not in ENDPOINT_SCHEMES:
        errors["endpoint_scheme"] = ["Choose a kind of electronic address from the list"]
    elif scheme is not None:
        label, pattern, example = ENDPOINT_SCHEMES[scheme]
        if identifier is None:
            errors["endpoint_id"] = [f"Enter the {label}"]
        elif len(identifier) > ENDPOINT_ID_MAX or not pattern.fullmatch(identifier):
            errors["endpoint_id"] = [f"Enter a {label} in the correct format, like {example}"]
        elif scheme == "0088" and not _gs1_check_digit_ok(identifier):
            errors["endpoint_id"] = [
                "The Global Location Number's last digit (its check digit) is wrong: check it"
            ]
    if errors:
        raise BusinessRuleViolation(errors)
    before = {
        "endpoint_scheme": organisation.endpoint_scheme,
        "endpoint_id": organisation.endpoint_id,
    }
    organisation.endpoint_scheme, organisation.endpoint_id = scheme, identifier
    after = {"endpoint_scheme": scheme, "endpoint_id": identifier}
    if before != after:
        audit.record(
            actor, "organisation.endpoint_changed", organisation, before=before, after=after
        )


def _gs1_check_digit_ok(digits: str) -> bool:
    """GS1's check digit: weights 3 and 1 alternating from the right of the body."""
    body, check = digits[:-1], int(digits[-1])
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return (10 - total % 10) % 10 == check


def normalise_vat_number(text: str | None) -> str | None:
    return re.sub(r"[\s.-]+", "", text or "").upper() or None


def set_vat_registration(
    actor: User, organisation: Organisation, registered: bool | None, vat_number: str | None
) -> None:
    """A provider records whether it is registered for VAT and, if so, its VAT number; invoices
    issued from then on carry it. An unregistered provider charges no VAT."""
    _require_invoicing_admin(actor, organisation, provider=True)
    if registered is None:
        raise BusinessRuleViolation(
            {"vat_registered": ["Say whether your organisation is registered for VAT"]}
        )
    number = normalise_vat_number(vat_number) if registered else None
    if registered and number is None:
        raise BusinessRuleViolation({"vat_number": ["Enter your VAT registration number"]})
    if number is not None and not VAT_NUMBER_PATTERN.fullmatch(number):
        raise BusinessRuleViolation(
            {
                "vat_number": [
                    "Enter a UK VAT registration number in the correct format: GB and 9 digits, "
                    "like GB 123 4567 89"
                ]
            }
        )
    before = {"vat_registered": organisation.vat_registered, "vat_number": organisation.vat_number}
    organisation.vat_registered, organisation.vat_number = bool(registered), number
    after = {"vat_registered": organisation.vat_registered, "vat_number": number}
    if before != after:
        audit.record(
            actor, "organisation.vat_registration_changed", organisation, before=before, after=after
        )


def set_bank_details(
    actor: User,
    organisation: Organisation,
    *,
    account_name: str | None,
    sort_code: str | None,
    account_number: str | None,
) -> None:
    """A provider records the bank account its invoices are paid into by credit transfer. The
    details are sealed at rest; the audit records only that they changed, never the numbers."""
    _require_invoicing_admin(actor, organisation, provider=True)
    name = " ".join((account_name or "").split())
    sort = re.sub(r"[\s-]+", "", sort_code or "")
    number = re.sub(r"[\s-]+", "", account_number or "")
    errors: dict[str, list[str]] = {}
    if not name:
        errors["account_name"] = ["Enter the name on the account"]
    elif len(name) > ACCOUNT_NAME_MAX:
        errors["account_name"] = [
            f"The name on the account must be {ACCOUNT_NAME_MAX} characters or fewer"
        ]
    if not sort:
        errors["sort_code"] = ["Enter the sort code"]
    elif not SORT_CODE_PATTERN.fullmatch(sort):
        errors["sort_code"] = ["Enter a valid sort code: 6 digits, like 30-99-50"]
    if not number:
        errors["account_number"] = ["Enter the account number"]
    elif not ACCOUNT_NUMBER_PATTERN.fullmatch(number):
        errors["account_number"] = ["Enter a valid account number: 8 digits, like 00733445"]
    if errors:
        raise BusinessRuleViolation(errors)
    details = BankDetails(name, sort, number)
    had = organisation.has_bank_details
    organisation.bank_details_sealed = sealed.seal(
        json.dumps({"name": name, "sort_code": sort, "account_number": number})
    )
    organisation.bank_account_last4 = details.last4
    organisation.bank_details_changed_at = utcnow()
    # Only that they changed, and the last four digits pages show anyway.
    audit.record(
        actor,
        "organisation.bank_details_changed",
        organisation,
        before={"bank_details": "recorded" if had else "none"},
        after={"bank_details": "recorded", "account_ending": details.last4},
    )


def bank_details_of(organisation: Organisation) -> BankDetails | None:
    """The provider's bank account, unsealed; None if it has recorded none."""
    if organisation.bank_details_sealed is None:
        return None
    data = json.loads(sealed.unseal(organisation.bank_details_sealed))
    return BankDetails(data["name"], data["sort_code"], data["account_number"])
