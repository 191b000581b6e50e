"""GET /api/v1/applications/{id}: the applicant organisation and the authority, nobody else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketplace.accounts.models import Membership, OrganisationType, Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.accreditation.services import assessment
from marketplace.core.db import commit, db
from tests.accreditation.builders import (
    draft_application,
    make_authority,
    make_provider,
    make_world,
    submitted_application,
)
from tests.factories import make_member, make_organisation

NOW = datetime.now(UTC)


@pytest.fixture
def case(app):
    world = make_world()
    organisation, provider_admin = make_provider("Northern Lights Housing Trust")
    application = submitted_application(world, organisation, provider_admin, at=NOW)
    assessor, admin = make_authority()
    commit()
    return world, organisation, provider_admin, assessor, admin, application


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def url(application) -> str:
    return f"/api/v1/applications/{application.id}"


def test_own_organisation_sees_its_application(client, case):
    world, organisation, provider_admin, _, _, application = case
    response = client.get(url(application), headers=bearer(provider_admin, organisation))
    assert response.status_code == 200
    body = response.get_json()
    assert body["reference"] == application.reference
    assert body["status"] == "submitted"
    assert body["arrangement"] == {
        "id": world.arrangement.id,
        "reference": world.arrangement.reference,
        "name": world.arrangement.name,
    }
    assert body["organisation"] == {"id": organisation.id, "name": organisation.name}
    assert [lot["lot_code"] for lot in body["lots"]] == [
        world.lot_a.category.code,
        world.lot_b.category.code,
    ]
    assert all(lot["decision"] == "pending" and lot["feedback"] is None for lot in body["lots"])
    assert {a["region_code"] for a in body["areas"]} == {
        world.region_1.code,
        world.region_2.code,
    }
    assert body["submitted_at"] is not None
    assert body["decision_due_on"] == application.decision_due_on.isoformat()
    assert body["decided_at"] is None


def test_an_editor_of_the_organisation_sees_it_too(client, case):
    _, organisation, _, _, _, application = case
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    assert client.get(url(application), headers=bearer(editor, organisation)).status_code == 200


def test_feedback_shows_once_the_lot_is_decided(client, case):
    world, organisation, provider_admin, assessor, _, application = case
    assessment.declare_conflict(assessor, application, False)
    assessment.decide_lot(assessor, application, world.lot_b, False, "No DBS evidence")
    commit()
    body = client.get(url(application), headers=bearer(provider_admin, organisation)).get_json()
    lots = {lot["lot_code"]: lot for lot in body["lots"]}
    decided = lots[world.lot_b.category.code]
    assert decided["decision"] == "rejected"
    assert decided["feedback"] == "No DBS evidence"
    assert decided["decided_at"] is not None
    assert lots[world.lot_a.category.code]["feedback"] is None
    assert body["status"] == "under_assessment"


def test_another_organisation_gets_404(client, case):
    _, _, _, _, _, application = case
    other, other_admin = make_provider("Someone Else")
    response = client.get(url(application), headers=bearer(other_admin, other))
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"


def test_a_member_of_the_organisation_with_a_token_for_another_gets_404(client, case):
    """A token speaks for one organisation: the same person's other organisation sees nothing."""
    _, organisation, provider_admin, _, _, application = case
    other, _ = make_provider("Provider Admin's Other Charity")
    db.session.add(
        Membership(user_id=provider_admin.id, organisation_id=other.id, role=Role.PROVIDER_ADMIN)
    )
    response = client.get(url(application), headers=bearer(provider_admin, other))
    assert response.status_code == 404


@pytest.mark.parametrize("who", ["assessor", "admin"])
def test_assessors_and_authority_admins_see_it(client, case, who):
    _, _, _, assessor, admin, application = case
    user = assessor if who == "assessor" else admin
    authority = next(iter(user.memberships)).organisation
    response = client.get(url(application), headers=bearer(user, authority))
    assert response.status_code == 200
    assert response.get_json()["reference"] == application.reference


def test_assessors_do_not_see_drafts(client, case):
    world, _, _, assessor, _, _ = case
    organisation, provider_admin = make_provider("Drafting Charity")
    draft = draft_application(world, organisation, provider_admin, at=NOW)
    authority = next(iter(assessor.memberships)).organisation
    assert client.get(url(draft), headers=bearer(assessor, authority)).status_code == 404
    own = client.get(url(draft), headers=bearer(provider_admin, organisation))
    assert own.status_code == 200
    assert own.get_json()["submitted_at"] is None


def test_a_buyer_gets_404(client, case):
    _, _, _, _, _, application = case
    region = make_organisation(OrganisationType.PROBATION_REGION)
    buyer = make_member(Role.BUYER, region)
    assert client.get(url(application), headers=bearer(buyer, region)).status_code == 404


def test_no_token_is_401(client, case):
    _, _, _, _, _, application = case
    response = client.get(url(application))
    assert response.status_code == 401
    assert response.mimetype == "application/problem+json"


def test_unknown_id_is_404(client, case):
    _, organisation, provider_admin, _, _, _ = case
    response = client.get(
        "/api/v1/applications/999999", headers=bearer(provider_admin, organisation)
    )
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
