"""Cache generations moved on by the database's triggers: on every write path, as declared, only
at commit; what a transaction wrote is read afresh by ``kept``; and the test-time guard fails a
write whose trigger is missing."""

from __future__ import annotations

import threading
from datetime import date

import pytest
import sqlalchemy as sa

from marketplace.accounts.models import Organisation, OrganisationType, Role, User
from marketplace.accounts.queries import people_with_roles
from marketplace.catalogue.models import Listing, ListingArea, ListingPrice
from marketplace.catalogue.search.index import refresh_prices, reindex_all, reindex_listings
from marketplace.catalogue.search.schema import SEARCH_TOPIC
from marketplace.core.cache import Topic, generation, written_here
from marketplace.core.cache import triggers as cache_triggers
from marketplace.core.cache.declarations import UPDATE
from marketplace.core.cache.writes import statement_writes, topics_moved_by
from marketplace.core.clock import utcnow
from marketplace.core.db import commit, db
from marketplace.core.store import insert_many
from tests.accreditation.factories import make_arrangement, make_lot_membership
from tests.catalogue.factories import make_listing
from tests.conftest import CACHE_GUARD, fail_on_stale_writes
from tests.factories import make_member, make_organisation, make_user


@pytest.fixture
def listing(app):
    arrangement = make_arrangement(lots=("ACC",), regions=("A",))
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Harbour Housing")
    make_lot_membership(arrangement.lots[0], provider, region_code="A")
    made = make_listing(arrangement.lots[0], provider, title="Supported housing")
    commit()
    return made


def test_the_databases_triggers_are_what_the_declarations_ask_for(app):
    installed = cache_triggers.installed_plan(db.session.connection())
    declared = cache_triggers.trigger_plan()
    assert {t.table for t in declared} >= {
        "listings",
        "listing_prices",
        "listing_search_rows",
        "listing_search_areas",
        "users",
    }
    assert installed == declared, (
        "the cache triggers in the database are not what the watch(...) declarations ask for: "
        "write a migration that drops the old plan and creates this one "
        "(marketplace/core/cache/triggers.py; the plan to write into it: "
        f"{cache_triggers.as_rows(declared)})"
    )


def _moved_on(topic, write) -> bool:
    before = generation(topic)
    write()
    commit()
    return generation(topic) > before


def test_every_way_of_writing_moves_the_search_topic_on(listing):
    listings, prices, areas = Listing.__table__, ListingPrice.__table__, ListingArea.__table__
    pk = listing.id
    ways = {
        "the ORM": lambda: setattr(db.session.get(Listing, pk), "summary", "By the ORM"),
        "a Core UPDATE": lambda: db.session.execute(
            listings.update().where(listings.c.id == pk).values(title="By Core")
        ),
        "a Core INSERT": lambda: db.session.execute(
            prices.insert().values(
                listing_id=pk,
                unit_price_pence=20_000,
                effective_from=date(2099, 1, 1),
                reason="",
                created_at=utcnow(),
            )
        ),
        "exec_driver_sql": lambda: db.session.connection().exec_driver_sql(
            "UPDATE listing_prices SET effective_to = '2099-01-01' "
            f"WHERE listing_id = {pk} AND effective_from < '2099-01-01'"
        ),
        "a bulk insert (COPY on PostgreSQL)": lambda: insert_many(
            db.session.connection(),
            areas,
            [{"listing_id": pk, "region_id": None, "pcc_area_id": _pcc_area_id()}],
        ),  # fmt: skip
        "a Core DELETE": lambda: db.session.execute(
            areas.delete().where(areas.c.listing_id == pk, areas.c.pcc_area_id.is_not(None))
        ),
        # The index alone: rewriting a listing's rows (now with its price's end), the whole
        # index, the rows whose price has lapsed by the day given.
        "a reindex": lambda: reindex_listings(db.session.connection(), [pk]),
        "a whole reindex": lambda: reindex_all(db.session.connection()),
        "refresh_prices": lambda: refresh_prices(today=date(2099, 1, 2)),
    }
    for way, write in ways.items():
        assert _moved_on(SEARCH_TOPIC, write), way


def _pcc_area_id() -> int:
    return db.session.scalar(sa.text("SELECT min(id) FROM pcc_areas"))


