"""Journeys of a provider's staff (JOURNEYS.md P1–P8), from their home page, by links, buttons and
forms alone; axe-core checks every page (conftest.py)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

import pyotp
import pytest

from marketplace.core.db import db
from tests.accreditation.builders import make_provider
from tests.e2e import worlds
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


# --- P2 and S1: joining the DPS, with the assessor who decides -----------------------------------

INSURANCE_FAIL = "The certificate does not show cover of at least £5 million."
LOT_A_FEEDBACK = "Send a public liability certificate that shows cover of at least £5 million."
LOT_B_FEEDBACK = "Clear answers, and strong links with employers."
CLARIFICATION = "Which employers have offered job trials in the last year?"
CLARIFIED = "Greggs, Timpson and the council's parks team, 14 trials in all."
EXTENSION = "Waiting for the provider's answer about its employer partners."


def test_p2_s1_a_provider_applies_the_assessor_asks_and_decides_the_provider_resubmits(
    journey, other_journey, live_server, tmp_path
):
    """P2 in ``journey`` (the provider's administrator) and S1 in ``assessing`` (the assessor),
    taking turns at their own computers. S1's last step, accepting a member's renewed evidence,
    joins this journey with the page being built for it."""
    assessing = other_journey
    world = worlds.accreditation_world(live_server)
    provider, assessor = world.provider, world.assessor
    certificate = tmp_path / "public-liability-insurance.pdf"
    certificate.write_bytes(worlds.small_pdf("Public liability insurance certificate"))
    wrong_file = tmp_path / "insurance-certificate.txt"
    wrong_file.write_text("Public liability: 5,000,000 GBP\n", encoding="utf-8")

    # --- P2: the provider's administrator applies ---------------------------------------------
    journey.sign_in_from_home(provider.email, PASSWORD)
    journey.follow("Your applications")
    assert journey.heading() == "Applications"
    journey.press("Start application")  # forgot to choose the arrangement
    journey.expect_errors("Select the arrangement you want to join")
    journey.choose(world.arrangement)
    journey.press("Start application")
    reference = journey.heading().removeprefix("Application ")
    assert reference != journey.heading(), journey.heading()

    journey.follow("Choose lots and areas")
    journey.choose(world.lot_a)
    journey.choose(world.lot_b)
    journey.press("Save and continue")  # no region chosen yet
    journey.expect_errors("Select at least one region or PCC area")
    journey.choose(world.regions[0])
    journey.choose(world.regions[1])
    journey.press("Save and continue")
    assert journey.heading() == f"Application {reference}"

    # Lot A: the insurance certificate, first as the text file it was saved as by mistake.
    journey.follow(f"Answer {world.lot_a} questions")
    group = journey.page.get_by_role("group", name=world.safeguarding_a)
    group.get_by_label("Yes", exact=True).check()
    journey.page.get_by_label(world.insurance_a, exact=True).set_input_files(str(wrong_file))
    journey.fill("When does this evidence expire?", "30 6 2030")
    journey.press("Save and continue")
    journey.expect_errors("The selected file must be a PDF, PNG, JPEG, DOCX, XLSX or ODT file")
    journey.page.get_by_label(world.insurance_a, exact=True).set_input_files(str(certificate))
    journey.fill("When does this evidence expire?", "30 6 2030")
    journey.press("Save and continue")
    assert f"Your answers for {world.lot_a} have been saved." in journey.banner()

    # Lot B: "a dozen" is not a number.
    journey.follow(f"Answer {world.lot_b} questions")
    group = journey.page.get_by_role("group", name=world.safeguarding_b)
    group.get_by_label("Yes", exact=True).check()
    journey.fill(f"{world.staff_b} (optional)", "a dozen")
    journey.fill(world.work_b, "We mentor each person weekly and arrange job trials.")
    journey.press("Save and continue")
    journey.expect_errors("Enter a whole number, like 12")
    journey.fill(f"{world.staff_b} (optional)", "12")
    journey.press("Save and continue")
    assert f"Your answers for {world.lot_b} have been saved." in journey.banner()

    journey.follow("Check your answers and submit")
    assert journey.heading() == "Check your answers before submitting your application"
    check = journey.main_text()
    for expected in (world.lot_a, world.lot_b, *world.regions[:2], certificate.name, "12"):
        assert expected in check, expected
    assert world.regions[2] not in check
    journey.press("Accept and submit")  # the declaration is not ticked
    journey.expect_errors("Confirm the declaration to submit your application")
    journey.choose("I confirm that the information", exact=False)
    journey.press("Accept and submit")
    assert journey.heading() == "Application submitted"
    assert reference in journey.page.locator(".govuk-panel").inner_text()
    received = live_server.smtp.wait_for(
        lambda m: (
            m.to == provider.email and m.subject == f"We have received your application {reference}"
        )
    )
    assert f"Dear {provider.name}," in received.body
    to_assess = live_server.smtp.wait_for(
        lambda m: m.to == assessor.email and reference in m.subject
    )
    assert to_assess.subject.startswith(f"New application {reference} to assess by ")
    journey.sign_out()

    # --- S1: the assessor works the queue (two-factor sign-in) ---------------------------------
    assessing.sign_in_from_home(assessor.email, PASSWORD, assessor.totp_secret)
    assert assessing.heading() == f"Welcome, {assessor.name}"
    assessing.follow("Go to the assessment queue")
    assert assessing.heading() == "Assessments"
    assessing.follow(reference)
    assert assessing.heading() == "Declare any conflict of interest"
    assessing.press("Continue")  # neither answer chosen
    assessing.expect_errors("Select whether you have a conflict of interest")
    assessing.choose("No, I have no conflict of interest")
    assessing.press("Continue")
    assert assessing.heading() == f"{reference}: {world.provider_name}"

    def answer_block(question: str):
        return assessing.page.locator(
            "div[id^=criterion-]",
            has=assessing.page.get_by_role("heading", name=question, exact=True),
        )

    def mark(question: str, outcome: str | None, comment: str = "") -> None:
        block = answer_block(question)
        if outcome:
            block.get_by_role("radio", name=outcome, exact=True).check()
        block.get_by_label("Comment", exact=True).fill(comment)
        assessing.click_and_wait(block.get_by_role("button", name="Save mark"))

    # A fail needs a comment: the assessor forgets it once.
    mark(world.insurance_a, "Fail")
    assessing.expect_errors("Say why the answer does not meet the criterion")
    mark(world.insurance_a, "Fail", INSURANCE_FAIL)
    assert "The mark has been saved." in assessing.banner()
    for question in (world.safeguarding_a, world.safeguarding_b, world.staff_b, world.work_b):
        mark(question, "Pass", "Meets the criterion.")
        assert "The mark has been saved." in assessing.banner()

    # A question for the provider, sent empty the first time.
    assessing.press("Ask for clarification")
    assessing.expect_errors("Enter your question")
    assessing.fill("Your question", CLARIFICATION)
    assessing.press("Ask for clarification")
    assert "Your question has been sent to the provider." in assessing.banner()
    asked = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and "question" in m.subject.lower()
    )
    assert reference in asked.subject and CLARIFICATION in asked.body

    # The deadline, extended once, with the reason given the second time.
    assessing.press("Extend the deadline")
    assessing.expect_errors("Give the reason for extending the deadline")
    assessing.fill("Reason for extending the deadline", EXTENSION)
    assessing.press("Extend the deadline")
    assert "The deadline has been extended and the provider told." in assessing.banner()
    assert "It cannot be extended again." in assessing.main_text()
    assert assessing.page.get_by_role("button", name="Extend the deadline").count() == 0
    extended = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith("We need more time")
    )
    assert reference in extended.subject and EXTENSION in extended.body

    # --- P2: the provider answers the question (the email says to sign in and answer it) -------
    journey.sign_in_from_home(provider.email, PASSWORD)
    journey.follow("Your applications")
    journey.follow(reference)
    assert "Waiting for your answer" in journey.main_text()
    journey.follow("Answer this question")
    assert journey.heading() == "Answer the assessor's question"
    assert CLARIFICATION in journey.main_text()
    journey.press("Send answer")  # nothing typed yet
    journey.expect_errors("Enter your answer")
    journey.fill("Your answer", CLARIFIED)
    journey.press("Send answer")
    assert "Your answer has been sent to the assessor" in journey.banner()
    assert CLARIFIED in journey.main_text()
    answered = live_server.smtp.wait_for(
        lambda m: m.to == assessor.email and "answered your question" in m.subject
    )
    assert answered.subject == f"{world.provider_name} answered your question on {reference}"
    assert CLARIFICATION in answered.body and CLARIFIED in answered.body
    journey.sign_out()

    # --- S1: the assessor, still signed in, reads the answer and decides each lot -------------
    assessing.follow("Home", within="#service-navigation")
    assessing.follow("Go to the assessment queue")
    assert "Extended" in assessing.page.locator(f"tr:has-text('{reference}')").inner_text()
    assessing.follow(reference)  # declared already: straight to the application
    assert assessing.heading() == f"{reference}: {world.provider_name}"
    assert CLARIFIED in assessing.main_text()

    def decide(lot: str, decision: str, feedback: str = "") -> None:
        form = assessing.page.locator(
            "form", has=assessing.page.get_by_role("group", name=f"Decision on {lot}", exact=True)
        )
        form.get_by_role("radio", name=decision, exact=True).check()
        form.get_by_label("Feedback for the provider", exact=True).fill(feedback)
        assessing.click_and_wait(form.get_by_role("button", name="Save decision"))

    # Rejecting needs feedback, and the failed certificate forbids admitting lot A.
    decide(world.lot_a, "Do not admit")
    assessing.expect_errors("Give feedback saying why the lot is rejected")
    decide(world.lot_a, "Admit")
    assessing.expect_errors(f"“{world.insurance_a}” is mandatory and has not been marked as a pass")
    decide(world.lot_a, "Do not admit", LOT_A_FEEDBACK)
    assert f"Your decision on {world.lot_a} has been saved." in assessing.banner()
    decide(world.lot_b, "Admit", LOT_B_FEEDBACK)
    assert f"Your decision on {world.lot_b} has been saved." in assessing.banner()
    assert "Not admitted" in assessing.main_text() and "Admitted" in assessing.main_text()
    assessing.sign_out()

    # --- P2: the provider reads the decision, then amends and resubmits the rejected lot -------
    decision = live_server.smtp.wait_for(
        lambda m: (
            m.to == provider.email and m.subject == f"Decision on your application {reference}"
        )
    )
    assert f"{world.lot_a}: not admitted" in decision.body
    assert f"Feedback: {LOT_A_FEEDBACK}" in decision.body
    assert f"{world.lot_b}: admitted" in decision.body
    assert INSURANCE_FAIL in decision.body
    for region_name in world.regions[:2]:
        assert f"- {world.lot_b}, {region_name}, from " in decision.body
    assert "Amend and resubmit" in decision.body

    journey.sign_in_from_home(provider.email, PASSWORD)
    journey.follow("Your applications")
    journey.follow(reference)
    lot_a_heading = journey.page.locator("h3", has_text=world.lot_a).first
    assert "Not admitted" in lot_a_heading.inner_text()
    lot_b_heading = journey.page.locator("h3", has_text=world.lot_b).first
    assert "Admitted" in lot_b_heading.inner_text()
    shown = journey.main_text()
    assert LOT_A_FEEDBACK in shown and INSURANCE_FAIL in shown and LOT_B_FEEDBACK in shown
    journey.press("Amend and resubmit")
    assert "has been started from your rejected lots" in journey.banner()
    amended = journey.heading().removeprefix("Application ")
    assert amended != reference
    assert f"Answer {world.lot_a} questions" in journey.main_text()
    assert f"Answer {world.lot_b} questions" not in journey.main_text()

    new_certificate = tmp_path / "public-liability-5-million.pdf"
    new_certificate.write_bytes(worlds.small_pdf("Public liability cover 5,000,000 GBP"))
    journey.follow(f"Answer {world.lot_a} questions")
    journey.page.get_by_label(world.insurance_a, exact=True).set_input_files(str(new_certificate))
    journey.fill("When does this evidence expire?", "31 2 2031")  # no such day
    journey.press("Save and continue")
    journey.expect_errors("Enter a real date")
    journey.page.get_by_label(world.insurance_a, exact=True).set_input_files(str(new_certificate))
    journey.fill("When does this evidence expire?", "28 2 2031")
    journey.press("Save and continue")
    assert f"Your answers for {world.lot_a} have been saved." in journey.banner()
    journey.follow("Check your answers and submit")
    assert new_certificate.name in journey.main_text()
    journey.choose("I confirm that the information", exact=False)
    journey.press("Accept and submit")
    assert journey.heading() == "Application submitted"
    assert amended in journey.page.locator(".govuk-panel").inner_text()
    live_server.smtp.wait_for(
        lambda m: (
            m.to == provider.email and m.subject == f"We have received your application {amended}"
        )
    )
    live_server.smtp.wait_for(lambda m: m.to == assessor.email and amended in m.subject)
    journey.sign_out()


# --- P7: getting paid ----------------------------------------------------------------------------

DISPUTE = "Only two sessions took place in the first week: one of the three was cancelled."
CREDIT_REASON = "One session billed in error: it was cancelled."


def test_p7_issue_the_monthly_invoice_answer_a_dispute_with_a_credit_note_and_see_it_paid(
    journey, other_journey, live_server
):
    """P7 in ``journey`` (the provider's administrator); the buyer disputes, validates and pays
    in ``buying``, at their own computer."""
    world = worlds.invoice_world(live_server)  # after the monthly run: a draft
    provider, buyer = world.people.provider, world.people.buyer
    buying = other_journey

    journey.sign_in_from_home(provider.email, PASSWORD)
    journey.follow("Invoices", within="#service-navigation")
    row = f"tr:has-text('{world.call_off}')"
    assert "Draft" in journey.page.locator(row).inner_text()
    journey.follow("Draft", exact=False, within=row)
    assert journey.heading().startswith("Draft invoice")
    assert world.gross in journey.main_text() and world.po_number in journey.main_text()
    journey.press("Issue invoice")
    assert "Invoice issued" in journey.banner()
    number = re.search(r"INV-\d{6}", journey.heading()).group()
    issued = live_server.smtp.wait_for(lambda m: m.to == buyer.email and number in m.subject)
    assert issued.subject == (
        f"Invoice {number} from {world.people.provider_name} for call-off {world.call_off}"
    )
    assert f"Amount due: {world.gross}" in issued.body

    # The buyer disputes it, forgetting the reason the first time.
    buying.sign_in_from_home(buyer.email, PASSWORD)
    buying.follow("Invoices", within="#service-navigation")
    buying.follow(number)
    buying.follow("Dispute invoice")
    buying.press("Dispute invoice")
    buying.expect_errors("Enter why you dispute the invoice")
    buying.fill("Why do you dispute this invoice?", DISPUTE)
    buying.press("Dispute invoice")
    assert "Invoice disputed" in buying.banner()
    disputed = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith(f"Invoice {number} has been dis")
    )
    assert DISPUTE in disputed.body

    # The provider sees the dispute and credits one session, typing too much the first time.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Invoices", within="#service-navigation")
    journey.follow(number)
    assert "Disputed" in journey.heading()
    assert DISPUTE in journey.main_text()
    journey.follow("Issue a credit note")
    journey.fill("Amount to credit, before VAT", "1234.50")
    journey.fill("Why are you crediting the invoice?", CREDIT_REASON)
    journey.press("Issue credit note")
    journey.expect_errors("The credit cannot be more than what is left on the invoice")
    journey.fill("Amount to credit, before VAT", "123.45")
    journey.press("Issue credit note")
    assert "Credit note issued" in journey.banner()
    main = journey.main_text()
    assert CREDIT_REASON in main
    assert "£296.28" in main  # £444.42 less £123.45 and its £24.69 VAT
    credited = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject.startswith("Credit note CN-")
    )
    assert number in credited.subject and "£148.14" in credited.body and "£296.28" in credited.body

    # The buyer validates the corrected invoice and records the BACS payment, dated tomorrow
    # by mistake first.
    buying.follow("Home", within="#service-navigation")
    buying.follow("Invoices", within="#service-navigation")
    buying.follow(number)
    buying.press("Dispute resolved: validate invoice")
    assert "Invoice validated" in buying.banner()
    validated = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject.startswith(f"Invoice {number} has been val")
    )
    assert "£296.28 including VAT, after credit notes" in validated.body
    buying.follow("Record a BACS payment")
    today = worlds.london_today()
    buying.fill("Remittance reference", "BACS-20931")
    buying.fill("Date paid", worlds.day_month_year(today + timedelta(days=1)))
    buying.press("Record payment")
    buying.expect_errors("The payment date must be today or in the past")
    buying.fill("Date paid", worlds.day_month_year(today))
    buying.press("Record payment")
    assert "Payment recorded" in buying.banner()
    paid = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject == f"Invoice {number} has been paid"
    )
    assert "£296.28 by BACS" in paid.body and "BACS-20931" in paid.body

    # The provider sees it paid, and downloads the UBL XML for its accounts.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Invoices", within="#service-navigation")
    assert "Paid" in journey.page.locator(f"tr:has-text('{number}')").inner_text()
    journey.follow(number)
    assert "Paid" in journey.heading()
    assert "by BACS, reference BACS-20931" in journey.main_text()
    download = journey.download("Invoice as UBL 2.1 XML", exact=False)
    assert download.suggested_filename == f"{number}.xml"
    document = ElementTree.fromstring(Path(download.path()).read_bytes())  # noqa: S314 - ours
    assert document.tag.endswith("}Invoice")
    ids = [e.text for e in document if e.tag.endswith("}ID")]
    assert ids == [number]


# --- P8: payment by results ----------------------------------------------------------------------

NOTE = "Moved into her own tenancy with Leeds Federated Housing."
REJECTED = "The tenancy agreement is not signed by the person: send the signed copy."


def test_p8_claim_outcomes_with_evidence_one_verified_one_rejected_with_the_reason(
    journey, other_journey, live_server, tmp_path
):
    """P8 in ``journey`` (the provider's administrator); the buyer verifies one claim and
    rejects another in ``buying``."""
    world = worlds.outcome_world(live_server)
    provider, buyer = world.people.provider, world.people.buyer
    buying = other_journey
    tenancy = tmp_path / "tenancy-agreement.pdf"
    tenancy.write_bytes(worlds.small_pdf("Tenancy agreement"))
    photo_note = tmp_path / "tenancy-agreement.txt"
    photo_note.write_text("Tenancy signed on the 3rd\n", encoding="utf-8")
    today = worlds.london_today()

    def fill_claim(evidence: Path, note: str) -> None:
        assert journey.heading() == "Claim an outcome"
        options = journey.page.get_by_label("Outcome", exact=True).locator("option")
        label = next(t for t in options.all_inner_texts() if t.startswith(world.outcome))
        journey.select("Outcome", label)
        journey.fill("Date the outcome was achieved", worlds.day_month_year(today))
        journey.page.get_by_label("Evidence", exact=True).set_input_files(str(evidence))
        journey.fill("Note for the buyer (optional)", note)
        journey.press("Claim outcome")

    journey.sign_in_from_home(provider.email, PASSWORD)
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(world.call_off)
    assert world.outcome in journey.main_text()

    # First the form sent with nothing chosen, then the evidence as a text file.
    journey.follow("Claim an outcome")
    journey.press("Claim outcome")
    journey.expect_errors(
        "Choose the outcome you are claiming", "Enter the date the outcome was achieved"
    )
    fill_claim(photo_note, NOTE)
    journey.expect_errors("The selected file must be a PDF, PNG, JPEG, DOCX, XLSX or ODT file")
    fill_claim(tenancy, NOTE)
    assert "Outcome claimed" in journey.banner()
    claims = journey.page.locator("table", has_text="Outcome claims")
    assert "Claimed" in claims.inner_text() and NOTE in claims.inner_text()
    first = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject.startswith("Outcome claim ")
    )
    first_claim = re.search(r"OC-\d{4}-\d+", first.subject).group()
    assert first.subject == f"Outcome claim {first_claim} on call-off {world.call_off}"
    assert f'claims the outcome "{world.outcome}"' in first.body

    # The buyer checks the evidence and verifies the claim.
    buying.sign_in_from_home(buyer.email, PASSWORD)
    buying.follow("Call-offs", within="#service-navigation")
    buying.follow(world.call_off)
    evidence = buying.download(f"Evidence for {first_claim}")
    assert Path(evidence.path()).read_bytes().startswith(b"%PDF-")
    buying.press(f"Verify {first_claim}")
    assert f"Claim {first_claim} verified" in buying.banner()
    verified = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject == f"Outcome claim {first_claim} verified"
    )
    assert "It will be billed on an outcome invoice by the next invoice run." in verified.body

    # A second claim (the terms allow two), which the buyer rejects, with the reason given
    # the second time.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(world.call_off)
    assert "Verified" in journey.page.locator("table", has_text="Outcome claims").inner_text()
    journey.follow("Claim an outcome")
    fill_claim(tenancy, "A second person housed under the same terms.")
    assert "Outcome claimed" in journey.banner()
    second = live_server.smtp.wait_for(
        lambda m: (
            m.to == buyer.email
            and m.subject.startswith("Outcome claim ")
            and first_claim not in m.subject
        )
    )
    second_claim = re.search(r"OC-\d{4}-\d+", second.subject).group()

    buying.follow("Home", within="#service-navigation")
    buying.follow("Call-offs", within="#service-navigation")
    buying.follow(world.call_off)
    buying.follow(f"Reject {second_claim}")
    buying.press("Reject")
    buying.expect_errors("Enter the reason")
    buying.fill("Reason", REJECTED)
    buying.press("Reject")
    assert f"Claim {second_claim} rejected" in buying.banner()
    rejected = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and m.subject == f"Outcome claim {second_claim} rejected"
    )
    assert f"Their reason: {REJECTED}" in rejected.body

    journey.follow("Home", within="#service-navigation")
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(world.call_off)
    rows = journey.page.locator("table", has_text="Outcome claims").locator("tbody tr")
    statuses = {
        rows.nth(i).locator("td").first.inner_text().split("\n")[0]: rows.nth(i)
        .locator("td")
        .nth(3)
        .inner_text()
        for i in range(rows.count())
    }
    assert statuses == {first_claim: "Verified", second_claim: f"Rejected: {REJECTED}"}


def test_p6_s1_renew_expiring_evidence_the_assessor_accepts_it_and_the_membership_never_lapses(
    journey, other_journey, live_server, tmp_path
):
    from marketplace.accreditation.services import expiry

    assessing = other_journey
    world = worlds.member_with_expiring_evidence(live_server, days_left=20)
    provider, assessor = world.provider, world.assessor
    renewed = tmp_path / "insurance-2027.pdf"
    renewed.write_bytes(worlds.small_pdf("Public liability insurance 2027-28"))
    new_expiry = world.expires_on + timedelta(days=365)

    # --- P6: the home page says what expires, and where to renew it ---------------------------
    journey.sign_in_from_home(provider.email, PASSWORD)
    assert "Evidence to renew" in journey.main_text()
    journey.follow("Renew your evidence")
    assert journey.heading() == "Our accreditation"
    journey.follow(f"Upload renewed evidence for {world.evidence}")
    # Forgot the file, and typed an expiry date before the current one.
    journey.fill("When does the renewed evidence expire?", worlds.day_month_year(world.expires_on))
    journey.press("Send renewed evidence")
    journey.expect_errors("Select the renewed evidence to upload")
    journey.page.get_by_label("Upload the renewed evidence", exact=True).set_input_files(
        str(renewed)
    )
    journey.fill("When does the renewed evidence expire?", worlds.day_month_year(world.expires_on))
    journey.press("Send renewed evidence")
    journey.expect_errors("after")
    journey.page.get_by_label("Upload the renewed evidence", exact=True).set_input_files(
        str(renewed)
    )
    journey.fill("When does the renewed evidence expire?", worlds.day_month_year(new_expiry))
    journey.press("Send renewed evidence")
    assert "renewed evidence" in journey.banner().lower()

    # --- S1's last step: the assessor follows the email's link and accepts it ----------------
    to_check = live_server.smtp.wait_for(
        lambda m: m.to == assessor.email and world.provider_name in m.subject
    )
    assessing.open_link_in_email(to_check, "/")
    assessing.fill("Email address", assessor.email)
    assessing.fill("Password", PASSWORD)
    assessing.press("Sign in")
    assessing.enter_security_code(pyotp.TOTP(assessor.totp_secret).now())
    assert assessing.heading() == "Check renewed evidence"
    assert world.provider_name in assessing.main_text()
    assessing.choose("No, reject it")
    assessing.press("Save decision")  # a rejection needs a reason
    assessing.expect_errors("reason")
    assessing.choose("Yes, accept it")
    assessing.press("Save decision")
    assert "accepted" in assessing.banner().lower()

    accepted = live_server.smtp.wait_for(
        lambda m: m.to == provider.email and "accepted" in m.subject
    )
    assert f"{new_expiry.day} {new_expiry:%B %Y}" in accepted.body

    # --- The old certificate's expiry passes: the membership stays active ---------------------
    with live_server.app.app_context():
        expiry.check_expiry(world.expires_on + timedelta(days=1))  # the daily job
        worlds.commit_and_close()
    journey.follow("Home", within="#service-navigation")
    assert "Evidence to renew" not in journey.main_text()
    journey.follow("Accreditation", within="#service-navigation")
    journey.follow("Our accreditation")
    memberships_text = journey.main_text()
    assert "Suspended" not in memberships_text and "Active" in memberships_text


# --- P3: a listing, as buyers will see it --------------------------------------------------------

PRICE_REASON = "The April pay award for our support workers."


def test_p3_create_a_listing_check_it_as_buyers_see_it_publish_and_set_a_future_price(
    journey, other_journey, live_server
):
    """P3 in ``journey`` (the provider's administrator); the buyer then finds the listing in
    ``buying`` and reads the same facts."""
    world = worlds.listing_world(live_server)
    provider, buyer = world.provider, world.buyer
    buying = other_journey
    title = f"Move-on housing support {worlds.tag()}"
    north_east, north_west = world.regions
    today = worlds.london_today()
    from_day = today + timedelta(days=30)

    journey.sign_in_from_home(provider.email, PASSWORD)
    journey.follow("Your listings")
    assert journey.heading() == "Your listings"
    journey.follow("Create a listing")
    assert journey.heading() == "Create a listing"

    # The first try: no area chosen, the price typed with a word, capacity left empty.
    journey.fill("Title", title)
    journey.fill(
        "Summary",
        "Weekly key-work for people leaving approved premises, to find a home and keep it.",
    )
    journey.fill("Outcomes offered (optional)", "Settled accommodation\nTenancy kept for 6 months")
    journey.choose_in("Where is it delivered?", "In the community")
    journey.choose_in("How is it delivered?", "One-to-one")
    journey.choose_in("Risk of serious harm levels accepted", "Low")
    journey.choose_in("Risk of serious harm levels accepted", "Medium")
    journey.choose_in("Complexity levels offered", "Medium")
    journey.fill("Minimum age (optional)", "18")
    journey.fill("Referral lead time", "5")
    journey.select("Unit", "Session")
    journey.fill("Unit price, excluding VAT", "45.50 a session")
    journey.choose_in("VAT treatment", "Standard rate (20%)")
    journey.fill("Maximum units per call-off", "12")
    journey.choose_in("Do you charge for a session the person does not attend?", "No")
    journey.fill("Contact name (optional)", "Referrals team")
    journey.fill("Contact email (optional)", "referrals@bright-futures.example.org")
    journey.press("Save and continue")
    journey.expect_errors(
        "Choose at least one region or PCC area",
        "Enter the unit price as a number in pounds and pence",
        "Enter the monthly capacity in units",
    )
    assert journey.page.get_by_label("Title", exact=True).input_value() == title
    journey.choose_in("Probation regions", north_east)
    journey.choose_in("Police and crime commissioner (PCC) areas", world.pcc_area)
    journey.fill("Unit price, excluding VAT", "45.50")
    journey.fill("Monthly capacity", "40")
    journey.press("Save and continue")

    # The check page: the listing as buyers will see it, before it is published.
    assert journey.heading() == "Check your listing"
    assert "saved as a draft" in journey.banner()
    preview = journey.page.get_by_role("region", name="Preview of the listing")

    def facts(area) -> dict[str, str]:
        """The summary list's rows in ``area``: label → value."""
        rows = area.locator(".govuk-summary-list__row")
        return {
            rows.nth(i).locator("dt").inner_text().strip(): rows.nth(i)
            .locator("dd")
            .inner_text()
            .strip()
            for i in range(rows.count())
        }

    shown = facts(preview)
    assert shown["Areas"] == f"{north_east}, {world.pcc_area}", shown
    assert shown["Unit price"] == "£45.50 per session excluding VAT", shown
    assert shown["Price including VAT"] == "£54.60 per session", shown
    assert shown["Units per call-off"] == "1 to 12", shown
    assert shown["Ages"] == "18 and over", shown
    assert "40 sessions" in shown["Available"], shown
    assert shown["Missed sessions"] == "Not charged if the person does not attend", shown
    journey.press("Publish")
    assert f"{title} is published" in journey.banner()
    assert journey.heading() == title

    # A new price from next month: first with the date left out, then in full.
    journey.follow("Change the price")
    journey.fill("New unit price, excluding VAT", "48")
    journey.fill("Reason (optional)", PRICE_REASON)
    journey.press("Set the new price")
    journey.expect_errors("Enter the date the new price takes effect")
    journey.fill("Date the new price takes effect", worlds.day_month_year(from_day))
    journey.press("Set the new price")
    assert f"will be £48.00 from {from_day.day} {from_day:%B %Y}" in journey.banner()
    history = journey.page.locator("table", has_text="Price history").locator("tbody tr")
    rows = [history.nth(i).inner_text() for i in range(history.count())]
    assert len(rows) == 2, rows
    assert "Future" in rows[0] and "£48.00" in rows[0] and PRICE_REASON in rows[0]
    assert provider.name in rows[0]
    assert "Current" in rows[1] and "£45.50" in rows[1]
    journey.follow("Back to the listing")
    journey.follow("Change history")
    changes = journey.main_text()
    assert "Price changed" in changes and "Published" in changes and "Created" in changes
    assert f"£48.00 from {from_day.day} {from_day:%B %Y}: {PRICE_REASON}" in changes

    # Checked again as buyers will see it, with the price to come.
    journey.follow("Back to the listing")
    journey.follow("See it as buyers will")
    preview = journey.page.get_by_role("region", name="Preview of the listing")
    previewed = facts(preview)
    assert previewed == shown, (previewed, shown)
    price_change = (
        f"From {from_day.day} {from_day:%B %Y}: £48.00 per session excluding VAT, "
        "£57.60 including VAT"
    )
    assert price_change in preview.inner_text()

    # The buyer finds it, and reads the same facts.
    buying.sign_in_from_home(buyer.email, PASSWORD)
    buying.follow("Find services")
    buying.fill("Search by service, outcome or provider", title)
    buying.press("Search")
    buying.follow(title)
    assert buying.heading() == title
    assert facts(buying.page.locator("main")) == previewed
    assert price_change in buying.main_text()


# --- P5: answering call-offs, delivering one and completing it -----------------------------------

DECLINE = "We have no room in Darlington until the spring: our two flats there are both let."
VARIATION = "He needs four more sessions to settle the tenancy before the service ends."
SUMMARY = "Moved into a flat of his own in week three, and keeps it with weekly support."


def test_p5_accept_one_call_off_decline_another_record_a_month_propose_a_change_and_complete(
    journey, other_journey, live_server
):
    """P5 in ``journey`` (the provider's administrator), from the home page; the buyer reads
    the decline, the deliveries and the completion in ``buying``."""
    world = worlds.respond_world(live_server)
    provider, buyer = world.people.provider, world.people.buyer
    buying = other_journey
    first, second = world.with_term, world.without_term

    # The home page says two call-offs wait for an answer, and leads to them.
    journey.sign_in_from_home(provider.email, PASSWORD)
    waiting = journey.page.locator(".app-dashboard-card", has_text="Call-offs to respond to")
    assert "2 call-offs waiting for your organisation to accept or decline" in waiting.inner_text()
    journey.follow("See call-offs to respond to")
    assert journey.heading() == "Call-offs"
    assert "2 need your organisation's response" in journey.main_text()
    panel = journey.page.locator(".govuk-inset-text").inner_text()
    for reference in (first, second):  # what, for whom, and by when
        assert f"{reference}: {world.listing}, placed by {world.people.buyer_name} (sent" in panel

    # Decline the second, forgetting the reason the first time.
    journey.follow(second, within=".govuk-inset-text")
    assert journey.heading().startswith(f"Call-off {second}")
    accept = journey.page.get_by_role("button", name="Accept call-off").bounding_box()
    decline = journey.page.get_by_role("link", name="Decline", exact=True).bounding_box()
    assert accept["y"] == decline["y"], (accept, decline)  # side by side, on one line
    journey.follow("Decline")
    journey.press("Decline call-off")
    journey.expect_errors("Enter why you are declining this call-off")
    journey.fill("Why are you declining this call-off?", DECLINE)
    journey.press("Decline call-off")
    assert "Call-off declined. The buyer has been told." in journey.banner()
    assert "Declined" in journey.heading()
    declined = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject.endswith(f"declined call-off {second}")
    )
    assert f"Their reason: {DECLINE}" in declined.body

    # Accept the first, with its payment-by-results term.
    journey.follow("Home", within="#service-navigation")
    waiting = journey.page.locator(".app-dashboard-card", has_text="Call-offs to respond to")
    assert "1 call-off waiting" in waiting.inner_text()
    journey.follow("See call-offs to respond to")
    journey.follow(first, within=".govuk-inset-text")
    assert world.outcome in journey.main_text()
    journey.press("Accept call-off")
    assert "Call-off accepted. The buyer has been told." in journey.banner()
    accepted = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject.endswith(f"accepted call-off {first}")
    )
    assert world.listing in accepted.body
    journey.follow("Home", within="#service-navigation")
    assert "No call-offs are waiting for your response." in journey.main_text()

    # A month of weekly sessions: attended, late, missed (the reason forgotten once), attended.
    def record(day, attendance: str, reason: str | None = None, note: str = "") -> None:
        journey.follow("Record delivery")
        assert journey.heading() == "Record delivery"
        journey.fill("Date of the session", worlds.day_month_year(day))
        journey.fill("Units delivered", "1")
        journey.choose_in("Attendance", attendance)
        if reason:
            journey.choose_in("Why did they not attend?", reason)
        if note:
            journey.fill("Progress note (optional)", note)
        journey.press("Record delivery")

    journey.follow("See call-offs", within=".app-dashboard-card:has-text('Delivery to record')")
    journey.follow(first)
    weeks = [world.start + timedelta(weeks=n) for n in range(4)]
    record(weeks[0], "Attended", note="Met at the flat; rent account set up.")
    assert "Delivery recorded" in journey.banner()
    record(weeks[1], "Late", note="Twenty minutes late: the bus.")
    assert "Delivery recorded" in journey.banner()
    record(weeks[2], "Did not attend")
    journey.expect_errors("Choose the reason the person did not attend")
    journey.fill("Date of the session", worlds.day_month_year(weeks[2]))
    journey.fill("Units delivered", "1")
    journey.choose_in("Attendance", "Did not attend")
    journey.choose_in("Why did they not attend?", "Acceptable absence")
    journey.press("Record delivery")
    assert "Delivery recorded" in journey.banner()
    record(weeks[3], "Attended")
    assert "Delivery recorded" in journey.banner()
    units = journey.page.locator(".govuk-summary-list__row", has_text="Units").first.inner_text()
    assert "3 delivered" in units, units  # the missed session is not paid for
    timeline = journey.page.locator(".moj-timeline").inner_text()
    assert timeline.count("Delivery recorded") == 4
    assert "Did not attend (Acceptable absence), not paid for" in timeline

    # A change: four more sessions, the reason forgotten the first time.
    journey.follow("Propose a change (more units or a later end date)")
    journey.fill("Extra units", "4")
    journey.press("Propose change")
    journey.expect_errors("Explain why the call-off needs to change")
    journey.fill("Why does the call-off need to change?", VARIATION)
    journey.press("Propose change")
    assert "Change proposed" in journey.banner()
    proposed = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject == f"A change to call-off {first} is proposed"
    )
    assert f"Their reason: {VARIATION}" in proposed.body and "10 becomes 14" in proposed.body

    # The buyer agrees the change.
    buying.sign_in_from_home(buyer.email, PASSWORD)
    buying.follow("Call-offs", within="#service-navigation")
    buying.follow(first)
    buying.press("Agree change")
    assert "Change agreed" in buying.banner()

    # Complete, with the result of each outcome: one left out the first time.
    journey.follow("Home", within="#service-navigation")
    journey.follow("Call-offs", within="#service-navigation")
    journey.follow(first)
    journey.follow("Complete")
    journey.fill("End-of-service summary", SUMMARY)
    journey.choose_in(world.outcomes[0], "Achieved")
    journey.press("Complete call-off")
    journey.expect_errors(f"Choose how far “{world.outcomes[1]}” was achieved")
    journey.choose_in(world.outcomes[1], "Partly achieved")
    journey.press("Complete call-off")
    assert "Call-off completed. The buyer has been told." in journey.banner()
    completed = live_server.smtp.wait_for(
        lambda m: m.to == buyer.email and m.subject == f"Call-off {first} is complete"
    )
    assert SUMMARY in completed.body
    assert f"- {world.outcomes[0]}: achieved" in completed.body
    assert f"- {world.outcomes[1]}: partly achieved" in completed.body

    # The buyer reads the decline's reason, the deliveries and the outcomes.
    buying.follow("Home", within="#service-navigation")
    buying.follow("Call-offs", within="#service-navigation")
    buying.follow(second)
    assert DECLINE in buying.main_text()
    buying.follow("Call-offs", within="#service-navigation")
    buying.follow(first)
    shown = buying.main_text()
    assert SUMMARY in shown and "Partly achieved" in shown
    assert "Did not attend (Acceptable absence), not paid for" in shown

    assert journey.excuse_govuk_conditional_reveals()  # "Did not attend" reveals its reason
