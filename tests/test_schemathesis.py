"""Property-based API testing: schemathesis over the whole OpenAPI spec, in-process.

Every operation in ``/api/v1/openapi.json`` is exercised with generated valid and invalid
requests (bounded and derandomised, so the run is quick and repeatable) against the WSGI app
of the test session, on whichever database the suite runs on. Each response must not be a
server error and must match what the spec says: a documented status code, the documented
content type (``application/problem+json`` for errors), the documented headers and a body
that fits the documented schema.

``schemathesis.pytest.from_fixture`` would fit the session's ``app`` fixture, but schemathesis
4.32 reads ``Node._nodeid``, which pytest 9.2 no longer has. So the spec is read once at import
from an app that never touches a database, and the schema sends its requests (its own and the
probes of checks such as ``ignored_auth``) to a WSGI callable that forwards to the fixture's app.
"""

from __future__ import annotations

import tempfile

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketplace import create_app
from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services.tokens import create_api_token
from marketplace.core.db import commit
from tests.factories import make_member, make_organisation

SPEC_PATH = "/api/v1/openapi.json"

# The checks this test exists for. They are among schemathesis's defaults; naming them keeps
# them running even if those defaults change.
REQUIRED_CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _published_spec() -> dict:
    """The spec exactly as the app serves it (building it needs no database)."""
    with tempfile.TemporaryDirectory(prefix="marketplace-spec-") as tmp:
        spec_app = create_app(
            {
                "TESTING": True,
                "ENV_NAME": "testing",
                "SECRET_KEY": "spec-only-secret-key-" + "x" * 32,
                "SQLALCHEMY_DATABASE_URI": "sqlite://",
                "INSTANCE_DIR": tmp,
                "RATELIMIT_STORAGE_URI": "memory://",
                "LOG_LEVEL": "WARNING",
            }
        )
        response = spec_app.test_client().get(SPEC_PATH)
        assert response.status_code == 200, response.data
        return response.get_json()


class SessionApp:
    """A WSGI app that forwards to the test session's app, which the ``app`` fixture creates."""

    target = None

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


SPEC = _published_spec()
session_app = SessionApp()
schema = schemathesis.openapi.from_dict(SPEC)
schema.app = session_app


@pytest.fixture
def wsgi_target(app):
    session_app.target = app
    yield app
    session_app.target = None


@pytest.fixture
def bearer_headers(app):
    """A real token for a buyer in a probation region, so /me answers 200 and not only 401."""
    organisation = make_organisation(
        OrganisationType.PROBATION_REGION, name="Probation Service – Wales"
    )
    user = make_member(Role.BUYER, organisation)
    _, secret = create_api_token(user, organisation, "schemathesis")
    commit()
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_spec(case, wsgi_target, bearer_headers):
    headers = None if negates_authorization(case) else bearer_headers
    case.call_and_validate(headers=headers, additional_checks=REQUIRED_CHECKS)


def negates_authorization(case) -> bool:
    """A negative case whose wrong part is the Authorization header (left out or malformed).

    Sending the session's real token over it would put right what the case broke: with a second
    mutation that the HTTP client cannot send (a query key with an empty name), the request that
    arrives is valid, is answered 200, and the check reports that bad data was accepted. Sent as
    generated, the server must refuse it (401), which is what the case tests."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_negative:
        return False
    return any(
        mutation.parameter_location == ParameterLocation.HEADER
        and (mutation.parameter or "").lower() == "authorization"
        for mutation in getattr(meta.phase.data, "mutations", None) or ()
    )


def test_the_fuzzed_spec_is_the_served_spec(client):
    """The spec fuzzed above is the one the session's app serves, with every endpoint in it."""
    served = client.get(SPEC_PATH).get_json()
    assert served["paths"] == SPEC["paths"]
    assert {
        "/api/v1/me",
        "/api/v1/regions",
        "/api/v1/pcc-areas",
        "/api/v1/categories",
    } <= set(SPEC["paths"])
