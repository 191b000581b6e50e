"""The OCDS endpoints: cursor paging (newest last, no release skipped or repeated),
``updatedFrom``, the page-size limit, bad input as problem+json, records, the bulk file
(streamed in batches whose query count does not grow with the number of call-offs), the
bench hook, and the open-data page."""

from __future__ import annotations

import gzip
import json
import socket
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from marketplace.core.clock import utcnow
from marketplace.core.db import db
from marketplace.insight.ocds import feed
from marketplace.insight.ocds.common import EXTENSIONS
from marketplace.orders.services import placing, responses
from tests.insight.ocds_scenarios import awarded_competition, paid_co_funded_call_off
from tests.insight.ocds_validation import assert_valid, no_network
from tests.orders.factories import details

PROBLEM = "application/problem+json"


def walk(client, url):
    releases, pages = [], 0
    while url:
        response = client.get(url)
        assert response.status_code == 200
        package = response.get_json()
        releases += package["releases"]
        pages += 1
        url = package.get("links", {}).get("next")
    return releases, pages


@pytest.fixture
def world(app):
    paid_co_funded_call_off()
    awarded_competition()


def test_pages_are_in_date_order_and_together_are_the_bulk_file(world, client):
    everything, _ = walk(client, "/api/v1/ocds/releases?limit=1000")
    paged, pages = walk(client, "/api/v1/ocds/releases?limit=2")
    assert pages == -(-len(everything) // 2)
    assert [r["id"] for r in paged] == [r["id"] for r in everything]
    assert [r["date"] for r in paged] == sorted(r["date"] for r in paged)
    ids = [(r["ocid"], r["id"]) for r in paged]
    assert len(ids) == len(set(ids))  # release ids unique (per ocid and overall)
    # Buffered: the test client runs each request in a thread of its own (tests/conftest.py),
    # where a server iterates the stream.
    body = client.get("/api/v1/ocds/bulk/releases.jsonl.gz", buffered=True)
    assert body.status_code == 200 and body.mimetype == "application/gzip"
    lines = gzip.decompress(body.get_data()).decode().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == sorted(r["id"] for r in paged)
    # The bulk releases validate too.
    package = client.get("/api/v1/ocds/releases?limit=1").get_json()
    package["releases"] = [json.loads(line) for line in lines]
    assert_valid(package)
    # Package metadata.
    assert package["version"] == "1.1"
    assert package["extensions"] == list(EXTENSIONS)
    assert package["license"].startswith("https://")
    assert package["publicationPolicy"].endswith("/insight/open-data")


def test_release_ids_and_dates_are_stable(world, client):
    first = client.get("/api/v1/ocds/releases?limit=1000").get_json()["releases"]
    again = client.get("/api/v1/ocds/releases?limit=1000").get_json()["releases"]
    assert first == again


def test_updated_from_keeps_releases_dated_from_then(world, client):
    everything, _ = walk(client, "/api/v1/ocds/releases?limit=1000")
    middle = sorted(r["date"] for r in everything)[len(everything) // 2]
    later, _ = walk(client, f"/api/v1/ocds/releases?limit=2&updatedFrom={middle}")
    assert later and all(r["date"] >= middle for r in later)
    assert {r["id"] for r in later} == {r["id"] for r in everything if r["date"] >= middle}
    # A date alone is from the start of that day in London.
    day = middle[:10]
    from_day, _ = walk(client, f"/api/v1/ocds/releases?updatedFrom={day}")
    assert {r["id"] for r in later} <= {r["id"] for r in from_day}
    future = (utcnow() + timedelta(days=3650)).date().isoformat()
    package = client.get(f"/api/v1/ocds/releases?updatedFrom={future}").get_json()
    assert package["releases"] == [] and "links" not in package


@pytest.mark.parametrize(
    "value", ["yesterday", "2026-13-01", "2026-02-30", "1e9", "", "2026/04/01"]
)
def test_an_updated_from_that_is_not_a_date_is_refused(app, client, value):
    response = client.get(f"/api/v1/ocds/releases?updatedFrom={value}")
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert "updatedFrom" in json.dumps(response.get_json())


@pytest.mark.parametrize("cursor", ["", "nonsense", "WzEsMiwzXQ", "eyJhIjoxfQ.forged"])
def test_a_cursor_that_is_not_ours_is_refused(app, client, cursor):
    response = client.get(f"/api/v1/ocds/releases?cursor={cursor}")
    assert response.status_code == 404 and response.mimetype == PROBLEM
    assert "cursor" in response.get_json()["detail"]


def test_a_cursor_at_the_end_gives_an_empty_page_without_a_next_link(world, client):
    """Decision: releases are never withdrawn, so a cursor we gave stays valid; at the end it
    is an empty page (poll it again later for what is new), not an error."""
    url = "/api/v1/ocds/releases?limit=2"
    while True:
        package = client.get(url).get_json()
        if "links" not in package:
            break
        url = package["links"]["next"]
        last_cursor = parse_qs(urlsplit(url).query)["cursor"][0]
    # Step past the last release with the cursor of the last full page's end.
    after = feed.decode_cursor(last_cursor)
    with client.application.test_request_context():
        end = feed.encode_cursor((after[0] + timedelta(days=36500), *after[1:]))
    response = client.get(f"/api/v1/ocds/releases?cursor={end}")
    assert response.status_code == 200
    assert response.get_json()["releases"] == [] and "links" not in response.get_json()


@pytest.mark.parametrize("limit", ["0", "1001", "-1", "lots"])
def test_a_page_size_outside_the_limit_is_refused(app, client, limit):
    response = client.get(f"/api/v1/ocds/releases?limit={limit}")
    assert response.status_code == 422 and response.mimetype == PROBLEM


@pytest.mark.parametrize(
    "ocid", ["ocds-rehab1-CO-2099-999999", "nonsense", "ocds-other-DPS", "ocds-rehab1-"]
)
def test_an_unknown_ocid_is_404(world, client, ocid):
    response = client.get(f"/api/v1/ocds/records/{ocid}")
    assert response.status_code == 404 and response.mimetype == PROBLEM
    assert ocid in response.get_json()["detail"]


def test_the_ocid_prefix_is_configuration(world, app, client, monkeypatch):
    monkeypatch.setitem(app.config, "OCDS_OCID_PREFIX", "ocds-zz9zz9")
    releases = client.get("/api/v1/ocds/releases?limit=1000").get_json()["releases"]
    assert releases and all(r["ocid"].startswith("ocds-zz9zz9-") for r in releases)


def test_the_bulk_file_is_read_in_batches_with_a_fixed_number_of_queries(
    app, client, count_queries, monkeypatch
):
    """Set-based: the queries per batch do not depend on how many call-offs it holds."""
    from tests.orders.factories import build_orders_world

    world = build_orders_world(price_pence=1_000, vat_treatment="exempt")

    def place(n):
        for _ in range(n):
            call_off = placing.place_call_off(
                world.buyer, world.region, world.listing.id, details(world, quantity=1)
            )
            responses.accept(world.provider_admin, call_off)
        db.session.commit()

    def queries() -> tuple[int, int]:
        with count_queries() as counter:
            count = feed.stream_bulk_releases(lambda chunk: None)
        return counter.count, count

    place(2)
    few_queries, few = queries()
    place(8)
    many_queries, many = queries()
    assert many - few == 16  # award and accepted for each of the 8 more
    assert many_queries == few_queries
    # Batches: a smaller batch size makes more batches, each with the same queries.
    monkeypatch.setattr(feed, "BULK_BATCH", 3)
    batched_queries, count = queries()
    assert count == many and batched_queries > many_queries


def test_the_bulk_file_encodes_each_call_offs_releases_before_building_the_next(app, monkeypatch):
    """Memory stays flat: the releases held built but not yet encoded are one call-off's at
    most, however many call-offs a keyset batch reads (not the whole batch's releases)."""
    from marketplace.insight.ocds import call_offs
    from tests.orders.factories import build_orders_world

    world = build_orders_world(price_pence=1_000, vat_treatment="exempt")
    for _ in range(6):
        call_off = placing.place_call_off(
            world.buyer, world.region, world.listing.id, details(world, quantity=1)
        )
        responses.accept(world.provider_admin, call_off)
    db.session.commit()
    held: set[str] = set()  # ids of call-off releases built and not yet encoded
    most = [0]
    releases_of, encode = call_offs.releases_of, feed._encode

    def counted_releases_of(batch, row):
        built = releases_of(batch, row)
        held.update(release["id"] for _, release in built)
        most[0] = max(most[0], len(held))
        return built

    def counted_encode(release):
        held.discard(release["id"])
        return encode(release)

    monkeypatch.setattr(call_offs, "releases_of", counted_releases_of)
    monkeypatch.setattr(feed, "_encode", counted_encode)
    with app.test_request_context():
        count = feed.stream_bulk_releases(lambda chunk: None)
    assert count >= 12 and not held
    assert most[0] == 2  # award and accepted of one call-off


def test_the_bench_hook_streams_to_a_sink_and_counts(world, app):
    chunks = []
    with app.test_request_context():
        count = feed.stream_bulk_releases(chunks.append)
    lines = gzip.decompress(b"".join(chunks)).decode().splitlines()
    assert count == len(lines) > 0


def test_the_validation_cannot_reach_the_network():
    with no_network() as refused, pytest.raises(OSError):
        socket.create_connection(("93.184.216.34", 80), timeout=1)
    assert refused


def test_the_open_data_page_explains_the_feed_and_links_to_it(app, client):
    page = client.get("/insight/open-data")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for href in (
        "/api/v1/ocds/releases",
        "/api/v1/ocds/records/ocds-rehab1-DPS",
        "/api/v1/ocds/bulk/releases.jsonl.gz",
    ):
        assert f'href="{href}"' in text
    assert "Download every release" in text
    home = client.get("/").get_data(as_text=True)
    assert 'href="/insight/open-data">Open data</a>' in home
