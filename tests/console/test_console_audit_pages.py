"""The audit log page: who did what, when, from where; filters; only for roles with AUDIT."""

from __future__ import annotations

from consolekit import LoginAs, Team
from sqlalchemy import Engine

from quanzi.db.engine import session_scope
from quanzi.team import service as team
from quanzi.web.console.pages.audit import short_agent


def test_audit_log_lists_logins_and_team_changes(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    login_as("analyst")
    c = login_as("admin")
    with session_scope(engine, read_only=True) as s:
        analyst = team.user_by_email(s, "analyst@example.com")
        assert analyst is not None
    r = c.post(
        f"/w/default/team/{analyst.id}/role",
        data={"role": "operator", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = c.get("/w/default/audit")
    assert page.status_code == 200
    text = page.text
    assert "操作日志" in text
    assert "登录" in text and "更改角色" in text  # action names translated
    assert "analyst@example.com" in text and "admin@example.com" in text
    assert "分析师 → 运营" in text  # the role change, old → new
    assert "testclient" in text  # the address the request came from
    # English switch: the same page in English.
    c.cookies.set("qz_lang", "en")
    en = c.get("/w/default/audit").text
    assert "Changed a role" in en and "Analyst → Operator" in en


def test_audit_filters_by_action_and_actor(login_as: LoginAs, console_team: Team) -> None:
    login_as("analyst")
    c = login_as("owner")
    r = c.post(
        "/w/default/team/invite",
        data={"email": "n@example.com", "role": "analyst", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    only_invites = c.get("/w/default/audit?action=team.invited").text
    assert "邀请同事" in only_invites and "n@example.com" in only_invites
    body = only_invites.split("<tbody>")[1]
    assert "analyst@example.com" not in body
    assert body.count("<tr>") == 1
    by_actor = c.get("/w/default/audit?actor=ANALYST").text.split("<tbody>")[1]
    assert "analyst@example.com" in by_actor and "owner@example.com" not in by_actor
    nothing = c.get("/w/default/audit?actor=nobody-at-all")
    assert nothing.status_code == 200 and "没有符合条件的操作记录" in nothing.text
    assert c.get("/w/default/audit?page=0").status_code == 400


def test_audit_is_paginated(engine: Engine, login_as: LoginAs, console_team: Team) -> None:
    with session_scope(engine) as s:
        for i in range(60):
            team.audit(
                s,
                workspace_id=console_team.ws_id,
                user_id=None,
                actor="cli",
                action="tag.created",
                target=f"tag-{i:02d}",
            )
    c = login_as("owner")
    first = c.get("/w/default/audit?action=tag.created").text
    assert "tag-59" in first and "tag-09" not in first
    assert "第 1 / 2 页" in first
    second = c.get("/w/default/audit?action=tag.created&page=2").text
    assert "tag-09" in second and "tag-59" not in second


def test_hostile_values_in_the_log_are_escaped(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    with session_scope(engine) as s:
        team.audit(
            s,
            workspace_id=console_team.ws_id,
            user_id=None,
            actor="cli",
            action="member.erase",
            target='"><img src=x onerror=alert(1)>',
            detail={"name": "<script>alert(1)</script>"},
            user_agent="<script>x</script>",
        )
    text = login_as("owner").get("/w/default/audit").text
    assert "<img src=x" not in text and "<script>alert(1)" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_analyst_and_operator_may_not_read_the_log(login_as: LoginAs, console_team: Team) -> None:
    for role in ("analyst", "operator"):
        r = login_as(role).get("/w/default/audit")
        assert r.status_code == 403
        assert "testclient" not in r.text  # no entry of the log leaks into the refusal


def test_short_user_agents() -> None:
    chrome = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    )
    assert short_agent(chrome) == "Chrome 131 · macOS"
    wechat = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) MicroMessenger/8.0.49"
    assert short_agent(wechat) == "WeChat 8 · iOS"
    assert short_agent(None) == "—"
    assert short_agent("x" * 100) == "x" * 40 + "…"
