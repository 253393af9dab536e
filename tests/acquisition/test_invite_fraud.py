"""Invite fraud signals on hand-made communities, the review verdicts, and strict vs review."""

from __future__ import annotations

import json
from datetime import date, datetime

import orjson
import pytest
from community import Community
from sqlalchemy import Engine, func, select
from typer.testing import CliRunner

from quanzi.acquisition import fraud
from quanzi.acquisition.models import InviteSuspect, Lead
from quanzi.cli.main import app
from quanzi.config import get_settings
from quanzi.core.members.models import InviteFlag, Member
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import get_engine, session_scope
from quanzi.demo.generator import (
    FRAUD_KINDS,
    DemoSpec,
    fraud_acquisition_path,
    fraud_truth_path,
    generate,
    plant_fraud,
)
from quanzi.demo.loader import demo_file
from quanzi.kit.clock import LocalCalendar, day_number, to_us

D = "2026-03-02"
CAL = LocalCalendar("Asia/Shanghai")
LATER = "2026-03-20"


def t(day: str, hm: str = "10:00") -> str:
    return f"{day}T{hm}:00+08:00"


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


def mid(c: Community, key: str) -> int:
    with session_scope(c.engine) as s:
        m = s.scalar(
            select(Member.id).where(Member.workspace_id == c.ws_id, Member.member_key == key)
        )
        assert m is not None
        return int(m)


def found(c: Community) -> dict[str, list[str]]:
    with session_scope(c.engine) as s:
        keys = dict(s.execute(select(Member.id, Member.member_key)).all())
        return {keys[x.member_id]: x.kinds for x in fraud.detect(s, c.ws_id, CAL)}


def honest(c: Community) -> None:
    """An inviter `boss` whose invitees stay and talk; slow invites, no signal."""
    c.add("member.joined", t(D, "09:00"), group="g1", member="boss")
    for k in range(6):
        c.add("member.joined", t(D, f"1{k}:00"), group="g1", member=f"h{k}", inviter="boss")
        c.add("message.posted", t(D, f"1{k}:30"), group="g1", member=f"h{k}")


def test_honest_invites_raise_nothing(c: Community) -> None:
    honest(c)
    assert found(c) == {}


def test_self_invite_own_and_mutual(c: Community) -> None:
    honest(c)
    c.add("member.joined", t(D, "20:00"), group="g1", member="me", inviter="me")
    c.add("member.joined", t(D, "21:00"), group="g1", member="x")
    c.add("member.joined", t(D, "21:10"), group="g1", member="y", inviter="x")
    # y "invites" x back into another group: y's own first join came through x
    c.add("member.joined", t(D, "21:20"), group="g2", member="x", inviter="y")
    f = found(c)
    assert f.get("me") == ["self_invite"]
    assert f.get("x") == ["self_invite"]
    assert "y" not in f
    with session_scope(c.engine) as s:
        how = {x.member_id: x.signals[0]["detail"]["how"] for x in fraud.detect(s, c.ws_id, CAL)}
    assert how == {mid(c, "me"): "own_inviter", mid(c, "x"): "mutual"}


def test_quick_leave_needs_an_inviter_whose_invitees_keep_leaving(c: Community) -> None:
    honest(c)
    # boss: one of seven invitees quits after 47 h: churn, no signal
    c.add("member.joined", t(D, "09:00"), group="g2", member="q0", inviter="boss")
    c.add("member.left", t("2026-03-04", "08:00"), group="g2", member="q0")
    # pump: three invitees, two quit inside 72 h, one after 95 h (outside the window)
    c.add("member.joined", t(D, "08:00"), group="g1", member="pump")
    for k, left in enumerate(["2026-03-03T10:00", "2026-03-04T08:00", "2026-03-06T08:00"]):
        c.add("member.joined", t(D, "09:00"), group="g2", member=f"q{k + 1}", inviter="pump")
        day, hm = left.split("T")
        c.add("member.left", t(day, hm), group="g2", member=f"q{k + 1}")
    assert found(c) == {}  # two of three: below the minimum of three
    c.add("member.joined", t(D, "09:30"), group="g2", member="q4", inviter="pump")
    c.add("member.left", t(D, "12:30"), group="g2", member="q4")
    f = found(c)
    assert f == {"q1": ["quick_leave"], "q2": ["quick_leave"], "q4": ["quick_leave"]}
    with session_scope(c.engine) as s:
        details = {x.member_id: x.signals[0]["detail"] for x in fraud.detect(s, c.ws_id, CAL)}
    assert details[mid(c, "q2")] == {"hours": 47.0, "inviter_quick": 3, "inviter_invites": 4}
    assert details[mid(c, "q4")]["hours"] == 3.0


