"""Who may do what with service listings and rate cards. Pure predicates, no side effects."""

from __future__ import annotations

from marketplace.accounts.models import Organisation, Role, User
from marketplace.accounts.permissions import has_role, is_authority_admin
from marketplace.catalogue.models import Listing

LISTING_EDITORS = (Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR)
BUYING_ROLES = (Role.BUYER, Role.APPROVER)


def can_manage_listings(user: User | None, organisation: Organisation | None) -> bool:
    """Create, edit, publish, pause, withdraw and price the organisation's listings."""
    return bool(
        organisation is not None
        and organisation.is_provider
        and has_role(user, organisation, *LISTING_EDITORS)
    )


def can_edit_listing(user: User | None, listing: Listing) -> bool:
    return can_manage_listings(user, listing.organisation)


def can_view_listing_history(user: User | None, listing: Listing) -> bool:
    """The provider's own people and the authority see a listing's change history."""
    return can_edit_listing(user, listing) or is_authority_admin(user)


def can_see_referral_contact(user: User | None) -> bool:
    """Referral contacts are for signed-in buyers, not the public."""
    return bool(
        user is not None
        and user.is_authenticated
        and (any(role in user.roles for role in BUYING_ROLES) or is_authority_admin(user))
    )
