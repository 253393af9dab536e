"""Fixtures every test can use: a fresh, migrated database on SQLite and on PostgreSQL.

- `db_url`: runs the test twice, ids `sqlite` and `postgresql`, each time with a new
  database migrated to head (marks `sqlite` / `postgresql`, so `-m` and `-k` select a store).
- `engine`: `get_engine(db_url)`, disposed after the test.
- `sqlite_url` / `pg_url`: one store only.
- `pg_server`: the session's PostgreSQL server (see tests/pg.py), for tests that need to
  create databases of their own.

Every test runs with QUANZI_DATA_DIR pointing at its own empty directory and with the
developer's own QUANZI_* settings removed, so no test reads or writes real user data.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pg import PostgresServer
from sqlalchemy import Engine

from quanzi.config import get_settings
from quanzi.db.engine import dispose_engines, get_engine, make_engine
from quanzi.db.migrate import upgrade_to_head

STORES = ("sqlite", "postgresql")
PG_URL_ENV = "QUANZI_TEST_PG_URL"
# Settings a developer may have exported for their own instance; never let a test see them.
HOST_SETTINGS = ("QUANZI_DATABASE_URL", "QUANZI_SECRET_KEY", "QUANZI_REDIS_URL")

try:  # A shared 2-core machine makes wall-clock deadlines flaky; keep failures reproducible.
    from hypothesis import settings as hypothesis_settings

    hypothesis_settings.register_profile("quanzi", deadline=None, print_blob=True)
    hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "quanzi"))
except ImportError:  # pragma: no cover
    pass


_session_env = pytest.MonkeyPatch()


def pytest_configure(config: pytest.Config) -> None:
    for store in STORES:
        config.addinivalue_line("markers", f"{store}: the test runs against {store}")
    # Set before collection, so even a module that reads settings at import time is isolated.
    for name in HOST_SETTINGS:
        _session_env.delenv(name, raising=False)
    data_dir = tempfile.mkdtemp(prefix="quanzi-test-data-")
    _session_env.setenv("QUANZI_DATA_DIR", data_dir)
    config.add_cleanup(lambda: shutil.rmtree(data_dir, ignore_errors=True))
    config.add_cleanup(_session_env.undo)
    get_settings.cache_clear()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that ask for one store only carry that store's mark, like `db_url`'s params do."""
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "sqlite_url" in names:
            item.add_marker(pytest.mark.sqlite)
        if "pg_url" in names or "pg_server" in names:
            item.add_marker(pytest.mark.postgresql)


@pytest.fixture(autouse=True)
def _test_environment(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """Each test: its own data dir and a settings cache that reads this test's environment."""
    monkeypatch.setenv("QUANZI_DATA_DIR", str(tmp_path_factory.mktemp("data", numbered=True)))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


# --- SQLite ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> Iterator[str]:
    path = tmp_path / "quanzi.sqlite3"
    shutil.copyfile(_sqlite_template, path)
    yield f"sqlite:///{path}"
    dispose_engines()


# --- PostgreSQL -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The session's server: QUANZI_TEST_PG_URL's, or one started here (per xdist worker)."""
    external = os.environ.get(PG_URL_ENV)
    server = PostgresServer.existing(external) if external else PostgresServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def _pg_template(pg_server: PostgresServer) -> Iterator[str]:
    """A database migrated to head once; tests get copies (CREATE DATABASE ... TEMPLATE)."""
    name = pg_server.create_database(prefix="quanzi_tpl_")
    engine = make_engine(pg_server.url(name))
    try:
        upgrade_to_head(engine)
    finally:
        engine.dispose()  # a template must have no open connections to be copied
    yield name
    pg_server.drop_database(name)


@pytest.fixture
def pg_url(pg_server: PostgresServer, _pg_template: str) -> Iterator[str]:
    name = pg_server.create_database(template=_pg_template)
    yield pg_server.url(name)
    dispose_engines()
    pg_server.drop_database(name)


# --- Both stores ----------------------------------------------------------------------------


@pytest.fixture(
    params=[pytest.param(store, id=store, marks=getattr(pytest.mark, store)) for store in STORES]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh database migrated to head, once on SQLite and once on PostgreSQL."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    yield get_engine(db_url)
    dispose_engines()
