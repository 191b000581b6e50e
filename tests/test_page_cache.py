"""Cached page parts: generations that move on with the data, and a bounded cache; objects
kept by the worker."""

from __future__ import annotations

import ast
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm.attributes import set_committed_value

import marketplace
from marketplace import create_app
from marketplace.accounts.models import Membership, OrganisationType, Role, User
from marketplace.accounts.queries import people_with_roles
from marketplace.core.cache import CacheGeneration, PageCache, Topic, generation, kept_copy
from marketplace.core.cache import generations as cache_generations
from marketplace.core.db import commit, db
from tests.factories import make_member, make_organisation, make_user


def _move_register_on() -> None:
    """A committed change the register shows (a new organisation): its triggers move it on."""
    make_organisation()
    commit()


def test_a_topic_starts_at_zero_then_moves_on_by_one_per_committed_change(app):
    assert generation(Topic.REGISTER) == 0
    organisation = make_organisation(name="Hope Housing")
    db.session.flush()
    assert generation(Topic.REGISTER) == 0  # what is committed: not yet
    commit()
    first = generation(Topic.REGISTER)
    # A new row starts at a random point, never at the 0 a process may have cached under.
    assert first > 0
    organisation.name = "Hope Homes"
    commit()
    assert generation(Topic.REGISTER) == first + 1
    assert generation(Topic.PRINCIPALS) > 0  # the same change, shown by another topic
    assert generation(Topic.ASSESSMENT_QUEUE) > 0


def test_generations_are_read_on_a_connection_of_their_own_that_recovers_when_broken(
    app, count_queries
):
    _move_register_on()
    db.session.remove()
    # Start from no idle reader connections: a test before this one in the same worker may
    # have left several (reads from two threads at once each give one back).
    cache_generations._reader.close_all()
    with count_queries() as reading:
        first = generation(Topic.REGISTER)
    # One query, not through the session: it has not even checked a connection out.
    assert first > 0 and reading.statements == [cache_generations._GENERATIONS_SQL]
    assert not db.session().in_transaction()
    # A broken connection (the server restarted): this read goes through the session, the next
    # on a new connection of its own.
    [idle] = cache_generations._reader._idle
    idle.dbapi_connection.close()
    with count_queries() as fallback:
        assert generation(Topic.REGISTER) == first
    assert fallback.count == 1 and fallback.statements[0].startswith("SELECT cache_generations")
    db.session.remove()
    with count_queries() as again:
        assert generation(Topic.REGISTER) == first
    assert again.statements == [cache_generations._GENERATIONS_SQL]
    assert not db.session().in_transaction()


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
    _move_register_on()
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


# ---------------------------------------------------------------------------------------------
# Objects kept by the worker (core.cache.kept), through people_with_roles


def _emails(people) -> list[str]:
    return [person.email for person in people]


def test_kept_objects_are_read_once_and_attached_to_the_next_session_without_a_query(
    app, count_queries
):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    commit()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [admin.email]
    db.session.remove()  # as the next request finds it
    with count_queries() as again:
        [kept_admin] = people_with_roles(provider.id, [Role.PROVIDER_ADMIN])
        assert (kept_admin.email, kept_admin.name) == (admin.email, admin.name)
    assert not any("FROM users" in s for s in again.statements)
    # Attached to this session as a persistent object, not shared with the worker's copy.
    assert sa.inspect(kept_admin).session_id == db.session().hash_key
    assert (
        kept_admin
        is not kept_copy(
            ("people-with-roles", provider.id, Role.PROVIDER_ADMIN), [Topic.PRINCIPALS]
        )[0]
    )


def test_a_committed_change_is_seen_by_the_next_read(app):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    commit()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [admin.email]
    second = make_member(Role.PROVIDER_ADMIN, provider)
    commit()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [
        admin.email,
        second.email,
    ]
    db.session.get(User, admin.id).active = False
    commit()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [second.email]


def test_a_change_this_transaction_made_is_seen_before_it_commits(app):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    commit()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [admin.email]
    assert people_with_roles(provider.id, [Role.PROVIDER_EDITOR]) == []
    # Not yet flushed, then flushed: either way the generation has not moved on yet.
    db.session.add(Membership(user=admin, organisation=provider, role=Role.PROVIDER_EDITOR))
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_EDITOR])) == [admin.email]
    newcomer = make_user()
    db.session.add(Membership(user=newcomer, organisation=provider, role=Role.PROVIDER_ADMIN))
    db.session.flush()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [
        admin.email,
        newcomer.email,
    ]
    db.session.rollback()
    assert _emails(people_with_roles(provider.id, [Role.PROVIDER_ADMIN])) == [admin.email]


