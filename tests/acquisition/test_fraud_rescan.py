"""The periodic invite-fraud re-scan: due only when data changed (or a hold window ended),
never reopening a verdict, flagging at once in strict mode, off with 0 minutes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from community import Community
from sqlalchemy import Engine, select

from quanzi.acquisition import fraud, fraud_jobs
from quanzi.acquisition.models import InviteSuspect
from quanzi.config import get_settings
from quanzi.core.members.models import InviteFlag, Member
from quanzi.db.engine import session_scope
from quanzi.demo.fraud_leads import load_planted_acquisition
from quanzi.jobs import reset_backend
from quanzi.jobs.consumer import TASK_MODULES
from quanzi.kit.clock import HOUR_US, to_us

T0 = datetime.fromisoformat("2026-03-02T10:00:00+08:00")
MIN = 60 * 1_000_000
TEN = 10 * MIN


@pytest.fixture(autouse=True)
def queue() -> Iterator[None]:
    """The job engine's store (where the watermarks live) in this test's data directory."""
    reset_backend()
    yield
    reset_backend()


def us(hours: float) -> int:
    return to_us(T0 + timedelta(hours=hours))


def ring(c: Community, leader: str, hours: float, prefix: str) -> None:
    """Five silent brand-new accounts invited by `leader` within five minutes."""
    c.add(
        "member.joined", (T0 + timedelta(hours=hours - 30)).isoformat(), group="g1", member=leader
    )
    for k in range(5):
        ts = T0 + timedelta(hours=hours, minutes=k)
        c.add(
            "member.joined",
            ts.isoformat(),
            group="g1",
            member=f"{prefix}{k}",
            inviter=leader,
            via="invite",
        )


def self_invite(c: Community, key: str, hours: float) -> None:
    ts = (T0 + timedelta(hours=hours)).isoformat()
    c.add("member.joined", ts, group="g1", member=key, inviter=key, via="invite")


def statuses(engine: Engine) -> dict[str, str]:
    with session_scope(engine, read_only=True) as s:
        return dict(
            s.execute(
                select(Member.member_key, InviteSuspect.status).join(
                    Member, Member.id == InviteSuspect.member_id
                )
            ).all()
        )


def test_rescan_runs_on_new_data_only_and_keeps_verdicts(engine: Engine) -> None:
    c = Community(engine)
    ring(c, "lead1", 0, "a")
    self_invite(c, "selfie", 1)
    first = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(80))
    assert first.scanned[c.ws_id].added == 6
    assert set(statuses(engine)) == {"a0", "a1", "a2", "a3", "a4", "selfie"}

    # Nothing new: the next tick does no work, however long after.
    again = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(81))
    assert again.skipped == {c.ws_id: "no new data"} and not again.scanned

    with session_scope(engine) as s:
        selfie = s.scalar(select(Member.id).where(Member.member_key == "selfie"))
        assert selfie is not None
        fraud.dismiss(s, c.ws_id, selfie, "owner@example.com", "a test account")

    # New planted fraud: the next tick (after the interval) finds it; the dismissal stays.
    ring(c, "lead2", 82, "b")
    self_invite(c, "selfie2", 82)
    later = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(84))
    # The new ring is not judged yet (its hold window runs), the self-invite is.
    assert later.scanned[c.ws_id].added == 1
    found = statuses(engine)
    assert found["selfie"] == "dismissed" and found["selfie2"] == "suspected"
    assert not any(k.startswith("b") for k in found)

    # No new data, but the ring's hold window ends: time alone makes it due.
    waiting = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(82) + 72 * HOUR_US - MIN)
    assert waiting.skipped == {c.ws_id: "no new data"}
    matured = fraud_jobs.run_fraud_scans(
        engine, interval_us=TEN, now=us(82) + 72 * HOUR_US + 5 * MIN
    )
    assert matured.scanned[c.ws_id].added == 5
    found = statuses(engine)
    assert {k for k in found if k.startswith("b")} == {f"b{k}" for k in range(5)}
    assert found["selfie"] == "dismissed"
    # New data within the interval waits for it.
    self_invite(c, "selfie3", 153)
    at = us(82) + 72 * HOUR_US + 5 * MIN
    soon = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=at + 5 * MIN)
    assert soon.skipped == {c.ws_id: "scanned recently"}
    assert (
        fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=at + TEN).scanned[c.ws_id].added
        == 1
    )
    assert fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(200)).skipped == {
        c.ws_id: "no new data"
    }


def test_new_leads_make_it_due_and_strict_mode_flags_at_once(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", T0.isoformat(), group="g1", member="boss")
    leads = []
    for k in range(4):
        ts = T0 + timedelta(hours=1, minutes=30 * k)
        c.add(
            "member.joined",
            ts.isoformat(),
            group="g1",
            member=f"f{k}",
            inviter="boss",
            via="invite",
        )
        c.add("message.posted", (ts + timedelta(minutes=3)).isoformat(), group="g1", member=f"f{k}")
        leads.append({"member": f"f{k}", "at": ts.isoformat(), "device": "d1", "net": "n1"})
    with session_scope(engine) as s:
        fraud.set_review_mode(s, c.ws_id, "strict")
    first = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(5))
    assert first.scanned[c.ws_id].added == 0
    # The leads arrive (the landing page, not the event log): the next tick sees them.
    load_planted_acquisition(engine, c.ws_id, {"leads": leads, "poster_visits": []})
    second = fraud_jobs.run_fraud_scans(engine, interval_us=TEN, now=us(6))
    assert second.scanned[c.ws_id].added == 4
    with session_scope(engine, read_only=True) as s:
        reasons = set(s.scalars(select(InviteFlag.reason)))
    assert reasons == {"auto: shared_device"}


def test_the_schedule_is_registered_configurable_and_off_at_zero(
    engine: Engine, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "quanzi.acquisition.fraud_jobs" in TASK_MODULES
    c = Community(engine)
    self_invite(c, "selfie", 1)
    monkeypatch.setenv("QUANZI_FRAUD_SCAN_MINUTES", "0")
    get_settings.cache_clear()
    assert fraud_jobs.scan_interval_us() == 0
    idle = {"scanned": 0, "added": 0, "skipped": 0, "failed": 0}
    assert fraud_jobs.run_fraud_scans(engine).as_dict() == idle
    monkeypatch.setenv("QUANZI_FRAUD_SCAN_MINUTES", "10")
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    assert fraud_jobs.scan_interval_us() == TEN
    # The periodic task itself, on the configured database; its watermark survives a reopened
    # job store (it lives there, not in this process).
    assert fraud_jobs.fraud_rescan.call_local() == {**idle, "scanned": 1, "added": 1}
    reset_backend()
    assert fraud_jobs.fraud_rescan.call_local() == {**idle, "skipped": 1}
    get_settings.cache_clear()
