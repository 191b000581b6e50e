"""The arrangements API: public lists, detail with criteria in force, members; memberships by token."""

from __future__ import annotations

import pytest

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.accreditation.models import ArrangementStatus, MembershipStatus
from marketplace.core.db import commit
from tests.accreditation.factories import make_arrangement, make_criterion, make_lot_membership
from tests.factories import make_member, make_organisation


@pytest.fixture
def live(app):
    arrangement = make_arrangement(status=ArrangementStatus.LIVE, name="Live DPS")
    acc, ete = arrangement.lots
    old = make_criterion(acc, question="Old question")
    old.retired_in_version = 2
    make_criterion(acc, question="Current question", version=2)
    arrangement.criteria_version = 2
    provider = make_organisation(name="Hope Housing")
    make_lot_membership(acc, provider, region_code="A")
    make_lot_membership(ete, provider, region_code="B")
    make_lot_membership(acc, make_organisation(name="Gone"), status=MembershipStatus.REMOVED)
    make_arrangement(name="Pending DPS")
    commit()
    return arrangement


def test_list_arrangements_is_public_and_shows_live_only(client, live):
    response = client.get("/api/v1/arrangements")
    assert response.status_code == 200
    body = response.get_json()
    assert [a["name"] for a in body["items"]] == ["Live DPS"]
    assert body["pagination"]["total"] == 1
    assert body["items"][0]["legal_regime"] == "pcr2015_dps"


def test_arrangement_detail_has_lots_and_criteria_in_force(client, live):
    body = client.get(f"/api/v1/arrangements/{live.id}").get_json()
    assert [lot["code"] for lot in body["lots"]] == ["ACC", "ETE"]
    assert [c["question"] for c in body["lots"][0]["criteria"]] == ["Current question"]
    assert [r["code"] for r in body["regions"]] == ["A", "B"]
    assert body["criteria_version"] == 2


def test_pending_arrangement_is_404(client, live):
    pending = make_arrangement()
    commit()
    response = client.get(f"/api/v1/arrangements/{pending.id}")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert client.get(f"/api/v1/arrangements/{pending.id}/members").status_code == 404


def test_members_filters_and_pagination(client, live):
    body = client.get(f"/api/v1/arrangements/{live.id}/members").get_json()
    assert body["pagination"]["total"] == 2
    assert {m["organisation"] for m in body["items"]} == {"Hope Housing"}
    by_lot = client.get(f"/api/v1/arrangements/{live.id}/members?lot=ETE").get_json()
    assert [m["lot_code"] for m in by_lot["items"]] == ["ETE"]
    by_region = client.get(f"/api/v1/arrangements/{live.id}/members?region=A").get_json()
    assert [m["region_code"] for m in by_region["items"]] == ["A"]
    paged = client.get(f"/api/v1/arrangements/{live.id}/members?page_size=1&page=2").get_json()
    assert len(paged["items"]) == 1 and paged["pagination"]["pages"] == 2


def test_members_unknown_filter_is_422(client, live):
    response = client.get(f"/api/v1/arrangements/{live.id}/members?lot=NOPE")
    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"


def test_memberships_need_a_token_and_show_own_organisation(client, live):
    assert client.get("/api/v1/memberships").status_code == 401
    provider = live.lots[0].criteria[0].lot  # noqa: F841 - loads the lot
    hope = next(m.organisation for m in _memberships(live) if m.organisation.name == "Hope Housing")
    user = make_member(Role.PROVIDER_ADMIN, hope)
    _, secret = create_api_token(user, hope, "tests")
    other = make_organisation(OrganisationType.PROVIDER_VCSE)
    make_lot_membership(live.lots[0], other)
    commit()
    response = client.get("/api/v1/memberships", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert len(items) == 2
    assert {i["lot_code"] for i in items} == {"ACC", "ETE"}
    assert all(i["arrangement"]["name"] == "Live DPS" for i in items)
    assert all(i["status"] == "active" for i in items)


def _memberships(arrangement):
    import sqlalchemy as sa

    from marketplace.accreditation.models import LotMembership
    from marketplace.core.db import db

    return db.session.scalars(
        sa.select(LotMembership).where(LotMembership.arrangement_id == arrangement.id)
    ).all()
