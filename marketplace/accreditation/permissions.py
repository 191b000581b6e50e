"""Who may do what in the dynamic purchasing system. Pure predicates, no side effects."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.permissions import has_role, is_authority_admin
from marketplace.accreditation.models import Application, LotMembership


def is_assessor(user: User | None) -> bool:
    return bool(user and user.is_authenticated and Role.ASSESSOR in user.roles)


def can_manage_arrangements(user: User | None) -> bool:
    """Create arrangements, set their lots and criteria, move them between states."""
    return is_authority_admin(user)


def can_apply(user: User | None, organisation: Organisation | None) -> bool:
    """Start, edit, submit or withdraw an application for a provider organisation."""
    return bool(
        organisation is not None
        and organisation.is_provider
        and has_role(user, organisation, Role.PROVIDER_ADMIN)
    )


def can_view_application(user: User | None, application: Application) -> bool:
    """The applicant organisation's people, assessors and the authority see an application."""
    return (
        is_authority_admin(user)
        or is_assessor(user)
        or has_role(user, application.organisation, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
    )


def can_assess(user: User | None) -> bool:
    """Declare conflicts, mark answers, ask for clarification, extend and decide."""
    return is_assessor(user) or is_authority_admin(user)


def can_view_evidence(user: User | None, organisation: Organisation) -> bool:
    """Evidence files are for the applicant organisation and the authority only."""
    return (
        is_authority_admin(user)
        or is_assessor(user)
        or has_role(user, organisation, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
    )


def can_manage_memberships(user: User | None) -> bool:
    """Suspend, reinstate or remove members; ask for renewed self-declarations."""
    return is_authority_admin(user)


def can_view_membership(user: User | None, membership: LotMembership) -> bool:
    return is_authority_admin(user) or has_role(
        user, membership.organisation, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR
    )
