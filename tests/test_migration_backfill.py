"""Upgrading a database that already holds data: migration 0002 backfills what it adds."""

from __future__ import annotations

from alembic import command
from community import Community, worked_cases, worked_lines
from snapshot import projections
from sqlalchemy import Engine

from quanzi.db.migrate import alembic_config


def test_0002_backfills_member_weeks_and_first_message_day(engine: Engine) -> None:
    c = Community(engine)
    c.ingest(worked_lines())
    before = projections(engine, c.ws_id)
    assert before["member_weeks"]
    cfg = alembic_config(engine)
    command.downgrade(cfg, "0001")  # drops member_weeks and members.first_message_day
    command.upgrade(cfg, "head")
    assert projections(engine, c.ws_id) == before
    for case in worked_cases():
        if case["report"] in ("retention", "lifecycle"):
            assert c.report(case["report"], **case["params"]) == case["answer"]
