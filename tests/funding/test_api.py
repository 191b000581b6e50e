"""The budget and standing-authorisation endpoints: the same rules and permissions as the pages,
bad input as 4xx problem+json with nothing written, another organisation's objects not found."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import OrganisationType, Role
from marketplace.core import clock
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.funding.models import MAX_AMOUNT_PENCE, BudgetChange
from marketplace.orders.models import Budget, FundingAuthorisation
from tests.factories import make_member, make_organisation
from tests.orders.factories import build_orders_world
from tests.orders.test_call_off_api import bearer
from tests.pages import count

YEAR = clock.financial_year(clock.london_date())


@pytest.fixture
def world(app):
    world = build_orders_world()
    commit()
    return world


def refused(response, status: int = 422) -> dict:
    assert response.status_code == status, response.json
    assert response.headers["Content-Type"] == PROBLEM_JSON
    return response.json


def test_an_approver_lists_sets_and_changes_budgets(client, world):
    approver = bearer(world.approver, world.region)
    listed = client.get("/api/v1/budgets", headers=approver).json
    assert [b["id"] for b in listed["items"]] == [world.budget.id]
    assert listed["pagination"]["total"] == 1
    made = client.post(
        "/api/v1/budgets",
        json={"financial_year": YEAR + 1, "allocated_pence": 5_000_000, "reason": "Plan"},
        headers=approver,
    )
    assert made.status_code == 201, made.json
    assert made.json["financial_year_label"] == f"{YEAR + 1}-{str(YEAR + 2)[-2:]}"
    assert [h["new_allocated_pence"] for h in made.json["history"]] == [5_000_000]
    changed = client.patch(
        f"/api/v1/budgets/{made.json['id']}",
        json={
            "allocated_pence": 6_000_000,
            "reason": "More",
            "expected_allocated_pence": 5_000_000,
        },
        headers=approver,
    )
    assert changed.status_code == 200 and changed.json["available_pence"] == 6_000_000
    assert [h["old_allocated_pence"] for h in changed.json["history"]] == [5_000_000, None]
    stale = client.patch(
        f"/api/v1/budgets/{made.json['id']}",
        json={
            "allocated_pence": 7_000_000,
            "reason": "Mine",
            "expected_allocated_pence": 5_000_000,
        },
        headers=approver,
    )
    refused(stale, 409)
    one = client.get(f"/api/v1/budgets/{world.budget.id}", headers=approver)
    assert one.status_code == 200 and one.json["committed_pence"] == 0
    this_year = client.get(f"/api/v1/budgets?financial_year={YEAR}", headers=approver).json
    assert [b["id"] for b in this_year["items"]] == [world.budget.id]


def test_bad_budget_input_is_refused_and_writes_nothing(client, world):
    approver = bearer(world.approver, world.region)
    cases = [
        {"financial_year": YEAR + 3, "allocated_pence": 100},
        {"financial_year": YEAR - 1, "allocated_pence": 100},
        {"financial_year": YEAR + 1, "allocated_pence": -1},
        {"financial_year": YEAR + 1, "allocated_pence": 10.5},
        {"financial_year": YEAR + 1, "allocated_pence": "100"},
        {"financial_year": YEAR + 1, "allocated_pence": MAX_AMOUNT_PENCE + 1},
        {"financial_year": YEAR + 1, "allocated_pence": 10**30},
        {"financial_year": YEAR + 1, "allocated_pence": 100, "category_id": 999_999},
        {"financial_year": YEAR, "allocated_pence": 100},  # a second general budget this year
        {"allocated_pence": 100},
    ]
    for body in cases:
        refused(client.post("/api/v1/budgets", json=body, headers=approver))
    for body in (
        {"allocated_pence": 200},  # no reason
        {"allocated_pence": 200, "reason": "   "},
        {"allocated_pence": -200, "reason": "Cut"},
        {"allocated_pence": 2.5, "reason": "Cut"},
    ):
        refused(client.patch(f"/api/v1/budgets/{world.budget.id}", json=body, headers=approver))
    world.budget.committed_pence = 500
    commit()
    below = client.patch(
        f"/api/v1/budgets/{world.budget.id}",
        json={"allocated_pence": 499, "reason": "Cut"},
        headers=approver,
    )
    assert "cannot be less than £5.00" in refused(below)["errors"]["allocated_pence"][0]
    assert count(Budget) == 2 and count(BudgetChange) == 0


def test_budgets_answer_only_their_organisation_and_its_approvers(client, world):
    buyer = bearer(world.buyer, world.region)
    assert client.get(f"/api/v1/budgets/{world.budget.id}", headers=buyer).status_code == 200
    refused(
        client.post(
            "/api/v1/budgets",
            json={"financial_year": YEAR + 1, "allocated_pence": 100},
            headers=buyer,
        ),
        403,
    )
    refused(
        client.patch(
            f"/api/v1/budgets/{world.budget.id}",
            json={"allocated_pence": 100, "reason": "Why"},
            headers=buyer,
        ),
        403,
    )
    pcc = bearer(world.pcc_approver, world.pcc)
    refused(client.get(f"/api/v1/budgets/{world.budget.id}", headers=pcc), 404)
    refused(
        client.patch(
            f"/api/v1/budgets/{world.budget.id}",
            json={"allocated_pence": 100, "reason": "Why"},
            headers=pcc,
        ),
        404,
    )
    assert [b["id"] for b in client.get("/api/v1/budgets", headers=pcc).json["items"]] == [
        world.pcc_budget.id
    ]
    # The authority reads every organisation's, filtered, and changes none.
    authority = make_organisation(OrganisationType.AUTHORITY, name="HMPPS")
    admin = bearer(make_member(Role.AUTHORITY_ADMIN, authority), authority)
    every = client.get("/api/v1/budgets", headers=admin).json
    assert every["pagination"]["total"] == 2
    one = client.get(f"/api/v1/budgets?organisation_id={world.pcc.id}", headers=admin).json
    assert [b["organisation_name"] for b in one["items"]] == ["Durham PCC"]
    refused(
        client.patch(
            f"/api/v1/budgets/{world.budget.id}",
            json={"allocated_pence": 100, "reason": "Why"},
            headers=admin,
        ),
        403,
    )
    provider = bearer(world.provider_admin, world.provider)
    refused(client.get("/api/v1/budgets", headers=provider))


def new_authorisation(world, **fields) -> dict:
    return {
        "lead_buyer_id": world.region.id,
        "financial_year": YEAR,
        "per_call_off_limit_pence": 50_000,
        "annual_limit_pence": 200_000,
        **fields,
    }


def test_a_co_funder_gives_changes_and_revokes_an_authorisation(client, world):
    pcc = bearer(world.pcc_approver, world.pcc)
    made = client.post("/api/v1/funding-authorisations", json=new_authorisation(world), headers=pcc)
    assert made.status_code == 201, made.json
    pk = made.json["id"]
    assert made.json["used_pence"] == 0 and made.json["lead_buyer_name"] == "North East Probation"
    no_reason = client.patch(
        f"/api/v1/funding-authorisations/{pk}",
        json={"per_call_off_limit_pence": 1, "annual_limit_pence": 2},
        headers=pcc,
    )
    refused(no_reason)
    changed = client.patch(
        f"/api/v1/funding-authorisations/{pk}",
        json={"per_call_off_limit_pence": 60_000, "annual_limit_pence": 300_000, "reason": "More"},
        headers=pcc,
    )
    assert changed.status_code == 200 and changed.json["annual_limit_pence"] == 300_000
    # The lead buyer sees what it holds, the co-funder what it gave.
    lead = bearer(world.approver, world.region)
    held = client.get("/api/v1/funding-authorisations?direction=held", headers=lead).json
    assert [a["id"] for a in held["items"]] == [pk]
    assert (
        client.get("/api/v1/funding-authorisations?direction=given", headers=lead).json["items"]
        == []
    )
    refused(
        client.post(
            f"/api/v1/funding-authorisations/{pk}/revoke", json={"reason": "x"}, headers=lead
        ),
        403,
    )
    revoked = client.post(
        f"/api/v1/funding-authorisations/{pk}/revoke", json={"reason": "Frozen"}, headers=pcc
    )
    assert revoked.status_code == 200 and revoked.json["revoked_at"] is not None
    again = client.post(
        f"/api/v1/funding-authorisations/{pk}/revoke", json={"reason": "Frozen"}, headers=pcc
    )
    refused(again, 409)


def test_bad_authorisations_are_refused_and_write_nothing(client, world):
    pcc = bearer(world.pcc_approver, world.pcc)
    cases = [
        new_authorisation(world, lead_buyer_id=world.pcc.id),
        new_authorisation(world, lead_buyer_id=world.provider.id),
        new_authorisation(world, lead_buyer_id=2**31 - 1),
        new_authorisation(world, financial_year=YEAR + 3),
        new_authorisation(world, financial_year=YEAR - 1),
        new_authorisation(world, annual_limit_pence=-1),
        new_authorisation(world, annual_limit_pence=1.5),
        new_authorisation(world, annual_limit_pence="lots"),
        new_authorisation(world, per_call_off_limit_pence=MAX_AMOUNT_PENCE + 1),
        new_authorisation(world, per_call_off_limit_pence=300_000),
    ]
    for body in cases:
        refused(client.post("/api/v1/funding-authorisations", json=body, headers=pcc))
    pcc_buyer = bearer(make_member(Role.BUYER, world.pcc), world.pcc)
    refused(
        client.post(
            "/api/v1/funding-authorisations", json=new_authorisation(world), headers=pcc_buyer
        ),
        403,
    )
    assert count(FundingAuthorisation) == 0


def test_another_organisations_authorisation_is_not_found(client, world):
    pcc = bearer(world.pcc_approver, world.pcc)
    pk = client.post(
        "/api/v1/funding-authorisations", json=new_authorisation(world), headers=pcc
    ).json["id"]
    other = make_organisation(OrganisationType.PCC, name="Cleveland PCC")
    stranger = bearer(make_member(Role.APPROVER, other), other)
    refused(client.get(f"/api/v1/funding-authorisations/{pk}", headers=stranger), 404)
    refused(
        client.patch(
            f"/api/v1/funding-authorisations/{pk}",
            json={"per_call_off_limit_pence": 1, "annual_limit_pence": 2, "reason": "Mine"},
            headers=stranger,
        ),
        404,
    )
    refused(
        client.post(
            f"/api/v1/funding-authorisations/{pk}/revoke", json={"reason": "x"}, headers=stranger
        ),
        404,
    )
    assert client.get("/api/v1/funding-authorisations", headers=stranger).json["items"] == []
    db.session.expire_all()
    assert db.session.scalar(sa.select(FundingAuthorisation.revoked_at)) is None
