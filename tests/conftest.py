"""Shared fixtures: one app and database per test session, tables emptied after each test.

The database is chosen by ``MARKETPLACE_TEST_DATABASE_URL`` (the Makefile runs the suite once on
SQLite and once on a throwaway PostgreSQL). It is built with the Alembic migrations, so every run
also proves they work. Reference data (loaded by a data migration) survives between tests.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import has_app_context
from flask.testing import FlaskClient
from flask_migrate import upgrade

from marketplace import create_app
from marketplace.core.cache import generations
from marketplace.core.db import db
from marketplace.core.extensions import limiter
from tests.cache_guard import CacheGuard
from tests.peppol_guard import PeppolGuard

REFERENCE_TABLES = {"probation_regions", "pcc_areas", "service_categories", "alembic_version"}
IN_CI = os.environ.get("CI", "").lower() == "true"


def database_url(tmp_dir: Path) -> str:
    configured = os.environ.get("MARKETPLACE_TEST_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # gw0, gw1, … under `pytest -n`
    if not configured or not worker:
        return configured or f"sqlite:///{tmp_dir / 'test.db'}"
    # Under pytest-xdist each worker gets a database of its own: each one rebuilds the schema.
    url = sa.engine.make_url(configured)
    if not url.database or url.database == ":memory:":
        return configured
    if url.get_backend_name() == "sqlite":
        path = Path(url.database)
        url = url.set(database=str(path.with_name(f"{path.stem}_{worker}{path.suffix}")))
    else:
        name = f"{url.database}_{worker}"
        engine = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            exists = sa.text("SELECT 1 FROM pg_database WHERE datname = :name")
            if connection.scalar(exists, {"name": name}) is None:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        engine.dispose()
        url = url.set(database=name)
    return url.render_as_string(hide_password=False)


def backend_name() -> str:
    return "postgresql" if database_url(Path("/")).startswith("postgresql") else "sqlite"


# On for the whole suite: a committed write that does not move the cache topics it should fails
# the test that made it (tests/cache_guard.py).
CACHE_GUARD = CacheGuard()
# On for the whole suite too: every UBL invoice and credit note made passes Peppol's rules.
PEPPOL_GUARD = PeppolGuard()


def pytest_configure(config):
    CACHE_GUARD.install()
    PEPPOL_GUARD.install()


def pytest_unconfigure(config):
    CACHE_GUARD.close()
    PEPPOL_GUARD.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    CACHE_GUARD.take_failures()  # what an earlier test left was reported with it
    PEPPOL_GUARD.take_failures()
    result = yield
    fail_on_stale_writes("setting up")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    result = yield
    fail_on_stale_writes("the test")
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    result = yield
    fail_on_stale_writes("tearing down")
    return result


def fail_on_stale_writes(when: str) -> None:
    failures = CACHE_GUARD.take_failures()
    invalid = PEPPOL_GUARD.take_failures()
    if invalid:
        pytest.fail(f"Peppol rules, in {when}:\n" + "\n".join(invalid), pytrace=False)
    if failures:
        pytest.fail(
            f"cache guard, in {when}:\n" + "\n".join(f"- {failure}" for failure in failures),
            pytrace=False,
        )


def pytest_collection_modifyitems(config, items):
    """PostgreSQL-only tests are left out of the SQLite run (deselected, not skipped)."""
    if backend_name() == "postgresql":
        return
    kept, dropped = [], []
    for item in items:
        (dropped if item.get_closest_marker("postgres_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI=true a skipped test is a failure: every component must be there."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which is not allowed: {report.longrepr}"


def test_config(tmp_dir: Path) -> dict:
    return {
        "TESTING": True,
        "ENV_NAME": "testing",
        "SECRET_KEY": "test-secret-key-" + "x" * 32,
        "SQLALCHEMY_DATABASE_URI": database_url(tmp_dir),
        "INSTANCE_DIR": str(tmp_dir / "instance"),
        "EVIDENCE_DIR": str(tmp_dir / "evidence"),
        "WTF_CSRF_ENABLED": False,
        "SEND_EMAIL_AFTER_COMMIT": False,
        "EMAIL_BACKEND": "console",
        "BASE_URL": "http://marketplace.test",
        "RATELIMIT_STORAGE_URI": "memory://",
        "LOG_LEVEL": "WARNING",
    }


class RequestInOwnContextClient(FlaskClient):
    """A test client whose requests run as they do in production: in their own app context.

    A request made while the test holds an app context would otherwise reuse that context, and
    with it the test's ``g`` and database session, hiding queries, after-commit hooks and data the
    test forgot to commit. So the test's work is committed first (as a view would find it), the
    request runs in a fresh thread (contextvars start empty there), and the test's session then
    reads afresh.
    """

    def open(self, *args, **kwargs):
        if has_app_context():
            db.session.commit()
        result: dict = {}

        def run():
            try:
                result["response"] = super(RequestInOwnContextClient, self).open(*args, **kwargs)
            except BaseException as error:  # re-raised in the test's thread
                result["error"] = error

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        if "error" in result:
            raise result["error"]
        if has_app_context():
            db.session.expire_all()
        return result["response"]


@pytest.fixture(scope="session")
def app():
    with tempfile.TemporaryDirectory(prefix="marketplace-tests-") as tmp:
        tmp_dir = Path(tmp)
        application = create_app(test_config(tmp_dir))
        application.test_client_class = RequestInOwnContextClient
        with application.app_context():
            _drop_everything()
            upgrade()
        yield application
        with application.app_context():
            db.engine.dispose()


def _drop_everything() -> None:
    """Start from an empty database (a PostgreSQL cluster may be reused by a second run)."""
    if db.engine.dialect.name == "postgresql":
        with db.engine.begin() as connection:
            connection.execute(sa.text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    else:
        metadata = sa.MetaData()
        metadata.reflect(db.engine)
        metadata.drop_all(db.engine)


def empty_tables() -> None:
    db.session.remove()
    tables = [t.name for t in reversed(db.metadata.sorted_tables) if t.name not in REFERENCE_TABLES]
    # Between tests: the generations go with everything else, and the caches are cleared.
    with CACHE_GUARD.paused(), db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            # A cycle of keys (a competition's winning bid is one of its bids) has no order to
            # delete in: the table holding its use_alter side goes first (its rows' dependants
            # go with them, by ON DELETE CASCADE).
            cyclic = [
                t.name
                for t in db.metadata.sorted_tables
                if t.name in tables and any(k.use_alter for k in t.foreign_key_constraints)
            ]
            tables = cyclic + [t for t in tables if t not in cyclic]
            for table in tables:
                connection.execute(sa.text(f"DELETE FROM {table}"))


@pytest.fixture(autouse=True)
def _isolated(request):
    """Each test gets its own app context and finds the tables (but reference data) empty."""
    if "app" not in request.fixturenames and not request.node.get_closest_marker("e2e"):
        yield
        return
    application = request.getfixturevalue("app")
    limiter.reset()
    application.extensions["page_cache"].clear()
    application.extensions["object_cache"].clear()
    with application.app_context():
        yield
        empty_tables()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def csrf_enabled(app):
    app.config["WTF_CSRF_ENABLED"] = True
    yield
    app.config["WTF_CSRF_ENABLED"] = False


def sign_in_as(client, user, organisation=None) -> None:
    """Put a signed-in session in the test client's cookie, as the sign-in page would."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True
        if organisation is not None:
            session["organisation_id"] = organisation.id


