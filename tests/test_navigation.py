"""Each role sees its own navigation and dashboard; feature pages refuse the wrong roles."""

from __future__ import annotations

import re

import pytest

from marketplace.accounts.models import Role
from marketplace.core.db import commit
from tests.factories import make_member

EXPECTED_NAVIGATION = {
    Role.BUYER: ["Home", "Find services", "Call-offs", "Competitions", "Budgets", "Invoices"],
    Role.APPROVER: [
        "Home",
        "Find services",
        "Call-offs",
        "Competitions",
        "Budgets",
        "Invoices",
        "Team",
    ],
    Role.PROVIDER_ADMIN: [
        "Home",
        "Call-offs",
        "Competitions",
        "Invoices",
        "Rate card",
        "Accreditation",
        "Team",
    ],
    Role.PROVIDER_EDITOR: ["Home", "Call-offs", "Competitions", "Invoices", "Rate card"],
    Role.ASSESSOR: ["Home", "Assessments"],
    Role.AUTHORITY_ADMIN: [
        "Home",
        "Call-offs",
        "Budgets",
        "Payment performance",
        "Arrangements",
        "Members",
        "Organisations",
        "Team",
        "Audit log",
        "Scheduled jobs",
    ],
}

# What a visitor sees before signing in: the catalogue, the open further competitions and the
# public registers.
SIGNED_OUT_NAVIGATION = ["Find services", "Open competitions", "Register of members"]

EXPECTED_NEXT_ACTION = {
    Role.BUYER: "Find a service",
    Role.APPROVER: "Call-offs waiting for your approval",
    Role.PROVIDER_ADMIN: "Join the dynamic purchasing system",
    Role.PROVIDER_EDITOR: "Your rate card",
    Role.ASSESSOR: "Applications to assess",
    Role.AUTHORITY_ADMIN: "Set up an arrangement",
}

FEATURE_PAGES = {
    "/accreditation/": {Role.PROVIDER_ADMIN, Role.ASSESSOR, Role.AUTHORITY_ADMIN},
    "/catalogue/": {Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR},
    # The authority sees every call-off.
    "/call-offs/": {
        Role.BUYER,
        Role.APPROVER,
        Role.PROVIDER_ADMIN,
        Role.PROVIDER_EDITOR,
        Role.AUTHORITY_ADMIN,
    },
    "/invoices/": {Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR},
    "/invoices/payment-performance": {Role.BUYER, Role.APPROVER, Role.AUTHORITY_ADMIN},
    "/insight/transparency": {Role.BUYER, Role.APPROVER, Role.AUTHORITY_ADMIN},
}


def navigation_items(html: str) -> list[str]:
    nav = html.split('class="govuk-service-navigation__list"', 1)[1].split("</ul>", 1)[0]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", item)).strip()
        for item in re.findall(r"<li[^>]*>(.*?)</li>", nav, re.S)
    ]


@pytest.mark.parametrize("role", list(Role))
def test_navigation_and_dashboard_per_role(client, login, role):
    user = make_member(role)
    commit()
    login(user)
    html = client.get("/").get_data(as_text=True)
    assert navigation_items(html) == EXPECTED_NAVIGATION[role]
    assert EXPECTED_NEXT_ACTION[role] in html


@pytest.mark.parametrize("path,allowed", FEATURE_PAGES.items())
@pytest.mark.parametrize("role", list(Role))
def test_feature_pages_per_role(client, login, path, allowed, role):
    user = make_member(role)
    commit()
    login(user)
    response = client.get(path)
    assert response.status_code == (200 if role in allowed else 403)


@pytest.mark.parametrize("path", FEATURE_PAGES)
def test_feature_pages_need_sign_in(client, path):
    response = client.get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")


def test_signed_out_home_is_the_landing_page(client):
    html = client.get("/").get_data(as_text=True)
    assert "Register your organisation" in html
    assert navigation_items(html) == SIGNED_OUT_NAVIGATION


@pytest.mark.parametrize("role", list(Role))
def test_dashboard_query_count_is_bounded(client, login, count_queries, role):
    """The dashboard is the busiest page: it must not grow a query per membership or item."""
    user = make_member(role)
    commit()
    login(user)
    client.get("/")  # warm up: first request loads reference data caches
    with count_queries() as counter:
        assert client.get("/").status_code == 200
    assert counter.count <= 8, counter.statements
