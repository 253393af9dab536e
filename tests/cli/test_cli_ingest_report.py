"""The CLI as an operator uses it: ingest files in any order and split, reports byte for byte,
exit codes, standard input, and a `kill -9` in the middle of a large ingest."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from community import worked_lines
from randomcommunity import random_events
from snapshot import projections
from sqlalchemy import func, select
from typer.testing import CliRunner

from quanzi.cli.main import app
from quanzi.config import get_settings
from quanzi.core.events.models import EventRecord
from quanzi.core.events.projections import rebuild
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import get_engine

AS_OF = "2026-03-01T00:00:00+08:00"
REPORT_ARGS = [
    ["overview", "--date", "2026-01-20"],
    ["groups", "--date", "2026-01-25"],
    ["invites", "--from", "2026-01-05", "--to", "2026-02-13", "--as-of", AS_OF],
    [
        "invites",
        "--from",
        "2026-01-05",
        "--to",
        "2026-02-13",
        "--as-of",
        "2026-01-20T00:00:00Z",
        "--hold-hours",
        "120",
    ],
    ["retention", "--from", "2026-01-05", "--to", "2026-02-13", "--weeks", "4", "--as-of", AS_OF],
    [
        "retention",
        "--from",
        "2026-01-05",
        "--to",
        "2026-02-13",
        "--kind",
        "membership",
        "--as-of",
        AS_OF,
    ],
    ["lifecycle", "--from", "2026-01-05", "--to", "2026-02-13"],
    ["funnel", "--from", "2026-01-05", "--to", "2026-02-13", "--as-of", AS_OF],
    ["channels", "--from", "2026-01-05", "--to", "2026-02-13"],
]


@pytest.fixture
def cli(db_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    return CliRunner()


def run(runner: CliRunner, *args: str, input: str | None = None) -> tuple[int, str, str]:
    res = runner.invoke(app, list(args), input=input)
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res.exit_code, res.stdout, res.stderr


def all_reports(runner: CliRunner, workspace: str) -> bytes:
    out = []
    for args in REPORT_ARGS:
        code, stdout, err = run(runner, "report", *args, "--json", "--workspace", workspace)
        assert code == 0, err
        out.append(stdout)
    return "".join(out).encode()


def test_shuffled_and_split_files_give_byte_identical_reports(
    cli: CliRunner, tmp_path: Path
) -> None:
    lines = random_events(3, n_members=400)
    whole = tmp_path / "whole.jsonl"
    whole.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, out, _ = run(cli, "ingest", str(whole), "--workspace", "a")
    assert code == 0 and "refused 0" in out
    shuffled = lines[:]
    random.Random(9).shuffle(shuffled)
    parts = [tmp_path / f"part{i}.jsonl" for i in range(4)]
    for i, p in enumerate(parts):
        p.write_text("\n".join(shuffled[i::4]) + "\n", encoding="utf-8")
    code, _, _ = run(cli, "ingest", *map(str, parts[:2]), "--workspace", "b")
    assert code == 0
    code, _, _ = run(cli, "ingest", *map(str, parts[2:]), "--workspace", "b")
    assert code == 0
    a, b = all_reports(cli, "a"), all_reports(cli, "b")
    assert a == b
    assert b'"inviters": [{' in a and b'"cohorts": [{' in a  # the reports are not empty


def test_ingest_reports_refused_lines_and_exits_non_zero(cli: CliRunner, tmp_path: Path) -> None:
    f = tmp_path / "mixed.jsonl"
    good = worked_lines()[:5]
    f.write_text(
        "\n".join([good[0], '{"id": "x", "type": "order.paid"}', *good[1:]]) + "\n",
        encoding="utf-8",
    )
    code, out, err = run(cli, "ingest", str(f))
    assert code == 1
    assert "applied 5, duplicates 0, refused 1" in out
    assert "line 2: ts must be" in err or "line 2: " in err
    code, out, _ = run(cli, "ingest", str(f), "--json")
    payload = json.loads(out)
    assert code == 1 and payload["duplicates"] == 5 and payload["errors"][0].startswith("line 2: ")


def test_ingest_from_stdin_strict_and_multiple_files(cli: CliRunner, tmp_path: Path) -> None:
    lines = worked_lines()
    code, out, _ = run(cli, "ingest", "-", "--strict", input="\n".join([*lines, "oops"]) + "\n")
    assert code == 1 and "nothing applied" in out
    code, out, _ = run(cli, "ingest", "-", input="\n".join(lines) + "\n")
    assert code == 0 and "applied 51, duplicates 2" in out
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    a.write_text(lines[0] + "\n", encoding="utf-8")
    b.write_text("\nbad\n", encoding="utf-8")
    code, _, err = run(cli, "ingest", str(a), str(b))
    assert code == 1 and f"{b}: line 2: not valid JSON" in err
    code, _, err = run(cli, "ingest", str(tmp_path / "missing.jsonl"))
    assert code == 2 and "no such file" in err


def test_report_errors_are_clear(cli: CliRunner) -> None:
    code, _, err = run(cli, "report", "overview", "--date", "2026-02-30")
    assert code == 2 and "date: '2026-02-30' is not a date" in err
    code, _, err = run(cli, "report", "nope")
    assert code == 2 and "unknown report 'nope'" in err
    code, _, err = run(cli, "report", "invites", "--from", "2026-02-01", "--to", "2026-01-01")
    assert code == 2 and "must not be after" in err
    code, out, _ = run(cli, "report", "overview", "--date", "2025-12-22")
    assert code == 0 and "overview" in out


@pytest.mark.slow
def test_kill_9_mid_ingest_loses_nothing_acknowledged_and_half_applies_nothing(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = random_events(5, n_members=8000, days=45)
    big = tmp_path / "big.jsonl"
    big.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = {**os.environ, "QUANZI_DATABASE_URL": db_url}
    cmd = [sys.executable, "-m", "quanzi.cli.main", "ingest", str(big), "--workspace", "crash"]
    engine = get_engine(db_url)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stored = 0
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            # Read-only: polling must not queue for (and hold up) the ingest's write lock.
            with engine.execution_options(quanzi_read_only=True).connect() as c:
                stored = c.scalar(select(func.count()).select_from(EventRecord)) or 0
            if stored > 0:
                break
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    with engine.connect() as c:
        ws_id = c.scalar(select(Workspace.id).where(Workspace.name == "crash"))
        stored = c.scalar(
            select(func.count()).select_from(EventRecord).where(EventRecord.workspace_id == ws_id)
        )
    assert 0 < stored < len(set(lines))
    # No partial line: the projections are exactly those of the events that were logged.
    after_crash = projections(engine, ws_id)
    rebuild(engine, ws_id)
    assert projections(engine, ws_id) == after_crash

    # Re-running the same file finishes the job; the reports equal an uninterrupted run.
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    clean = [*cmd[:-1], "clean"]
    assert subprocess.run(clean, env=env, capture_output=True).returncode == 0
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    runner = CliRunner()
    assert all_reports(runner, "crash") == all_reports(runner, "clean")
