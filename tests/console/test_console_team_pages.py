"""The team page: invitations (link shown once, accepted, revoked), roles, groups, deactivation."""

from __future__ import annotations

import re

from consolekit import PASSWORD, LoginAs, Team, csrf_of, log_in
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from quanzi.db.engine import session_scope
from quanzi.team import service as team
from quanzi.team.models import AuditEntry, User
from quanzi.web.app import create_app


def _uid(engine: Engine, email: str) -> int:
    with session_scope(engine, read_only=True) as s:
        user = team.user_by_email(s, email)
        assert user is not None
        return user.id


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine, read_only=True) as s:
        rows = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        s.expunge_all()
        return rows


def test_team_page_lists_colleagues_in_chinese(login_as: LoginAs, console_team: Team) -> None:
    c = login_as("admin")
    r = c.get("/w/default/team")
    assert r.status_code == 200
    for email in console_team.emails.values():
        assert email in r.text
    assert "邀请同事" in r.text and "待接受的邀请" in r.text
    # The operator's assigned group is shown by name; the assignment form lists both groups.
    assert "妈妈群一" in r.text and "读书会" in r.text
    assert 'name="group_ids"' in r.text


def test_invite_accept_and_log_in_with_the_role(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    c = login_as("owner")
    r = c.post(
        "/w/default/team/invite",
        data={"email": "New.Colleague@Example.com", "role": "operator", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    m = re.search(r'value="(http://[^"]+/invite/([^"]+))"', page.text)
    assert m, "the invitation link is shown"
    token = m.group(2)
    assert "new.colleague@example.com" in page.text  # pending invitation listed
    # Shown once: the next visit no longer has it.
    assert token not in c.get("/w/default/team?done=invited").text
    [entry] = _audit(engine, "team.invited")
    assert entry.target == "new.colleague@example.com" and entry.detail == {"role": "operator"}
    with TestClient(create_app(engine)) as newcomer:
        form = newcomer.get(f"/invite/{token}")
        assert form.status_code == 200
        r = newcomer.post(
            f"/invite/{token}",
            data={"password": PASSWORD, "display_name": "新同事", "csrf_token": csrf_of(form.text)},
            follow_redirects=False,
        )
        assert r.status_code == 303
    with TestClient(create_app(engine)) as again:
        log_in(again, engine, "new.colleague@example.com")
        assert again.get("/w/default/dashboard", follow_redirects=False).status_code != 403
        assert again.get("/w/default/team").status_code == 403  # an operator
    with session_scope(engine, read_only=True) as s:
        user = team.user_by_email(s, "new.colleague@example.com")
        assert user is not None
        seat = team.seat(s, 1, user.id)
        assert seat is not None and seat.role == "operator"
    # The link is single-use.
    with TestClient(create_app(engine)) as late:
        assert late.get(f"/invite/{token}").status_code == 404


def test_revoked_invitation_no_longer_opens(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    c = login_as("admin")
    r = c.post(
        "/w/default/team/invite",
        data={"email": "x@example.com", "role": "analyst", "csrf_token": c.csrf},
    )
    token = re.search(r"/invite/([^\"]+)\"", r.text)
    assert token
    with session_scope(engine, read_only=True) as s:
        [inv] = team.pending_invitations(s, 1)
        inv_id = inv.id
    r = c.post(
        f"/w/default/team/invitations/{inv_id}/revoke",
        data={"csrf_token": c.csrf},
    )
    assert r.status_code == 200 and "邀请已撤销" in r.text
    assert "x@example.com" not in r.text.split("待接受的邀请")[1]
    assert [e.target for e in _audit(engine, "team.invitation_revoked")] == ["x@example.com"]
    with TestClient(create_app(engine)) as late:
        assert late.get(f"/invite/{token.group(1)}").status_code == 404


def test_admin_may_not_make_an_owner_nor_touch_one(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    c = login_as("admin")
    analyst = _uid(engine, "analyst@example.com")
    owner = _uid(engine, "owner@example.com")
    r = c.post(f"/w/default/team/{analyst}/role", data={"role": "owner", "csrf_token": c.csrf})
    assert r.status_code == 403
    assert "无权授予" in r.text  # the service's error, translated
    r = c.post(
        "/w/default/team/invite",
        data={"email": "boss@example.com", "role": "owner", "csrf_token": c.csrf},
    )
    assert r.status_code == 403
    r = c.post(f"/w/default/team/{owner}/deactivate", data={"csrf_token": c.csrf})
    assert r.status_code == 403 and "只有所有者" in r.text
    with session_scope(engine, read_only=True) as s:
        seat = team.seat(s, 1, analyst)
        assert seat is not None and seat.role == "analyst"
        assert team.seat(s, 1, owner).active  # type: ignore[union-attr]
    assert _audit(engine, "team.role_changed") == []


def test_role_change_is_audited_old_to_new(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    c = login_as("admin")
    analyst = _uid(engine, "analyst@example.com")
    r = c.post(
        f"/w/default/team/{analyst}/role",
        data={"role": "operator", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert "角色已更改" in c.get(r.headers["location"]).text
    [entry] = _audit(engine, "team.role_changed")
    assert entry.detail == {"old": "analyst", "new": "operator"}
    assert entry.target == "analyst@example.com" and entry.actor == "admin@example.com"


def test_the_last_owner_is_protected(engine: Engine, login_as: LoginAs, console_team: Team) -> None:
    c = login_as("owner")
    owner = _uid(engine, "owner@example.com")
    admin = _uid(engine, "admin@example.com")
    # Through the page, an owner cannot demote or deactivate themselves...
    r = c.post(f"/w/default/team/{owner}/role", data={"role": "admin", "csrf_token": c.csrf})
    assert r.status_code == 400 and "至少保留一位" in r.text
    r = c.post(f"/w/default/team/{owner}/deactivate", data={"csrf_token": c.csrf})
    assert r.status_code == 400
    # ...and once there are two owners, one can be demoted, but not the last.
    r = c.post(
        f"/w/default/team/{admin}/role",
        data={"role": "owner", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = c.post(
        f"/w/default/team/{owner}/role",
        data={"role": "admin", "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(engine, read_only=True) as s:
        assert team.seat(s, 1, owner).role == "admin"  # type: ignore[union-attr]
        assert team.seat(s, 1, admin).role == "owner"  # type: ignore[union-attr]


def test_assigning_groups_changes_the_operators_scope(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    operator = _uid(engine, "operator@example.com")
    g1, g2 = console_team.operator_groups[0], console_team.other_groups[0]
    c = login_as("admin")
    r = c.post(
        f"/w/default/team/{operator}/groups",
        data={"group_ids": [str(g2)], "csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with session_scope(engine, read_only=True) as s:
        assert team.assigned_group_ids(s, 1, operator) == [g2]
    [entry] = _audit(engine, "team.groups_assigned")
    assert entry.detail == {"added": [g2], "removed": [g1]}
    # A group of another workspace (or none at all) is refused, nothing changes.
    r = c.post(
        f"/w/default/team/{operator}/groups",
        data={"group_ids": ["999999"], "csrf_token": c.csrf},
    )
    assert r.status_code == 400
    with session_scope(engine, read_only=True) as s:
        assert team.assigned_group_ids(s, 1, operator) == [g2]
    # The operator's next request sees the new scope.
    after = login_as("operator")
    page = after.get("/w/default/team", follow_redirects=False)
    assert page.status_code == 403
    groups = after.get("/w/default/groups")
    if groups.status_code == 200:  # the groups page exists
        assert "读书会" in groups.text and "妈妈群一" not in groups.text


def test_deactivation_ends_logins_and_reactivation_restores(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    analyst_client = login_as("analyst")
    analyst = _uid(engine, "analyst@example.com")
    c = login_as("admin")
    r = c.post(
        f"/w/default/team/{analyst}/deactivate",
        data={"csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    r = analyst_client.get("/w/default/dashboard", follow_redirects=False)
    assert r.status_code in (303, 404)
    with TestClient(create_app(engine)) as fresh:
        log_in(fresh, engine, "analyst@example.com")
        assert fresh.get("/w/default/dashboard", follow_redirects=False).status_code == 404
    r = c.post(
        f"/w/default/team/{analyst}/reactivate",
        data={"csrf_token": c.csrf},
        follow_redirects=False,
    )
    assert r.status_code == 303
    with TestClient(create_app(engine)) as fresh:
        log_in(fresh, engine, "analyst@example.com")
        assert fresh.get("/w/default/dashboard", follow_redirects=False).status_code != 404
    assert [e.target for e in _audit(engine, "team.deactivated")] == ["analyst@example.com"]
    assert [e.target for e in _audit(engine, "team.reactivated")] == ["analyst@example.com"]
    # Nobody deactivates themselves.
    admin = _uid(engine, "admin@example.com")
    r = c.post(f"/w/default/team/{admin}/deactivate", data={"csrf_token": c.csrf})
    assert r.status_code == 400


def test_team_page_needs_manage_team(login_as: LoginAs, console_team: Team) -> None:
    for role in ("operator", "analyst"):
        c = login_as(role)
        assert c.get("/w/default/team").status_code == 403
        r = c.post(
            "/w/default/team/invite",
            data={"email": "y@example.com", "role": "analyst", "csrf_token": c.csrf},
        )
        assert r.status_code == 403


def test_hostile_display_names_are_escaped(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    with session_scope(engine) as s:
        user = s.scalar(select(User).where(User.email == "analyst@example.com"))
        assert user is not None
        user.display_name = '"><img src=x onerror=alert(1)><script>alert(2)</script>'
    r = login_as("owner").get("/w/default/team")
    assert "<script>alert(2)" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;alert(2)" in r.text
