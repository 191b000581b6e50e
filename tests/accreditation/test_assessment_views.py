"""The assessor's pages: the queue, declaring first, marking, clarifying, extending, deciding."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from flask import template_rendered

from marketplace.accounts.models import Role
from marketplace.accreditation.models import (
    Application,
    ApplicationStatus,
    ClarificationRequest,
    ConflictDeclaration,
    LotDecision,
    LotMembership,
)
from marketplace.accreditation.services import applications as app_services
from marketplace.accreditation.services import assessment as assess_services
from marketplace.core.db import commit, db
from tests.accreditation.builders import (
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)
from tests.conftest import sign_in_as
from tests.factories import make_member
from tests.pages import count, error_messages, main

NOW = datetime.now(UTC)


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def people(app):
    assessor, admin = make_authority()
    return assessor, admin


@pytest.fixture
def application(world):
    organisation, provider_admin = make_provider("Northern Lights Housing Trust")
    application = submitted_application(world, organisation, provider_admin, at=NOW)
    commit()
    return application


def declared(assessor, application) -> None:
    assess_services.declare_conflict(assessor, application, False)
    commit()


def answer_for(application, criterion):
    return next(a for a in application.answers if a.criterion_id == criterion.id)


# ---------------------------------------------------------------------------------------------
# Permissions


@pytest.mark.parametrize(
    "role", [Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR]
)
def test_other_roles_get_403(web, application, role):
    user = make_member(role)
    commit()
    web.as_user(user)
    assert web.get("/accreditation/assessments").status_code == 403
    assert web.get(f"/accreditation/assessments/{application.id}").status_code == 403
    declare = f"/accreditation/assessments/{application.id}/declare"
    assert web.post(declare, data={"conflict": "no"}).status_code == 403
    assert count(ConflictDeclaration) == 0


def test_signed_out_people_are_sent_to_sign_in(client, application):
    response = client.get("/accreditation/assessments")
    assert response.status_code == 302
    assert "sign-in" in response.headers["Location"]


@pytest.mark.parametrize("who", ["assessor", "admin"])
def test_assessors_and_authority_admins_see_the_queue(web, people, application, who):
    assessor, admin = people
    web.as_user(assessor if who == "assessor" else admin)
    response = web.get("/accreditation/assessments")
    assert response.status_code == 200
    page = main(response)
    assert application.reference in page
    assert "Northern Lights Housing Trust" in page


def test_a_draft_is_not_found(web, people, world):
    assessor, _ = people
    organisation, provider_admin = make_provider()
    draft = app_services.start_application(provider_admin, organisation, world.arrangement)
    commit()
    web.as_user(assessor)
    assert web.get(f"/accreditation/assessments/{draft.id}/declare").status_code == 404
    assert web.get("/accreditation/assessments/999999").status_code == 404


# ---------------------------------------------------------------------------------------------
# The queue


def test_queue_is_sorted_by_deadline_and_shows_breaches(web, people, world):
    assessor, _ = people
    late_org, late_admin = make_provider("Late Charity")
    soon_org, soon_admin = make_provider("Soon Charity")
    late = submitted_application(world, late_org, late_admin, at=NOW - timedelta(days=40))
    soon = submitted_application(world, soon_org, soon_admin, at=NOW)
    commit()
    web.as_user(assessor)
    page = main(web.get("/accreditation/assessments"))
    assert page.index(late.reference) < page.index(soon.reference)
    assert "govuk-tag--red" in page
    assert "Overdue by" in page
    assert "working days left" in page


def _fill_queue(world, n: int) -> None:
    for i in range(n):
        organisation, admin = make_provider(f"Queue Charity {i}")
        submitted_application(world, organisation, admin, at=NOW - timedelta(days=i % 20))
    commit()


def test_queue_needs_the_same_few_queries_whatever_the_data_size(web, people, world, count_queries):
    assessor, _ = people
    web.as_user(assessor)
    _fill_queue(world, 3)
    # Warm caches (templates, reference data, the signed-in person) on another page of the queue.
    web.get("/accreditation/assessments?page=2")
    with count_queries() as small:  # the first view since the queue changed: built from the data
        assert web.get("/accreditation/assessments").status_code == 200
    with count_queries() as small_again:  # unchanged since: the rendered queue is reused
        assert web.get("/accreditation/assessments").status_code == 200
    _fill_queue(world, 27)  # new providers and people too
    web.get("/accreditation/assessments?page=2")
    with count_queries() as large:
        response = web.get("/accreditation/assessments")
    assert response.status_code == 200
    assert "Page 1 of 2" in main(response)
    with count_queries() as large_again:
        # The main content only: the header's sign-out form carries a CSRF token whose timestamp
        # changes when a second passes between the two requests.
        assert main(web.get("/accreditation/assessments")) == main(response)
    assert small.count == large.count
    assert large.count <= 10, large.statements
    # Reusing the rendered queue and the cached person costs one query: the generations.
    assert small_again.count == large_again.count == 1, large_again.statements


def test_queue_shows_a_change_at_once_after_it_was_cached(web, people, world):
    assessor, _ = people
    web.as_user(assessor)
    _fill_queue(world, 2)
    assert "Queue Charity 1" in main(web.get("/accreditation/assessments"))  # now cached
    organisation, admin = make_provider("Queue Charity Late")
    late = submitted_application(world, organisation, admin, at=NOW)
    commit()
    assert "Queue Charity Late" in main(web.get("/accreditation/assessments"))
    organisation.name = "Renamed Charity"
    commit()
    page = main(web.get("/accreditation/assessments"))
    assert "Renamed Charity" in page and "Queue Charity Late" not in page
    late.status = ApplicationStatus.WITHDRAWN
    late.withdrawn_at = NOW
    commit()
    assert late.reference not in main(web.get("/accreditation/assessments"))


@pytest.fixture
def rendered(app):
    """The names of the templates the app renders during the test."""
    names: list[str] = []

    def note(sender, template, context, **extra):
        names.append(template.name)

    template_rendered.connect(note, app, weak=False)
    yield names
    template_rendered.disconnect(note, app)


def _csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


def test_the_whole_queue_page_is_kept_with_each_requests_own_csrf_token(
    app, people, world, csrf_enabled, rendered
):
    assessor, _ = people
    _fill_queue(world, 2)
    first, second = app.test_client(), app.test_client()
    for client in (first, second):
        sign_in_as(client, assessor)
    response_one = first.get("/accreditation/assessments")
    assert "accreditation/assessment/queue.html" in rendered
    rendered.clear()
    response_two = second.get("/accreditation/assessments")
    assert rendered == []  # the same assessor's page, from this worker's copy
    assert main(response_two) == main(response_one)
    page_one, page_two = response_one.get_data(as_text=True), response_two.get_data(as_text=True)
    assert assessor.name in page_two
    # Each session has its own token in the header's forms, and it is the one that works.
    token_one, token_two = _csrf_token(page_one), _csrf_token(page_two)
    assert "csrf-hole" not in page_two and token_one != token_two
    refused = second.post("/sign-out", data={"csrf_token": token_one})
    assert refused.status_code == 400
    signed_out = second.post("/sign-out", data={"csrf_token": token_two})
    assert signed_out.status_code == 302
    assert second.get("/accreditation/assessments").status_code == 302  # to sign in


def test_a_kept_queue_page_shows_each_assessors_own_header_and_a_changed_name(
    app, web, people, world
):
    assessor, _ = people
    other = make_member(Role.ASSESSOR, assessor.organisations[0], name="Second Assessor")
    commit()
    _fill_queue(world, 1)
    web.as_user(assessor)
    assert assessor.name in web.get("/accreditation/assessments").get_data(as_text=True)
    web.as_user(other)
    page = web.get("/accreditation/assessments").get_data(as_text=True)
    assert "Second Assessor" in page and assessor.name not in page
    other.name = "Renamed Assessor"
    commit()
    assert "Renamed Assessor" in web.get("/accreditation/assessments").get_data(as_text=True)


def test_a_message_to_flash_is_shown_on_a_kept_queue_page(client, web, people, world):
    assessor, _ = people
    _fill_queue(world, 1)
    web.as_user(assessor)
    web.get("/accreditation/assessments")  # kept
    with client.session_transaction() as session:
        session["_flashes"] = [("success", "Decision recorded")]
    assert "Decision recorded" in web.get("/accreditation/assessments").get_data(as_text=True)
    assert "Decision recorded" not in web.get("/accreditation/assessments").get_data(as_text=True)


def test_queue_is_paginated(web, people, world):
    assessor, _ = people
    _fill_queue(world, 27)
    web.as_user(assessor)
    first = main(web.get("/accreditation/assessments"))
    second = main(web.get("/accreditation/assessments?page=2"))
    assert "Page 1 of 2" in first
    assert "Page 2 of 2" in second
    assert second.count('class="govuk-table__row"') == 1 + 2  # header + 2 entries
    assert web.get("/accreditation/assessments?page=x").status_code == 200


# ---------------------------------------------------------------------------------------------
# Declare first


def test_opening_without_a_declaration_redirects_to_it(web, people, application):
    assessor, _ = people
    web.as_user(assessor)
    response = web.get(f"/accreditation/assessments/{application.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith(
        f"/accreditation/assessments/{application.id}/declare"
    )
    answer = application.answers[0]
    response = web.post(
        f"/accreditation/assessments/{application.id}/answers/{answer.id}",
        data={f"answer-{answer.id}-outcome": "pass"},
    )
    assert response.status_code == 302
    db.session.refresh(answer)
    assert answer.outcome is None


def test_declaring_no_conflict_opens_the_application(web, people, application, world):
    assessor, _ = people
    web.as_user(assessor)
    url = f"/accreditation/assessments/{application.id}/declare"
    response = web.post(url, data={"conflict": ""})
    assert response.status_code == 422
    assert error_messages(response) == ["Select whether you have a conflict of interest"]

    response = web.post(url, data={"conflict": "no"})
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/accreditation/assessments/{application.id}")
    db.session.refresh(application)
    assert application.status == ApplicationStatus.UNDER_ASSESSMENT

    page = main(web.get(f"/accreditation/assessments/{application.id}"))
    assert world.safeguarding_a.question in page
    assert "/accreditation/evidence/" in page
    assert "insurance-" in page
    assert "Decision on Accommodation" in page
    # Declaring again just opens the application.
    assert web.get(url).status_code == 302


def test_a_declared_conflict_needs_details_and_blocks_the_assessor(web, people, application):
    assessor, _ = people
    web.as_user(assessor)
    url = f"/accreditation/assessments/{application.id}/declare"
    response = web.post(url, data={"conflict": "yes", "details": ""})
    assert response.status_code == 422
    assert error_messages(response) == ["Describe the conflict of interest"]
    assert count(ConflictDeclaration) == 0

    response = web.post(url, data={"conflict": "yes", "details": "My sister is a trustee"})
    assert response.status_code == 302
    page = main(web.get(url))
    assert "Another assessor must assess it" in page
    assert "My sister is a trustee" in page
    response = web.get(f"/accreditation/assessments/{application.id}")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/declare")
    db.session.refresh(application)
    assert application.status == ApplicationStatus.SUBMITTED


# ---------------------------------------------------------------------------------------------
# Marking, clarification, extension, decisions


def test_marking_an_answer(web, people, application, world):
    assessor, _ = people
    declared(assessor, application)
    web.as_user(assessor)
    answer = answer_for(application, world.safeguarding_a)
    url = f"/accreditation/assessments/{application.id}/answers/{answer.id}"
    response = web.post(url, data={f"answer-{answer.id}-outcome": "fail"})
    assert response.status_code == 422
    assert error_messages(response) == ["Say why the answer does not meet the criterion"]
    db.session.refresh(answer)
    assert answer.outcome is None

    response = web.post(
        url, data={f"answer-{answer.id}-outcome": "pass", f"answer-{answer.id}-comment": "Fine"}
    )
    assert response.status_code == 302
    db.session.refresh(answer)
    assert answer.outcome == "pass"
    assert answer.assessor_comment == "Fine"
    assert (
        web.post(
            f"/accreditation/assessments/{application.id}/answers/999999",
            data={"answer-999999-outcome": "pass"},
        ).status_code
        == 404
    )


def test_a_mark_and_its_comment_read_as_one_sentence(web, people, application, world):
    assessor, _ = people
    declared(assessor, application)
    answer = answer_for(application, world.insurance_a)
    assess_services.mark_answer(assessor, answer, "fail", "The amount insured is not shown.")
    commit()
    web.as_user(assessor)

    page = main(web.get(f"/accreditation/assessments/{application.id}"))

    # As a person reads it: the outcome's tag runs on into the comment, with no gap before ":".
    read = " ".join(unescape(re.sub(r"<[^>]+>", "", page)).split())
    assert "Marked Fail: The amount insured is not shown." in read


def test_admitting_with_a_failed_mandatory_answer_is_refused(web, people, application, world):
    assessor, _ = people
    declared(assessor, application)
    answer = answer_for(application, world.safeguarding_a)
    assess_services.mark_answer(assessor, answer, "fail", "No policy attached")
    commit()
    web.as_user(assessor)
    url = f"/accreditation/assessments/{application.id}/lots/{world.lot_a.id}/decision"
    response = web.post(url, data={f"lot-{world.lot_a.id}-decision": "admit"})
    assert response.status_code == 422
    messages = error_messages(response)
    assert any("cannot be admitted" in m for m in messages)
    assert count(LotMembership) == 0
    db.session.refresh(application)
    assert all(al.decision == LotDecision.PENDING for al in application.lots)


def test_deciding_every_lot_decides_the_application(web, people, application, world):
    assessor, _ = people
    declared(assessor, application)
    for criterion in (world.safeguarding_a, world.insurance_a):
        assess_services.mark_answer(assessor, answer_for(application, criterion), "pass")
    commit()
    web.as_user(assessor)
    base = f"/accreditation/assessments/{application.id}/lots"
    response = web.post(
        f"{base}/{world.lot_a.id}/decision", data={f"lot-{world.lot_a.id}-decision": "admit"}
    )
    assert response.status_code == 302
    response = web.post(
        f"{base}/{world.lot_b.id}/decision", data={f"lot-{world.lot_b.id}-decision": "reject"}
    )
    assert response.status_code == 422
    assert error_messages(response) == ["Give feedback saying why the lot is rejected"]
    response = web.post(
        f"{base}/{world.lot_b.id}/decision",
        data={
            f"lot-{world.lot_b.id}-decision": "reject",
            f"lot-{world.lot_b.id}-feedback": "No DBS checks",
        },
    )
    assert response.status_code == 302
    db.session.refresh(application)
    assert application.status == ApplicationStatus.ADMITTED
    assert count(LotMembership) == 2  # lot A in two regions
    page = main(web.get(f"/accreditation/assessments/{application.id}"))
    assert "Not admitted" in page and "No DBS checks" in page


def test_clarification_and_extension(web, people, application):
    assessor, _ = people
    declared(assessor, application)
    web.as_user(assessor)
    base = f"/accreditation/assessments/{application.id}"
    response = web.post(f"{base}/clarification", data={"question": ""})
    assert response.status_code == 422
    assert error_messages(response) == ["Enter your question"]
    response = web.post(f"{base}/clarification", data={"question": "Which towns do you cover?"})
    assert response.status_code == 302
    assert count(ClarificationRequest) == 1

    due = application.decision_due_on
    response = web.post(f"{base}/extend", data={"reason": "Waiting for references"})
    assert response.status_code == 302
    db.session.refresh(application)
    extended_due = application.decision_due_on
    assert extended_due > due
    response = web.post(f"{base}/extend", data={"reason": "Again"})
    assert response.status_code == 422
    assert error_messages(response) == [
        "The deadline has already been extended once and cannot be extended again"
    ]
    db.session.refresh(application)
    assert application.decision_due_on == extended_due
    assert application.extension_reason == "Waiting for references"


def test_deciding_a_withdrawn_application_is_refused(web, people, application, world):
    assessor, _ = people
    declared(assessor, application)
    provider_admin = db.session.get(type(assessor), application.created_by_id)
    app_services.withdraw(provider_admin, db.session.get(Application, application.id))
    commit()
    web.as_user(assessor)
    response = web.post(
        f"/accreditation/assessments/{application.id}/lots/{world.lot_b.id}/decision",
        data={f"lot-{world.lot_b.id}-decision": "reject", f"lot-{world.lot_b.id}-feedback": "x"},
    )
    assert response.status_code == 422
    assert error_messages(response) == [
        "This application has been withdrawn, so it cannot be assessed"
    ]
    db.session.refresh(application)
    assert application.status == ApplicationStatus.WITHDRAWN
    assert all(al.decision == LotDecision.PENDING for al in application.lots)


def test_page_escapes_provider_text(web, people, world):
    assessor, _ = people
    organisation, provider_admin = make_provider("<script>alert(1)</script>")
    application = submitted_application(world, organisation, provider_admin, at=NOW)
    declared(assessor, application)
    web.as_user(assessor)
    page = main(web.get(f"/accreditation/assessments/{application.id}"))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page
