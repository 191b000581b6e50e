"""Service navigation per role, and the organisation switcher's data, for every page."""

from __future__ import annotations

from flask import has_request_context, request
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from marketplace.accounts.models import Role, User
from marketplace.accounts.session import current_organisation
from marketplace.core.db import db
from marketplace.core.urls import fixed_url

# (text, endpoint, roles that see it); order is the order in the navigation bar.
NAVIGATION = [
    ("Home", "dashboard.index", set(Role)),
    ("Find services", "catalogue_search.search", {Role.BUYER, Role.APPROVER}),
    (
        "Call-offs",
        "orders.index",
        {
            Role.BUYER,
            Role.APPROVER,
            Role.PROVIDER_ADMIN,
            Role.PROVIDER_EDITOR,
            Role.AUTHORITY_ADMIN,
        },
    ),
    ("Competitions", "competitions.yours", {Role.BUYER, Role.APPROVER}),
    ("Competitions", "competitions.invited", {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}),
    ("Budgets", "orders.budgets", {Role.BUYER, Role.APPROVER}),
    ("Budgets", "funding.all_budgets", {Role.AUTHORITY_ADMIN}),
    (
        "Invoices",
        "invoices.index",
        {Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR},
    ),
    ("Payment performance", "invoices.payment_performance", {Role.AUTHORITY_ADMIN}),
    ("Rate card", "catalogue.index", {Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR}),
    ("Accreditation", "accreditation.index", {Role.PROVIDER_ADMIN}),
    ("Assessments", "accreditation.assessments", {Role.ASSESSOR}),
    ("Arrangements", "accreditation.arrangements", {Role.AUTHORITY_ADMIN}),
    ("Members", "accreditation.members", {Role.AUTHORITY_ADMIN}),
    ("Organisations", "accounts.organisations", {Role.AUTHORITY_ADMIN}),
    ("Team", "accounts.team", {Role.PROVIDER_ADMIN, Role.APPROVER, Role.AUTHORITY_ADMIN}),
    ("Audit log", "accounts.audit_log", {Role.AUTHORITY_ADMIN}),
    ("Scheduled jobs", "scheduler.runs", {Role.AUTHORITY_ADMIN}),
]

# What a visitor who is not signed in can use: the catalogue, the open further competitions
# and the public registers.
PUBLIC_NAVIGATION = [
    ("Find services", "catalogue_search.search"),
    ("Open competitions", "competitions.index"),
    ("Register of members", "public_arrangements.arrangements"),
]


def _items(entries: list[tuple[str, str]]) -> list[dict]:
    """The navigation's items for (text, endpoint) pairs. One item is current: the page's own
    (Budgets, at /call-offs/budgets) over the section whose address it starts with
    (Call-offs)."""
    endpoint_now, path = request.endpoint, request.path
    items = []
    for text, endpoint in entries:
        href = fixed_url(endpoint)
        active = endpoint_now == endpoint or (href != "/" and path.startswith(href))
        items.append({"text": text, "href": href, "active": active})
    exact = [item for item in items if item["href"] == path]
    if exact:
        for item in items:
            item["active"] = item in exact
    return items


def navigation_items(user: User | None = None, roles: set[Role] | None = None) -> list[dict]:
    """The navigation the signed-in person's roles in their current organisation give them
    (``roles``, when the caller has them already)."""
    if user is None:
        user = current_user._get_current_object()
    if not user or not user.is_authenticated:
        return _items(PUBLIC_NAVIGATION)
    if roles is None:
        roles = user.roles_in(current_organisation())
    entries, seen = [], set()
    for text, endpoint, allowed in NAVIGATION:
        if roles & allowed and text not in seen:
            seen.add(text)
            entries.append((text, endpoint))
    return _items(entries)


EMPTY_CONTEXT = {
    "service_navigation": [],
    "current_organisation": None,
    "switchable_organisations": [],
}


def navigation_context() -> dict:
    # Emails render outside requests, where there is nobody signed in.
    if not has_request_context():
        return EMPTY_CONTEXT
    try:
        # The person once, not through the proxy at each use.
        user = current_user._get_current_object()
        if not user or not user.is_authenticated:
            return {**EMPTY_CONTEXT, "service_navigation": navigation_items(user)}
    except SQLAlchemyError:
        # The 500 page must render even when the database is what failed.
        db.session.rollback()
        return EMPTY_CONTEXT
    organisation = current_organisation()
    roles = user.roles_in(organisation)
    return {
        "service_navigation": navigation_items(user, roles),
        "current_organisation": organisation,
        "switchable_organisations": user.organisations,
        "current_roles": roles,
    }
