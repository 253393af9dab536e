"""The store: models and migrations agree, a new database migrates itself, SQLite's pragmas."""

from __future__ import annotations

from typing import Any

import pytest
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from pg import PostgresServer
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

import quanzi.models  # noqa: F401  (registers every table on Base.metadata)
from quanzi.db.base import Base
from quanzi.db.engine import dispose_engines, get_engine
from quanzi.db.migrate import alembic_config, check, upgrade_to_head


def expected_tables() -> set[str]:
    return set(Base.metadata.tables) | {"alembic_version"}


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_snapshot(engine: Engine) -> dict[str, Any]:
    """Tables with their columns, keys and indexes, as plain comparable data."""
    insp = inspect(engine)
    return {
        table: {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(str(fk["name"]) for fk in insp.get_foreign_keys(table)),
            "indexes": sorted(str(ix["name"]) for ix in insp.get_indexes(table)),
            "uniques": sorted(str(uq["name"]) for uq in insp.get_unique_constraints(table)),
        }
        for table in sorted(insp.get_table_names())
    }


def test_models_and_migrations_agree(engine: Engine) -> None:
    check(engine)  # alembic check: raises when autogenerate would write a new migration


def test_fixture_database_is_at_head(engine: Engine) -> None:
    assert current_revision(engine) == head_revision(engine) is not None
    assert set(inspect(engine).get_table_names()) == expected_tables()


def test_new_sqlite_file_is_created_and_migrated_on_first_use(tmp_path: Any) -> None:
    path = tmp_path / "new.sqlite3"
    assert not path.exists()
    engine = get_engine(f"sqlite:///{path}")
    assert path.exists()
    assert set(inspect(engine).get_table_names()) == expected_tables()
    assert current_revision(engine) == head_revision(engine)
    dispose_engines()


def test_empty_postgresql_database_is_migrated_on_first_use(pg_server: PostgresServer) -> None:
    name = pg_server.create_database()
    try:
        engine = get_engine(pg_server.url(name))
        assert set(inspect(engine).get_table_names()) == expected_tables()
        assert current_revision(engine) == head_revision(engine)
    finally:
        dispose_engines()
        pg_server.drop_database(name)


def test_sqlite_runs_in_wal_mode_with_foreign_keys_on(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    # Two pooled connections at once: the pragmas hold for each, not just the first. Raw
    # DBAPI connections, because every engine transaction takes the write lock (BEGIN
    # IMMEDIATE) and a second one would wait for the first.
    first, second = engine.raw_connection(), engine.raw_connection()
    try:
        for conn in (first, second):
            cursor = conn.cursor()
            assert cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert cursor.execute("PRAGMA foreign_keys").fetchone()[0] == 1
            cursor.close()
    finally:
        first.close()
        second.close()


def test_foreign_keys_are_enforced(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE fk_parent (id INTEGER PRIMARY KEY)"))
        conn.execute(
            text(
                "CREATE TABLE fk_child (id INTEGER PRIMARY KEY,"
                " parent_id INTEGER NOT NULL REFERENCES fk_parent (id))"
            )
        )
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(text("INSERT INTO fk_child (id, parent_id) VALUES (1, 42)"))


def test_migrating_twice_is_a_no_op(engine: Engine) -> None:
    before = schema_snapshot(engine)
    revision = current_revision(engine)
    upgrade_to_head(engine)
    upgrade_to_head(engine)
    assert schema_snapshot(engine) == before
    assert current_revision(engine) == revision
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar() == 1
    check(engine)


def test_reopening_a_migrated_database_keeps_its_data(db_url: str) -> None:
    engine = get_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE keep_me (id INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO keep_me (id) VALUES (7)"))
    dispose_engines()  # as if the process restarted: the next get_engine migrates again
    engine = get_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM keep_me")).scalar() == 7
