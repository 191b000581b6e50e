"""Cached page parts: generations that move on with the data, and a bounded cache."""

from __future__ import annotations

from marketplace.db import commit, db
from marketplace.page_cache import PageCache, Topic, bump_generations, generation
from tests.factories import make_organisation


def test_a_topic_starts_at_zero_then_moves_on_by_one_per_changing_flush(app):
    assert generation(Topic.REGISTER) == 0
    bump_generations(db.session.connection(), [Topic.REGISTER])
    first = generation(Topic.REGISTER)
    # A new row starts at a random point, never at the 0 a process may have cached under.
    assert first > 0
    bump_generations(db.session.connection(), [Topic.REGISTER, Topic.REGISTER])
    assert generation(Topic.REGISTER) == first + 1
    assert generation(Topic.ASSESSMENT_QUEUE) == 0


def test_watched_attributes_move_the_topic_on_and_others_do_not(app):
    organisation = make_organisation(name="Hope Housing")
    commit()
    register, queue = generation(Topic.REGISTER), generation(Topic.ASSESSMENT_QUEUE)
    organisation.active = False  # shown on neither page
    commit()
    assert (generation(Topic.REGISTER), generation(Topic.ASSESSMENT_QUEUE)) == (register, queue)
    organisation.charity_number = "1234567"  # shown in the register only
    commit()
    assert generation(Topic.REGISTER) == register + 1
    assert generation(Topic.ASSESSMENT_QUEUE) == queue
    organisation.name = "Hope Homes"  # shown on both
    commit()
    assert generation(Topic.REGISTER) == register + 2
    assert generation(Topic.ASSESSMENT_QUEUE) == queue + 1


def test_a_rolled_back_change_leaves_the_generation_alone(app):
    organisation = make_organisation(name="Hope Housing")
    commit()
    before = generation(Topic.REGISTER)
    organisation.name = "Changed"
    db.session.flush()
    assert generation(Topic.REGISTER) == before  # moved on at commit, not at each flush
    db.session.rollback()
    commit()
    assert generation(Topic.REGISTER) == before
    organisation.name = "Changed again"
    db.session.flush()
    commit()
    assert generation(Topic.REGISTER) == before + 1


def test_cache_reuses_a_part_until_its_topic_moves_on(app):
    cache = PageCache(max_entries=10)
    builds = []

    def build():
        builds.append(1)
        return f"part {len(builds)}"

    assert cache.fetch(Topic.REGISTER, ("a",), build) == "part 1"
    assert cache.fetch(Topic.REGISTER, ("a",), build) == "part 1"
    assert cache.fetch(Topic.ASSESSMENT_QUEUE, ("a",), build) == "part 2"  # keys are per topic
    bump_generations(db.session.connection(), [Topic.REGISTER])
    assert cache.fetch(Topic.REGISTER, ("a",), build) == "part 3"
    assert cache.fetch(Topic.REGISTER, ("b",), lambda: None) is None
    assert cache.fetch(Topic.REGISTER, ("b",), build) is None  # a cached "not found"
    assert len(builds) == 3


def test_cache_is_bounded(app):
    cache = PageCache(max_entries=3)
    for n in range(10):
        cache.fetch(Topic.REGISTER, (n,), lambda n=n: n)
    assert len(cache) == 3
    # The most recently used entries stay.
    assert cache.fetch(Topic.REGISTER, (9,), lambda: "rebuilt") == 9
    assert cache.fetch(Topic.REGISTER, (0,), lambda: "rebuilt") == "rebuilt"