def test_sybil_burst_of_silent_new_accounts(c: Community) -> None:
    honest(c)
    c.add("member.joined", t("2026-02-01"), group="g1", member="old")
    for k in range(5):
        c.add("member.joined", t(D, f"15:0{k * 2}"), group="g1", member=f"s{k}", inviter="old")
    # four within ten minutes is not a ring
    for k in range(4):
        c.add("member.joined", t(D, f"16:0{k}"), group="g1", member=f"f{k}", inviter="boss")
    # a ring where one member posts: four silent left, no ring
    for k in range(5):
        c.add("member.joined", t(D, f"17:0{k}"), group="g1", member=f"p{k}", inviter="h0")
    c.add("message.posted", t(D, "18:00"), group="g1", member="p0")
    f = found(c)
    assert {k for k, v in f.items() if "sybil_burst" in v} == {f"s{k}" for k in range(5)}
    with session_scope(c.engine) as s:
        d = [x.signals[0]["detail"] for x in fraud.detect(s, c.ws_id, CAL)]
    assert d[0] == {"ring": 5, "young_leader": False}


def test_sybil_ring_led_by_a_young_account(c: Community) -> None:
    c.add("member.joined", t(D, "08:00"), group="g1", member="fresh")
    for k in range(6):
        c.add("member.joined", t(D, f"12:0{k}"), group="g1", member=f"r{k}", inviter="fresh")
    with session_scope(c.engine) as s:
        sus = fraud.detect(s, c.ws_id, CAL)
    assert len(sus) == 6
    assert all(
        x.signals == [{"kind": "sybil_burst", "detail": {"ring": 6, "young_leader": True}}]
        for x in sus
    )


def test_sybil_waits_for_the_hold_window(c: Community) -> None:
    c.add("member.joined", t(D, "08:00"), group="g1", member="fresh")
    for k in range(6):
        c.add("member.joined", t(D, f"12:0{k}"), group="g1", member=f"r{k}", inviter="fresh")
    with session_scope(c.engine) as s:
        next_day = to_us(datetime.fromisoformat(t("2026-03-03")))
        assert fraud.detect(s, c.ws_id, CAL, as_of_us=next_day) == []
        assert len(fraud.detect(s, c.ws_id, CAL, as_of_us=next_day + 3 * 86_400_000_000)) == 6


def ring(c: Community) -> None:
    """Boss has 6 honest valid invites and a burst of 5 silent accounts (all valid by the report)."""
    honest(c)
    for k in range(5):
        c.add("member.joined", t(D, f"19:0{k}"), group="g1", member=f"s{k}", inviter="boss")


def valid(c: Community) -> int:
    rep = c.report("invites", from_=D, to=D, as_of=t(LATER))
    (row,) = [r for r in rep["inviters"] if r["inviter"] == "boss"]
    return int(row["valid"])


def test_review_mode_excludes_only_confirmed_and_verdicts_survive_rescan(c: Community) -> None:
    ring(c)
    assert valid(c) == 11
    with session_scope(c.engine) as s:
        r = fraud.refresh_suspects(s, c.ws_id, CAL)
        assert (r.found, r.added) == (5, 5)
    assert valid(c) == 11  # review: nothing excluded until confirmed
    ids = {k: mid(c, k) for k in ("s0", "s1", "s2")}
    with session_scope(c.engine) as s:
        fraud.confirm(s, c.ws_id, ids["s0"], "owner@example.com")
        fraud.confirm(s, c.ws_id, ids["s1"], "owner@example.com")
        fraud.dismiss(s, c.ws_id, ids["s2"], "admin@example.com")
    assert valid(c) == 9
    with session_scope(c.engine) as s:
        r = fraud.refresh_suspects(s, c.ws_id, CAL)
        assert (r.found, r.added) == (5, 0)
        st = dict(s.execute(select(InviteSuspect.member_id, InviteSuspect.status)).all())
        by = s.scalar(select(InviteSuspect.reviewed_by).where(InviteSuspect.member_id == ids["s2"]))
    assert sorted(st.values()) == ["confirmed", "confirmed", "dismissed", "suspected", "suspected"]
    assert by == "admin@example.com"
    assert valid(c) == 9
    with session_scope(c.engine) as s:
        rows, n = fraud.list_suspects(s, c.ws_id, status="suspected", kind="sybil_burst")
        assert n == 2 and {r.member_key for r in rows} == {"s3", "s4"}
        assert fraud.list_suspects(s, c.ws_id, kind="quick_leave")[1] == 0
        assert fraud.counts(s, c.ws_id) == {"suspected": 2, "confirmed": 2, "dismissed": 1}