def test_an_update_moves_on_only_the_topics_whose_columns_it_sets(app):
    organisation = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    commit()
    table = Organisation.__table__
    topics = [Topic.REGISTER, Topic.ASSESSMENT_QUEUE, SEARCH_TOPIC, Topic.PRINCIPALS]
    before = {topic: generation(topic) for topic in topics}
    db.session.execute(table.update().where(table.c.id == organisation.id).values(active=False))
    commit()
    after = {topic: generation(topic) for topic in topics}
    # Any change to an organisation moves the principals on; only its name, type or numbers
    # the others.
    assert after[Topic.PRINCIPALS] != before.pop(Topic.PRINCIPALS)
    assert {topic: after[topic] for topic in before} == before
    db.session.execute(
        table.update().where(table.c.id == organisation.id).values(charity_number="1234567")
    )
    commit()
    assert generation(Topic.REGISTER) == before[Topic.REGISTER] + 1
    assert generation(Topic.ASSESSMENT_QUEUE) == before[Topic.ASSESSMENT_QUEUE]
    assert generation(SEARCH_TOPIC) == before[SEARCH_TOPIC]


def test_a_rolled_back_savepoint_takes_its_topics_with_it(listing):
    before = generation(SEARCH_TOPIC)
    savepoint = db.session.begin_nested()
    db.session.execute(
        Listing.__table__.update().where(Listing.id == listing.id).values(title="Undone")
    )
    savepoint.rollback()
    make_user()  # something else in the same transaction, under no topic
    commit()
    assert generation(SEARCH_TOPIC) == before


@pytest.mark.postgres_only
def test_a_transaction_locks_the_generation_row_only_at_its_commit(app, listing):
    # Two writers under the same topic: the first, still open, must not hold up the second (the
    # generation row is written at commit, by the deferred trigger).
    table, pk, engine = Listing.__table__, listing.id, db.engine
    before = generation(SEARCH_TOPIC)
    db.session.remove()
    done = []

    def second():
        with engine.connect() as connection:
            connection.execute(sa.text("SET lock_timeout = '5s'"))
            connection.execute(
                ListingPrice.__table__.update()
                .where(ListingPrice.__table__.c.listing_id == pk)
                .values(reason="Second")
            )
            connection.commit()
            done.append(True)

    with engine.connect() as first:
        try:
            first.execute(table.update().where(table.c.id == pk).values(title="First"))
            worker = threading.Thread(target=second)
            worker.start()
            worker.join()
            assert done == [True]
            assert generation(SEARCH_TOPIC) == before + 1
        finally:
            first.commit()
    assert generation(SEARCH_TOPIC) == before + 2


# ---------------------------------------------------------------------------------------------
# kept: what this transaction wrote is read afresh


def test_kept_reads_afresh_what_this_transaction_wrote_through_core(app, count_queries):
    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    admin = make_member(Role.PROVIDER_ADMIN, provider, name="Ada")
    commit()
    people_with_roles(provider.id, [Role.PROVIDER_ADMIN])  # kept by this worker
    db.session.remove()
    users = User.__table__
    # A column no topic watches leaves the copy in use…
    db.session.execute(sa.text("SELECT 1"))
    assert not written_here(db.session(), [Topic.PRINCIPALS])
    # …a write to a watched table through Core does not: the copy predates it.
    db.session.execute(users.update().where(users.c.id == admin.id).values(name="Ada Lovelace"))
    assert written_here(db.session(), [Topic.PRINCIPALS])
    assert not written_here(db.session(), [Topic.REGISTER])
    [found] = people_with_roles(provider.id, [Role.PROVIDER_ADMIN])
    assert found.name == "Ada Lovelace"
    db.session.rollback()
    assert not written_here(db.session(), [Topic.PRINCIPALS])
    db.session.remove()  # as the next request finds it (holding none of the objects)
    with count_queries() as again:
        [found] = people_with_roles(provider.id, [Role.PROVIDER_ADMIN])
    assert found.name == "Ada" and not any("FROM users" in s for s in again.statements)


def test_kept_keeps_using_its_copy_after_a_write_no_topic_of_it_watches(app, count_queries):
    from marketplace.accounts.services.tokens import create_api_token

    provider = make_organisation(OrganisationType.PROVIDER_VCSE, name="Hope Housing")
    admin = make_member(Role.PROVIDER_ADMIN, provider)
    token, _ = create_api_token(admin, provider, "t")
    commit()
    provider_id, token_id = provider.id, token.id
    people_with_roles(provider_id, [Role.PROVIDER_ADMIN])
    db.session.remove()
    # Recording a token's use (a column of a watched table that no topic watches).
    tokens = token.__table__
    db.session.execute(tokens.update().where(tokens.c.id == token_id).values(last_used_at=utcnow()))
    assert not written_here(db.session(), [Topic.PRINCIPALS])
    with count_queries() as reading:
        people_with_roles(provider_id, [Role.PROVIDER_ADMIN])
    assert not any("FROM users" in s for s in reading.statements)
    db.session.rollback()


