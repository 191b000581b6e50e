"""Journey R2 (issue 22): a data user, signed out, goes from the home page to the open-data
page by the footer and downloads the OCDS bulk file: gzipped JSON Lines, one release a line.
axe-core checks every page (conftest.py)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tests.e2e import worlds

pytestmark = pytest.mark.e2e


def test_r2_a_data_user_downloads_the_ocds_bulk_file(journey, live_server):
    worlds.register_world(live_server)  # a live dynamic market with members: releases exist

    journey.home()
    journey.follow("Open data", within="footer")
    assert journey.heading() == "Open data: contracts in the Open Contracting Data Standard"
    page = journey.main_text()
    assert "no case reference numbers" in page.lower() or "CRNs" in page

    download = journey.download("Download every release (gzipped JSON Lines)")
    assert download.suggested_filename == "releases.jsonl.gz"
    lines = gzip.decompress(Path(download.path()).read_bytes()).decode().splitlines()
    releases = [json.loads(line) for line in lines]
    assert releases
    assert all({"ocid", "id", "date", "tag"} <= set(release) for release in releases)
    assert any(release["ocid"].endswith("-DPS") for release in releases)
