"""The authority's member pages: list and filters, suspend, reinstate, remove, re-declarations."""

from __future__ import annotations

import re

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accreditation.models import (
    ArrangementStatus,
    LotMembership,
    MembershipStatus,
    RedeclarationRequest,
    RemovalReason,
)
from marketplace.core.audit import AuditEvent
from marketplace.core.db import commit, db
from tests.accreditation.factories import make_arrangement, make_lot_membership
from tests.factories import make_member, make_organisation
from tests.pages import count, error_messages, main


@pytest.fixture
def admin(app):
    user = make_member(Role.AUTHORITY_ADMIN)
    commit()
    return user


@pytest.fixture
def membership(app):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE, name="Rehab DPS")
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Anchor Recovery Housing")
    make_member(Role.PROVIDER_ADMIN, provider)
    row = make_lot_membership(arrangement.lots[0], provider, region_code="A")
    commit()
    return row


@pytest.mark.parametrize(
    "role",
    [Role.BUYER, Role.APPROVER, Role.PROVIDER_ADMIN, Role.PROVIDER_EDITOR, Role.ASSESSOR],
)
def test_other_roles_get_403(web, membership, role):
    user = make_member(role)
    commit()
    web.as_user(user)
    assert web.get("/accreditation/members").status_code == 403
    assert web.get(f"/accreditation/members/{membership.id}").status_code == 403
    response = web.post(f"/accreditation/members/{membership.id}/suspend", data={"reason": "x"})
    assert response.status_code == 403
    assert web.get("/accreditation/members/redeclaration").status_code == 403
    db.session.refresh(membership)
    assert membership.status == MembershipStatus.ACTIVE


def test_list_and_filters(web, admin, membership):
    other_lot = membership.arrangement.lots[1]
    make_lot_membership(
        other_lot,
        make_organisation(OrganisationType.PROVIDER_VCSE, name="Second Chances"),
        region_code="B",
        status=MembershipStatus.SUSPENDED,
    )
    commit()
    web.as_user(admin)
    page = main(web.get("/accreditation/members"))
    assert "Anchor Recovery Housing" in page and "Second Chances" in page
    page = main(web.get("/accreditation/members?status=suspended"))
    assert "Second Chances" in page and "Anchor Recovery Housing" not in page
    page = main(web.get("/accreditation/members?lot=ACC&region=A"))
    assert "Anchor Recovery Housing" in page and "Second Chances" not in page
    page = main(web.get(f"/accreditation/members?arrangement={membership.arrangement_id}"))
    assert "Anchor Recovery Housing" in page
    page = main(web.get("/accreditation/members?region=K"))
    assert "No members match" in page
    # Nonsense filters are ignored, never a 500.
    response = web.get("/accreditation/members?status=nope&arrangement=x&page=-3")
    assert response.status_code == 200
    assert web.get("/accreditation/members/999999").status_code == 404


def test_member_list_query_count_does_not_grow(web, admin, membership, count_queries):
    web.as_user(admin)
    web.get("/accreditation/members")
    with count_queries() as small:
        web.get("/accreditation/members")
    for i in range(20):
        make_lot_membership(
            membership.lot,
            make_organisation(OrganisationType.PROVIDER_VCSE, name=f"Charity {i}"),
            region_code="B",
        )
    commit()
    with count_queries() as large:
        assert web.get("/accreditation/members").status_code == 200
    assert small.count == large.count <= 10


def test_suspend_and_reinstate(web, admin, membership):
    web.as_user(admin)
    url = f"/accreditation/members/{membership.id}"
    response = web.post(f"{url}/suspend", data={"reason": ""})
    assert response.status_code == 422
    assert error_messages(response) == ["Give the reason for suspending this member"]
    response = web.post(f"{url}/suspend", data={"reason": "Safeguarding concern under review"})
    assert response.status_code == 302
    db.session.refresh(membership)
    assert membership.status == MembershipStatus.SUSPENDED
    assert "Safeguarding concern under review" in main(web.get(url))

    response = web.post(f"{url}/suspend", data={"reason": "Again"})
    assert response.status_code == 422
    assert error_messages(response) == ["This membership has already been suspended"]

    assert web.post(f"{url}/reinstate").status_code == 302
    db.session.refresh(membership)
    assert membership.status == MembershipStatus.ACTIVE
    actions = set(db.session.scalars(db.select(AuditEvent.action)))
    assert {"membership.suspended", "membership.reinstated"} <= actions


