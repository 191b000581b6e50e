"""Journeys through a real browser: register a provider and confirm by the emailed link, sign in as
each role and see that role's navigation and dashboard, be refused another role's pages, sign out.
axe-core checks every page on the way (see conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pyotp
import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.db import db
from tests.factories import (
    DEFAULT_TYPE_FOR_ROLE,
    PASSWORD,
    make_member,
    make_organisation,
)

# What each role sees in the service navigation, in order: the list the page tests check too.
from tests.test_navigation import EXPECTED_NAVIGATION, SIGNED_OUT_NAVIGATION

pytestmark = pytest.mark.e2e

# Pages each role must be refused (endpoints, so the test follows the URL map).
FORBIDDEN_ENDPOINTS = {
    Role.BUYER: ["accounts.audit_log", "accreditation.index"],
    Role.APPROVER: ["accreditation.index", "accounts.organisations"],
    Role.PROVIDER_ADMIN: ["accounts.audit_log", "accounts.organisations"],
    Role.PROVIDER_EDITOR: ["accreditation.index", "accounts.audit_log"],
    Role.ASSESSOR: ["catalogue.index", "orders.index", "accounts.audit_log"],
    # The authority sees every call-off (orders.index), but keeps no rate card.
    Role.AUTHORITY_ADMIN: ["catalogue.index", "orders.budgets"],
}

TWO_FACTOR_ROLES = {Role.ASSESSOR, Role.AUTHORITY_ADMIN}
FORBIDDEN_HEADING = "You do not have permission to see this page"
NOT_FOUND_HEADING = "Page not found"


@dataclass(frozen=True)
class Person:
    email: str
    name: str
    organisation: str
    totp_secret: str | None


def create_person(live_server, role: Role) -> Person:
    """A user holding ``role``, written straight into the live server's database."""
    tag = uuid.uuid4().hex[:8]
    with live_server.app.app_context():
        organisation = make_organisation(
            DEFAULT_TYPE_FOR_ROLE[role], name=f"E2E {role.value} {tag}"
        )
        user = make_member(
            role,
            organisation,
            email=f"{role.value}.{tag}@example.org",
            name=f"Alex {role.value.replace('_', ' ').title()} {tag}",
        )
        person = Person(user.email, user.name, organisation.name, user.totp_secret)
        db.session.commit()
        db.session.remove()
    return person


def url_for_live(live_server, endpoint: str, **values) -> str:
    with live_server.app.test_request_context():
        from flask import url_for

        return url_for(endpoint, **values)


def sign_in(ui, person: Person, password: str = PASSWORD) -> None:
    ui.sign_in(person.email, password)
    if person.totp_secret:
        ui.enter_security_code(pyotp.TOTP(person.totp_secret).now())


def test_register_a_provider_confirm_by_email_and_sign_in(ui, live_server):
    tag = uuid.uuid4().hex[:8]
    email = f"kim.okafor.{tag}@new-leaf.example.org"
    name = "Kim Okafor"
    organisation = f"New Leaf Mentoring {tag}"
    password = "lantern otter quarry 1987 violet"

    ui.goto("/register")
    assert ui.heading() == "Register your organisation"
    ui.fill("Organisation name", organisation)
    ui.page.get_by_role("radio", name=OrganisationType.PROVIDER_VCSE.label, exact=True).check()
    for question, answer in (
        ("What is your organisation’s legal form?", "Registered charity"),
        ("How many staff does your organisation employ?", "10 to 49"),
        ("What is your organisation’s annual turnover?", "Up to £2 million"),
    ):
        group = ui.page.get_by_role("group", name=question, exact=True)
        group.get_by_label(answer, exact=True).check()
    ui.fill("Charity number (optional)", "1234567")
    ui.page.get_by_label("Main probation region (optional)", exact=True).select_option(
        label="Wales"
    )
    ui.fill("Your full name", name)
    ui.fill("Your work email address", email)
    ui.fill("Create a password", password)
    ui.fill("Confirm your password", password)
    ui.press_button("Register")

    assert ui.page.url == live_server.absolute("/register/check-your-email")
    assert ui.heading() == "Check your email"
    assert email in ui.page.locator("main").inner_text()

    # The confirmation email, as the SMTP server received it.
    message = live_server.smtp.wait_for(lambda m: m.to == email)
    assert message.subject == "Confirm your email address"
    assert f"Dear {name}," in message.body
    [link] = [link for link in message.links() if "/confirm-email/" in link]
    assert link.startswith(live_server.url + "/confirm-email/")

    # Opening the link does not use it up; the button does.
    ui.goto(link)
    assert ui.heading() == "Confirm your email address"
    assert email in ui.page.locator("main").inner_text()
    ui.press_button("Confirm email address")
    assert ui.page.url.startswith(live_server.absolute("/sign-in"))
    assert "Your email address is confirmed" in ui.banner()

    # The link works once.
    ui.goto(link, status=410)
    assert ui.heading() == "This link has expired or has already been used"

    ui.sign_in(email, password)
    assert ui.page.url == live_server.absolute("/")
    assert ui.heading() == f"Welcome, {name}"
    assert organisation in ui.page.locator("main").inner_text()
    assert ui.navigation() == EXPECTED_NAVIGATION[Role.PROVIDER_ADMIN]
    for item in ("Accreditation", "Rate card", "Team"):
        assert ui.page.locator("#service-navigation").get_by_role("link", name=item).is_visible()

    visit_every_navigation_item(ui)


