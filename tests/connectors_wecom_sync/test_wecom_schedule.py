"""Scheduled WeCom sync against the stand-in: due workspaces synced, recent or running ones
skipped, a refused secret recorded on its own connection only, a tick run twice syncs once."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import Engine, select, update
from standin import Scenario, StandIn, build_scenario

from quanzi.config import get_settings
from quanzi.connectors.wecom import schedule
from quanzi.connectors.wecom.client import WecomClient, client_for
from quanzi.connectors.wecom.models import WecomConnection, WecomSyncState
from quanzi.connectors.wecom.schedule import (
    MINUTE_US,
    RUNNING_STALE_US,
    claim,
    run_scheduled_syncs,
    sync_interval_us,
)
from quanzi.connectors.wecom.service import connect
from quanzi.core.events.models import EventRecord
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import huey
from quanzi.jobs.consumer import TASK_MODULES
from quanzi.kit.clock import now_us

TOKEN = "QDG6eK"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
INTERVAL = 30 * MINUTE_US


@pytest.fixture
def small() -> Scenario:
    return build_scenario(groups=2, customers=12, staff=2)


@pytest.fixture
def server(small: Scenario) -> Iterator[StandIn]:
    with StandIn(small) as s:
        yield s


def connected(engine: Engine, wecom: StandIn, name: str, secret: str | None = None) -> int:
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, name).id
        connect(
            s,
            ws,
            corp_id=wecom.sc.corp_id,
            secret=secret or wecom.sc.secret,
            token=TOKEN,
            encoding_aes_key=AES_KEY,
            api_base=wecom.api_base,
        )
    return ws


def quick_client(engine: Engine, ws_id: int) -> WecomClient:
    with session_scope(engine) as s:
        return client_for(s, ws_id, sleep=lambda _s: None)


def events(engine: Engine, ws: int) -> int:
    with engine.connect() as conn:
        return len(
            conn.execute(select(EventRecord.event_id).where(EventRecord.workspace_id == ws)).all()
        )


def health(engine: Engine, ws: int) -> tuple[int | None, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(WecomConnection.last_sync_at_us, WecomConnection.last_error).where(
                WecomConnection.workspace_id == ws
            )
        ).one()
    return row[0], row[1]


def schedule_row(engine: Engine, ws: int) -> tuple[str, str | None]:
    with engine.connect() as conn:
        row = conn.execute(
            select(WecomSyncState.status, WecomSyncState.last_error).where(
                WecomSyncState.workspace_id == ws, WecomSyncState.kind == "schedule"
            )
        ).one()
    return row[0], row[1]


def test_due_synced_recent_and_running_skipped_refused_secret_recorded_alone(
    engine: Engine, server: StandIn
) -> None:
    fresh = connected(engine, server, "fresh")
    recent = connected(engine, server, "recent")
    refused = connected(engine, server, "refused", secret="not-the-secret")
    busy = connected(engine, server, "busy")
    stale = connected(engine, server, "stale")
    now = now_us()
    with session_scope(engine) as s:
        s.execute(
            update(WecomConnection)
            .where(WecomConnection.workspace_id == recent)
            .values(last_sync_at_us=now - 5 * MINUTE_US)
        )
        for ws, started in ((busy, now - 10 * MINUTE_US), (stale, now - RUNNING_STALE_US - 1)):
            s.add(
                WecomSyncState(
                    workspace_id=ws,
                    kind="groups",
                    status="running",
                    checkpoint={"run_at": started},
                    started_at_us=started,
                )
            )

    report = run_scheduled_syncs(engine, interval_us=INTERVAL, make_client=quick_client)

    assert set(report.synced) == {fresh, stale}
    assert report.synced[fresh] == events(engine, fresh) > 0
    assert events(engine, stale) == events(engine, fresh)  # a killed sync is resumed whole
    assert report.skipped == {recent: "synced recently", busy: "a sync is running"}
    assert events(engine, recent) == events(engine, busy) == 0
    assert set(report.failed) == {refused}
    assert "40001" in report.failed[refused]
    last_sync, error = health(engine, refused)
    assert last_sync is None and error is not None and "40001" in error
    assert "not-the-secret" not in error
    assert schedule_row(engine, refused) == ("failed", report.failed[refused])
    assert events(engine, refused) == 0
    for ws in (fresh, stale):
        assert health(engine, ws)[0] is not None
        assert health(engine, ws)[1] is None
        assert schedule_row(engine, ws) == ("done", None)

    # A second tick within the interval does nothing: not even the refused secret is retried.
    calls = len(server.requests)
    again = run_scheduled_syncs(engine, interval_us=INTERVAL, make_client=quick_client)
    assert again.synced == {} and again.failed == {}
    assert again.skipped[refused] == "scheduled recently"
    assert len(server.requests) == calls

    # After the interval the connected workspaces are synced again; nothing new happened in
    # the corp, so nothing new is emitted.
    later = run_scheduled_syncs(
        engine, interval_us=INTERVAL, now=now_us() + INTERVAL + 1, make_client=quick_client
    )
    assert set(later.synced) == {fresh, recent, busy, stale} - {busy}
    assert later.synced[fresh] == later.synced[stale] == 0
    assert later.synced[recent] > 0
    assert set(later.failed) == {refused}


def test_a_claim_is_taken_once_per_interval(engine: Engine, server: StandIn) -> None:
    ws = connected(engine, server, "w")
    now = now_us()
    assert claim(engine, ws, now, INTERVAL) is True
    assert claim(engine, ws, now, INTERVAL) is False  # the second worker's tick
    # Still marked running, past the interval but not stale: not taken.
    assert claim(engine, ws, now + INTERVAL + 1, INTERVAL) is False
    # A run that died (still running after 2 h) is taken over.
    assert claim(engine, ws, now + RUNNING_STALE_US + 1, INTERVAL) is True


def test_the_periodic_task_uses_the_settings_and_is_loaded_by_workers(
    engine: Engine, db_url: str, server: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "quanzi.connectors.wecom.schedule" in TASK_MODULES
    assert sync_interval_us() == 30 * MINUTE_US
    ws = connected(engine, server, "w")
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    monkeypatch.setenv("QUANZI_WECOM_SYNC_MINUTES", "0")
    get_settings.cache_clear()
    assert schedule.wecom_scheduled_sync.call_local() == {
        "synced": 0,
        "events": 0,
        "skipped": 0,
        "failed": 0,
    }
    monkeypatch.setenv("QUANZI_WECOM_SYNC_MINUTES", "15")
    get_settings.cache_clear()
    assert sync_interval_us() == 15 * MINUTE_US
    done = schedule.wecom_scheduled_sync.call_local()
    assert done["synced"] == 1 and done["events"] == events(engine, ws) > 0
    assert schedule.wecom_scheduled_sync.call_local()["skipped"] == 1
    # Due every minute: what a consumer's scheduler enqueues.
    assert "wecom_scheduled_sync" in {t.name for t in huey.read_periodic(datetime.now())}
