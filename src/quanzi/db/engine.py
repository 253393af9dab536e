"""Engine and sessions: SQLite (WAL, foreign keys on) by default, PostgreSQL for scale-out."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from quanzi.config import get_settings

READ_ONLY = "quanzi_read_only"
_engines: dict[str, Engine] = {}
_migrated: set[str] = set()
_lock = threading.Lock()


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # FULL: a committed transaction is on disk before the commit returns.
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA cache_size=-196608")  # up to 192 MB of pages: the log index is large
    cur.execute("PRAGMA temp_store=MEMORY")
    # Checkpoint every ~64 MB of WAL rather than every 4 MB: bulk ingest writes a lot.
    cur.execute("PRAGMA wal_autocheckpoint=16384")
    cur.execute("PRAGMA mmap_size=268435456")
    cur.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN; take the write lock at BEGIN
        # so that two writers queue instead of failing with "database is locked".
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None

        # Read-only work (reports) opts out with `read_only=True` and keeps WAL's concurrent reads.
        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            if conn.get_execution_options().get(READ_ONLY):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    # No server-side prepared statements: a generic plan for a 500-value IN (...) list is far
    # slower than a custom one, and ingest sends a new list every time.
    return create_engine(url, pool_pre_ping=True, connect_args={"prepare_threshold": None})


def get_engine(url: str | None = None, *, migrate: bool = True) -> Engine:
    """The engine for `url` (default: the configured one), migrated to head on first use."""
    url = url or get_settings().resolved_database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        if migrate and url not in _migrated:
            from quanzi.db.migrate import upgrade_to_head

            upgrade_to_head(engine)
            _migrated.add(url)
    return engine


def dispose_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _migrated.clear()


def session_factory(
    engine: Engine | None = None, *, read_only: bool = False
) -> sessionmaker[Session]:
    bind = engine or get_engine()
    if read_only:
        bind = bind.execution_options(**{READ_ONLY: True})
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextmanager
def session_scope(engine: Engine | None = None, *, read_only: bool = False) -> Iterator[Session]:
    """A session whose transaction commits once at the end, or rolls back on error.

    `read_only` sessions do not take SQLite's write lock, so they run beside an ingest; they
    must not write (on SQLite a deferred transaction that starts writing late can fail)."""
    session = session_factory(engine, read_only=read_only)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
