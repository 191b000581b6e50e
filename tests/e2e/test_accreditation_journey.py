"""The accreditation journey through a real browser: a provider applies to two lots in two regions,
an assessor declares no conflict, marks the answers, admits one lot and rejects the other with
feedback, and the provider sees the decision, the feedback and its membership. The emails the
SMTP sink receives are checked on the way, and axe-core checks every page (see conftest.py)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date

import pyotp
import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accreditation.models import Application, Criterion, QuestionType
from marketplace.core.db import db
from marketplace.core.filters import govuk_date
from tests.accreditation.builders import make_provider, make_world
from tests.factories import PASSWORD, make_member, make_organisation

pytestmark = pytest.mark.e2e

EXPIRY = date(2030, 6, 30)
PARTNERS = ["Bright Futures Housing CIC", "Second Chance Works Ltd"]
WORK_ANSWER = "We mentor each person weekly and work with local employers on job trials."
INSURANCE_FAIL = "The certificate does not show the insured amount of at least £5 million."
LOT_FEEDBACK = "Send a certificate that shows public liability cover of at least £5 million."


@dataclass(frozen=True)
class Account:
    email: str
    name: str
    totp_secret: str | None


@dataclass(frozen=True)
class Setting:
    arrangement_name: str
    provider_name: str
    provider: Account
    assessor: Account
    lot_a: str  # the lot that is rejected (its insurance certificate fails)
    lot_a_id: int
    lot_b: str  # the lot that is admitted
    lot_b_id: int
    regions: tuple[str, str]
    safeguarding_a: str
    insurance_a: str
    insurance_a_id: int
    safeguarding_b: str
    staff_b: str
    work_b: str
    work_b_id: int


def build_setting(live_server) -> Setting:
    """A live arrangement (two lots, two regions, questions of each kind), a provider admin and
    an assessor with two-factor sign-in, written into the live server's database."""
    tag = uuid.uuid4().hex[:8]
    with live_server.app.app_context():
        world = make_world()
        world.arrangement.name = f"Rehabilitation services DPS {tag}"
        world.arrangement.reference = f"DPS-E2E-{tag}"
        work_b = Criterion(
            lot=world.lot_b,
            position=3,
            question="Describe how you help people on probation into work",
            type=QuestionType.TEXT,
            mandatory=True,
            pass_fail=True,
        )
        db.session.add(work_b)
        organisation, admin = make_provider(f"E2E Second Chance Trust {tag}")
        admin.email = f"provider.admin.{tag}@example.org"
        admin.name = f"Sam Provider {tag}"
        authority = make_organisation(OrganisationType.AUTHORITY, name=f"E2E Authority {tag}")
        assessor = make_member(
            Role.ASSESSOR,
            authority,
            email=f"assessor.{tag}@example.org",
            name=f"Robin Assessor {tag}",
        )
        db.session.flush()
        setting = Setting(
            arrangement_name=world.arrangement.name,
            provider_name=organisation.name,
            provider=Account(admin.email, admin.name, None),
            assessor=Account(assessor.email, assessor.name, assessor.totp_secret),
            lot_a=world.lot_a.category.name,
            lot_a_id=world.lot_a.id,
            lot_b=world.lot_b.category.name,
            lot_b_id=world.lot_b.id,
            regions=(world.region_1.name, world.region_2.name),
            safeguarding_a=world.safeguarding_a.question,
            insurance_a=world.insurance_a.question,
            insurance_a_id=world.insurance_a.id,
            safeguarding_b=world.safeguarding_b.question,
            staff_b=world.staff_b.question,
            work_b=work_b.question,
            work_b_id=work_b.id,
        )
        db.session.commit()
        db.session.remove()
    return setting


