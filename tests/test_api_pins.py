"""The private parts of flask-smorest that ``marketplace/core/api.py`` relies on, the one module
that touches them, pinned with the version they were checked against: ``Api._register_responses``
(overridden to document every error as problem+json) and ``Blueprint._prepare_doc_cbks`` (to
document each operation's token). An upgrade that changes either fails here, not in the spec."""

from __future__ import annotations

from importlib.metadata import version

# Checked against this release. After an upgrade: read flask_smorest's spec/__init__.py
# (``_register_responses``) and blueprint.py (``_prepare_doc_cbks``), then bump.
FLASK_SMOREST_CHECKED = "0.47.0"
PROBLEM_JSON = "application/problem+json"


def test_flask_smorest_is_the_version_whose_private_parts_were_checked():
    assert version("flask-smorest") == FLASK_SMOREST_CHECKED


def test_every_error_component_is_documented_as_problem_json(client):
    # Api._register_responses is still what init_app calls to register them.
    components = client.get("/api/v1/openapi.json").json["components"]["responses"]
    for name in ("NOT_FOUND", "UNPROCESSABLE_ENTITY", "DEFAULT_ERROR", "TOKEN_REQUIRED"):
        assert list(components[name]["content"]) == [PROBLEM_JSON], name
        assert components[name]["content"][PROBLEM_JSON]["schema"] == {
            "$ref": "#/components/schemas/Problem"
        }


def test_a_catalogue_write_is_documented_with_its_token_and_a_read_without(client):
    # Blueprint._prepare_doc_cbks still builds each operation's documentation.
    paths = client.get("/api/v1/openapi.json").json["paths"]
    services = paths["/api/v1/services"]
    assert "security" not in services["get"] and "401" not in services["get"]["responses"]
    assert services["post"]["security"] == [{"bearerAuth": []}]
    assert "401" in services["post"]["responses"]
    publish = paths["/api/v1/services/{service_id}/publish"]["post"]
    assert publish["security"] == [{"bearerAuth": []}]


def test_a_catalogue_write_needs_a_token_and_a_read_does_not(client):
    assert client.get("/api/v1/services").status_code == 200
    refused = client.post("/api/v1/services", json={})
    assert refused.status_code == 401 and refused.mimetype == PROBLEM_JSON
