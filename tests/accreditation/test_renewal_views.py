"""The assessor's renewed-evidence pages, the API actions and the commands: one service behind all
three; wrong roles, other organisations and bad input answered without writing anything."""

from __future__ import annotations

import io
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.accreditation import uploads
from marketplace.accreditation.cli import accreditation_cli
from marketplace.accreditation.models import (
    EvidenceRenewal,
    LotMembership,
    MembershipStatus,
    RenewalStatus,
    SuspensionCause,
)
from marketplace.accreditation.services import expiry, memberships
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.notifications.models import Notification
from tests.accreditation.builders import make_provider
from tests.accreditation.test_expiry import admitted, count_actions
from tests.factories import make_member
from tests.pages import error_messages, main, text

PDF = b"%PDF-1.4\n%renewed\n%%EOF"


@pytest.fixture
def waiting(app):
    """A member suspended because its insurance expired, with renewed insurance waiting."""
    today = london_date()
    world, organisation, admin, assessor, application, insurance = admitted(
        today - timedelta(days=2)
    )
    expiry.check_expiry(today)
    evidence = uploads.store_evidence(admin, organisation, "insurance-renewed.pdf", io.BytesIO(PDF))
    renewal = memberships.renew_evidence(admin, insurance, evidence, today + timedelta(days=365))
    commit()
    assert {m.status for m in db.session.scalars(sa.select(LotMembership))} == {
        MembershipStatus.SUSPENDED
    }
    return organisation, admin, assessor, insurance, renewal


def page_url(renewal) -> str:
    return f"/accreditation/assessments/evidence/{renewal.id}"


