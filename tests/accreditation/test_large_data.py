"""Acceptance 6: the assessor queue and the public register need a fixed few queries at any size.

The large data generator of `make bench` (``benchmarks/large_data.py``) loads a small version
into the test database; each page is counted, then counted again after a larger load.
"""

from __future__ import annotations

import sqlalchemy as sa

from benchmarks import large_data
from marketplace.accreditation.models import Application, LotMembership
from marketplace.core.db import commit, db
from tests.accreditation.builders import make_authority, make_world

MAX_QUERIES = 10


def _counts(web, client, count_queries, assessor, arrangement) -> tuple[int, int]:
    """Queries for each page on its first view after the data changed (built from the data)."""
    register = f"/arrangements/{arrangement.id}/register"
    client.get(register + "?page=2")  # warm caches (templates, reference data)
    with count_queries() as register_queries:
        response = client.get(register)
    assert response.status_code == 200
    web.as_user(assessor)
    web.get("/accreditation/assessments?page=3")
    with count_queries() as queue_queries:
        response = web.get("/accreditation/assessments")
    assert response.status_code == 200
    assert "Load Provider" in response.get_data(as_text=True)
    with client.session_transaction() as session:
        session.clear()
    return queue_queries.count, register_queries.count


def test_queue_and_register_need_the_same_few_queries_whatever_the_size(
    app, web, client, count_queries
):
    world = make_world()
    assessor, _ = make_authority()
    commit()

    counts = large_data.load(app, applications=6, memberships=20)
    assert counts["applications"] == 6 and counts["memberships"] == 20
    small_queue, small_register = _counts(web, client, count_queries, assessor, world.arrangement)

    large_data.load(app, applications=60, memberships=200)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Application)) == 66
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LotMembership)) == 220
    large_queue, large_register = _counts(web, client, count_queries, assessor, world.arrangement)

    assert large_queue <= MAX_QUERIES
    assert large_register <= MAX_QUERIES
    assert (small_queue, small_register) == (large_queue, large_register)


def test_loaded_rows_meet_the_constraints_and_show_in_the_register(app, client):
    world = make_world()
    commit()
    large_data.load(app, applications=60, memberships=200)
    page = client.get(f"/arrangements/{world.arrangement.id}/register").get_data(as_text=True)
    assert "Load Provider" in page
    csv = client.get(f"/arrangements/{world.arrangement.id}/register.csv").get_data(as_text=True)
    # Every 50th generated membership is suspended and left out of the public register.
    assert csv.count("Load Provider") == 200 - 200 // 50
