"""Reports read beside a running ingest: read-only sessions never wait for SQLite's write lock."""

from __future__ import annotations

from sqlalchemy import text

from quanzi.db.engine import get_engine, session_scope


def test_read_only_session_does_not_wait_for_a_writer(sqlite_url: str) -> None:
    engine = get_engine(sqlite_url)
    with session_scope(engine) as writer:
        writer.execute(
            text("INSERT INTO workspaces (name, timezone, created_at_us) VALUES ('w', 'UTC', 0)")
        )
        # A BEGIN IMMEDIATE here would wait out the busy timeout and fail "database is locked";
        # a read-only session sees the last committed state instead.
        with session_scope(engine, read_only=True) as reader:
            assert reader.execute(text("SELECT count(*) FROM workspaces")).scalar() == 0
    with session_scope(engine, read_only=True) as reader:
        assert reader.execute(text("SELECT count(*) FROM workspaces")).scalar() == 1