def test_an_object_the_session_already_holds_is_read_again_not_overwritten(app):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    commit()
    people_with_roles(provider.id, [Role.PROVIDER_ADMIN])
    db.session.remove()
    held = db.session.get(User, admin.id)
    set_committed_value(held, "name", "As this request knows them")
    [found] = people_with_roles(provider.id, [Role.PROVIDER_ADMIN])
    assert found is held and found.name == "As this request knows them"


def test_an_in_memory_database_has_its_generations_read_through_the_session(tmp_path):
    # Such a database lives in its one connection: another connection would find it empty, and
    # taking that one from the pool would leave the session a new, empty database.
    application = create_app(
        {"SQLALCHEMY_DATABASE_URI": "sqlite://", "INSTANCE_DIR": str(tmp_path), "TESTING": True}
    )
    with application.app_context():
        db.create_all()
        db.session.add(CacheGeneration(topic=Topic.REGISTER, generation=7))
        commit()
        assert generation(Topic.REGISTER) > 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(CacheGeneration)) == 1
        db.session.remove()


def _loaded(obj, seen=None) -> dict:
    """What an object graph holds: each object's class, key and loaded columns, and the keys its
    loaded relationships lead to."""
    seen = {} if seen is None else seen
    state = sa.inspect(obj)
    if state.key in seen:
        return seen
    entry = seen[state.key] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in state.dict:
            entry[attr.key] = state.dict[attr.key]
    for relationship in state.mapper.relationships:
        if relationship.key not in state.dict:
            continue
        value = state.dict[relationship.key]
        related = list(value) if relationship.uselist else [value]
        entry[relationship.key] = [None if r is None else sa.inspect(r).key for r in related]
        for r in related:
            if r is not None:
                _loaded(r, seen)
    return seen


def test_kept_copies_are_attached_as_merge_would_attach_them(app, count_queries):
    from marketplace.accounts.security import hash_secret
    from marketplace.accounts.services.tokens import create_api_token
    from marketplace.accounts.session import _token_key, token_principal
    from marketplace.catalogue.queries import buyable_listing
    from marketplace.catalogue.search.schema import SEARCH_TOPIC
    from tests.orders.factories import build_orders_world

    world = build_orders_world()
    _, secret = create_api_token(world.buyer, world.region, "kept")
    commit()
    token_hash = hash_secret(secret)
    token_principal(token_hash), buyable_listing(world.listing.id)  # kept by this worker
    db.session.remove()
    copies = [
        kept_copy(_token_key(token_hash), [Topic.PRINCIPALS]),
        kept_copy(
            ("buyable-listing", world.listing.id),
            [SEARCH_TOPIC, Topic.REGISTER, Topic.PRINCIPALS],
        ),
    ]
    merged = [_loaded(db.session.merge(copy, load=False)) for copy in copies]
    db.session.remove()
    with count_queries() as attaching:
        token, listing = token_principal(token_hash), buyable_listing(world.listing.id)
    # Outside a request each reads the generations; nothing else.
    assert all("cache_generations" in s for s in attaching.statements)
    assert [_loaded(token), _loaded(listing)] == merged
    assert len(merged[0]) >= 4 and len(merged[1]) >= 5  # the whole graphs, not just the roots
    for obj in _every_object(token) + _every_object(listing):
        state = sa.inspect(obj)
        assert state.persistent and state.session_id == db.session().hash_key
        assert not state.modified and obj not in db.session.dirty
    assert token.user.memberships[0].organisation_id == world.region.id
    # What the copy left unloaded loads when read, and a change is written as any other.
    with count_queries() as lazy:
        assert world.buyer.id in {m.user_id for m in token.organisation.memberships}
    assert lazy.count == 1
    token.name = "renamed"
    assert list(db.session.dirty) == [token]
    db.session.flush()
    db.session.expire(token)
    assert token.name == "renamed"
    db.session.rollback()


def _every_object(obj) -> list:
    return [db.session.identity_map[key] for key in _loaded(obj)]


def test_features_use_the_cache_only_through_its_one_interface():
    # marketplace.core.cache names what features may use; its modules are its own business, so
    # that splitting or speeding them up never reaches a feature.
    package = Path(marketplace.__file__).parent
    inside = []
    for path in sorted(package.rglob("*.py")):
        if path.is_relative_to(package / "core" / "cache"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            inside += [
                f"{path.relative_to(package)}:{node.lineno} {name}"
                for name in names
                if name.startswith("marketplace.core.cache.")
                and name.removeprefix("marketplace.core.cache.") in _CACHE_MODULES
            ]
    assert inside == []


_CACHE_MODULES = {
    path.stem
    for path in (Path(marketplace.__file__).parent / "core" / "cache").glob("*.py")
    if path.stem != "__init__"
}