def test_a_statement_that_deletes_counts_for_what_its_foreign_keys_then_change(app):
    # Deleting an organisation deletes its memberships (ON DELETE CASCADE): the principals.
    moved = topics_moved_by("DELETE FROM organisations WHERE organisations.id = ?")
    assert Topic.PRINCIPALS in moved


@pytest.mark.parametrize(
    "sql, writes",
    [
        ("SELECT * FROM listings FOR UPDATE", ()),
        (
            "UPDATE organisations SET active=?, updated_at=? WHERE organisations.id = ?",
            (("update", "organisations", {"active", "updated_at"}),),
        ),
        (
            'UPDATE "listing_search_rows" AS r SET price_pence = (SELECT 1), "price_to"=%(x)s '
            "FROM listings WHERE r.listing_id = listings.id",
            (("update", "listing_search_rows", {"price_pence", "price_to"}),),
        ),
        (
            "WITH row_0 AS (INSERT INTO call_offs (id) VALUES (%(r0_id)s) RETURNING id), "
            "also AS (UPDATE budgets SET committed_pence=budgets.committed_pence + %(part)s "
            "WHERE budgets.id = %(budget_id)s RETURNING budgets.committed_pence) SELECT 1",
            (
                ("insert", "call_offs", None),
                ("update", "budgets", {"committed_pence"}),
            ),
        ),
        ("COPY listing_areas (listing_id) FROM STDIN", (("insert", "listing_areas", None),)),
        ("DELETE FROM listing_search WHERE rowid IN (?, ?)", (("delete", "listing_search", None),)),
        (
            "INSERT INTO cache_generations (topic) VALUES (?) ON CONFLICT (topic) DO UPDATE "
            "SET generation = cache_generations.generation + 1",
            (("insert", "cache_generations", None),),
        ),
    ],
)
def test_the_writes_a_statement_makes_are_read_from_its_text(sql, writes):
    found = statement_writes(sql)
    assert [(w.event, w.table, w.columns and set(w.columns)) for w in found] == [
        (event, table, columns) for event, table, columns in writes
    ]


# ---------------------------------------------------------------------------------------------
# The guard


@pytest.fixture
def without_the_price_update_trigger(app):
    """The search topic's UPDATE trigger on listing_prices dropped for the test, then put back."""
    dialect = db.engine.dialect.name
    [update] = [
        t
        for t in cache_triggers.trigger_plan()
        if t.table == "listing_prices" and t.event == UPDATE
    ]
    with db.engine.begin() as connection:
        connection.exec_driver_sql(
            f"DROP TRIGGER {update.name}"
            + (" ON listing_prices" if dialect == "postgresql" else "")
        )
    try:
        yield
    finally:
        db.session.remove()
        with db.engine.begin() as connection:
            [create] = [
                s
                for s in cache_triggers.create_statements(dialect, [update], functions=False)
                if s.startswith(f"CREATE TRIGGER {update.name} ")
            ]
            connection.exec_driver_sql(create)
        with db.engine.connect() as connection:
            assert cache_triggers.installed_plan(connection) == cache_triggers.trigger_plan()


def test_the_guard_fails_a_committed_write_whose_trigger_is_missing(
    listing, without_the_price_update_trigger, count_queries
):
    prices = ListingPrice.__table__
    update = prices.update().where(prices.c.listing_id == listing.id).values(reason="No trigger")
    with count_queries() as counted:
        db.session.execute(update)
        commit()
    # The guard read the generations on a connection of its own: nothing more was counted.
    assert [s.split()[0] for s in counted.statements] == ["UPDATE"]
    [failure] = CACHE_GUARD.failures
    assert failure.topic == SEARCH_TOPIC and "UPDATE listing_prices SET reason" in failure.statement
    assert failure.before == failure.after
    # What the hooks run after each test's setup, call and teardown: it fails the test.
    with pytest.raises(pytest.fail.Exception, match="did not move the cache topic 'catalogue-"):
        fail_on_stale_writes("the test")
    assert CACHE_GUARD.failures == []
    # A write whose trigger is there passes; one that changed no row expects nothing.
    db.session.execute(prices.update().where(prices.c.id == -1).values(reason="Nothing"))
    db.session.execute(
        Listing.__table__.update().where(Listing.id == listing.id).values(title="With trigger")
    )
    commit()
    assert CACHE_GUARD.take_failures() == []
