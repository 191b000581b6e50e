"""The Alembic migrations build the schema from nothing, tear it down again, and agree with the models.

Runs on the configured backend (``MARKETPLACE_TEST_DATABASE_URL``, SQLite by default), always on a
database of its own so that the shared test database is not touched: a temporary SQLite file, or a
PostgreSQL database created for the test on the same server and dropped afterwards.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import downgrade, upgrade

from marketplace import create_app
from marketplace.catalogue.search.schema import is_search_object
from marketplace.core.db import db

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
POSTGRES_DATABASE = "marketplace_migrations_test"
REFERENCE_COUNTS = {"probation_regions": 12, "pcc_areas": 42, "service_categories": 15}


def _configured_url() -> str | None:
    return os.environ.get("MARKETPLACE_TEST_DATABASE_URL") or None


@pytest.fixture
def fresh_database_url(tmp_path):
    """The URL of an empty database on the configured backend, removed after the test."""
    configured = _configured_url()
    if not configured or not configured.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return

    server = sa.make_url(configured)
    # One database per xdist worker, so parallel runs do not drop each other's database.
    name = POSTGRES_DATABASE + (
        f"_{os.environ['PYTEST_XDIST_WORKER']}" if os.environ.get("PYTEST_XDIST_WORKER") else ""
    )
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    quoted = admin.dialect.identifier_preparer.quote(name)
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        connection.execute(sa.text(f"CREATE DATABASE {quoted}"))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(sa.text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def migrations_app(fresh_database_url, tmp_path):
    """An app of its own, on the fresh database; nothing shared with the session's app."""
    application = create_app(
        {
            "TESTING": True,
            "ENV_NAME": "testing",
            "SECRET_KEY": "migration-test-secret-" + "x" * 32,
            "SQLALCHEMY_DATABASE_URI": fresh_database_url,
            "INSTANCE_DIR": str(tmp_path / "instance"),
            "EMAIL_BACKEND": "console",
            "SEND_EMAIL_AFTER_COMMIT": False,
            "LOG_LEVEL": "WARNING",
        }
    )
    with application.app_context():
        yield application
        db.session.remove()
        db.engine.dispose()


def table_names() -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def reference_counts() -> dict[str, int]:
    with db.engine.connect() as connection:
        return {
            table: connection.execute(
                sa.select(sa.func.count()).select_from(sa.table(table))
            ).scalar_one()
            for table in REFERENCE_COUNTS
        }


def current_revision() -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _include_name(name, type_, parent_names) -> bool:
    # The search index is written by hand (see marketplace/catalogue/search/schema.py), as in env.py.
    return not (type_ == "table" and is_search_object(name))


def schema_differences() -> list:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": _include_name}
        )
        return compare_metadata(context, db.metadata)


def test_there_is_exactly_one_head():
    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert len(heads) == 1, f"the migrations have several heads, merge them: {heads}"


def test_upgrade_from_nothing_downgrade_to_base_and_upgrade_again(migrations_app):
    [head] = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert table_names() == set()

    # empty → head
    upgrade()
    assert current_revision() == head
    assert set(db.metadata.tables) <= table_names()
    assert reference_counts() == REFERENCE_COUNTS

    # Upgrading at head changes nothing.
    upgrade()
    assert current_revision() == head
    assert reference_counts() == REFERENCE_COUNTS

    # head → base leaves nothing but Alembic's own table.
    downgrade(revision="base")
    assert table_names() == {"alembic_version"}
    assert current_revision() is None

    # base → head again
    upgrade()
    assert current_revision() == head
    assert set(db.metadata.tables) <= table_names()
    assert reference_counts() == REFERENCE_COUNTS


def test_models_and_migrations_agree(migrations_app):
    upgrade()

    differences = schema_differences()

    assert differences == [], (
        "the models and the migrations differ; write a revision "
        f"(flask db migrate -m '…'):\n{differences}"
    )
    # Nothing but the models' tables, the search index and Alembic's is in the database.
    extra = {name for name in table_names() - set(db.metadata.tables) if not is_search_object(name)}
    assert extra == {"alembic_version"}
