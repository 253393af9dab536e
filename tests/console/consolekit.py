"""Console test helpers: a small community, the team of every role, logging in."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from community import Community
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from quanzi.db.engine import session_scope
from quanzi.team import service as team
from quanzi.web.console.deps import SESSION_COOKIE

PASSWORD = "correct-horse-battery"
ROLES = ("owner", "admin", "operator", "analyst")


@dataclass
class Team:
    workspace: str
    ws_id: int
    emails: dict[str, str]  # role -> email
    operator_groups: list[int]  # Group.id the operator is assigned
    other_groups: list[int]  # Group.id the operator may not see


def small_community(engine: Engine, workspace: str = "default") -> Community:
    """Two groups on 2026-11-01..05: g1 (assigned to the operator) and g2 (not)."""
    c = Community(engine, workspace)
    c.add("group.created", "2026-11-01T09:00:00+08:00", group="g1", name="妈妈群一")
    c.add("group.created", "2026-11-01T09:00:00+08:00", group="g2", name="读书会")
    c.add(
        "member.joined",
        "2026-11-01T10:00:00+08:00",
        group="g1",
        member="staff1",
        is_staff=True,
        name="小助手",
    )
    c.add(
        "member.joined",
        "2026-11-02T10:00:00+08:00",
        group="g1",
        member="m1",
        name="王小花",
        channel="flyer",
    )
    c.add(
        "member.joined",
        "2026-11-02T11:00:00+08:00",
        group="g1",
        member="m2",
        name="李雷",
        inviter="m1",
        via="invite",
    )
    c.add(
        "member.joined",
        "2026-11-03T10:00:00+08:00",
        group="g2",
        member="m3",
        name="韩梅梅",
        channel="douyin",
    )
    c.add("message.posted", "2026-11-03T12:00:00+08:00", group="g1", member="m1", text="大家好")
    c.add("message.posted", "2026-11-03T12:05:00+08:00", group="g1", member="staff1", text="欢迎")
    c.add("message.posted", "2026-11-04T08:00:00+08:00", group="g2", member="m3", text="打卡")
    c.add(
        "profile.updated",
        "2026-11-04T09:00:00+08:00",
        member="m1",
        phone="13812345678",
        name="王花",
    )
    c.add("order.paid", "2026-11-04T10:00:00+08:00", order="o1", member="m1", amount=9900)
    c.add("member.left", "2026-11-05T10:00:00+08:00", group="g1", member="m2")
    return c


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def log_in(client: TestClient, engine: Engine, email: str, password: str = PASSWORD) -> str:
    """Log `client` in; returns the session's CSRF token (for POSTs)."""
    page = client.get("/login")
    r = client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    token = client.cookies.get(SESSION_COOKIE)
    assert token
    with session_scope(engine, read_only=True) as s:
        found = team.resolve_session(s, token)
        assert found is not None
        return found[0].csrf_token


LoginAs = Callable[[str], TestClient]
