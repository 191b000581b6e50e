"""A provider's writes to its own services: POST/PATCH /api/v1/services, states and prices."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
import sqlalchemy as sa
from hypothesis import HealthCheck, settings

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.accreditation.models import LotMembership
from marketplace.accreditation.services import memberships as membership_services
from marketplace.catalogue.models import Listing, ListingPrice, ListingStatus
from marketplace.core.audit import AuditEvent
from marketplace.core.clock import london_date
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from marketplace.reference.models import ProbationRegion
from tests.accreditation.builders import make_authority, make_provider, make_world
from tests.accreditation.factories import make_lot_membership
from tests.catalogue.factories import make_listing
from tests.factories import add_membership, make_member, make_organisation
from tests.test_schemathesis import SPEC, SessionApp

SERVICES = "/api/v1/services"


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def provider(world):
    """A charity admitted to lot A in regions A and B, its administrator and their token."""
    organisation, admin = make_provider("Hope Housing")
    for code in ("A", "B"):
        make_lot_membership(world.lot_a, organisation, region_code=code)
    commit()
    return organisation, admin, bearer(admin, organisation)


def bearer(user, organisation) -> dict[str, str]:
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return {"Authorization": f"Bearer {secret}"}


def body(world, **changes) -> dict:
    data = {
        "title": "Move-on accommodation support",
        "summary": "Help to find and keep a tenancy after release",
        "description": "Weekly key-worker sessions until the tenancy is settled.",
        "outcomes": "Settled accommodation within 28 days\nTenancy kept for 6 months",
        "lot_id": world.lot_a.id,
        "region_codes": ["A", "B"],
        "settings": ["community"],
        "formats": ["one_to_one"],
        "eligibility_sex": "any",
        "min_age": 18,
        "risk_levels": ["low", "medium"],
        "complexities": ["medium", "high"],
        "lead_time_days": 5,
        "unit": "week",
        "vat_treatment": "exempt",
        "min_units": 1,
        "max_units": 26,
        "monthly_capacity": 40,
        "cost_staff_pence": 9_000,
        "social_value": "We employ people with lived experience.",
        "contact_name": "Referrals team",
        "contact_email": "referrals@hope.example",
        "contact_phone": "0191 000 0000",
        "unit_price_pence": 12_500,
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not ...}


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM_JSON
    problem = response.get_json()
    assert problem["status"] == status and problem["title"] and problem["detail"]
    return problem


def create(client, world, provider, **changes) -> dict:
    response = client.post(SERVICES, json=body(world, **changes), headers=provider[2])
    assert response.status_code == 201, response.data
    return response.get_json()


def counts() -> tuple[int, int, int]:
    return (
        db.session.scalar(sa.select(sa.func.count(Listing.id))),
        db.session.scalar(sa.select(sa.func.count(ListingPrice.id))),
        db.session.scalar(sa.select(sa.func.count(AuditEvent.id))),
    )


# ---------------------------------------------------------------------------------------------
# Create


def test_create_answers_201_with_the_whole_draft_and_where_it_is(client, world, provider):
    organisation, admin, headers = provider
    response = client.post(SERVICES, json=body(world), headers=headers)

    assert response.status_code == 201, response.data
    assert response.mimetype == "application/json"
    created = response.get_json()
    listing = db.session.get(Listing, created["id"])
    assert response.headers["Location"].endswith(f"{SERVICES}/{listing.id}")
    assert created["status"] == "draft"
    assert created["reference"] == listing.reference and created["reference"].startswith("SL-")
    assert created["organisation_id"] == organisation.id
    assert created["lot"]["code"] == world.lot_a.category.code
    assert created["region_codes"] == ["A", "B"] and created["pcc_area_codes"] == []
    assert [a["region_code"] for a in created["areas"]] == ["A", "B"]
    assert created["unit_price_pence"] == 12_500
    assert created["prices"] == [
        {
            "id": listing.prices[0].id,
            "unit_price_pence": 12_500,
            "effective_from": london_date().isoformat(),
            "effective_to": None,
            "reason": "First price",
        }
    ]
    # The owner sees the contacts for referrals (the public API does not).
    assert created["contact_email"] == "referrals@hope.example"
    assert created["contact_phone"] == "0191 000 0000"
    assert created["settings"] == ["community"] and created["complexities"] == ["medium", "high"]
    assert created["cost_staff_pence"] == 9_000 and created["cost_other_pence"] is None
    assert created["min_age"] == 18 and created["max_age"] is None
    assert listing.status == ListingStatus.DRAFT and listing.created_by_id == admin.id
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "listing.created")
    ).one()
    assert event.object_id == str(listing.id) and event.actor_id == admin.id
    # A draft is not for buyers yet.
    assert client.get(response.headers["Location"]).status_code == 404


def test_an_editor_may_create_and_only_the_required_fields_are_needed(client, world, provider):
    organisation = provider[0]
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    minimal = {
        "title": "Tenancy sustainment",
        "summary": "Keeping a tenancy",
        "lot_id": world.lot_a.id,
        "unit": "hour",
        "vat_treatment": "standard",
        "max_units": 10,
        "monthly_capacity": 0,
        "unit_price_pence": 0,
        "region_codes": ["B"],
        "settings": ["remote"],
        "formats": ["group"],
        "complexities": ["low"],
    }
    response = client.post(SERVICES, json=minimal, headers=bearer(editor, organisation))
    assert response.status_code == 201, response.data
    assert response.get_json()["eligibility_sex"] == "any"
    assert response.get_json()["contact_email"] == ""


def test_the_organisation_is_the_tokens(client, world, provider):
    organisation, admin, headers = provider
    other = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Other Ltd")
    add_membership(admin, other, Role.PROVIDER_ADMIN)
    commit()

    assert create(client, world, provider, organisation_id=organisation.id)["organisation_id"] == (
        organisation.id
    )
    before = counts()
    response = client.post(SERVICES, json=body(world, organisation_id=other.id), headers=headers)
    problem = assert_problem(response, 422)
    assert "Hope Housing" in problem["errors"]["organisation_id"][0]
    assert counts() == before


BAD_INPUTS = [
    ({"unit_price_pence": 12.5}, "unit_price_pence"),
    ({"unit_price_pence": 12_500.0}, "unit_price_pence"),
    ({"unit_price_pence": -1}, "unit_price_pence"),
    ({"unit_price_pence": "12500"}, "unit_price_pence"),
    ({"unit_price_pence": 10**30}, "unit_price_pence"),
    ({"unit_price_pence": ...}, "unit_price_pence"),
    ({"vat_treatment": "luxury"}, "vat_treatment"),
    ({"region_codes": ["A", "C"]}, "areas"),
    ({"region_codes": ["ZZ"]}, "areas"),
    ({"region_codes": []}, "areas"),
    ({"pcc_area_codes": ["northumbria", "kent"]}, "areas"),
    ({"colour": "blue"}, "colour"),
    ({"status": "published"}, "status"),
    ({"title": 5}, "title"),
    ({"title": " "}, "title"),
    ({"title": "x" * 121}, "title"),
    ({"title": "Housing\x00"}, "title"),
    ({"title": ...}, "title"),
    ({"settings": "community"}, "settings"),
    ({"settings": ["underwater"]}, "settings"),
    ({"settings": []}, "settings"),
    ({"region_codes": "A"}, "region_codes"),
    ({"region_codes": [1]}, "region_codes"),
    ({"lot_id": "1"}, "lot_id"),
    ({"lot_id": 10**20}, "lot_id"),
    ({"lot_id": 999_999}, "lot_id"),
    ({"max_units": True}, "max_units"),
    ({"min_units": 30}, "max_units"),
    ({"min_age": "18"}, "min_age"),
    ({"min_age": 40, "max_age": 20}, "max_age"),
    ({"monthly_capacity": None}, "monthly_capacity"),
    ({"cost_other_pence": -5}, "cost_other_pence"),
    ({"contact_email": "not-an-email"}, "contact_email"),
]


@pytest.mark.parametrize(("changes", "field"), BAD_INPUTS, ids=[f for _, f in BAD_INPUTS])
def test_bad_input_is_422_and_writes_nothing(client, world, provider, changes, field):
    before = counts()
    response = client.post(SERVICES, json=body(world, **changes), headers=provider[2])
    problem = assert_problem(response, 422)
    assert field in problem["errors"], problem
    assert counts() == before


@pytest.mark.parametrize("raw", [b"[]", b'"listing"', b"null", b"{", b"", b'{"title": "\\ud800"}'])
def test_a_body_that_is_not_a_listing_is_a_4xx_problem(client, world, provider, raw):
    before = counts()
    response = client.post(SERVICES, data=raw, content_type="application/json", headers=provider[2])
    assert response.status_code in (400, 422), response.data
    assert response.mimetype == PROBLEM_JSON
    assert counts() == before


def test_the_lot_of_another_arrangement_the_provider_is_not_a_member_of_is_refused(
    client, world, provider
):
    problem = assert_problem(
        client.post(SERVICES, json=body(world, lot_id=world.lot_b.id), headers=provider[2]), 422
    )
    assert "not an active member" in problem["errors"]["areas"][0]


# ---------------------------------------------------------------------------------------------
# Change


def test_patch_changes_only_the_fields_given(client, world, provider):
    created = create(client, world, provider)
    response = client.patch(
        f"{SERVICES}/{created['id']}",
        json={"title": "Move-on support", "region_codes": ["B"], "max_age": 65},
        headers=provider[2],
    )
    assert response.status_code == 200, response.data
    changed = response.get_json()
    assert changed["title"] == "Move-on support"
    assert changed["region_codes"] == ["B"] and changed["max_age"] == 65
    assert changed["summary"] == created["summary"]
    assert changed["contact_email"] == created["contact_email"]
    assert changed["prices"] == created["prices"]
    event = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "listing.updated")
    ).one()
    assert event.before["title"] == created["title"] and event.after["areas"] == ["B"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"unit_price_pence": 100}, "unit_price_pence"),
        ({"colour": "blue"}, "colour"),
        ({"vat_treatment": "luxury"}, "vat_treatment"),
        ({"region_codes": ["C"]}, "areas"),
        ({"title": ""}, "title"),
        ({"max_units": 1.5}, "max_units"),
        ({"settings": None}, "settings"),
    ],
)
def test_a_bad_patch_is_422_and_changes_nothing(client, world, provider, changes, field):
    created = create(client, world, provider)
    before = counts()
    response = client.patch(f"{SERVICES}/{created['id']}", json=changes, headers=provider[2])
    assert field in assert_problem(response, 422)["errors"]
    assert counts() == before
    listing = db.session.get(Listing, created["id"])
    assert listing.title == created["title"]
    assert sorted(a.region.code for a in listing.areas) == ["A", "B"]


# ---------------------------------------------------------------------------------------------
# States


def action(client, provider, listing_id: int, name: str, **kwargs):
    return client.post(f"{SERVICES}/{listing_id}/{name}", headers=provider[2], **kwargs)


def test_publish_pause_resume_withdraw(client, world, provider):
    listing_id = create(client, world, provider)["id"]

    response = action(client, provider, listing_id, "publish")
    assert response.status_code == 200, response.data
    assert response.get_json()["status"] == "published"
    assert response.get_json()["published_at"]
    public = client.get(f"{SERVICES}/{listing_id}")
    assert public.status_code == 200
    assert "contact_email" not in public.get_json() and "contact_phone" not in public.get_json()

    assert action(client, provider, listing_id, "pause").get_json()["status"] == "paused"
    assert client.get(f"{SERVICES}/{listing_id}").status_code == 404
    assert action(client, provider, listing_id, "resume").get_json()["status"] == "published"

    response = action(client, provider, listing_id, "withdraw", json={"reason": "Funding ended"})
    assert response.status_code == 200, response.data
    assert response.get_json()["status"] == "withdrawn" and response.get_json()["withdrawn_at"]

    actions = db.session.scalars(
        sa.select(AuditEvent.action)
        .where(AuditEvent.object_type == "listing", AuditEvent.object_id == str(listing_id))
        .order_by(AuditEvent.id)
    ).all()
    assert actions == [
        "listing.created",
        "listing.published",
        "listing.paused",
        "listing.resumed",
        "listing.withdrawn",
    ]
    withdrawn = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "listing.withdrawn")
    ).one()
    assert withdrawn.after["reason"] == "Funding ended"


def test_a_draft_may_be_withdrawn_without_ever_being_published(client, world, provider):
    listing_id = create(client, world, provider)["id"]
    response = action(client, provider, listing_id, "withdraw", json={"reason": "Not needed"})
    assert response.status_code == 200
    assert response.get_json()["status"] == "withdrawn"
    listing = db.session.get(Listing, listing_id)
    assert listing.published_at is None and listing.withdrawn_at is not None


def test_withdraw_needs_no_body(client, world, provider):
    listing_id = create(client, world, provider)["id"]
    action(client, provider, listing_id, "publish")
    assert action(client, provider, listing_id, "withdraw").get_json()["status"] == "withdrawn"


@pytest.mark.parametrize(
    ("start", "name", "status", "message"),
    [
        # The listing's state refuses the transition: a conflict with where it is now.
        ("draft", "pause", 409, "This listing is a draft, so it cannot be paused"),
        ("draft", "resume", 409, "This listing is a draft, so it cannot be resumed"),
        ("published", "publish", 409, "This listing has already been published"),
        ("published", "resume", 409, "This listing is already published"),
        ("withdrawn", "publish", 409, "This listing is withdrawn, so it cannot be published"),
        ("withdrawn", "withdraw", 409, "This listing has already been withdrawn"),
        # A rule refuses the change.
        ("withdrawn", "prices", 422, "can no longer be changed"),
        ("withdrawn", "patch", 422, "can no longer be changed"),
    ],
)
def test_an_illegal_transition_is_refused_with_the_services_message(
    client, world, provider, start, name, status, message
):
    listing_id = create(client, world, provider)["id"]
    if start != "draft":
        assert action(client, provider, listing_id, "publish").status_code == 200
    if start == "withdrawn":
        assert action(client, provider, listing_id, "withdraw").status_code == 200
    before = counts()
    if name == "patch":
        response = client.patch(
            f"{SERVICES}/{listing_id}", json={"title": "New"}, headers=provider[2]
        )
    elif name == "prices":
        response = action(
            client,
            provider,
            listing_id,
            "prices",
            json={"unit_price_pence": 1, "effective_from": london_date().isoformat()},
        )
    else:
        response = action(client, provider, listing_id, name)
    problem = assert_problem(response, status)
    assert message in problem["errors"]["status"][0]
    assert message in problem["detail"]
    assert counts() == before
    assert db.session.get(Listing, listing_id).status == ListingStatus(start)


def test_publishing_while_the_membership_is_suspended_is_422(client, world, provider):
    organisation = provider[0]
    listing_id = create(client, world, provider)["id"]
    _, authority_admin = make_authority()
    membership = db.session.scalars(
        sa.select(LotMembership)
        .join(ProbationRegion, ProbationRegion.id == LotMembership.region_id)
        .where(LotMembership.organisation_id == organisation.id, ProbationRegion.code == "A")
    ).one()
    membership_services.suspend(authority_admin, membership, "Insurance lapsed", notify=False)
    commit()
    before = counts()

    problem = assert_problem(action(client, provider, listing_id, "publish"), 422)

    assert "not active in North East" in problem["errors"]["status"][0]
    assert counts() == before
    assert db.session.get(Listing, listing_id).status == ListingStatus.DRAFT


# ---------------------------------------------------------------------------------------------
# Prices


def test_a_new_price_from_next_month(client, world, provider):
    listing_id = create(client, world, provider)["id"]
    today = london_date()
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)

    response = action(
        client,
        provider,
        listing_id,
        "prices",
        json={
            "unit_price_pence": 13_000,
            "effective_from": next_month.isoformat(),
            "reason": "Annual uplift",
        },
    )

    assert response.status_code == 201, response.data
    version = response.get_json()
    assert version["unit_price_pence"] == 13_000
    assert version["effective_from"] == next_month.isoformat()
    assert version["effective_to"] is None and version["reason"] == "Annual uplift"
    listing = db.session.get(Listing, listing_id)
    assert [(p.unit_price_pence, p.effective_to) for p in listing.prices] == [
        (12_500, next_month),
        (13_000, None),
    ]
    assert db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "listing.price_set")
    ).one()
    action(client, provider, listing_id, "publish")
    public = client.get(f"{SERVICES}/{listing_id}").get_json()
    assert public["unit_price_pence"] == 12_500
    assert public["future_prices"] == [
        {"unit_price_pence": 13_000, "effective_from": next_month.isoformat()}
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"effective_from": "past"}, "effective_from"),
        ({"effective_from": "2026-02-30"}, "effective_from"),
        ({"effective_from": "01/12/2030"}, "effective_from"),
        ({"effective_from": ...}, "effective_from"),
        ({"unit_price_pence": 99.5}, "unit_price_pence"),
        ({"unit_price_pence": -100}, "unit_price_pence"),
        ({"unit_price_pence": ...}, "unit_price_pence"),
        ({"reason": "x" * 2_001}, "reason"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_a_bad_price_is_422_and_writes_nothing(client, world, provider, changes, field):
    listing_id = create(client, world, provider)["id"]
    price = {"unit_price_pence": 13_000, "effective_from": "2099-01-01", **changes}
    if price["effective_from"] == "past":
        price["effective_from"] = (london_date() - timedelta(days=1)).isoformat()
    price = {k: v for k, v in price.items() if v is not ...}
    before = counts()
    response = action(client, provider, listing_id, "prices", json=price)
    assert field in assert_problem(response, 422)["errors"]
    assert counts() == before


# ---------------------------------------------------------------------------------------------
# Who may


def test_another_organisations_listing_is_not_found(client, world, provider):
    stranger, stranger_admin = make_provider("Elsewhere Trust")
    make_lot_membership(world.lot_a, stranger, region_code="A")
    theirs = make_listing(world.lot_a, stranger, status=ListingStatus.DRAFT)
    commit()
    headers = provider[2]
    before = counts()

    for name in ("publish", "pause", "resume", "withdraw"):
        assert_problem(action(client, provider, theirs.id, name), 404)
    assert_problem(
        action(
            client,
            provider,
            theirs.id,
            "prices",
            # A date the API accepts (within five years), so that the listing is looked up.
            json={"unit_price_pence": 1, "effective_from": london_date().isoformat()},
        ),
        404,
    )
    assert_problem(
        client.patch(f"{SERVICES}/{theirs.id}", json={"title": "Mine"}, headers=headers), 404
    )
    assert_problem(client.patch(f"{SERVICES}/999999", json={"title": "Mine"}, headers=headers), 404)
    assert counts() == before
    assert db.session.get(Listing, theirs.id).status == ListingStatus.DRAFT


def test_a_token_acts_only_for_its_own_organisation(client, world, provider):
    # The same person administers both providers: a token of one cannot change the other's.
    organisation, admin, _ = provider
    second = make_organisation(OrganisationType.PROVIDER_PRIVATE, name="Second Ltd")
    add_membership(admin, second, Role.PROVIDER_ADMIN)
    make_lot_membership(world.lot_a, second, region_code="A")
    theirs = make_listing(world.lot_a, second, status=ListingStatus.DRAFT)
    commit()
    assert_problem(action(client, provider, theirs.id, "publish"), 404)
    second_headers = bearer(admin, second)
    assert client.post(f"{SERVICES}/{theirs.id}/publish", headers=second_headers).status_code == (
        200
    )


@pytest.mark.parametrize("role", [Role.BUYER, Role.APPROVER])
def test_a_buyer_token_is_403_on_create_and_404_on_a_listing(client, world, provider, role):
    listing_id = create(client, world, provider)["id"]
    region = make_organisation(OrganisationType.PROBATION_REGION, name="Probation Service – Wales")
    buyer = make_member(role, region)
    headers = bearer(buyer, region)
    before = counts()

    assert_problem(client.post(SERVICES, json=body(world), headers=headers), 403)
    assert_problem(client.post(f"{SERVICES}/{listing_id}/publish", headers=headers), 404)
    assert_problem(
        client.patch(f"{SERVICES}/{listing_id}", json={"title": "Ours"}, headers=headers), 404
    )
    assert counts() == before


def test_an_assessor_token_is_403_on_create(client, world, provider):
    assessor, _ = make_authority()
    commit()
    headers = bearer(assessor, assessor.memberships[0].organisation)
    assert_problem(client.post(SERVICES, json=body(world), headers=headers), 403)


def test_no_token_is_401_before_the_body_is_read(client, world, provider):
    listing_id = create(client, world, provider)["id"]
    before = counts()
    requests = [
        ("post", SERVICES, body(world)),
        ("post", SERVICES, {"colour": "blue"}),
        ("patch", f"{SERVICES}/{listing_id}", {"title": "x"}),
        ("patch", f"{SERVICES}/999999", {}),
        ("post", f"{SERVICES}/{listing_id}/publish", None),
        ("post", f"{SERVICES}/{listing_id}/pause", None),
        ("post", f"{SERVICES}/{listing_id}/resume", None),
        ("post", f"{SERVICES}/{listing_id}/withdraw", {"reason": "x"}),
        ("post", f"{SERVICES}/{listing_id}/prices", {"unit_price_pence": 1}),
    ]
    for method, url, data in requests:
        for headers in ({}, {"Authorization": "Bearer rsm_not-a-real-token"}):
            response = getattr(client, method)(url, json=data, headers=headers)
            assert "Authorization: Bearer" in assert_problem(response, 401)["detail"]
    assert counts() == before
    # Reading stays public.
    assert client.get(SERVICES).status_code == 200


@pytest.mark.usefixtures("csrf_enabled")
def test_the_token_api_needs_no_csrf_token(client, world, provider):
    assert client.post(SERVICES, json=body(world), headers=provider[2]).status_code == 201


def test_the_writes_are_documented_with_the_bearer_scheme(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    paths = spec["paths"]
    writes = [
        ("post", SERVICES),
        ("patch", SERVICES + "/{service_id}"),
        *(
            ("post", f"{SERVICES}/{{service_id}}/{name}")
            for name in ("publish", "pause", "resume", "withdraw", "prices")
        ),
    ]
    for method, path in writes:
        operation = paths[path][method]
        assert operation["security"] == [{"bearerAuth": []}], (method, path)
        assert {"401", "422"} <= set(operation["responses"]), (method, path)
    assert "403" in paths[SERVICES]["post"]["responses"]
    assert "Location" in paths[SERVICES]["post"]["responses"]["201"]["headers"]
    for path in (SERVICES, SERVICES + "/{service_id}"):
        assert "security" not in paths[path]["get"]


# ---------------------------------------------------------------------------------------------
# Fuzzing with the owner's token: tests/test_schemathesis.py fuzzes with a buyer's token, which
# never gets past the permission checks; here every generated body reaches the services.

owner_app = SessionApp()
owner_schema = schemathesis.openapi.from_dict(SPEC).include(
    path_regex=r"^/api/v1/services", method=["POST", "PATCH"]
)
owner_schema.app = owner_app


@owner_schema.parametrize()
@settings(
    max_examples=40,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_no_write_of_the_owner_is_a_server_error(case, app, world, provider):
    existing = db.session.scalar(sa.select(Listing.id).order_by(Listing.id))
    if existing is None:
        organisation = provider[0]
        existing = make_listing(world.lot_a, organisation, status=ListingStatus.PUBLISHED).id
        commit()
    if "service_id" in (case.path_parameters or {}):
        case.path_parameters["service_id"] = existing
    owner_app.target = app
    try:
        response = case.call(headers=provider[2])
    finally:
        owner_app.target = None
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        content_type = {k.lower(): v for k, v in response.headers.items()}["content-type"]
        assert content_type[0].startswith(PROBLEM_JSON), response.text
