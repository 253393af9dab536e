"""`quanzi demo`: loads through ingest, is idempotent, resumes an interrupted load, resets, serves."""

from __future__ import annotations

from datetime import date
from itertools import islice
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from quanzi.cli.main import app
from quanzi.config import get_settings
from quanzi.core.events.models import EventRecord
from quanzi.core.events.service import ingest_lines
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import get_or_create_workspace, workspace_for_token
from quanzi.db.engine import get_engine, session_scope
from quanzi.demo.generator import DemoSpec
from quanzi.demo.loader import demo_file, write_events

SMALL = ["--members", "120", "--days", "30", "--groups", "12"]


@pytest.fixture
def cli(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("QUANZI_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    return CliRunner()


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def fake_serve(host: str = "127.0.0.1", port: int = 8000, **kwargs: Any) -> None:
        calls.append({"host": host, "port": port, **kwargs})

    monkeypatch.setattr("quanzi.web.server.serve", fake_serve)
    return calls


def invoke(cli: CliRunner, *args: str) -> str:
    res = cli.invoke(app, ["demo", *args])
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    assert res.exit_code == 0, res.output
    return res.stdout


def stored(workspace: str) -> int:
    engine = get_engine()
    with session_scope(engine) as s:
        ws = s.scalar(select(Workspace).where(Workspace.name == workspace))
        if ws is None:
            return 0
        return (
            s.scalar(
                select(func.count())
                .select_from(EventRecord)
                .where(EventRecord.workspace_id == ws.id)
            )
            or 0
        )


def test_loads_once_then_says_already_loaded(cli: CliRunner, served: list[dict[str, Any]]) -> None:
    out = invoke(cli, "--no-serve", "--end-day", "2026-11-22", *SMALL)
    n = stored("default")  # the default workspace, so `quanzi report` works without flags
    assert n > 500
    assert f"applied {n}, duplicates 0, refused 0" in out
    assert "2026-10-24 … 2026-11-22" in out
    token = next(line.split()[2] for line in out.splitlines() if line.startswith("API token"))
    with session_scope(get_engine()) as s:
        ws = workspace_for_token(s, token)
        assert ws is not None and ws.name == "default"
    assert "quanzi report overview --date 2026-11-22" in out
    assert 'curl -H "Authorization: Bearer ' in out
    assert "sqlite:///" in out  # where the database is

    again = invoke(cli, "--no-serve", *SMALL)  # no --end-day: the stored community's dates
    assert "already loaded" in again
    assert "2026-10-24 … 2026-11-22" in again
    assert stored("default") == n
    assert served == []


def test_resumes_an_interrupted_load_with_its_own_dates(
    cli: CliRunner, served: list[dict[str, Any]]
) -> None:
    spec = DemoSpec(seed=42, members=120, days=30, groups=12, end_day=date(2026, 3, 31))
    path = demo_file(spec)
    total = write_events(spec, path)
    engine = get_engine()
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "shop").id
    with open(path, "rb") as fh:
        ingest_lines(engine, ws_id, islice(fh, total // 3))  # as if killed a third of the way
    out = invoke(cli, "--no-serve", "--workspace", "shop", *SMALL)  # a later day, no --end-day
    assert "resuming" in out
    assert "2026-03-02 … 2026-03-31" in out
    assert stored("shop") == total


def test_reset_reloads_and_other_seeds_live_side_by_side(
    cli: CliRunner, served: list[dict[str, Any]]
) -> None:
    invoke(cli, "--no-serve", "-w", "w1", "--end-day", "2026-11-22", *SMALL)
    n = stored("w1")
    out = invoke(cli, "--no-serve", "-w", "w1", "--end-day", "2026-11-22", "--reset", *SMALL)
    assert "deleted (--reset)" in out and f"applied {n}," in out
    assert stored("w1") == n
    invoke(cli, "--no-serve", "-w", "w1", "--end-day", "2026-11-22", "--seed", "7", *SMALL)
    assert stored("w1") > 1.8 * n  # a second, separate community: its ids never collide


def test_other_dates_for_a_loaded_community_need_reset(
    cli: CliRunner, served: list[dict[str, Any]]
) -> None:
    invoke(cli, "--no-serve", "--end-day", "2026-11-22", *SMALL)
    n = stored("default")
    res = cli.invoke(app, ["demo", "--no-serve", "--end-day", "2026-06-30", *SMALL])
    assert res.exit_code == 2
    assert "ending 2026-11-22" in res.stderr and "--reset" in res.stderr
    assert stored("default") == n
    out = invoke(cli, "--no-serve", "--end-day", "2026-06-30", "--reset", *SMALL)
    assert "2026-06-01 … 2026-06-30" in out


def test_serves_afterwards(cli: CliRunner, served: list[dict[str, Any]]) -> None:
    invoke(cli, "--end-day", "2026-11-22", "--port", "8123", *SMALL)
    assert served == [{"host": "127.0.0.1", "port": 8123, "workspace_hint": "default"}]


def test_bad_arguments(cli: CliRunner) -> None:
    res = cli.invoke(app, ["demo", "--no-serve", "--end-day", "22/11/2026"])
    assert res.exit_code == 2
    res = cli.invoke(app, ["demo", "--no-serve", "--workspace", "no spaces"])
    assert res.exit_code == 2
