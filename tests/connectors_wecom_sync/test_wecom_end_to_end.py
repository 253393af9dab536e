"""End to end: a scenario corp on the stand-in, `quanzi wecom sync` killed mid-run and resumed
through a token expiry and a 45009 burst, then Quanzi's reports compared with the scenario."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, select
from standin import Scenario, StandIn, build_scenario
from typer.testing import CliRunner

from quanzi.analytics.service import run_report
from quanzi.cli.main import app
from quanzi.config import get_settings
from quanzi.connectors.wecom.client import client_for
from quanzi.connectors.wecom.models import WecomSyncState
from quanzi.connectors.wecom.service import connect
from quanzi.connectors.wecom.sync import sync
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope

DAY = date(2026, 10, 1)
# 50 groups and 5,000 customers, as the issue asks; about 10 s per store on 2 cores.
GROUPS, CUSTOMERS, STAFF = 50, 5000, 10
TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"


def reports(engine: Engine, day: date) -> tuple[dict[str, Any], dict[str, int]]:
    with session_scope(engine, read_only=True) as s:
        ws = get_or_create_workspace(s, "shop")
        overview = run_report(s, ws, "overview", {"date": day.isoformat()})
        groups = run_report(s, ws, "groups", {"date": day.isoformat()})
    return overview, {row["group"]: row["size"] for row in groups["groups"]}


def groups_checkpoint(engine: Engine, ws: int) -> tuple[str, dict[str, Any] | None] | None:
    with engine.connect() as conn:
        row = conn.execute(
            select(WecomSyncState.status, WecomSyncState.checkpoint).where(
                WecomSyncState.workspace_id == ws, WecomSyncState.kind == "groups"
            )
        ).one_or_none()
        conn.rollback()
    return None if row is None else (row[0], row[1])


@pytest.mark.slow
def test_scenario_synced_killed_resumed_and_reported(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    corp: Scenario = build_scenario(groups=GROUPS, customers=CUSTOMERS, staff=STAFF, day=DAY)
    with StandIn(corp) as wecom:
        with session_scope(engine) as s:
            ws = get_or_create_workspace(s, "shop").id
            connect(
                s,
                ws,
                corp_id=corp.corp_id,
                secret=corp.secret,
                token=TOKEN,
                encoding_aes_key=AES_KEY,
                api_base=wecom.api_base,
            )
        # 1. A real `quanzi wecom sync`, killed with SIGKILL while it walks the groups.
        wecom.faults.delay = 0.02
        env = {**os.environ, "QUANZI_DATABASE_URL": db_url}
        proc = subprocess.Popen(
            [sys.executable, "-m", "quanzi.cli.main", "wecom", "sync", "--workspace", "shop"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            cp = groups_checkpoint(engine, ws)
            if cp and cp[1] and cp[1].get("position", 0) >= 5:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        cp = groups_checkpoint(engine, ws)
        assert cp is not None and cp[0] == "running" and cp[1] and cp[1]["position"] >= 5
        wecom.faults.delay = 0

        # 2. Resumed through the CLI, with the token revoked mid-run and a 45009 burst.
        fetches = wecom.token_fetches
        wecom.faults.revoke_after = 10
        wecom.faults.throttle, wecom.faults.throttle_path = 2, "externalcontact/groupchat/get"
        gets_before = wecom.calls_to("externalcontact/groupchat/get")
        monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
        get_settings.cache_clear()
        result = CliRunner().invoke(
            app, ["wecom", "sync", "--workspace", "shop", "--json"], env=env
        )
        assert result.exit_code == 0, result.output
        assert '"resumed": true' in result.output
        assert wecom.token_fetches == fetches + 1
        assert wecom.faults.throttle == 0
        # Groups finished before the kill are not fetched again (+2 answered 45009; the CLI
        # really waits its backoff, about 3-6 s).
        assert wecom.calls_to("externalcontact/groupchat/get") - gets_before <= GROUPS - 5 + 2

        # 3. Reports equal what the scenario did.
        for day in (DAY - timedelta(days=1), DAY):
            overview, sizes = reports(engine, day)
            assert overview == corp.expect_overview(day), day
            assert sizes == corp.expect_group_sizes(day)

        # 4. Re-running changes nothing.
        with session_scope(engine) as s:
            client = client_for(s, ws, sleep=lambda _s: None)
        assert sync(engine, ws, client).applied == 0

        # 5. Leaves seen by a later sync are dated that day.
        chat = corp.chats["wrOgQhDgAA000007"]
        leavers = [u for u, m in chat.members.items() if m.type == 2][:3]
        for u in leavers:
            corp.leave(chat.chat_id, u, int(time.time()))
        report = sync(engine, ws, client, kinds=("groups",))
        assert report.applied == 3
        today = datetime.now(timezone(timedelta(hours=8))).date()
        overview, sizes = reports(engine, today)
        assert overview["leaves"] == 3
        assert overview["members"] == len(corp.members_now())
        assert sizes[chat.chat_id] == len(chat.members) - 1  # the owner is staff
