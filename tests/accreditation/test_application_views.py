"""A provider's application pages: the journey, bad input, permissions and evidence downloads."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
from werkzeug.datastructures import FileStorage
from werkzeug.test import stream_encode_multipart

from marketplace.accounts.models import Role
from marketplace.accreditation.models import (
    Answer,
    AnswerOutcome,
    Application,
    ApplicationStatus,
    EvidenceFile,
    LotDecision,
)
from marketplace.core.db import commit, db
from tests.accreditation.builders import (
    draft_application,
    make_authority,
    make_provider,
    make_world,
    pcc_area_in,
    submitted_application,
)
from tests.factories import make_member
from tests.pages import count, error_messages, main

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    organisation, admin = make_provider("Open Door Housing")
    commit()
    return organisation, admin


def upload(content: bytes = PDF, name: str = "insurance.pdf"):
    return (io.BytesIO(content), name)


def multipart(data: dict) -> dict:
    """A multipart body in memory: the test client spools big bodies to a file it never closes."""
    fields = {
        key: FileStorage(value[0], filename=value[1]) if isinstance(value, tuple) else value
        for key, value in data.items()
    }
    stream, length, boundary = stream_encode_multipart(fields, use_tempfile=False)
    return {
        "input_stream": stream,
        "content_length": length,
        "content_type": f"multipart/form-data; boundary={boundary}",
    }


def lot_url(application, lot):
    return f"/accreditation/applications/{application.id}/lots/{lot.id}"


def test_the_whole_journey(web, world, provider):
    organisation, admin = provider
    web.as_user(admin)

    page = web.get("/accreditation/applications")
    assert page.status_code == 200 and world.arrangement.name in main(page)
    response = web.post(
        "/accreditation/applications/start", data={"arrangement_id": str(world.arrangement.id)}
    )
    assert response.status_code == 302
    application = db.session.scalar(sa.select(Application))
    assert application.organisation_id == organisation.id
    url = f"/accreditation/applications/{application.id}"
    assert response.location.endswith(url)

    task_list = main(web.get(url))
    assert "Choose lots and areas" in task_list and "Cannot start yet" in task_list

    assert web.get(f"{url}/scope").status_code == 200
    response = web.post(
        f"{url}/scope",
        data={"lot_ids": [str(world.lot_a.id)], "region_ids": [str(world.region_1.id)]},
    )
    assert response.status_code == 302
    task_list = main(web.get(url))
    assert "Answer Accommodation questions" in task_list and "Incomplete" in task_list

    page = web.get(lot_url(application, world.lot_a))
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.get_data(True)
    response = web.post(
        lot_url(application, world.lot_a),
        data={
            f"criterion-{world.safeguarding_a.id}": "yes",
            f"criterion-{world.insurance_a.id}": upload(),
            f"criterion-{world.insurance_a.id}-expires": "30 6 2030",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302, error_messages(response)
    answer = db.session.scalar(sa.select(Answer).where(Answer.criterion_id == world.insurance_a.id))
    assert answer.file.original_name == "insurance.pdf"
    assert answer.file.content_type == "application/pdf"
    assert answer.evidence_expires_on == date(2030, 6, 30)
    page = main(web.get(lot_url(application, world.lot_a)))
    assert "insurance.pdf" in page and f"/accreditation/evidence/{answer.file.id}" in page

    response = web.post(f"{url}/partners", data={"partners": "Shelter Partners Ltd\n\n"})
    assert response.status_code == 302

    check = main(web.get(f"{url}/check"))
    assert "insurance.pdf" in check and "Shelter Partners Ltd" in check and "Change" in check
    response = web.post(f"{url}/check", data={"declaration": "y"})
    assert response.status_code == 302 and response.location.endswith(f"{url}/submitted")
    db.session.refresh(application)
    assert application.status == ApplicationStatus.SUBMITTED
    confirmation = main(web.get(response.location))
    assert application.reference in confirmation
    assert application.decision_due_on is not None
    expected = f"{application.decision_due_on.day} {application.decision_due_on:%B %Y}"
    assert expected in confirmation

    listing = main(web.get("/accreditation/applications"))
    assert application.reference in listing and "Submitted" in listing
    # A submitted application can no longer be changed.
    assert web.get(f"{url}/scope").status_code == 302


def test_saving_part_of_a_lot_and_coming_back(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin, lots=[world.lot_b])
    commit()
    web.as_user(admin)
    response = web.post(
        lot_url(application, world.lot_b), data={f"criterion-{world.staff_b.id}": "12"}
    )
    assert response.status_code == 302
    page = main(web.get(lot_url(application, world.lot_b)))
    assert 'value="12"' in page


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"This is plain text, not a PDF", "insurance.pdf", "must be a PDF"),
        (b"MZ\x90\x00" + b"\x00" * 100, "setup.pdf", "is a program"),
        (b"%PDF-1.4" + b"0" * (10 * 1024 * 1024), "big.pdf", "smaller than 10 MB"),
    ],
    ids=["not-really-pdf", "executable", "over-10-mb"],
)
def test_bad_uploads_are_refused_and_nothing_changes(web, world, provider, content, name, message):
    organisation, admin = provider
    application = draft_application(world, organisation, admin, lots=[world.lot_b])
    application.lots.clear()
    commit()
    from marketplace.accreditation.services import applications as services

    services.choose_lots_and_areas(admin, application, [world.lot_a.id], [world.region_1.id])
    commit()
    web.as_user(admin)
    response = web.post(
        lot_url(application, world.lot_a),
        **multipart(
            {
                f"criterion-{world.safeguarding_a.id}": "yes",
                f"criterion-{world.insurance_a.id}": upload(content, name),
                f"criterion-{world.insurance_a.id}-expires": "2030-06-30",
            }
        ),
    )
    assert response.status_code == 422
    assert any(message in m for m in error_messages(response)), error_messages(response)
    assert count(EvidenceFile) == 0
    assert count(Answer, Answer.criterion_id == world.safeguarding_a.id) == 0


def test_a_path_in_the_file_name_is_dropped(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin, lots=[world.lot_a])
    commit()
    web.as_user(admin)
    response = web.post(
        lot_url(application, world.lot_a),
        data={
            f"criterion-{world.insurance_a.id}": upload(PDF, "../../etc/passwd.pdf"),
            f"criterion-{world.insurance_a.id}-expires": "2030-06-30",
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 302
    newest = db.session.scalar(sa.select(EvidenceFile).order_by(EvidenceFile.id.desc()))
    assert newest.original_name == "passwd.pdf"
    assert "/" not in newest.stored_name


def test_evidence_without_an_expiry_date_is_refused(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin, lots=[world.lot_b])
    commit()
    from marketplace.accreditation.services import applications as services

    services.choose_lots_and_areas(admin, application, [world.lot_a.id], [world.region_1.id])
    commit()
    web.as_user(admin)
    response = web.post(
        lot_url(application, world.lot_a),
        data={f"criterion-{world.insurance_a.id}": upload()},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    assert "Enter the date it expires" in error_messages(response)


def test_bad_dates_and_numbers_are_refused(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin, lots=[world.lot_b])
    commit()
    web.as_user(admin)
    response = web.post(
        lot_url(application, world.lot_b), data={f"criterion-{world.staff_b.id}": "twelve"}
    )
    assert response.status_code == 422
    assert "Enter a whole number, like 12" in error_messages(response)
    # A POST without the answer fields at all saves nothing and does not fail.
    assert web.post(lot_url(application, world.lot_b), data={}).status_code == 302


def test_submitting_with_an_unanswered_mandatory_question(web, world, provider):
    organisation, admin = provider
    from marketplace.accreditation.services import applications as services

    application = services.start_application(admin, organisation, world.arrangement)
    services.choose_lots_and_areas(admin, application, [world.lot_a.id], [world.region_1.id])
    services.answer(admin, application, world.safeguarding_a, True)
    commit()
    web.as_user(admin)
    response = web.post(
        f"/accreditation/applications/{application.id}/check", data={"declaration": "y"}
    )
    assert response.status_code == 422
    assert any(world.insurance_a.question in m for m in error_messages(response))
    db.session.refresh(application)
    assert application.status == ApplicationStatus.DRAFT and application.submitted_at is None


def test_submitting_without_the_declaration(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin)
    commit()
    web.as_user(admin)
    response = web.post(f"/accreditation/applications/{application.id}/check", data={})
    assert response.status_code == 422
    assert "Confirm the declaration to submit your application" in error_messages(response)
    db.session.refresh(application)
    assert application.status == ApplicationStatus.DRAFT


def test_choosing_a_lot_or_region_outside_the_arrangement(web, world, provider):
    organisation, admin = provider
    other = make_world()
    application = draft_application(world, organisation, admin, lots=[world.lot_b])
    commit()
    web.as_user(admin)
    url = f"/accreditation/applications/{application.id}/scope"
    for data in (
        {"lot_ids": [str(other.lot_a.id)], "region_ids": [str(world.region_1.id)]},
        {"lot_ids": [str(world.lot_a.id)], "region_ids": [str(world.outside_region.id)]},
        {
            "lot_ids": [str(world.lot_a.id)],
            "pcc_area_ids": [str(pcc_area_in(world.outside_region).id)],
        },
    ):
        response = web.post(url, data=data)
        assert response.status_code == 422, data
        assert error_messages(response)
    db.session.refresh(application)
    assert [al.lot_id for al in application.lots] == [world.lot_b.id]


def test_choosing_a_pcc_area(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin, lots=[world.lot_b])
    commit()
    web.as_user(admin)
    area = pcc_area_in(world.region_2)
    response = web.post(
        f"/accreditation/applications/{application.id}/scope",
        data={"lot_ids": [str(world.lot_b.id)], "pcc_area_ids": [str(area.id)]},
    )
    assert response.status_code == 302
    db.session.refresh(application)
    assert [a.pcc_area_id for a in application.areas] == [area.id]


def test_another_organisations_application_is_not_found(web, world, provider):
    organisation, admin = provider
    application = draft_application(world, organisation, admin)
    evidence_id = application.answers[1].file_id
    _, stranger = make_provider()
    commit()
    web.as_user(stranger)
    base = f"/accreditation/applications/{application.id}"
    for path in ("", "/scope", f"/lots/{world.lot_a.id}", "/partners", "/check", "/withdraw"):
        assert web.get(base + path).status_code == 404, path
    assert web.post(base + "/withdraw").status_code == 404
    assert web.post(base + "/partners", data={"partners": "x"}).status_code == 404
    assert web.get(f"/accreditation/evidence/{evidence_id}").status_code == 404
    db.session.refresh(application)
    assert application.status == ApplicationStatus.DRAFT and application.partners == ""


@pytest.mark.parametrize(
    "role", [Role.BUYER, Role.ASSESSOR, Role.AUTHORITY_ADMIN, Role.PROVIDER_EDITOR]
)
def test_other_roles_are_refused(web, world, provider, role):
    organisation, admin = provider
    application = draft_application(world, organisation, admin)
    user = make_member(role, organisation if role == Role.PROVIDER_EDITOR else None)
    commit()
    web.as_user(user)
    assert web.get("/accreditation/applications").status_code == 403
    assert (
        web.post(
            "/accreditation/applications/start", data={"arrangement_id": str(world.arrangement.id)}
        ).status_code
        == 403
    )
    assert web.get(f"/accreditation/applications/{application.id}").status_code == 403
    assert web.post(f"/accreditation/applications/{application.id}/withdraw").status_code == 403
    assert count(Application) == 1


def test_withdrawing(web, world, provider):
    organisation, admin = provider
    application = submitted_application(world, organisation, admin)
    commit()
    web.as_user(admin)
    url = f"/accreditation/applications/{application.id}/withdraw"
    assert "Are you sure" in main(web.get(url))
    response = web.post(url)
    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status == ApplicationStatus.WITHDRAWN
    # Once withdrawn, it cannot be withdrawn again.
    assert web.get(url).status_code == 302


def test_post_without_csrf_token_is_refused(web, world, provider, csrf_enabled):
    organisation, admin = provider
    application = draft_application(world, organisation, admin)
    commit()
    web.as_user(admin)
    response = web.post(f"/accreditation/applications/{application.id}/withdraw")
    assert response.status_code in (400, 422)
    db.session.refresh(application)
    assert application.status == ApplicationStatus.DRAFT


def _decide(application, admitted_lot, rejected_lot, assessor):
    now = datetime(2027, 1, 4, 10, tzinfo=UTC)
    application.status = ApplicationStatus.REJECTED
    application.decided_at = now
    for application_lot in application.lots:
        admitted = application_lot.lot_id == admitted_lot.id
        application_lot.decision = LotDecision.ADMITTED if admitted else LotDecision.REJECTED
        application_lot.decided_at = now
        application_lot.feedback = "" if admitted else "Your insurance certificate has expired."
    for row in application.answers:
        failed = row.criterion.lot_id == rejected_lot.id
        row.outcome = AnswerOutcome.FAIL if failed else AnswerOutcome.PASS
        row.assessed_at = now
        row.assessor_comment = "The policy does not name your organisation." if failed else ""
    db.session.flush()


def test_feedback_and_amend_after_rejection(web, world, provider):
    organisation, admin = provider
    assessor, _ = make_authority()
    application = submitted_application(world, organisation, admin)
    _decide(application, world.lot_b, world.lot_a, assessor)
    commit()
    web.as_user(admin)
    page = main(web.get(f"/accreditation/applications/{application.id}"))
    assert "Your insurance certificate has expired." in page
    assert "The policy does not name your organisation." in page
    assert "Amend and resubmit" in page
    response = web.post(f"/accreditation/applications/{application.id}/amend")
    assert response.status_code == 302
    new = db.session.scalar(sa.select(Application).where(Application.amends_id == application.id))
    assert new.status == ApplicationStatus.DRAFT
    assert [al.lot_id for al in new.lots] == [world.lot_a.id]
    assert response.location.endswith(f"/accreditation/applications/{new.id}")


@pytest.fixture
def stored_evidence(world, provider):
    from marketplace.accreditation.uploads import store_evidence

    organisation, admin = provider
    evidence = store_evidence(admin, organisation, "insurance.pdf", io.BytesIO(PDF))
    commit()
    return evidence


def test_evidence_download_for_the_organisation_and_the_authority(web, provider, stored_evidence):
    organisation, admin = provider
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    assessor, authority_admin = make_authority()
    commit()
    for user in (admin, editor, assessor, authority_admin):
        response = web.as_user(user).get(f"/accreditation/evidence/{stored_evidence.id}")
        body = response.get_data()
        response.close()  # as a WSGI server does: closes the stored file
        assert response.status_code == 200
        assert body == PDF
        assert response.headers["Content-Type"] == "application/pdf"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"].startswith("attachment")
        assert "insurance.pdf" in response.headers["Content-Disposition"]


def test_evidence_download_refused_to_others(web, client, provider, stored_evidence):
    url = f"/accreditation/evidence/{stored_evidence.id}"
    assert client.get(url).status_code == 302  # signed out: to sign in
    _, stranger = make_provider()
    buyer = make_member(Role.BUYER)
    commit()
    for user in (stranger, buyer):
        assert web.as_user(user).get(url).status_code == 404
    assert web.get("/accreditation/evidence/999999").status_code == 404


class TestClarifications:
    def ask(self, world, provider):
        from marketplace.accreditation.services import assessment

        organisation, admin = provider
        application = submitted_application(world, organisation, admin)
        _, assessor = make_authority()
        assessment.declare_conflict(assessor, application, False)
        request = assessment.request_clarification(
            assessor, application, "Which towns do you cover?"
        )
        commit()
        return application, admin, request

    def test_provider_sees_and_answers_the_question(self, client, login, world, provider):
        from marketplace.accreditation.models import ClarificationRequest

        application, admin, _ = self.ask(world, provider)
        clarification = db.session.scalar(sa.select(ClarificationRequest))
        login(admin, application.organisation)
        page = main(client.get(f"/accreditation/applications/{application.id}"))
        assert "Which towns do you cover?" in page and "Waiting for your answer" in page
        path = f"/accreditation/applications/{application.id}/clarifications/{clarification.id}"
        empty = client.post(path, data={"answer": "  "})
        assert empty.status_code == 422 and error_messages(empty) == ["Enter your answer"]
        assert client.post(path, data={"answer": "Preston and Blackburn"}).status_code == 302
        db.session.expire_all()
        assert (
            db.session.get(ClarificationRequest, clarification.id).answer == "Preston and Blackburn"
        )
        # Answered once: the form is gone and a second answer changes nothing.
        client.post(path, data={"answer": "Somewhere else"})
        db.session.expire_all()
        assert (
            db.session.get(ClarificationRequest, clarification.id).answer == "Preston and Blackburn"
        )

    def test_another_organisation_cannot_see_it(self, client, login, world, provider):
        from marketplace.accreditation.models import ClarificationRequest

        application, _, _ = self.ask(world, provider)
        clarification = db.session.scalar(sa.select(ClarificationRequest))
        _, stranger = make_provider("Someone Else")
        commit()
        login(stranger)
        path = f"/accreditation/applications/{application.id}/clarifications/{clarification.id}"
        assert client.get(path).status_code == 404
        assert client.post(path, data={"answer": "x"}).status_code == 404


def test_the_submitted_panel_shows_the_reference_as_markup_not_escaped_tags(web, world, provider):
    """The panel's body was built as a string joined to an escaped value, which escaped the whole
    string: people saw "Your reference&lt;br&gt;&lt;strong&gt;…" as text."""
    organisation, admin = provider
    application = submitted_application(world, organisation, admin)
    commit()
    page = main(web.as_user(admin).get(f"/accreditation/applications/{application.id}/submitted"))
    panel = page.split('class="govuk-panel__body"', 1)[1].split("</div>", 1)[0]
    assert "&lt;" not in panel and "&gt;" not in panel
    assert f"Your reference<br><strong>{application.reference}</strong>" in panel