def visit_every_navigation_item(ui) -> None:
    """Open each item of the navigation: none is refused or broken."""
    for text, href in ui.navigation_links():
        response = ui.goto(href)
        assert response.status == 200, f"{text} ({href}) answered {response.status}"
        assert ui.heading() not in (FORBIDDEN_HEADING, NOT_FOUND_HEADING), f"{text} ({href})"


@pytest.mark.parametrize("role", list(Role), ids=lambda role: role.value)
def test_each_role_sees_its_own_navigation_and_dashboard(ui, live_server, role):
    person = create_person(live_server, role)

    sign_in(ui, person)

    assert ui.page.url == live_server.absolute("/")
    assert ui.heading() == f"Welcome, {person.name}"
    main = ui.page.locator("main").inner_text()
    assert person.organisation in main
    assert f"You are signed in as {role.value.replace('_', ' ')}" in main
    assert ui.navigation() == EXPECTED_NAVIGATION[role]

    visit_every_navigation_item(ui)

    # Another role's pages are refused with the 403 page.
    for endpoint in FORBIDDEN_ENDPOINTS[role]:
        ui.goto(url_for_live(live_server, endpoint), status=403)
        assert ui.heading() == FORBIDDEN_HEADING, endpoint
        assert ui.navigation() == EXPECTED_NAVIGATION[role]  # still signed in, same menu

    # Signing out ends the session.
    ui.goto("/")
    ui.sign_out()
    assert ui.page.url.startswith(live_server.absolute("/sign-in"))
    assert "You have signed out" in ui.banner()
    assert ui.navigation() == SIGNED_OUT_NAVIGATION
    ui.goto(url_for_live(live_server, "dashboard.index"))
    assert ui.heading() == "Buy and sell rehabilitation services"  # the signed-out landing page
    ui.goto(url_for_live(live_server, "accounts.account"))
    assert ui.page.url.startswith(live_server.absolute("/sign-in"))  # sent to sign in


def test_two_factor_is_asked_for_and_a_wrong_code_is_refused(ui, live_server):
    person = create_person(live_server, Role.ASSESSOR)

    ui.sign_in(person.email, PASSWORD)
    ui.fill(
        "Security code", "000000" if pyotp.TOTP(person.totp_secret).now() != "000000" else "111111"
    )
    ui.press_button("Continue")

    assert ui.heading() == "Enter your security code"
    assert "The security code is not right" in ui.page.locator(".govuk-error-summary").inner_text()
    assert ui.page.title().startswith("Error: ")
    ui.enter_security_code(pyotp.TOTP(person.totp_secret).now())
    assert ui.heading() == f"Welcome, {person.name}"


def test_wrong_password_is_refused_without_saying_which_part_was_wrong(ui, live_server):
    person = create_person(live_server, Role.BUYER)

    ui.sign_in(person.email, "not the password at all")

    assert ui.heading() == "Sign in"
    assert (
        "Enter a correct email address and password"
        in ui.page.locator(".govuk-error-summary").inner_text()
    )
    assert ui.navigation() == SIGNED_OUT_NAVIGATION


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/", "Buy and sell rehabilitation services"),
        ("/accessibility", None),  # "Accessibility statement for <service name>"
        ("/cookies", "Cookies"),
        ("/privacy", "Privacy notice"),
        ("/sign-in", "Sign in"),
        ("/register", "Register your organisation"),
        ("/forgot-password", None),
        ("/confirm-email", None),
    ],
)
def test_public_pages(ui, path, heading):
    ui.goto(path)

    if heading is None:
        assert ui.heading()
    else:
        assert ui.heading() == heading
    assert "Rehabilitation Services Marketplace" in ui.page.title()


def test_page_not_found(ui):
    ui.goto(f"/no-such-page-{uuid.uuid4().hex[:6]}", status=404)

    assert ui.heading() == NOT_FOUND_HEADING


def test_register_form_errors_are_shown_in_the_error_summary(ui):
    ui.goto("/register")
    ui.press_button("Register")

    assert ui.page.title().startswith("Error: ")
    summary = ui.page.locator(".govuk-error-summary")
    assert summary.is_visible()
    text = summary.inner_text()
    assert "Enter your organisation's name" in text
    assert "Select what kind of organisation it is" in text