def test_strict_mode_excludes_at_once_and_dismissal_restores(c: Community) -> None:
    ring(c)
    with session_scope(c.engine) as s:
        fraud.set_review_mode(s, c.ws_id, "strict")
        fraud.refresh_suspects(s, c.ws_id, CAL)
        reasons = set(s.scalars(select(InviteFlag.reason)))
    assert reasons == {"auto: sybil_burst"}
    assert valid(c) == 6
    ids = {k: mid(c, k) for k in ("s3", "s4", "h0")}
    with session_scope(c.engine) as s:
        fraud.dismiss(s, c.ws_id, ids["s4"], "owner@example.com")
    assert valid(c) == 7
    with session_scope(c.engine) as s:
        fraud.refresh_suspects(s, c.ws_id, CAL)  # a dismissed verdict stays dismissed
    assert valid(c) == 7
    with session_scope(c.engine) as s:
        fraud.confirm(s, c.ws_id, ids["s3"], "owner@example.com")
        fraud.set_review_mode(s, c.ws_id, "review")  # open suspects are unflagged, verdicts kept
    assert valid(c) == 10
    with session_scope(c.engine) as s:
        with pytest.raises(fraud.FraudError):
            fraud.set_review_mode(s, c.ws_id, "lenient")
        with pytest.raises(fraud.SuspectNotFound):
            fraud.confirm(s, c.ws_id, ids["h0"], "owner@example.com")


def test_demo_fraud_planting_is_opt_in_deterministic_and_detected(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANZI_DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    small = ["--members", "600", "--days", "30", "--groups", "12", "--end-day", "2026-10-31"]
    res = CliRunner().invoke(app, ["demo", "-w", "fr", "--fraud", "--no-serve", *small])
    assert res.exit_code == 0, res.output
    spec = DemoSpec(42, 600, 30, 12, date(2026, 10, 31), fraud=True)
    path = demo_file(spec).with_name(demo_file(spec).stem + "-fraud.jsonl")
    truth = json.loads(fraud_truth_path(path).read_text())["kinds"]
    assert {k: len(v) >= 5 for k, v in truth.items()} == dict.fromkeys(FRAUD_KINDS, True)
    again, truth2, planted = plant_fraud(
        spec, generate(42, members=600, days=30, groups=12, end_day=spec.end_day)
    )
    assert path.read_bytes() == b"".join(orjson.dumps(e) + b"\n" for e in again)
    assert truth2 == truth
    assert json.loads(fraud_acquisition_path(path).read_text()) == planted
    base = list(generate(42, members=600, days=30, groups=12, end_day=spec.end_day))
    assert [e for e in again if "-fraud-" not in e["id"]] == base  # the base is untouched
    engine = get_engine(sqlite_url)
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "fr").id
        keys = dict(s.execute(select(Member.id, Member.member_key)).all())
        sus = fraud.detect(s, ws, CAL, as_of_us=CAL.day_start_us(day_number(date(2026, 11, 1))))
        leads = s.scalar(select(func.count()).select_from(Lead).where(Lead.workspace_id == ws))
    for kind in FRAUD_KINDS:
        flagged = {keys[x.member_id] for x in sus if kind in x.kinds}
        assert flagged == set(truth[kind]), kind
    # Honest leads (families, offices, a kiosk, scattered) outnumber the planted fraud.
    assert leads is not None and leads > 2 * len(truth["shared_device"])
    # A second run stores nothing twice.
    res = CliRunner().invoke(app, ["demo", "-w", "fr", "--fraud", "--no-serve", *small])
    assert res.exit_code == 0, res.output
    assert "leads      0 planted leads, 0 poster visits" in res.output
