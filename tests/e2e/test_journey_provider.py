"""Journeys of a provider's staff (JOURNEYS.md P1–P8), from their home page, by links, buttons and
forms alone; axe-core checks every page (conftest.py)."""

from __future__ import annotations

import time
import uuid

import pyotp
import pytest

from marketplace.db import db
from tests.accreditation.builders import make_provider
from tests.factories import PASSWORD

pytestmark = pytest.mark.e2e


def test_p1_invite_a_colleague_who_accepts_by_email_then_turn_on_two_factor(journey, live_server):
    tag = uuid.uuid4().hex[:8]
    with live_server.app.app_context():
        organisation, admin = make_provider(f"Lantern Recovery {tag}")
        admin.email, admin.name = f"priya.shah.{tag}@lantern.example.org", f"Priya Shah {tag}"
        organisation_name, admin_email = organisation.name, admin.email
        db.session.commit()
        db.session.remove()
    colleague_email = f"tom.reid.{tag}@lantern.example.org"
    colleague_password = "copper lantern meadow 4412"

    journey.sign_in_from_home(admin_email, PASSWORD)
    journey.follow("Team", within="#service-navigation")
    journey.follow("Invite someone")
    assert journey.heading() == "Invite someone"

    # Forgot to say what they will do, and mistyped the address.
    journey.fill("Their full name", "Tom Reid")
    journey.fill("Their email address", "tom.reid.lantern.example.org")
    journey.press("Send invitation")
    journey.expect_errors("email address", "Select what they will do")
    journey.fill("Their email address", colleague_email)
    journey.choose("Provider editor")
    journey.press("Send invitation")
    assert colleague_email in journey.main_text()

    invitation = live_server.smtp.wait_for(lambda m: m.to == colleague_email)
    assert organisation_name in invitation.subject
    assert "Dear Tom Reid," in invitation.body
    journey.sign_out()

    # The colleague opens the link in the email and makes an account.
    journey.open_link_in_email(invitation, "/invitations/")
    assert journey.heading() == f"Join {organisation_name}"
    journey.fill("Full name", "Tom Reid")
    journey.fill("Create a password", colleague_password)
    journey.fill("Confirm your password", "something else entirely 99")
    journey.press("Accept invitation")
    journey.expect_errors("password")
    journey.fill("Create a password", colleague_password)
    journey.fill("Confirm your password", colleague_password)
    journey.press("Accept invitation")
    assert journey.heading() == "Welcome, Tom Reid"  # signed in by accepting
    assert "provider editor" in journey.main_text()
    journey.follow("Rate card", within="#service-navigation")
    journey.sign_out()
    journey.sign_in_from_home(colleague_email, colleague_password)
    assert journey.heading() == "Welcome, Tom Reid"
    journey.sign_out()

    # The administrator sees the colleague in the team, then turns on two-factor sign-in.
    journey.sign_in_from_home(admin_email, PASSWORD)
    journey.follow("Team", within="#service-navigation")
    assert "Tom Reid" in journey.main_text() and colleague_email in journey.main_text()
    journey.follow("Home", within="#service-navigation")
    journey.follow("Set up two-factor authentication")
    secret = journey.page.locator("code.app-secret-key").inner_text().strip().replace(" ", "")
    wrong_code = "000000" if pyotp.TOTP(secret).now() != "000000" else "111111"
    journey.fill("Security code from your app", wrong_code)
    journey.press("Turn on two-factor authentication")
    journey.expect_errors("The code is not right")
    journey.fill("Security code from your app", pyotp.TOTP(secret).now())
    journey.press("Turn on two-factor authentication")
    assert journey.heading() == "Save your recovery codes"
    enabled = live_server.smtp.wait_for(
        lambda m: m.to == admin_email and "two-factor" in m.subject.lower()
    )
    assert "two-factor" in enabled.body.lower()
    journey.follow("I have saved my codes")
    journey.sign_out()

    # From now on signing in asks for a code: the app's next one (a code works once).
    journey.sign_in_from_home(admin_email, PASSWORD)
    journey.enter_security_code(pyotp.TOTP(secret).at(time.time() + 30))
    assert journey.heading() == f"Welcome, Priya Shah {tag}"