@pytest.fixture
def login(client):
    def _login(user, organisation=None):
        sign_in_as(client, user, organisation)
        return client

    return _login


class QueryCounter:
    """Counts the SQL statements the app sends while it is active."""

    def __init__(self):
        self.statements: list[str] = []

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    @property
    def count(self) -> int:
        return len(self.statements)


@pytest.fixture
def count_queries(app):
    """``with count_queries() as counter: ...`` then ``counter.count``."""
    from contextlib import contextmanager

    @contextmanager
    def _count():
        counter = QueryCounter()
        # The generations (and a few reads of committed data) are read on connections of
        # their own, outside SQLAlchemy's events.
        reader = generations._GenerationReader
        fetch = reader.fetch

        def counted_fetch(self, sql, parameters):
            rows = fetch(self, sql, parameters)
            if rows is not None:
                counter.statements.append(sql)
            return rows

        sa.event.listen(db.engine, "before_cursor_execute", counter)
        reader.fetch = counted_fetch
        try:
            yield counter
        finally:
            reader.fetch = fetch
            sa.event.remove(db.engine, "before_cursor_execute", counter)

    return _count


@pytest.fixture
def web(client, login):
    """The test client with a signed-in person: ``web.as_user(user).get(url)``."""

    class Web:
        def as_user(self, user, organisation=None):
            login(user, organisation)
            return self

        def get(self, url, **kwargs):
            return client.get(url, **kwargs)

        def post(self, url, **kwargs):
            return client.post(url, **kwargs)

        def open(self, url, **kwargs):
            return client.open(url, **kwargs)

    return Web()