def test_remove_needs_a_reason_and_warns_first(web, admin, membership):
    web.as_user(admin)
    url = f"/accreditation/members/{membership.id}/remove"
    page = main(web.get(url))
    assert "Removal is immediate" in page
    assert "A mandatory exclusion ground applies" in page
    response = web.post(url, data={"reason_code": "", "details": "x"})
    assert response.status_code == 422
    assert error_messages(response) == ["Select why you are removing this member"]
    response = web.post(url, data={"reason_code": "mandatory_exclusion", "details": ""})
    assert response.status_code == 422
    assert error_messages(response) == ["Give the details of why you are removing this member"]
    db.session.refresh(membership)
    assert membership.status == MembershipStatus.ACTIVE

    response = web.post(
        url, data={"reason_code": "discretionary_exclusion", "details": "Grave misconduct"}
    )
    assert response.status_code == 302
    db.session.refresh(membership)
    assert membership.status == MembershipStatus.REMOVED
    assert membership.removal_reason == RemovalReason.DISCRETIONARY_EXCLUSION
    assert "A discretionary exclusion ground applies" in main(
        web.get(f"/accreditation/members/{membership.id}")
    )
    assert web.get(url).status_code == 302  # already removed


def test_redeclaration_for_one_member_and_for_a_lot(web, admin, membership):
    make_lot_membership(
        membership.lot,
        make_organisation(OrganisationType.PROVIDER_VCSE, name="Other"),
        region_code="B",
    )
    commit()
    web.as_user(admin)
    url = f"/accreditation/members/{membership.id}/redeclaration"
    response = web.post(url, data={"reason": ""})
    assert response.status_code == 422
    response = web.post(url, data={"reason": "Annual check"})
    assert response.status_code == 302
    assert count(RedeclarationRequest) == 1

    lot_url = "/accreditation/members/redeclaration"
    assert "every member of a lot" in main(web.get(lot_url))
    response = web.post(lot_url, data={"lot": "", "reason": "Criteria changed"})
    assert response.status_code == 422
    assert error_messages(response) == ["Select the lot"]
    response = web.post(lot_url, data={"lot": str(membership.lot_id), "reason": "Criteria changed"})
    assert response.status_code == 302
    assert count(RedeclarationRequest) == 3
    assert count(LotMembership) == 2


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("suspend", "Give the reason for suspending this member"),
        ("redeclaration", "Give the reason for asking for a renewed self-declaration"),
    ],
)
def test_each_form_on_the_member_page_links_its_error_to_its_own_field(
    web, admin, membership, action, message
):
    """U2: the suspend and re-declaration forms both have a reason; both fields had the id
    "reason", so the re-declaration's error linked to (and its label named) the suspension's."""
    web.as_user(admin)
    response = web.post(f"/accreditation/members/{membership.id}/{action}", data={"reason": ""})
    assert response.status_code == 422
    page = main(response)
    [field_id] = re.findall(r'govuk-error-summary__list.*?href="#([^"]+)"', page, re.DOTALL)
    assert len(re.findall(rf'\bid="{re.escape(field_id)}"', page)) == 1
    assert len(re.findall(rf'\bfor="{re.escape(field_id)}"', page)) == 1
    # The field it reaches is in the form that was sent.
    forms = re.findall(r'<form method="post" action="([^"]+)"(.*?)</form>', page, re.DOTALL)
    reached = [url for url, form in forms if f'id="{field_id}"' in form]
    assert len(reached) == 1 and reached[0].endswith(f"/{action}")
    assert error_messages(response) == [message]


def test_remove_answers_every_mistake_at_once(web, admin, membership):
    """A removal sent with neither a reason chosen nor details is answered with both mistakes,
    not one per try."""
    web.as_user(admin)
    response = web.post(
        f"/accreditation/members/{membership.id}/remove", data={"reason_code": "", "details": " "}
    )
    assert response.status_code == 422
    assert error_messages(response) == [
        "Select why you are removing this member",
        "Give the details of why you are removing this member",
    ]
    db.session.refresh(membership)
    assert membership.status == MembershipStatus.ACTIVE


def test_the_member_page_links_to_the_membership_s_history_in_the_audit_log(web, admin, membership):
    """U2: each change (suspended, re-declaration asked, removed) is audited, and the member
    page leads to those events; nothing linked to them, so they were found only by searching."""
    web.as_user(admin)
    url = f"/accreditation/members/{membership.id}"
    assert web.post(f"{url}/suspend", data={"reason": "Under review"}).status_code == 302
    links = re.findall(
        r'href="([^"]*/audit[^"]*)"[^>]*>Every change to this membership', main(web.get(url))
    )
    assert len(links) == 1
    history = main(web.get(links[0].replace("&amp;", "&")))
    assert "membership.suspended" in history
    assert f"lot membership {membership.id}" in history
    assert "user.signed_in" not in history
