"""Sync against the stand-in: events only for differences, re-runs change nothing, crash/resume."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, select
from standin import Member, Relation, Scenario, StandIn

from quanzi.connectors.wecom import sync as wecom_sync
from quanzi.connectors.wecom.client import WecomClient
from quanzi.connectors.wecom.models import WecomKnown, WecomSyncState
from quanzi.connectors.wecom.sync import sync, sync_states
from quanzi.core.events.models import EventRecord
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope


class Crash(Exception):
    pass


def workspace(engine: Engine, name: str = "w") -> int:
    with session_scope(engine) as s:
        return get_or_create_workspace(s, name).id


def client(wecom: StandIn) -> WecomClient:
    return WecomClient(
        wecom.sc.corp_id, wecom.sc.secret, api_base=wecom.api_base, sleep=lambda _s: None
    )


def log(engine: Engine, ws: int) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(EventRecord.event_id, EventRecord.raw).where(EventRecord.workspace_id == ws)
        ).all()
    return {eid: orjson.loads(raw) for eid, raw in rows}


def known(engine: Engine, ws: int) -> dict[tuple[str, str], Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(WecomKnown.kind, WecomKnown.key, WecomKnown.state).where(
                WecomKnown.workspace_id == ws
            )
        ).all()
    return {(k, key): state for k, key, state in rows}


def test_first_sync_emits_the_corp_and_a_rerun_emits_nothing(
    engine: Engine, wecom: StandIn, corp: Scenario
) -> None:
    ws = workspace(engine)
    first = sync(engine, ws, client(wecom))
    events = log(engine, ws)
    joins = [e for e in events.values() if e["type"] == "member.joined"]
    assert len(joins) == sum(len(c.members) for c in corp.chats.values())
    assert sum(e["type"] == "group.created" for e in events.values()) == 6
    assert sum(e["type"] == "contact.added" for e in events.values()) == 120
    assert sum(e["type"] == "profile.updated" for e in events.values()) == 80  # 2 in 3 have one
    assert first.applied == len(events)
    assert first.kinds["tags"].fetched == 2
    assert first.kinds["staff"].fetched == 3
    # Field mapping: join_time → ts, join_scene → via, invitor → inviter, state → channel.
    chat = corp.chats["wrOgQhDgAA000000"]
    for m in chat.members.values():
        e = events[f"wecom:join:{chat.chat_id}:{m.userid}:{m.join_time}"]
        assert e["ts"] == m.join_time
        assert e["via"] == {1: "invite", 2: "link", 3: "qrcode"}[m.join_scene]
        assert e.get("inviter") == (m.invitor if m.invitor != m.userid else None)
        assert e.get("channel") == m.state
        assert e.get("is_staff", False) == (m.type == 1)
    rel = corp.relations[("staff_01", "wmEXT0000001")]
    add = events[f"wecom:contact:add:staff_01:wmEXT0000001:{rel.createtime}"]
    assert (add["member"], add["staff"], add["channel"]) == ("wmEXT0000001", "staff_01", "xhs_note")
    # Personal data is sealed in the log and never kept in WecomKnown.
    assert all("oUNION" not in str(v) for v in known(engine, ws).values())

    again = sync(engine, ws, client(wecom))
    assert again.applied == 0
    assert again.kinds["groups"].duplicates == 0
    assert log(engine, ws).keys() == events.keys()
    assert {s["kind"]: s["status"] for s in sync_states(engine, ws)} == dict.fromkeys(
        ("staff", "contacts", "groups", "tags"), "done"
    )


def test_changes_between_syncs_become_exactly_their_events(
    engine: Engine, wecom: StandIn, corp: Scenario
) -> None:
    ws = workspace(engine)
    sync(engine, ws, client(wecom))
    before = set(log(engine, ws))
    g0, g1, g2 = "wrOgQhDgAA000000", "wrOgQhDgAA000001", "wrOgQhDgAA000002"
    gone = next(u for u, m in corp.chats[g0].members.items() if m.type == 2)
    back = next(u for u, m in corp.chats[g1].members.items() if m.type == 2)
    old_join = corp.chats[g1].members[back].join_time
    corp.leave(g0, gone, 1_800_000_000)
    corp.leave(g1, back, 1_800_000_100)
    corp.join(g1, Member(back, 2, 1_800_000_200, 3, invitor="staff_01", state="reunion"))
    corp.join(g0, Member("wmNEW", 2, 1_800_000_300, 1, invitor=gone, name="新人"))
    corp.chats[g0].name = "改名后的群"
    corp.dismiss(g2)
    corp.del_contact("staff_00", "wmEXT0000000")
    corp.add_contact(Relation("staff_02", "wmEXT0000000", 1_800_000_400, state="douyin_live"))

    report = sync(engine, ws, client(wecom), kinds=("contacts", "groups"))
    after = log(engine, ws)
    new = {eid: after[eid] for eid in set(after) - before}
    types = sorted(
        (e["type"], e.get("group", ""), e["member"] if "member" in e else "") for e in new.values()
    )
    assert types == sorted(
        [
            ("member.left", g0, gone),
            ("member.left", g1, back),
            ("member.joined", g1, back),
            ("member.joined", g0, "wmNEW"),
            ("group.updated", g0, ""),
            ("group.dismissed", g2, ""),
            ("contact.removed", "", "wmEXT0000000"),
            ("contact.added", "", "wmEXT0000000"),
        ]
    )
    assert report.applied == 8
    rejoin = new[f"wecom:join:{g1}:{back}:1800000200"]
    assert (rejoin["via"], rejoin["channel"], rejoin["inviter"]) == (
        "qrcode",
        "reunion",
        "staff_01",
    )
    left_back = next(e for e in new.values() if e["type"] == "member.left" and e["member"] == back)
    assert old_join < left_back["ts"] < 1_800_000_200
    assert next(e for e in new.values() if e["type"] == "group.updated")["name"] == "改名后的群"
    assert sync(engine, ws, client(wecom)).applied == 0


def test_crash_mid_sync_resumes_from_the_checkpoint(engine: Engine, corp: Scenario) -> None:
    calm = workspace(engine, "calm")
    crashed = workspace(engine, "crashed")
    with StandIn(corp) as wecom:
        sync(engine, calm, client(wecom))

        # A crash inside Quanzi (not WeCom): raised from the progress callback.
        def die(kind: str, done: int, _total: int | None) -> None:
            if kind == "groups" and done == 3:
                raise Crash

        with pytest.raises(Crash):
            sync(engine, crashed, client(wecom), on_progress=die)
        with engine.connect() as conn:
            state = conn.execute(
                select(WecomSyncState.status, WecomSyncState.checkpoint).where(
                    WecomSyncState.workspace_id == crashed, WecomSyncState.kind == "groups"
                )
            ).one()
        assert state.status == "failed"
        assert state.checkpoint["position"] == 3
        gets = wecom.calls_to("externalcontact/groupchat/get")
        resumed = sync(engine, crashed, client(wecom))
        # Only the three groups not yet done are fetched again.
        assert wecom.calls_to("externalcontact/groupchat/get") - gets == 3
        assert resumed.kinds["groups"].resumed
    # The same events and the same known state as a run that was never interrupted.
    assert log(engine, calm).keys() == log(engine, crashed).keys()
    assert known(engine, calm) == known(engine, crashed)


def test_crash_between_ingest_and_checkpoint_doubles_nothing(
    engine: Engine, wecom: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = workspace(engine)
    real_save = wecom_sync._Run.save

    def save_then_die(self: Any, conn: Any, **cp: Any) -> None:
        if self.kind == "groups" and cp.get("position") == 2:
            raise Crash  # events of group 2 are logged; its known state and checkpoint are not
        real_save(self, conn, **cp)

    monkeypatch.setattr(wecom_sync._Run, "save", save_then_die)
    with pytest.raises(Crash):
        sync(engine, ws, client(wecom))
    monkeypatch.setattr(wecom_sync._Run, "save", real_save)
    logged = log(engine, ws)
    second = sync(engine, ws, client(wecom))
    assert second.kinds["groups"].resumed
    assert second.kinds["groups"].duplicates > 0  # group 2's events, re-sent, were duplicates
    fresh = workspace(engine, "fresh")
    sync(engine, fresh, client(wecom))
    assert log(engine, ws).keys() == log(engine, fresh).keys()
    assert set(logged) < set(log(engine, ws))


def test_token_expiry_and_frequency_limit_mid_sync(engine: Engine, wecom: StandIn) -> None:
    ws = workspace(engine)
    wecom.faults.revoke_after = 5
    wecom.faults.throttle, wecom.faults.throttle_path = 3, "externalcontact/groupchat/get"
    slept: list[float] = []
    c = WecomClient(wecom.sc.corp_id, wecom.sc.secret, api_base=wecom.api_base, sleep=slept.append)
    report = sync(engine, ws, c)
    assert wecom.token_fetches == 2
    assert wecom.faults.throttle == 0
    assert len([s for s in slept if s >= 1]) == 3
    clean = workspace(engine, "clean")
    sync(engine, clean, client(wecom))
    assert log(engine, ws).keys() == log(engine, clean).keys()
    assert report.api_calls >= report.kinds["groups"].fetched + 3


def test_unknown_kind_is_refused(engine: Engine, wecom: StandIn) -> None:
    from quanzi.kit.errors import InvalidParameter

    with pytest.raises(InvalidParameter, match="unknown sync kind 'chats'"):
        sync(engine, workspace(engine), client(wecom), kinds=("chats",))