def small_pdf() -> bytes:
    """A small, well-formed one-page PDF."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        None,  # the content stream, below
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    text = b"BT /F1 18 Tf 72 760 Td (Public liability insurance certificate) Tj ET"
    objects[3] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def sign_in(ui, account: Account) -> None:
    ui.sign_in(account.email, PASSWORD)
    if account.totp_secret:
        ui.enter_security_code(pyotp.TOTP(account.totp_secret).now())
    assert ui.heading() == f"Welcome, {account.name}"


def main_text(ui) -> str:
    return ui.page.locator("main").inner_text()


def application_row(live_server, reference: str) -> dict:
    with live_server.app.app_context():
        application = db.session.scalar(
            sa.select(Application).where(Application.reference == reference)
        )
        row = {
            "id": application.id,
            "status": application.status.value,
            "decision_due_on": application.decision_due_on,
            "answers": {a.criterion_id: a.id for a in application.answers},
        }
        db.session.remove()
    return row


def test_a_provider_applies_an_assessor_decides_and_the_provider_sees_the_outcome(
    ui, live_server, tmp_path
):
    setting = build_setting(live_server)
    evidence = tmp_path / "public-liability-insurance.pdf"
    evidence.write_bytes(small_pdf())
    page = ui.page

    # --- the provider applies ------------------------------------------------------------------
    sign_in(ui, setting.provider)
    ui.click_and_wait(page.locator("#service-navigation").get_by_role("link", name="Accreditation"))
    assert ui.heading() == "Accreditation"
    ui.click_and_wait(page.get_by_role("link", name="Your applications"))
    assert ui.heading() == "Applications"
    assert "You have not applied to join an arrangement yet" in main_text(ui)

    page.get_by_role("radio", name=setting.arrangement_name, exact=True).check()
    ui.press_button("Start application")
    assert ui.heading().startswith("Application ")
    reference = ui.heading().removeprefix("Application ")
    assert "Draft" in main_text(ui)

    # Lots and areas.
    ui.click_and_wait(page.get_by_role("link", name="Choose lots and areas"))
    assert ui.heading() == "Choose lots and areas"
    for name in (setting.lot_a, setting.lot_b, *setting.regions):
        page.get_by_role("checkbox", name=name, exact=True).check()
    ui.press_button("Save and continue")
    assert ui.heading() == f"Application {reference}"

    # Lot A: a yes/no question and an insurance certificate that expires.
    ui.click_and_wait(page.get_by_role("link", name=f"Answer {setting.lot_a} questions"))
    assert ui.heading() == f"{setting.lot_a} questions"
    page.get_by_role("group", name=setting.safeguarding_a).get_by_label("Yes", exact=True).check()
    page.get_by_label(setting.insurance_a, exact=True).set_input_files(str(evidence))
    ui.fill("When does this evidence expire?", EXPIRY.isoformat())
    ui.press_button("Save and continue")
    assert ui.heading() == f"Application {reference}"
    assert f"Your answers for {setting.lot_a} have been saved." in ui.banner()

    # Lot B: a yes/no question, an optional number and a text answer.
    ui.click_and_wait(page.get_by_role("link", name=f"Answer {setting.lot_b} questions"))
    assert ui.heading() == f"{setting.lot_b} questions"
    page.get_by_role("group", name=setting.safeguarding_b).get_by_label("Yes", exact=True).check()
    ui.fill(f"{setting.staff_b} (optional)", "12")
    ui.fill(setting.work_b, WORK_ANSWER)
    ui.press_button("Save and continue")
    assert f"Your answers for {setting.lot_b} have been saved." in ui.banner()

    # Partners.
    ui.click_and_wait(
        page.get_by_role("link", name="Name any subcontractors or consortium partners")
    )
    assert ui.heading() == "Subcontractors and partners"
    ui.fill("Subcontractors and consortium partners (optional)", "\n".join(PARTNERS))
    ui.press_button("Save and continue")
    assert ui.heading() == f"Application {reference}"

    # Check your answers, declare and submit.
    ui.click_and_wait(page.get_by_role("link", name="Check your answers and submit"))
    assert ui.heading() == "Check your answers before submitting your application"
    check = main_text(ui)
    for expected in (
        setting.lot_a,
        setting.lot_b,
        *setting.regions,
        evidence.name,
        f"Expires {govuk_date(EXPIRY)}",
        WORK_ANSWER,
        ", ".join(PARTNERS),
    ):
        assert expected in check, expected
    page.get_by_role("checkbox", name="I confirm that the information").check()
    ui.press_button("Accept and submit")

    assert ui.heading() == "Application submitted"
    panel = page.locator(".govuk-panel").inner_text()
    assert reference in panel
    submitted = application_row(live_server, reference)
    assert submitted["status"] == "submitted"
    due = govuk_date(submitted["decision_due_on"])
    assert f"You will get a decision on each lot by {due}" in main_text(ui)

    confirmation = live_server.smtp.wait_for(
        lambda m: m.to == setting.provider.email and reference in m.subject
    )
    assert confirmation.subject == f"We have received your application {reference}"
    assert f"Dear {setting.provider.name}," in confirmation.body
    assert f"We will tell you our decision by {due}" in confirmation.body
    assert f"- {setting.lot_a}" in confirmation.body and f"- {setting.lot_b}" in confirmation.body
    # Assessors are told too.
    received = live_server.smtp.wait_for(
        lambda m: m.to == setting.assessor.email and reference in m.subject
    )
    assert received.subject == f"New application {reference} to assess by {due}"

    ui.sign_out()
    assert "You have signed out" in ui.banner()

    # --- the assessor decides ------------------------------------------------------------------
    sign_in(ui, setting.assessor)
    ui.click_and_wait(page.locator("#service-navigation").get_by_role("link", name="Assessments"))
    assert ui.heading() == "Assessments"
    row = page.locator("tr", has=page.get_by_role("link", name=reference, exact=True))
    assert setting.provider_name in row.inner_text()
    assert "10 working days left" in row.inner_text()

    # Opening it asks for the conflict-of-interest declaration first.
    ui.click_and_wait(page.get_by_role("link", name=reference, exact=True))
    assert ui.heading() == "Declare any conflict of interest"
    page.get_by_role("radio", name="No, I have no conflict of interest").check()
    ui.press_button("Continue")
    assert ui.heading() == f"{reference}: {setting.provider_name}"

    answers = submitted["answers"]  # criterion id -> answer id: every question was answered
    assert {setting.insurance_a_id, setting.work_b_id} <= set(answers)
    assert len(answers) == 5

    def mark(answer_id: int, outcome: str, comment: str = "") -> None:
        form = page.locator(f'form[action$="/answers/{answer_id}"]')
        form.get_by_role("radio", name=outcome, exact=True).check()
        if comment:
            form.get_by_label("Comment", exact=True).fill(comment)
        ui.click_and_wait(form.get_by_role("button", name="Save mark"))
        assert "The mark has been saved." in ui.banner()

    for criterion_id, answer_id in answers.items():
        if criterion_id == setting.insurance_a_id:
            mark(answer_id, "Fail", INSURANCE_FAIL)
        else:
            mark(answer_id, "Pass", "Meets the criterion.")

    def decide(lot_id: int, decision: str, feedback: str = "") -> None:
        form = page.locator(f'form[action$="/lots/{lot_id}/decision"]')
        form.get_by_role("radio", name=decision, exact=True).check()
        if feedback:
            form.get_by_label("Feedback for the provider", exact=True).fill(feedback)
        ui.click_and_wait(form.get_by_role("button", name="Save decision"))

    # The failed mandatory answer forbids admitting lot A: the service refuses and says why.
    decide(setting.lot_a_id, "Admit")
    summary = page.locator(".govuk-error-summary").inner_text()
    assert f"“{setting.insurance_a}” is mandatory and has not been marked as a pass" in summary

    decide(setting.lot_a_id, "Do not admit", LOT_FEEDBACK)
    assert "has been saved" in ui.banner()
    decide(setting.lot_b_id, "Admit")
    assert application_row(live_server, reference)["status"] == "admitted"
    assessed = main_text(ui)
    assert "Not admitted" in assessed and "Admitted" in assessed

    decision = live_server.smtp.wait_for(
        lambda m: m.to == setting.provider.email and m.subject.startswith("Decision on")
    )
    assert decision.subject == f"Decision on your application {reference}"
    assert f"{setting.lot_a}: not admitted" in decision.body
    assert f"Feedback: {LOT_FEEDBACK}" in decision.body
    assert f"{setting.lot_b}: admitted" in decision.body
    assert setting.insurance_a in decision.body and INSURANCE_FAIL in decision.body
    for region_name in setting.regions:
        assert f"- {setting.lot_b}, {region_name}, from " in decision.body

    ui.sign_out()

    # --- the provider sees the outcome ---------------------------------------------------------
    sign_in(ui, setting.provider)
    ui.click_and_wait(page.locator("#service-navigation").get_by_role("link", name="Accreditation"))
    ui.click_and_wait(page.get_by_role("link", name="Your applications"))
    ui.click_and_wait(page.get_by_role("link", name=reference, exact=True))
    assert ui.heading() == f"Application {reference}"
    shown = main_text(ui)
    assert page.locator("main .govuk-tag").first.inner_text() == "Admitted"  # at least one lot
    lot_a_heading = page.locator("h3", has_text=setting.lot_a).first
    assert "Not admitted" in lot_a_heading.inner_text()
    assert LOT_FEEDBACK in shown
    assert "Answers that did not meet the criteria" in shown
    assert INSURANCE_FAIL in shown
    lot_b_heading = page.locator("h3", has_text=setting.lot_b).first
    assert "Admitted" in lot_b_heading.inner_text()
    assert page.get_by_role("button", name="Amend and resubmit").is_visible()

    ui.click_and_wait(page.locator("#service-navigation").get_by_role("link", name="Accreditation"))
    ui.click_and_wait(page.get_by_role("link", name="Our accreditation"))
    assert ui.heading() == "Our accreditation"
    rows = page.locator("table tbody tr")
    memberships = sorted(
        tuple(cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()[:4])
        for i in range(rows.count())
    )
    assert memberships == sorted(
        (setting.arrangement_name, setting.lot_b, region_name, "Active")
        for region_name in setting.regions
    )
    assert setting.lot_a not in page.locator("table").inner_text()

    ui.sign_out()
    assert len(ui.pages_audited) >= 25
