"""The OCDS feed of the demo world (``flask demo load``) validates with libcoveocds (0 errors,
closed codelists included) offline, with the extensions from their local copies: the release
pages, every record package and the bulk file."""

from __future__ import annotations

import gzip
import json

import pytest

from tests.insight.ocds_validation import as_release_package, assert_valid, record_package_errors


@pytest.fixture
def demo(app):
    result = app.test_cli_runner().invoke(args=["demo", "load"], catch_exceptions=False)
    assert result.exit_code == 0, result.output


def test_the_demo_worlds_feed_validates(demo, client):
    package = client.get("/api/v1/ocds/releases?limit=1000").get_json()
    releases = package["releases"]
    assert "links" not in package
    kinds = {release["ocid"].split("-")[2] for release in releases}
    assert kinds == {"DPS", "CO", "FC"}, kinds
    assert_valid(package)
    # Every record (its releases and compiled release together in one package).
    records = []
    for ocid in sorted({release["ocid"] for release in releases}):
        record_package = client.get(f"/api/v1/ocds/records/{ocid}").get_json()
        assert record_package_errors(record_package) == []
        records += record_package["records"]
    combined = dict(package, records=records)
    del combined["releases"]
    assert_valid(as_release_package(combined))
    # The bulk file holds the same releases.
    bulk = client.get("/api/v1/ocds/bulk/releases.jsonl.gz", buffered=True)
    lines = gzip.decompress(bulk.get_data()).decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(r["id"] for r in releases)
