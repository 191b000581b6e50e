"""A provider's "Our accreditation" page: memberships, expiring evidence, renewals, declarations."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    ApplicationStatus,
    EvidenceRenewal,
    LotDecision,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
    RenewalStatus,
    SuspensionCause,
)
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from tests.accreditation.builders import make_provider, make_world, submitted_application
from tests.factories import make_member
from tests.pages import error_messages, main

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
NOW = datetime(2026, 12, 23, 10, tzinfo=UTC)


@pytest.fixture
def member(app):
    """An admitted provider with lot A in two regions; its insurance expires in 10 days."""
    world = make_world()
    organisation, admin = make_provider("Open Door Housing")
    application = submitted_application(world, organisation, admin, lots=[world.lot_a])
    application.status = ApplicationStatus.ADMITTED
    application.decided_at = NOW
    for application_lot in application.lots:
        application_lot.decision = LotDecision.ADMITTED
        application_lot.decided_at = NOW
    for row in application.answers:
        row.outcome = AnswerOutcome.PASS
        row.assessed_at = NOW
    insurance = next(a for a in application.answers if a.criterion_id == world.insurance_a.id)
    insurance.evidence_expires_on = london_date() + timedelta(days=10)
    active = LotMembership(
        arrangement_id=world.arrangement.id,
        lot_id=world.lot_a.id,
        organisation_id=organisation.id,
        region_id=world.region_1.id,
        application_id=application.id,
        admitted_on=date(2027, 1, 4),
    )
    suspended = LotMembership(
        arrangement_id=world.arrangement.id,
        lot_id=world.lot_a.id,
        organisation_id=organisation.id,
        region_id=world.region_2.id,
        application_id=application.id,
        admitted_on=date(2027, 1, 4),
        status=MembershipStatus.SUSPENDED,
        suspended_at=NOW,
        suspension_cause=SuspensionCause.AUTHORITY,
        suspension_reason="Safeguarding concern under review",
    )
    db.session.add_all([active, suspended])
    db.session.flush()
    request = RedeclarationRequest(
        membership_id=active.id, due_on=london_date() + timedelta(days=7), reason="Annual check"
    )
    db.session.add(request)
    commit()
    return world, organisation, admin, insurance, request


def test_the_page_shows_memberships_and_what_to_do(web, member):
    world, organisation, admin, insurance, request = member
    page = main(web.as_user(admin).get("/accreditation/memberships"))
    assert world.arrangement.name in page
    assert "Accommodation" in page and world.region_1.name in page and world.region_2.name in page
    assert "Active" in page and "Suspended" in page
    assert "Safeguarding concern under review" in page
    assert "4 January 2027" in page
    assert insurance.criterion.question in page
    assert f"/accreditation/memberships/evidence/{insurance.id}/renew" in page
    assert f"/accreditation/memberships/redeclarations/{request.id}" in page
    assert "Annual check" in page


def test_an_editor_sees_the_page_but_cannot_act(web, member):
    world, organisation, admin, insurance, request = member
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    commit()
    response = web.as_user(editor).get("/accreditation/memberships")
    assert response.status_code == 200
    page = main(response)
    assert "Ask a provider administrator to upload renewed evidence" in page
    assert "/renew" not in page and "/redeclarations/" not in page
    assert web.get(f"/accreditation/memberships/evidence/{insurance.id}/renew").status_code == 403
    assert web.post(f"/accreditation/memberships/redeclarations/{request.id}").status_code == 403


@pytest.mark.parametrize("role", [Role.BUYER, Role.ASSESSOR, Role.AUTHORITY_ADMIN])
def test_other_roles_are_refused(web, app, role):
    user = make_member(role)
    commit()
    assert web.as_user(user).get("/accreditation/memberships").status_code == 403


def test_another_organisation_cannot_act(web, member):
    world, organisation, admin, insurance, request = member
    _, stranger = make_provider()
    commit()
    web.as_user(stranger)
    page = main(web.get("/accreditation/memberships"))
    assert world.arrangement.name not in page
    assert web.get(f"/accreditation/memberships/evidence/{insurance.id}/renew").status_code == 404
    assert web.post(f"/accreditation/memberships/redeclarations/{request.id}").status_code == 404
    db.session.refresh(request)
    assert request.answered_at is None


def test_renewing_evidence(web, member):
    world, organisation, admin, insurance, request = member
    web.as_user(admin)
    url = f"/accreditation/memberships/evidence/{insurance.id}/renew"
    assert web.get(url).status_code == 200
    new_expiry = london_date() + timedelta(days=400)
    response = web.post(
        url,
        data={
            "file": (io.BytesIO(PDF), "insurance-2027.pdf"),
            "expires_on": new_expiry.isoformat(),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, error_messages(response)
    # It waits for an assessor: the answer keeps the evidence in force until it is accepted.
    row = db.session.get(Answer, insurance.id)
    assert row.file_id == insurance.file_id and row.file.original_name != "insurance-2027.pdf"
    assert row.evidence_expires_on == london_date() + timedelta(days=10)
    assert row.outcome == AnswerOutcome.PASS
    (renewal,) = db.session.scalars(sa.select(EvidenceRenewal)).all()
    assert renewal.status == RenewalStatus.PENDING
    assert renewal.file.original_name == "insurance-2027.pdf"
    assert renewal.expires_on == new_expiry
    assert renewal.replaces_file_id == insurance.file_id
    page = main(web.get("/accreditation/memberships"))
    assert "Renewed evidence is waiting to be checked" in page
    assert "Waiting to be checked" in page and "insurance-2027.pdf" in page
    # The renew page says what waits, and that another upload replaces it.
    page = main(web.get(url))
    assert "It is waiting to be checked" in page and "replaces that one" in page


def test_renewing_with_bad_input(web, member):
    world, organisation, admin, insurance, request = member
    web.as_user(admin)
    url = f"/accreditation/memberships/evidence/{insurance.id}/renew"
    before = insurance.file_id
    response = web.post(
        url,
        data={"file": (io.BytesIO(b"not a pdf"), "insurance.pdf"), "expires_on": "2030-01-01"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert any("must be a PDF" in m for m in error_messages(response))
    response = web.post(
        url,
        data={"file": (io.BytesIO(PDF), "insurance.pdf"), "expires_on": "2020-01-01"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Enter an expiry date in the future" in error_messages(response)
    response = web.post(url, data={})
    assert response.status_code == 422
    assert db.session.get(Answer, insurance.id).file_id == before


def test_answering_a_redeclaration_request(web, member):
    world, organisation, admin, insurance, request = member
    web.as_user(admin)
    url = f"/accreditation/memberships/redeclarations/{request.id}"
    assert "Renew your self-declaration" in main(web.get(url))
    assert web.post(url).status_code == 302
    row = db.session.get(RedeclarationRequest, request.id)
    assert row.answered_at is not None and row.answered_by_id == admin.id
    # Answering twice is refused with a message, not an error page.
    response = web.post(url)
    assert response.status_code == 422
    assert "You have already renewed this declaration" in error_messages(response)
    assert "Annual check" not in main(web.get("/accreditation/memberships"))


def test_no_memberships_yet(web, app):
    _, admin = make_provider()
    commit()
    page = main(web.as_user(admin).get("/accreditation/memberships"))
    assert "not a member of any lot yet" in page
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LotMembership)) == 0


def test_the_home_page_warns_of_evidence_that_expires_and_links_to_renew_it(web, member):
    """P6 starts on the home page: evidence expiring within 30 days is counted there, with the
    way to renew it (nothing said it, so a member found out when suspended)."""
    world, organisation, admin, insurance, request = member
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    commit()
    for person in (admin, editor):
        home = main(web.as_user(person).get("/"))
        assert "Evidence to renew" in home
        assert "1 evidence file expires within 30 days" in home
        assert 'href="/accreditation/memberships"' in home

    insurance.evidence_expires_on = london_date() + timedelta(days=45)
    commit()
    assert "Evidence to renew" not in main(web.as_user(admin).get("/"))

    insurance.evidence_expires_on = london_date() - timedelta(days=1)
    commit()
    assert "1 evidence file has expired" in main(web.as_user(admin).get("/"))


def test_the_home_page_says_what_the_authority_suspended_or_asked_to_re_declare(web, member):
    """U2: a provider suspended by the authority, or asked to renew its self-declaration
    within 5 working days, found nothing about it on its home page; it learned only from an
    email, or from being suspended."""
    world, organisation, admin, insurance, request = member
    home = main(web.as_user(admin).get("/"))
    assert "Self-declaration to renew" in home
    due = request.due_on
    assert f"renew your self-declaration for 1 membership, by {due.day} {due:%B %Y}" in home
    assert "Membership suspended" in home
    assert f"Your membership of Accommodation in {world.region_2.name} is suspended" in home
    assert home.count('href="/accreditation/memberships"') >= 2

    # Renewed, and reinstated: nothing more to say.
    assert web.post(f"/accreditation/memberships/redeclarations/{request.id}").status_code == 302
    suspended = db.session.scalars(
        sa.select(LotMembership).where(LotMembership.status == MembershipStatus.SUSPENDED)
    ).one()
    suspended.status = MembershipStatus.ACTIVE
    suspended.suspended_at = suspended.suspension_cause = suspended.suspension_reason = None
    commit()
    home = main(web.get("/"))
    assert "Self-declaration to renew" not in home and "Membership suspended" not in home
