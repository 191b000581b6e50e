"""The OCDS feed of the demo world validates with libcoveocds (0 errors, closed codelists
included) offline, with the extensions from their local copies."""

from __future__ import annotations

import pytest

from tests.insight.ocds_validation import assert_valid


@pytest.fixture
def demo(app):
    from tests.test_demo import _demo_password_hash  # noqa: F401

    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_demo_release_pages_validate(demo, client):
    package = client.get("/api/v1/ocds/releases?limit=1000").get_json()
    assert package["releases"]
    assert_valid(package)
