"""Property-based API testing: schemathesis over the whole OpenAPI spec, in-process.

Every operation in ``/api/v1/openapi.json`` is exercised with generated valid and invalid
requests (bounded and derandomised, so the run is quick and repeatable). Each response must
not be a server error and must match what the spec says: a documented status code, the
documented content type (``application/problem+json`` for errors), the documented headers
and a body that fits the documented schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from marketplace.accounts.models import OrganisationType, Role
from marketplace.accounts.services import create_api_token
from marketplace.db import commit
from factories import make_member, make_organisation

# The checks this test exists for; asserted below to be part of what runs, so a change in
# schemathesis defaults cannot quietly drop one.
REQUIRED_CHECKS = (
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)


@pytest.fixture
def api_schema(app):
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


@pytest.fixture
def bearer_headers(app):
    """A real token for a buyer in a probation region, so /me answers 200 and not only 401."""
    organisation = make_organisation(OrganisationType.PROBATION_REGION, name="Probation – Wales")
    user = make_member(Role.BUYER, organisation)
    _, secret = create_api_token(user, organisation, "schemathesis")
    commit()
    return {"Authorization": f"Bearer {secret}"}


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=30,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_spec(case, bearer_headers):
    case.call_and_validate(headers=bearer_headers, additional_checks=list(REQUIRED_CHECKS))


def test_every_operation_is_covered(api_schema):
    """The fuzzed spec has every endpoint we publish (a missing one would not be tested)."""
    operations = {
        f"{result.ok().method.upper()} {result.ok().path}" for result in api_schema.get_all_operations()
    }
    assert {
        "GET /api/v1/me",
        "GET /api/v1/regions",
        "GET /api/v1/pcc-areas",
        "GET /api/v1/categories",
    } <= operations