def test_assessors_are_emailed_a_link_to_the_page_that_checks_it(waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    email = db.session.scalar(
        sa.select(Notification).where(
            Notification.template == "accreditation_evidence_renewed",
            Notification.to_email == assessor.email,
        )
    )
    assert f"http://marketplace.test{page_url(renewal)}" in email.body


def test_the_assessor_finds_it_from_the_home_page_and_the_queue(web, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    web.as_user(assessor)
    home = main(web.get("/"))
    assert "Renewed evidence to check" in home and "1 renewed evidence file from members" in home
    assert 'href="/accreditation/assessments/evidence"' in home
    assert 'href="/accreditation/assessments/evidence"' in main(
        web.get("/accreditation/assessments")
    )
    listing = main(web.get("/accreditation/assessments/evidence"))
    assert organisation.name in listing and insurance.criterion.question in listing
    assert f'href="{page_url(renewal)}"' in listing


def test_the_page_shows_the_file_what_it_replaces_and_the_dates(web, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    page = main(web.as_user(assessor).get(page_url(renewal)))
    today = london_date()
    assert f'href="/accreditation/evidence/{renewal.file_id}"' in page
    assert f'href="/accreditation/evidence/{insurance.file_id}"' in page
    assert "insurance-renewed.pdf" in page
    expires = today + timedelta(days=365)
    assert f"{expires.day} {expires:%B %Y}" in page
    old = today - timedelta(days=2)
    assert f"{old.day} {old:%B %Y}" in page and "Expired" in page
    assert "suspended because evidence expired" in page
    # The assessor can download the renewed file (the builder's original has no stored bytes).
    response = web.get(f"/accreditation/evidence/{renewal.file_id}")
    try:
        assert response.status_code == 200 and response.data == PDF
    finally:
        response.close()


def test_accepting_reinstates_and_tells_the_provider(web, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    response = web.as_user(assessor).post(
        page_url(renewal), data={"decision": "accept", "reason": ""}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/accreditation/assessments/evidence"
    follow = text(web.get("/accreditation/assessments/evidence"))
    assert "has been accepted" in follow and "suspended memberships are active again" in follow
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.ACCEPTED
    assert {m.status for m in db.session.scalars(sa.select(LotMembership))} == {
        MembershipStatus.ACTIVE
    }
    assert db.session.scalar(
        sa.select(sa.func.count(Notification.id)).where(
            Notification.template == "accreditation_evidence_accepted",
            Notification.to_email == admin.email,
        )
    )
    # The decision shows on the page; a second decision is refused with a message.
    page = main(web.get(page_url(renewal)))
    assert "Accepted" in page and "<form" not in page
    response = web.post(page_url(renewal), data={"decision": "reject", "reason": "Wrong file"})
    assert response.status_code == 422
    assert error_messages(response) == ["This renewed evidence has already been accepted"]
    assert count_actions("evidence.accepted") == 1 and count_actions("evidence.rejected") == 0
    # The provider sees it accepted on its own page.
    provider_page = main(web.as_user(admin).get("/accreditation/memberships"))
    assert "insurance-renewed.pdf" in provider_page and "Accepted" in provider_page


def test_rejecting_needs_a_reason_answered_on_the_same_page(web, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    web.as_user(assessor)
    response = web.post(page_url(renewal), data={"decision": "reject", "reason": " "})
    assert response.status_code == 422
    assert error_messages(response) == ["Give the reason"]
    assert 'href="#reason"' in text(response)
    response = web.post(page_url(renewal), data={})
    assert response.status_code == 422
    assert error_messages(response) == ["Select whether you accept or reject the renewed evidence"]
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.PENDING
    response = web.post(
        page_url(renewal), data={"decision": "reject", "reason": "The certificate is unsigned"}
    )
    assert response.status_code == 302
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.REJECTED
    membership = db.session.scalars(sa.select(LotMembership)).first()
    assert membership.suspension_cause == SuspensionCause.EVIDENCE_EXPIRED
    provider_page = main(web.as_user(admin).get("/accreditation/memberships"))
    assert "was not accepted: The certificate is unsigned" in provider_page


@pytest.mark.parametrize(
    "role", [Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR, Role.BUYER, Role.APPROVER]
)
def test_other_roles_are_refused(web, waiting, role):
    organisation, admin, assessor, insurance, renewal = waiting
    user = admin if role == Role.PROVIDER_ADMIN else make_member(role)
    commit()
    web.as_user(user)
    assert web.get("/accreditation/assessments/evidence").status_code == 403
    assert web.get(page_url(renewal)).status_code == 403
    assert web.post(page_url(renewal), data={"decision": "accept"}).status_code == 403
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.PENDING


def test_signed_out_is_sent_to_sign_in_and_an_unknown_renewal_is_404(client, web, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    response = client.get(page_url(renewal))
    assert response.status_code == 302 and response.headers["Location"].startswith("/sign-in")
    assert (
        web.as_user(assessor).get("/accreditation/assessments/evidence/999999").status_code == 404
    )


def test_an_authority_admin_can_decide_too(web, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    authority_admin = make_member(Role.AUTHORITY_ADMIN)
    commit()
    web.as_user(authority_admin)
    assert "Renewed evidence to check" in main(web.get("/"))
    response = web.post(page_url(renewal), data={"decision": "accept", "reason": "Checked"})
    assert response.status_code == 302


# ---------------------------------------------------------------------------------------------
# API


def bearer(user, organisation=None) -> dict[str, str]:
    organisation = organisation or user.organisations[0]
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def test_api_lists_accepts_and_refuses_a_second_decision(client, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    headers = bearer(assessor)
    body = client.get("/api/v1/evidence-renewals", headers=headers).get_json()
    assert [item["id"] for item in body["items"]] == [renewal.id]
    item = body["items"][0]
    assert item["status"] == "pending"
    assert item["organisation"] == {"id": organisation.id, "name": organisation.name}
    assert item["file"]["name"] == "insurance-renewed.pdf"
    assert item["replaces_expires_on"] == (london_date() - timedelta(days=2)).isoformat()

    url = f"/api/v1/evidence-renewals/{renewal.id}"
    response = client.post(f"{url}/accept", json={"comment": "Checked"}, headers=headers)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "accepted"
    assert response.get_json()["decision_reason"] == "Checked"
    assert {m.status for m in db.session.scalars(sa.select(LotMembership))} == {
        MembershipStatus.ACTIVE
    }
    again = client.post(f"{url}/accept", json={}, headers=headers)
    assert again.status_code == 409 and again.mimetype == "application/problem+json"
    assert "already been accepted" in again.get_json()["detail"]
    assert client.get(url, headers=headers).get_json()["status"] == "accepted"
    assert (
        client.get("/api/v1/evidence-renewals?status=accepted", headers=headers).get_json()[
            "pagination"
        ]["total"]
        == 1
    )


def test_api_rejects_with_a_reason_and_refuses_bad_input(client, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    headers = bearer(assessor)
    url = f"/api/v1/evidence-renewals/{renewal.id}/reject"
    for body in ({}, {"reason": ""}, {"reason": "x" * 2001}, {"reason": "No", "extra": 1}, []):
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, body
        assert response.mimetype == "application/problem+json"
    assert (
        client.get("/api/v1/evidence-renewals?status=nonsense", headers=headers).status_code == 422
    )
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.PENDING
    response = client.post(url, json={"reason": "Unsigned"}, headers=headers)
    assert response.status_code == 200 and response.get_json()["status"] == "rejected"


def test_api_the_member_sees_its_own_but_cannot_decide_and_others_see_nothing(client, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    url = f"/api/v1/evidence-renewals/{renewal.id}"
    own = bearer(admin, organisation)
    assert [
        i["id"] for i in client.get("/api/v1/evidence-renewals", headers=own).get_json()["items"]
    ] == [renewal.id]
    assert client.get(url, headers=own).status_code == 200
    response = client.post(f"{url}/accept", json={}, headers=own)
    assert response.status_code == 403 and response.mimetype == "application/problem+json"

    stranger_organisation, stranger = make_provider()
    commit()
    other = bearer(stranger, stranger_organisation)
    assert client.get("/api/v1/evidence-renewals", headers=other).get_json()["items"] == []
    assert client.get(url, headers=other).status_code == 404
    assert client.post(f"{url}/accept", json={}, headers=other).status_code == 404
    assert client.post(f"{url}/reject", json={"reason": "x"}, headers=other).status_code == 404
    buyer = make_member(Role.BUYER)
    commit()
    assert client.post(f"{url}/accept", json={}, headers=bearer(buyer)).status_code == 404
    assert client.post(f"{url}/accept", json={}).status_code == 401
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.PENDING


# ---------------------------------------------------------------------------------------------
# Commands


def test_commands_list_accept_and_reject(app, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    runner = app.test_cli_runner()
    listed = runner.invoke(accreditation_cli, ["renewals"])
    assert listed.exit_code == 0 and re.search(
        rf"^{renewal.id}\t{organisation.name}", listed.output, re.M
    )

    refused = runner.invoke(
        accreditation_cli, ["accept-evidence", str(renewal.id), "--by", admin.email]
    )
    assert refused.exit_code != 0 and "Only assessors" in refused.output
    missing = runner.invoke(
        accreditation_cli, ["accept-evidence", "999999", "--by", assessor.email]
    )
    assert missing.exit_code != 0 and "no renewed evidence with id 999999" in missing.output
    nobody = runner.invoke(
        accreditation_cli, ["accept-evidence", str(renewal.id), "--by", "nobody@example.org"]
    )
    assert nobody.exit_code != 0
    db.session.expire_all()
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.PENDING

    accepted = runner.invoke(
        accreditation_cli, ["accept-evidence", str(renewal.id), "--by", assessor.email]
    )
    assert accepted.exit_code == 0, accepted.output
    assert "reinstated 2 membership(s)" in accepted.output
    db.session.expire_all()
    assert db.session.get(EvidenceRenewal, renewal.id).status == RenewalStatus.ACCEPTED
    again = runner.invoke(
        accreditation_cli,
        ["reject-evidence", str(renewal.id), "--by", assessor.email, "--reason", "No"],
    )
    assert again.exit_code != 0 and "already been accepted" in again.output
    assert "No renewed evidence is waiting" in runner.invoke(accreditation_cli, ["renewals"]).output


def test_command_rejects_with_a_reason(app, waiting):
    organisation, admin, assessor, insurance, renewal = waiting
    runner = app.test_cli_runner()
    empty = runner.invoke(
        accreditation_cli,
        ["reject-evidence", str(renewal.id), "--by", assessor.email, "--reason", "  "],
    )
    assert empty.exit_code != 0 and "Give the reason" in empty.output
    result = runner.invoke(
        accreditation_cli,
        ["reject-evidence", str(renewal.id), "--by", assessor.email, "--reason", "Unsigned"],
    )
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    row = db.session.get(EvidenceRenewal, renewal.id)
    assert row.status == RenewalStatus.REJECTED and row.decision_reason == "Unsigned"
