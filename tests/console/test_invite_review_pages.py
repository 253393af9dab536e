"""The invite review page: the queue with its reasons, verdicts by owners/admins, the mode, roles."""

from __future__ import annotations

from community import Community, line
from consolekit import LoginAs, Team
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from quanzi.acquisition.models import InviteSuspect
from quanzi.core.members.models import InviteFlag, Member
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry

HOSTILE = '"><img src=x onerror=alert(1)>'


def plant_ring(engine: Engine, group: str, prefix: str) -> None:
    """A burst of 5 silent new accounts invited within 5 minutes into `group`."""
    c = Community(engine)
    lines = [
        line(
            id=f"{prefix}j{k}",
            type="member.joined",
            ts=f"2026-11-03T15:0{k}:00+08:00",
            platform="wecom",
            group=group,
            member=f"{prefix}{k}",
            inviter="m1",
            via="invite",
            name=HOSTILE if k == 0 else f"小号{k}",
        )
        for k in range(5)
    ]
    rep = c.ingest(lines)
    assert not rep.refused


def member_id(engine: Engine, key: str) -> int:
    with session_scope(engine, read_only=True) as s:
        m = s.scalar(select(Member.id).where(Member.member_key == key))
        assert m is not None
        return int(m)


def rescan(c: TestClient) -> str:
    """Press "re-scan"; the page it redirects to."""
    csrf = c.csrf  # type: ignore[attr-defined]
    r = c.post(
        "/w/default/invites/review/rescan", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert r.status_code == 303
    return str(r.headers["location"])


def test_rescan_lists_suspects_with_reasons_and_escapes_names(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    plant_ring(engine, "g1", "a")
    c = login_as("admin")
    where = rescan(c)
    # the ring's five; the small community's m2 (left 71 h after m1 invited them) is lone churn
    assert "n=5" in where
    page = c.get(where).text
    assert "重新扫描完成：新增 5 个疑似邀请。" in page
    assert "10 分钟内拉入的 5 个新账号之一" in page
    assert HOSTILE not in page and "&#34;&gt;&lt;img" in page
    c.cookies.set("qz_lang", "en")
    en = c.get("/w/default/invites/review").text
    assert "One of 5 brand-new members the same inviter brought in within 10 minutes" in en
    with session_scope(engine, read_only=True) as s:
        actions = list(s.scalars(select(AuditEntry.action)))
    assert "invite.rescanned" in actions


def test_confirm_and_dismiss_record_who_and_audit(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    plant_ring(engine, "g1", "a")
    c = login_as("owner")
    rescan(c)
    a1, a2 = member_id(engine, "a1"), member_id(engine, "a2")
    r = c.post(
        "/w/default/invites/review/confirm",
        data={"csrf_token": c.csrf, "member": [a1]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        "/w/default/invites/review/dismiss",
        data={"csrf_token": c.csrf, "member": [a2]},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(engine, read_only=True) as s:
        st = dict(s.execute(select(InviteSuspect.member_id, InviteSuspect.status)).all())
        flagged = set(s.scalars(select(InviteFlag.member_id)))
        audit = [(a.action, a.target) for a in s.scalars(select(AuditEntry))]
    assert st[a1] == "confirmed" and st[a2] == "dismissed"
    assert flagged == {a1}
    assert ("invite.confirmed", str(a1)) in audit and ("invite.dismissed", str(a2)) in audit
    confirmed = c.get("/w/default/invites/review?status=confirmed").text
    assert "owner@example.com" in confirmed and "小号1" in confirmed and "小号2" not in confirmed
    assert (
        c.get("/w/default/invites/review?status=suspected&kind=quick_leave").text.count("小号1")
        == 0
    )
    missing = c.post(
        "/w/default/invites/review/confirm", data={"csrf_token": c.csrf, "member": [999999]}
    )
    assert missing.status_code == 404


def test_mode_switch_flags_open_suspects(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    plant_ring(engine, "g1", "a")
    c = login_as("admin")
    rescan(c)
    r = c.post(
        "/w/default/invites/review/mode",
        data={"mode": "strict", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(engine, read_only=True) as s:
        assert len(list(s.scalars(select(InviteFlag.id)))) == 5
        audit = [(a.action, a.target) for a in s.scalars(select(AuditEntry))]
    assert ("invite.mode_changed", "strict") in audit
    assert "严格：疑似邀请立即从有效邀请中剔除" in c.get("/w/default/invites/review").text
    bad = c.post("/w/default/invites/review/mode", data={"mode": "lenient", "csrf_token": c.csrf})
    assert bad.status_code == 400


def test_roles_analyst_reads_operator_scoped(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    plant_ring(engine, "g1", "a")
    plant_ring(engine, "g2", "b")
    rescan(login_as("owner"))
    analyst = login_as("analyst")
    page = analyst.get("/w/default/invites/review").text
    assert "小号1" in page and "/confirm" not in page and "/rescan" not in page
    b1 = member_id(engine, "b1")
    denied = analyst.post(
        "/w/default/invites/review/confirm", data={"csrf_token": analyst.csrf, "member": [b1]}
    )
    assert denied.status_code == 403
    operator = login_as("operator")
    scoped = operator.get("/w/default/invites/review").text
    assert scoped.count("小号1") == 1  # g1's ring only, not g2's
    assert (
        operator.post(
            "/w/default/invites/review/rescan", data={"csrf_token": operator.csrf}
        ).status_code
        == 403
    )
    with session_scope(engine, read_only=True) as s:
        assert (
            s.scalar(select(InviteSuspect.status).where(InviteSuspect.member_id == b1))
            == "suspected"
        )
