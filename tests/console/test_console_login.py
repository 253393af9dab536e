"""Logging in and out: argon2 passwords, session cookie flags, CSRF, throttling, deactivation."""

from __future__ import annotations

from consolekit import PASSWORD, LoginAs, Team, csrf_of, log_in
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from quanzi.db.engine import session_scope
from quanzi.team import service as team
from quanzi.team.models import AuditEntry, User, WebSession
from quanzi.web.app import create_app


def test_password_is_stored_as_argon2(engine: Engine, console_team: Team) -> None:
    with session_scope(engine) as s:
        user = s.scalar(select(User).where(User.email == "owner@example.com"))
        assert user is not None
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_login_sets_a_hardened_cookie_and_logout_ends_the_session(
    engine: Engine, console_team: Team
) -> None:
    with TestClient(create_app(engine)) as c:
        page = c.get("/login")
        assert page.status_code == 200
        r = c.post(
            "/login",
            data={
                "email": "Owner@Example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie
        token = c.cookies.get("qz_session")
        with session_scope(engine, read_only=True) as s:
            found = team.resolve_session(s, token)
            assert found is not None
            csrf = found[0].csrf_token
            # Only a hash of the cookie is stored.
            assert s.scalar(select(func.count()).where(WebSession.token_hash == token)) == 0
        # Logout without the CSRF token is refused; with it, the session is gone.
        assert c.post("/logout", follow_redirects=False).status_code == 403
        r = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
        with session_scope(engine, read_only=True) as s:
            assert team.resolve_session(s, token) is None
            actions = list(s.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))
        assert "login" in actions and "logout" in actions


def test_login_without_the_form_token_is_refused(engine: Engine, console_team: Team) -> None:
    with TestClient(create_app(engine)) as c:
        r = c.post("/login", data={"email": "owner@example.com", "password": PASSWORD})
        assert r.status_code == 403
        assert c.cookies.get("qz_session") is None


def test_wrong_passwords_are_throttled_per_email(engine: Engine, console_team: Team) -> None:
    with TestClient(create_app(engine)) as c:
        for _ in range(team.MAX_FAILS_PER_EMAIL):
            page = c.get("/login")
            r = c.post(
                "/login",
                data={
                    "email": "owner@example.com",
                    "password": "nope-nope-nope",
                    "csrf_token": csrf_of(page.text),
                },
            )
            assert r.status_code == 401
            assert "邮箱或密码错误" in r.text
        page = c.get("/login")
        r = c.post(
            "/login",
            data={
                "email": "owner@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
            },
        )
        # Even the right password waits out the window now.
        assert r.status_code == 429
        assert int(r.headers["Retry-After"]) > 0
        assert "分钟后再试" in r.text
    with session_scope(engine, read_only=True) as s:
        failed = s.scalar(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "login.failed")
        )
    assert failed == team.MAX_FAILS_PER_EMAIL


def test_console_pages_redirect_to_login_with_next(engine: Engine, console_team: Team) -> None:
    with TestClient(create_app(engine)) as c:
        r = c.get("/w/default?page=2", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/w/default%3Fpage%3D2"


def test_open_redirects_are_refused(engine: Engine, console_team: Team) -> None:
    with TestClient(create_app(engine)) as c:
        page = c.get("/login")
        r = c.post(
            "/login",
            data={
                "email": "owner@example.com",
                "password": PASSWORD,
                "csrf_token": csrf_of(page.text),
                "next": "//evil.example/x",
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/w/default/dashboard"


def test_deactivated_seat_loses_access_at_once(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("analyst")
    assert c.get("/w/default", follow_redirects=False).status_code == 303
    with session_scope(engine) as s:
        uid = s.scalar(select(User.id).where(User.email == "analyst@example.com"))
        assert uid is not None
        team.set_active(s, console_team.ws_id, "owner", uid, False)
    r = c.get("/w/default", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_a_user_without_a_seat_sees_404_not_the_workspace(
    engine: Engine, console_team: Team
) -> None:
    with session_scope(engine) as s:
        team.create_user(s, "stranger@example.com", PASSWORD)
    with TestClient(create_app(engine)) as c:
        log_in(c, engine, "stranger@example.com")
        assert c.get("/w/default", follow_redirects=False).status_code == 404


def test_language_switch_is_remembered(engine: Engine, console_team: Team) -> None:
    with TestClient(create_app(engine)) as c:
        assert "登录圈子" in c.get("/login").text
        r = c.get("/lang/en?next=/login", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        assert "Log in to Quanzi" in c.get("/login").text
        assert c.get("/lang/fr").status_code == 404
        assert (
            c.get("/lang/en?next=https://evil.example", follow_redirects=False).headers["location"]
            == "/"
        )
