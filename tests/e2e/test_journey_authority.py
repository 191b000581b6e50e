"""Journeys of the contracting authority's administrator (JOURNEYS.md U1–U3), from the home page,
by links, buttons and forms alone; axe-core checks every page (conftest.py)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core.db import db
from tests.factories import PASSWORD, after_month, make_member, make_organisation

pytestmark = pytest.mark.e2e


def authority_admin(live_server, tag: str):
    """An authority administrator with two-factor sign-in set up: (email, name, TOTP secret)."""
    with live_server.app.app_context():
        authority = make_organisation(OrganisationType.AUTHORITY, name=f"HMPPS Commissioning {tag}")
        admin = make_member(
            Role.AUTHORITY_ADMIN,
            authority,
            email=f"ruth.adeyemi.{tag}@justice.example.gov.uk",
            name=f"Ruth Adeyemi {tag}",
        )
        person = (admin.email, admin.name, admin.totp_secret)
        db.session.commit()
        db.session.remove()
    return person


def test_u1_create_an_arrangement_make_it_live_and_set_up_a_commissioning_organisation(
    journey, live_server
):
    tag = uuid.uuid4().hex[:6].upper()
    email, name, secret = authority_admin(live_server, tag)
    today = date.today()
    arrangement = f"Community rehabilitation DPS {tag}"

    journey.sign_in_from_home(email, PASSWORD, totp_secret=secret)
    journey.follow("Go to arrangements")
    journey.follow("Create an arrangement")

    # The end date is before the start date, and no lot is chosen.
    journey.fill("Name", arrangement)
    journey.fill("Reference", f"DPS-{tag}")
    journey.fill("What it buys", "Mentoring and employment support for people on probation.")
    journey.choose("Dynamic market (Procurement Act 2023)")
    journey.fill("Start date", today.isoformat())
    journey.fill("End date", (today - timedelta(days=1)).isoformat())
    journey.fill("Direct-award limit, including VAT", "30000")
    journey.fill("Decision period", "10")
    journey.fill("Extended decision period", "15")
    journey.choose("North West")
    journey.choose("Greater Manchester")
    journey.press("Create arrangement")
    journey.expect_errors("end date must be after the start date")

    journey.fill("End date", (today + timedelta(days=4 * 365)).isoformat())
    journey.choose("Education, Training and Employment")
    journey.choose("Emotional Wellbeing")
    journey.press("Create arrangement")
    assert journey.heading().startswith(arrangement)
    assert "Pending" in journey.heading()

    # A question for each lot: a pass/fail yes/no question, once with no question text.
    for lot in ("Education, Training and Employment", "Emotional Wellbeing"):
        journey.follow(f"Add a question to {lot}", exact=False)
        journey.choose("Yes or no")
        journey.choose_in("Must providers answer it?", "Yes")
        journey.choose_in("Does the answer decide admission (pass or fail)?", "Yes", exact=False)
        journey.press("Save question")
        journey.expect_errors("Enter the question")
        question = f"Do your staff who work with people on probation have DBS checks? ({lot})"
        journey.fill("Question", question)
        journey.press("Save question")
        journey.expect_errors("Choose the answer that passes")
        journey.choose_in("For a yes or no question: which answer passes?", "Yes")
        journey.press("Save question")
        assert f"DBS checks? ({lot})" in journey.main_text()

    journey.follow("Change status")
    journey.press("Change status")
    journey.expect_errors("status")
    journey.choose("Live", exact=False)
    journey.press("Change status")
    assert "Live" in journey.heading()

    # The register of members is public at once.
    journey.follow("Public page")
    assert arrangement in journey.heading()

    # A new Police and Crime Commissioner's office, and its first member of staff.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Manage organisations")
    journey.follow("Create a commissioning organisation")
    office = f"Police and Crime Commissioner for Cumbria {tag}"
    journey.fill("Organisation name", office)
    journey.choose("Police and Crime Commissioner")
    journey.press("Create organisation")
    journey.expect_errors("PCC area")
    journey.select("Police and Crime Commissioner area", "Cumbria")
    journey.press("Create organisation")
    assert office in journey.heading()

    staff_email = f"dan.holt.{tag.lower()}@cumbria-pcc.example.gov.uk"
    journey.follow("Invite someone")
    journey.fill("Their full name", "Dan Holt")
    journey.fill("Their email address", staff_email)
    journey.press("Send invitation")
    journey.expect_errors("Select what they will do")
    journey.choose("Approver (budget holder)", exact=False)
    journey.press("Send invitation")
    assert staff_email in journey.main_text()

    invitation = live_server.smtp.wait_for(lambda m: m.to == staff_email)
    assert office in invitation.subject
    assert "Dear Dan Holt," in invitation.body
    assert any("/invitations/" in link for link in invitation.links())


def test_u3_find_a_call_offs_history_in_the_audit_log_and_read_payment_performance(
    journey, live_server
):
    from marketplace.invoices.models import Invoice
    from marketplace.invoices.services import issuing, monthly_run
    from tests.invoices.test_invoice_services import accepted_call_off, deliver, period_of
    from tests.orders.factories import build_orders_world

    tag = uuid.uuid4().hex[:6].upper()
    email, name, secret = authority_admin(live_server, tag)
    with live_server.app.app_context():
        world = build_orders_world(price_pence=12_000)
        world.region.name = f"Probation Service – Cumbria {tag}"
        call_off = accepted_call_off(world, po_number=f"PO-{tag}")
        deliver(world, call_off, call_off.start_date, 2)
        monthly_run.run_period(period_of(call_off.start_date), now=after_month(call_off.start_date))
        import sqlalchemy as sa

        invoice = db.session.scalar(sa.select(Invoice).where(Invoice.call_off_id == call_off.id))
        issuing.issue(world.provider_admin, invoice)
        issuing.validate(world.buyer, invoice)
        issuing.mark_paid_by_bacs(world.buyer, invoice, f"BACS-{tag}", date.today())
        reference, buyer_name = call_off.reference, world.region.name
        db.session.commit()
        db.session.remove()

    journey.sign_in_from_home(email, PASSWORD, totp_secret=secret)
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(reference)
    assert reference in journey.heading()
    journey.follow("Every change to this call-off in the audit log")
    assert journey.heading() == "Audit log"
    history = journey.main_text()
    assert "call_off.placed" in history and "call_off.accepted" in history
    assert "user.signed_in" not in history  # only this call-off's events

    # Narrowing it by a date typed wrongly is answered on the same page.
    journey.fill("From (YYYY-MM-DD)", "2026-02-31")
    journey.press("Search")
    journey.expect_errors("date")
    journey.fill("From (YYYY-MM-DD)", date.today().isoformat())
    journey.press("Search")
    assert "call_off.accepted" in journey.main_text()

    journey.follow("Payment performance", within="#service-navigation")
    assert journey.heading() == "Payment performance"
    figures = journey.main_text()
    assert buyer_name in figures
    assert "100.0%" in figures  # paid on the day it was validated: within 30 days


def test_u2_suspend_one_member_ask_another_to_redeclare_and_remove_a_third(
    journey, other_journey, live_server
):
    from tests.e2e import worlds

    world = worlds.members_world(live_server)
    admin = world.authority_admin
    suspended, redeclaring, removed = world.providers
    suspended_admin, redeclaring_admin, removed_admin = world.admins

    journey.sign_in_from_home(admin.email, PASSWORD, totp_secret=admin.totp_secret)

    def open_member(provider: str) -> None:
        journey.follow("Members", within="#service-navigation")
        assert journey.heading() == "Members"
        journey.select("Arrangement", world.arrangement)
        journey.press("Apply filters")
        listed = journey.main_text()
        assert all(name in listed for name in world.providers)
        journey.follow(provider, exact=False)
        assert journey.heading() == f"{provider}: {world.lot}"

    # 1. Suspend, first without saying why.
    open_member(suspended)
    journey.press("Suspend")
    journey.expect_errors("Give the reason for suspending")
    reason = "A safeguarding concern reported by a probation officer is under review"
    journey.fill("Why are you suspending this member?", reason)
    journey.press("Suspend")
    assert f"{suspended} has been suspended and told why" in journey.banner()
    assert "Suspended" in journey.main_text() and reason in journey.main_text()
    journey.follow("Every change to this membership in the audit log")
    assert journey.heading() == "Audit log"
    history = journey.main_text()
    assert "membership.suspended" in history and admin.name in history

    # 2. Ask for a renewed self-declaration, first without saying why.
    open_member(redeclaring)
    journey.press("Ask for a renewed self-declaration")
    journey.expect_errors("Give the reason for asking")
    why = "The safeguarding criterion was rewritten; confirm that you still meet it"
    journey.fill("Why are you asking?", why)
    journey.press("Ask for a renewed self-declaration")
    assert "asked to renew its self-declaration" in journey.banner()
    assert "not renewed yet" in journey.main_text()

    # 3. Remove: the tired first try leaves out both the reason and the details.
    open_member(removed)
    journey.follow("Remove this member")
    assert journey.heading() == f"Remove {removed} from {world.lot}"
    journey.press("Remove member")
    journey.expect_errors("Select why you are removing this member", "Give the details")
    journey.choose("The provider asked to leave")
    details = "The trust wrote on 2 December to say it is closing this service"
    journey.fill("Details", details)
    journey.press("Remove member")
    assert f"{removed} has been removed and told why" in journey.banner()
    assert "Removed" in journey.main_text() and details in journey.main_text()
    journey.follow("Every change to this membership in the audit log")
    assert "membership.removed" in journey.main_text()

    # Each provider is told, in words, with the way in.
    told = live_server.smtp.wait_for(lambda m: m.to == suspended_admin.email)
    assert told.subject == f"Your membership of {world.arrangement} is suspended"
    assert f"Dear {suspended_admin.name}," in told.body
    assert reason in told.body and f"{world.lot}, {world.region}" in told.body
    assert any("/accreditation/memberships" in link for link in told.links())

    asked = live_server.smtp.wait_for(lambda m: m.to == redeclaring_admin.email)
    assert asked.subject.startswith(f"Renew your declaration for {world.arrangement} by ")
    assert why in asked.body

    gone = live_server.smtp.wait_for(lambda m: m.to == removed_admin.email)
    assert gone.subject == f"You have been removed from {world.arrangement}"
    assert "Reason: The provider asked to leave" in gone.body and details in gone.body

    # What each provider then sees. The suspended one: on its home page, and why.
    provider = other_journey
    provider.sign_in_from_home(suspended_admin.email, PASSWORD)
    home = provider.main_text()
    assert "Membership suspended" in home and world.lot in home
    provider.follow("See your memberships")
    assert provider.heading() == "Our accreditation"
    assert f"Suspended by the contracting authority: {reason}" in provider.main_text()
    provider.sign_out()

    # The one asked to re-declare follows the link in its email and renews it.
    provider.open_link_in_email(asked, "/accreditation/memberships")
    provider.fill("Email address", redeclaring_admin.email)
    provider.fill("Password", PASSWORD)
    provider.press("Sign in")
    assert provider.heading() == "Our accreditation"
    assert why in provider.main_text()
    provider.follow("Renew the declaration", exact=False)
    provider.press("Confirm declaration")
    assert "Your declaration has been renewed" in provider.banner()
    provider.sign_out()

    # The removed one sees it removed.
    provider.sign_in_from_home(removed_admin.email, PASSWORD)
    provider.follow("Accreditation", within="#service-navigation")
    provider.follow("Our accreditation")
    row = provider.page.locator("tr", has_text=world.arrangement)
    assert "Removed" in row.inner_text() and details in row.inner_text()
    provider.sign_out()

    # Signed out, the public register lists only the member still active.
    provider.home()
    provider.follow("Register of members", within="#service-navigation")
    provider.follow(world.arrangement)
    provider.follow("See the register of members")
    register = provider.main_text()
    assert redeclaring in register
    assert suspended not in register and removed not in register

    # The administrator sees the declaration renewed.
    open_member(redeclaring)
    assert "renewed" in journey.main_text() and "not renewed yet" not in journey.main_text()
