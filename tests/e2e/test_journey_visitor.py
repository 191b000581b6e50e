"""Journeys of a signed-out visitor (JOURNEYS.md V1, V2), from the public home page, by links,
buttons and forms alone; axe-core checks every page (conftest.py)."""

from __future__ import annotations

import uuid

import pytest

pytestmark = pytest.mark.e2e


def test_v2_register_a_provider_confirm_the_email_and_sign_in(journey, live_server):
    tag = uuid.uuid4().hex[:8]
    email = f"amara.osei.{tag}@riverside-mentoring.example.org"
    name = "Amara Osei"
    organisation = f"Riverside Mentoring {tag}"
    password = "kettle harbour violet 2031 pebble"

    journey.home()
    journey.follow("Register your organisation")
    assert journey.heading() == "Register your organisation"

    # A tired person: the passwords do not match and the email has a typo.
    journey.fill("Organisation name", organisation)
    journey.choose("Voluntary, community or social enterprise provider")
    journey.fill("Your full name", name)
    journey.fill("Your work email address", email.replace("@", ""))
    journey.fill("Create a password", password)
    journey.fill("Confirm your password", password + "x")
    journey.press("Register")
    assert journey.heading() == "Register your organisation"
    journey.expect_errors("email address", "passwords")

    journey.fill("Your work email address", email)
    journey.fill("Create a password", password)
    journey.fill("Confirm your password", password)
    journey.press("Register")
    assert journey.heading() == "Check your email"
    assert email in journey.main_text()

    message = live_server.smtp.wait_for(lambda m: m.to == email)
    assert message.subject == "Confirm your email address"
    assert f"Dear {name}," in message.body
    journey.open_link_in_email(message, "/confirm-email/")
    assert journey.heading() == "Confirm your email address"
    journey.press("Confirm email address")
    assert "Your email address is confirmed" in journey.banner()

    # Signing in with the wrong password first.
    journey.fill("Email address", email)
    journey.fill("Password", "not it")
    journey.press("Sign in")
    journey.expect_errors("Enter a correct email address and password")
    journey.fill("Email address", email)
    journey.fill("Password", password)
    journey.press("Sign in")
    assert journey.heading() == f"Welcome, {name}"
    assert organisation in journey.main_text()
