"""Who may do what with accounts and organisations. Pure predicates, no side effects."""

from __future__ import annotations

from marketplace.accounts.models import (
    ORGANISATION_ADMIN_ROLES,
    ApiToken,
    Invitation,
    Organisation,
    Role,
    User,
)


def is_authority_admin(user: User | None) -> bool:
    return bool(user and user.is_authenticated and Role.AUTHORITY_ADMIN in user.roles)


def has_role(user: User | None, organisation: Organisation | None, *roles: Role) -> bool:
    """The user holds one of ``roles`` in this (active) organisation."""
    if not user or not user.is_authenticated or organisation is None or not organisation.active:
        return False
    return bool(user.roles_in(organisation) & set(roles))


def can_manage_team(user: User | None, organisation: Organisation | None) -> bool:
    """Organisation admins manage their own team; the authority admin manages commissioners' teams."""
    if organisation is None:
        return False
    if has_role(user, organisation, *ORGANISATION_ADMIN_ROLES):
        return True
    return is_authority_admin(user) and (organisation.is_commissioner or organisation.is_authority)


def can_invite(user: User | None, organisation: Organisation | None, role: Role) -> bool:
    """Invite someone to ``organisation`` in ``role`` (the role must fit the organisation)."""
    if organisation is None or role not in organisation.allowed_roles:
        return False
    return can_manage_team(user, organisation)


def can_revoke_invitation(user: User | None, invitation: Invitation) -> bool:
    return can_manage_team(user, invitation.organisation)


def can_view_organisation(user: User | None, organisation: Organisation) -> bool:
    return is_authority_admin(user) or has_role(user, organisation, *Role)


def can_manage_organisations(user: User | None) -> bool:
    """Create commissioning organisations, activate and deactivate organisations."""
    return is_authority_admin(user)


def can_edit_organisation(user: User | None, organisation: Organisation) -> bool:
    return can_manage_organisations(user) or has_role(
        user, organisation, Role.PROVIDER_ADMIN, Role.APPROVER
    )


def can_view_audit(user: User | None) -> bool:
    return is_authority_admin(user)


def can_view_scheduled_runs(user: User | None) -> bool:
    """The scheduler's runs (marketplace/core/scheduler) are the authority's to watch."""
    return is_authority_admin(user)


def can_edit_invoicing_details(user: User | None, organisation: Organisation) -> bool:
    """An organisation's own administrators record its electronic address, and (a provider's)
    VAT registration and bank account; nobody else, the authority included."""
    return has_role(user, organisation, *ORGANISATION_ADMIN_ROLES)


def can_set_limits(user: User | None, organisation: Organisation | None) -> bool:
    """Set buyers' spend limits and approvers' approval limits: an approver of the (active)
    organisation."""
    return has_role(user, organisation, Role.APPROVER)


def can_create_api_token(user: User | None, organisation: Organisation) -> bool:
    """Make a personal API token acting in ``organisation``: anyone who works in it."""
    return bool(user and user.is_authenticated and user.roles_in(organisation))


def can_revoke_api_token(user: User | None, token: ApiToken) -> bool:
    """A token is revoked only by the person it acts for."""
    return bool(user and user.is_authenticated and token.user_id == user.id)


def can_read_classification(user: User | None, organisation: Organisation) -> bool:
    """A provider's VCSE and SME classification and its history: its own people
    (administrators and editors) and the authority's administrators."""
    if not organisation.is_provider:
        return False
    return is_authority_admin(user) or has_role(
        user, organisation, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR
    )


def can_confirm_classification(user: User | None, organisation: Organisation) -> bool:
    """A provider's administrators confirm or change its classification each year."""
    return organisation.is_provider and has_role(user, organisation, Role.PROVIDER_ADMIN)


def can_correct_classification(user: User | None, organisation: Organisation) -> bool:
    """The authority's administrators correct any provider's classification, with a reason."""
    return organisation.is_provider and is_authority_admin(user)
