"""Alembic environment: uses the engine handed over by quanzi.db.migrate."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import quanzi.models  # noqa: F401  (registers every table on Base.metadata)
from quanzi.db.base import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        driver = connection.connection.dbapi_connection
        if sqlite and driver is not None:
            # Batch mode rebuilds a table to alter it (copy, drop, rename); with foreign keys
            # on, dropping the old table would cascade-delete every row that references it.
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            context.configure(
                connection=connection,
                target_metadata=target_metadata,
                render_as_batch=sqlite,
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            if sqlite and driver is not None:
                connection.rollback()
                driver.execute("PRAGMA foreign_keys=ON")


run_migrations_online()
