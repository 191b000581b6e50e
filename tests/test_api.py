"""The API base: bearer tokens, problem+json errors, pagination, reference data, the spec."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import ApiToken, OrganisationType, Role, User
from marketplace.accounts.services.teams import remove_member
from marketplace.accounts.services.tokens import create_api_token, revoke_api_token
from marketplace.core.db import commit, db
from marketplace.core.errors import PROBLEM_JSON
from tests.factories import add_membership, make_member, make_organisation

PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def assert_problem(response, status: int) -> dict:
    """The response is RFC 9457 problem+json with our fields, and says the same status."""
    assert response.status_code == status, response.data
    assert response.mimetype == PROBLEM_JSON
    body = response.get_json(force=True)
    assert set(body) >= PROBLEM_FIELDS
    assert body["status"] == status
    assert body["type"].endswith(f"/{status}")
    assert body["title"] and body["detail"]
    return body


@pytest.fixture
def buyer_token(app):
    """A buyer in a probation region, with a live token; returns (user, organisation, secret)."""
    organisation = make_organisation(
        OrganisationType.PROBATION_REGION, name="Probation Service – North West"
    )
    user = make_member(Role.BUYER, organisation, email="priya@probation.example", name="Priya Shah")
    _, secret = create_api_token(user, organisation, "tests")
    commit()
    return user, organisation, secret


# ---------------------------------------------------------------------------------------------
# /me and bearer tokens


def test_me_with_a_valid_token(client, buyer_token):
    user, organisation, secret = buyer_token
    other = make_organisation(
        OrganisationType.PCC, name="Police and Crime Commissioner for Lancashire"
    )
    add_membership(user, other, Role.APPROVER)
    commit()

    response = client.get("/api/v1/me", headers=bearer(secret))

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    body = response.json
    assert body["email"] == "priya@probation.example"
    assert body["name"] == "Priya Shah"
    assert body["two_factor_enabled"] is False
    assert body["organisation"] == {
        "id": organisation.id,
        "name": organisation.name,
        "type": "probation_region",
    }
    assert body["roles"] == ["buyer"]
    assert [(m["organisation"]["name"], m["role"]) for m in body["memberships"]] == [
        ("Police and Crime Commissioner for Lancashire", "approver"),
        ("Probation Service – North West", "buyer"),
    ]
    assert "password_hash" not in body and "totp_secret" not in body


def test_the_bearer_scheme_is_case_insensitive(client, buyer_token):
    assert (
        client.get("/api/v1/me", headers={"Authorization": f"bearer {buyer_token[2]}"}).status_code
        == 200
    )


def test_using_a_token_records_when(client, buyer_token):
    client.get("/api/v1/me", headers=bearer(buyer_token[2]))
    db.session.expire_all()
    assert db.session.scalar(sa.select(ApiToken)).last_used_at is not None


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "Bearer rsm_not-a-real-token"},
        {"Authorization": "Bearer wrong-prefix-token"},
        {"Authorization": "Bearer rsm_" + "x" * 5000},
        {"Authorization": "Basic cHJpeWE6cGFzc3dvcmQ="},
        {"Authorization": "Token rsm_abc"},
    ],
    ids=[
        "none",
        "empty",
        "scheme-only",
        "blank",
        "wrong",
        "wrong-prefix",
        "huge",
        "basic",
        "other-scheme",
    ],
)
def test_me_without_a_valid_token_is_401_problem_json(client, buyer_token, headers):
    body = assert_problem(client.get("/api/v1/me", headers=headers), 401)
    assert "Authorization: Bearer" in body["detail"]
    assert "priya" not in str(body)


def test_a_revoked_token_is_401(client, buyer_token):
    user, _, secret = buyer_token
    # Used first, so the worker keeps a copy of it: revoking must still take effect at once.
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    revoke_api_token(user, db.session.scalar(sa.select(ApiToken)))
    commit()

    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_a_deleted_token_is_401_though_it_was_just_used(client, buyer_token):
    secret = buyer_token[2]
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    db.session.delete(db.session.scalar(sa.select(ApiToken)))
    commit()

    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_a_used_token_is_read_from_the_workers_copy_and_its_use_written_once_a_minute(
    client, buyer_token, count_queries
):
    secret = buyer_token[2]
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    db.session.expire_all()
    first_use = db.session.scalar(sa.select(ApiToken.last_used_at))
    assert first_use is not None

    with count_queries() as again:
        assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200

    # Neither the token nor its person is read again, and the use a moment ago is not rewritten.
    assert not any("FROM api_tokens" in s or "FROM users" in s for s in again.statements)
    assert not any(s.startswith("UPDATE api_tokens") for s in again.statements)
    db.session.expire_all()
    assert db.session.scalar(sa.select(ApiToken.last_used_at)) == first_use


def test_a_token_stops_working_when_its_user_leaves_the_organisation(client, app):
    organisation = make_organisation(OrganisationType.PROVIDER_VCSE, name="Open Door Mentoring")
    admin = make_member(Role.PROVIDER_ADMIN, organisation)
    editor = make_member(Role.PROVIDER_EDITOR, organisation)
    _, secret = create_api_token(editor, organisation, "rate-card sync")
    commit()
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200

    remove_member(admin, organisation, editor)
    commit()

    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_a_token_stops_working_even_if_only_the_membership_goes(client, buyer_token):
    # Belt and braces: remove_member revokes tokens, but authentication also checks the role.
    user, _, secret = buyer_token
    for membership in list(user.memberships):
        user.memberships.remove(membership)
        db.session.delete(membership)
    commit()

    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_a_token_of_a_deactivated_user_or_organisation_is_401(client, buyer_token):
    user, organisation, secret = buyer_token
    assert client.get("/api/v1/me", headers=bearer(secret)).status_code == 200
    organisation.active = False
    commit()
    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401)

    organisation.active = True
    user.active = False
    commit()
    assert_problem(client.get("/api/v1/me", headers=bearer(secret)), 401)


def test_a_session_cookie_is_not_an_api_credential(client, login, buyer_token):
    login(buyer_token[0], buyer_token[1])
    assert_problem(client.get("/api/v1/me"), 401)


# ---------------------------------------------------------------------------------------------
# Reference data


def test_regions(client):
    response = client.get("/api/v1/regions")
    assert response.status_code == 200
    body = response.json
    assert len(body["items"]) == 12
    assert body["pagination"] == {"page": 1, "page_size": 20, "total": 12, "pages": 1}
    assert [r["code"] for r in body["items"]] == list("ABCDEFGHIJKL")
    assert {"code": "J", "name": "London"} in body["items"]


def test_reference_data_needs_no_token(client):
    assert client.get("/api/v1/regions", headers=bearer("rsm_wrong")).status_code == 200


def test_pcc_areas(client):
    body = client.get("/api/v1/pcc-areas?page_size=100").json
    assert body["pagination"]["total"] == 42
    assert len(body["items"]) == 42
    assert {"code": "lancashire", "name": "Lancashire", "region_code": "B"} in body["items"]
    names = [a["name"] for a in body["items"]]
    assert names == sorted(names)


def test_pcc_areas_in_one_region(client):
    body = client.get("/api/v1/pcc-areas?region=B").json
    assert sorted(a["code"] for a in body["items"]) == [
        "cheshire",
        "cumbria",
        "lancashire",
        "merseyside",
    ]
    assert {a["region_code"] for a in body["items"]} == {"B"}
    assert body["pagination"]["total"] == 4


def test_pcc_areas_in_an_unknown_region_is_an_empty_list(client):
    body = client.get("/api/v1/pcc-areas?region=Z").json
    assert body["items"] == [] and body["pagination"]["total"] == 0


@pytest.mark.parametrize("region", ["", "b", "ABC", "1", "B'--", "%00", "B%00"])
def test_pcc_areas_with_a_malformed_region_is_422(client, region):
    body = assert_problem(client.get(f"/api/v1/pcc-areas?region={region}"), 422)
    assert "region" in body["errors"]


def test_categories(client):
    body = client.get("/api/v1/categories").json
    assert body["pagination"]["total"] == 15
    assert len(body["items"]) == 15
    assert {"code": "ACC", "name": "Accommodation", "is_cohort": False} in body["items"]
    assert {"code": "WOM", "name": "Women", "is_cohort": True} in body["items"]


# ---------------------------------------------------------------------------------------------
# Pagination


def test_pages_split_the_list(client):
    first = client.get("/api/v1/regions?page=1&page_size=5").json
    third = client.get("/api/v1/regions?page=3&page_size=5").json
    assert [r["code"] for r in first["items"]] == list("ABCDE")
    assert [r["code"] for r in third["items"]] == ["K", "L"]
    assert third["pagination"] == {"page": 3, "page_size": 5, "total": 12, "pages": 3}


def test_a_page_past_the_end_is_empty_not_an_error(client):
    body = client.get("/api/v1/regions?page=99&page_size=5").json
    assert body["items"] == []
    assert body["pagination"]["pages"] == 3


def test_page_size_at_its_bounds(client):
    assert client.get("/api/v1/pcc-areas?page_size=1").json["pagination"]["pages"] == 42
    assert len(client.get("/api/v1/pcc-areas?page_size=100").json["items"]) == 42


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("page=0", "page"),
        ("page=-1", "page"),
        ("page=100001", "page"),
        ("page=abc", "page"),
        ("page=2.5", "page"),
        ("page=", "page"),
        ("page_size=0", "page_size"),
        ("page_size=101", "page_size"),
        ("page_size=1e3", "page_size"),
        ("page_size=99999999999999999999999999", "page_size"),
        ("page_size=" + "9" * 5000, "page_size"),
    ],
)
def test_bad_pagination_is_422_with_field_errors(client, query, field):
    body = assert_problem(client.get(f"/api/v1/regions?{query}"), 422)
    assert set(body["errors"]) == {field}
    assert isinstance(body["errors"][field], list) and body["errors"][field][0]


def test_arguments_are_parsed_by_one_schema_instance_that_keeps_nothing_between_requests(
    client, monkeypatch
):
    from marketplace.core.api import PaginationQuerySchema

    built = []
    original_init = PaginationQuerySchema.__init__

    def counting_init(self, *args, **kwargs):
        built.append(type(self))
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(PaginationQuerySchema, "__init__", counting_init)
    assert client.get("/api/v1/regions?page=2&page_size=5").json["pagination"]["page"] == 2
    assert_problem(client.get("/api/v1/regions?page=0"), 422)
    # The refused request left nothing behind: the next one gets its own defaults.
    assert client.get("/api/v1/regions").json["pagination"] == {
        "page": 1,
        "page_size": 20,
        "total": 12,
        "pages": 1,
    }
    assert built == []  # webargs would build one per request from a class


def test_no_pagination_header_the_pagination_is_in_the_body(client):
    response = client.get("/api/v1/regions")
    assert "X-Pagination" not in response.headers


# ---------------------------------------------------------------------------------------------
# The spec


def test_openapi_json_is_served_and_describes_the_api(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"] == "v1"
    assert {"/api/v1/me", "/api/v1/regions", "/api/v1/pcc-areas", "/api/v1/categories"} <= set(
        spec["paths"]
    )
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }
    me = spec["paths"]["/api/v1/me"]["get"]
    assert me["security"] == [{"bearerAuth": []}]
    assert "401" in me["responses"]
    assert "security" not in spec["paths"]["/api/v1/regions"]["get"]
    assert "422" in spec["paths"]["/api/v1/regions"]["get"]["responses"]
    problem = spec["components"]["schemas"]["Problem"]
    assert set(problem["required"]) >= PROBLEM_FIELDS
    assert "errors" in problem["properties"]


def test_every_documented_error_is_problem_json(client):
    spec = client.get("/api/v1/openapi.json").json
    components = spec["components"]["responses"]

    def resolve(response: dict) -> dict:
        ref = response.get("$ref")
        return components[ref.rsplit("/", 1)[1]] if ref else response

    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":  # path-level parameters, not an operation
                continue
            for status, response in operation["responses"].items():
                content = resolve(response).get("content", {})
                if status == "default" or status[0] in "45":
                    assert list(content) == [PROBLEM_JSON], (method, path, status)
                else:
                    assert list(content) == ["application/json"], (method, path, status)


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", "/api/v1/", "/api/v1/regions/A/nothing", "/api/v2/me"]
)
def test_an_unknown_api_path_is_404_problem_json(client, path):
    assert_problem(client.get(path), 404)


def test_a_wrong_method_is_405_problem_json_with_allow(client):
    response = client.delete("/api/v1/regions")
    assert_problem(response, 405)
    assert "GET" in response.headers["Allow"]


def test_a_body_over_the_limit_is_413_not_500(app, client, buyer_token, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    body = b'{"name": "' + b"x" * 4096 + b'"}'
    for path in ("/api/v1/me", "/api/v1/regions", "/api/v1/anything"):
        response = client.post(
            path, data=body, content_type="application/json", headers=bearer(buyer_token[2])
        )
        problem = assert_problem(response, 413)
        assert "1024" in problem["detail"]
    # Under the limit, the same request is judged on its merits.
    small = client.post("/api/v1/me", data=b"{}", content_type="application/json")
    assert_problem(small, 405)


def test_a_body_over_the_limit_on_a_page_is_413_not_500(app, client, monkeypatch):
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 1024)
    response = client.post(
        "/sign-in",
        data={"email": "a@example.org", "password": "x" * 4096},
    )
    assert response.status_code == 413


def test_html_and_sql_in_names_come_back_as_data(client):
    hostile_user = "<script>alert('x')</script> Robert'); DROP TABLE users;--"
    hostile_org = "\"><img src=x onerror=alert(1)> Trust'; DELETE FROM organisations WHERE '1'='1"
    organisation = make_organisation(OrganisationType.PROVIDER_VCSE, name=hostile_org)
    user = make_member(Role.PROVIDER_ADMIN, organisation, name=hostile_user)
    _, secret = create_api_token(user, organisation, "<b>bold</b>")
    commit()

    response = client.get("/api/v1/me", headers=bearer(secret))

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.json["name"] == hostile_user
    assert response.json["organisation"]["name"] == hostile_org
    # The statements were stored as text, not run.
    assert db.session.scalar(sa.select(sa.func.count(User.id))) == 1
    db.session.expire_all()
    assert db.session.get(type(organisation), organisation.id).name == hostile_org


def test_hostile_query_strings_are_data_too(client):
    response = client.get("/api/v1/pcc-areas", query_string={"region": "B' OR '1'='1"})
    assert_problem(response, 422)
    response = client.get(
        "/api/v1/regions", query_string={"page": "1; DROP TABLE probation_regions"}
    )
    assert_problem(response, 422)
    assert client.get("/api/v1/regions").json["pagination"]["total"] == 12


def test_errors_carry_the_request_id(client):
    response = client.get("/api/v1/me", headers={"X-Request-Id": "trace-1234567890"})
    assert assert_problem(response, 401)["request_id"] == "trace-1234567890"
    assert response.headers["X-Request-Id"] == "trace-1234567890"


def test_only_form_submissions_go_through_the_rate_limiter(app):
    from marketplace.core.extensions import _only_form_submissions_are_limited as skipped

    cases = [
        ("POST", "/sign-in", False),
        ("POST", "/register", False),
        ("GET", "/sign-in", True),
        ("POST", "/api/v1/orders", True),
        ("POST", "/api/v1-not-the-api", False),
    ]
    for method, path, skip in cases:
        with app.test_request_context(path, method=method):
            assert skipped() is skip, (method, path)
