"""Service navigation per role, and the organisation switcher's data, for every page."""

from __future__ import annotations

from flask import current_app, has_request_context, request, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from marketplace.accounts.models import Role
from marketplace.accounts.session import current_organisation
from marketplace.db import db

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
]

# What a visitor who is not signed in can use: the catalogue and the public registers.
PUBLIC_NAVIGATION = [
    ("Find services", "catalogue_search.search"),
    ("Register of members", "public_arrangements.arrangements"),
]


def fixed_url(endpoint: str, **query: str) -> str:
    """The address of a page whose address never changes while the app runs: one that takes no
    arguments, with at most a fixed query (``waiting="yes"``), never a record's id. Each is built
    once per script root. A Jinja global too, for the links in every page's layout."""
    cache = current_app.extensions.setdefault("fixed_urls", {})
    key = (endpoint, request.script_root, *sorted(query.items()))
    href = cache.get(key)
    if href is None:
        if len(cache) >= 1000:  # the callers name a few dozen pages; never grow without end
            cache.clear()
        href = cache[key] = url_for(endpoint, **query)
    return href


def _item(text: str, endpoint: str) -> dict:
    href = fixed_url(endpoint)
    active = request.endpoint == endpoint or (href != "/" and request.path.startswith(href))
    return {"text": text, "href": href, "active": active}


def navigation_items() -> list[dict]:
    """The navigation the signed-in person's roles in their current organisation give them."""
    if not current_user or not current_user.is_authenticated:
        return [_item(text, endpoint) for text, endpoint in PUBLIC_NAVIGATION]
    roles = current_user.roles_in(current_organisation())
    items, seen = [], set()
    for text, endpoint, allowed in NAVIGATION:
        if roles & allowed and text not in seen:
            seen.add(text)
            items.append(_item(text, endpoint))
    # One item is current: the page's own (Budgets, at /call-offs/budgets) over the section
    # whose address it starts with (Call-offs).
    exact = [item for item in items if item["href"] == request.path]
    if exact:
        for item in items:
            item["active"] = item in exact
    return items


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
        if not current_user or not current_user.is_authenticated:
            return {**EMPTY_CONTEXT, "service_navigation": navigation_items()}
    except SQLAlchemyError:
        # The 500 page must render even when the database is what failed.
        db.session.rollback()
        return EMPTY_CONTEXT
    return {
        "service_navigation": navigation_items(),
        "current_organisation": current_organisation(),
        "switchable_organisations": current_user.organisations,
        "current_roles": current_user.roles_in(current_organisation()),
    }
