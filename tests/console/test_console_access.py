"""Every route × every role: the console's allow/deny table, walked from the app's own routes.

No route is forgotten: the routes come from `create_app(...).routes`, so a page added tomorrow
is walked too. A console route (under /w/{workspace}) must declare `need(Perm.X)`; every other
route must be in PUBLIC_ROUTES below with why it may be reached without a workspace role; a
path parameter without a sample value in SAMPLES fails, so a new kind of route forces an update.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from consolekit import ROLES, LoginAs, Team
from fastapi import FastAPI, routing
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine
from starlette.routing import BaseRoute, Mount, Route

from quanzi.acquisition import channels, landing, poster_templates
from quanzi.acquisition.models import Lead
from quanzi.campaigns import rewards as campaign_rewards
from quanzi.campaigns import service as campaigns
from quanzi.core.members import service as members
from quanzi.core.tags import service as tags
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.team import service as team
from quanzi.team.models import User
from quanzi.team.roles import Perm, may
from quanzi.web.app import create_app
from quanzi.web.console.deps import SESSION_COOKIE, need, need_login

CONSOLE_PREFIX = "/w/{workspace}"

# Routes outside the console's workspaces: (method, path) -> who may reach them and why.
PUBLIC_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/"): "public: redirects to the login or the workspace chooser",
    ("GET", "/login"): "public: the login form",
    ("POST", "/login"): "public: checks credentials (login CSRF cookie, throttled)",
    ("POST", "/logout"): "login: need_login()",
    ("GET", "/workspaces"): "login: need_login()",
    ("GET", "/lang/{code}"): "public: a language cookie",
    ("GET", "/invite/{token}"): "token: a single-use invitation link",
    ("POST", "/invite/{token}"): "token: a single-use invitation link (login CSRF cookie)",
    ("GET", "/healthz"): "public: liveness",
    ("GET", "/c/{code}"): "public: a channel code's short link (records the visit, no IP)",
    ("GET", "/c/{code}/qr.svg"): "public: a channel code's QR image",
    ("GET", "/c/{code}/qr.png"): "public: a channel code's QR image",
    ("GET", "/c/{code}/way/{assignee}.png"): "public: WeCom's QR image for a code, via the server",
    ("GET", "/p/{slug}"): "public: a published landing page (records the visit, no IP)",
    ("POST", "/p/{slug}/lead"): "public: a landing page's lead form (rate limited, honeypot)",
    ("GET", "/l/{token}"): "token: a lead's own contact code (sealed ids; its thank-you again)",
    ("GET", "/l/{token}.png"): "token: WeCom's QR of a lead's own contact code, via the server",
    ("GET", "/k/{slug}"): "public: a campaign's page and join form (no personal data shown)",
    ("POST", "/k/{slug}/join"): "public: a campaign's join form (rate limited, honeypot)",
    ("GET", "/k/{slug}/me/{token}"): "token: a participant's own page (secret link, hashed)",
    ("POST", "/k/{slug}/me/{token}"): "token: a participant's claim / address (secret link)",
    ("GET", "/k/{slug}/participants.json"): "public: a lottery's published list (masked names)",
    ("GET", "/m/{name}"): "public: an uploaded image of a landing page or poster (immutable)",
    ("GET", "/hooks/wecom/{workspace}"): "public: WeCom callback (signature-checked)",
    ("POST", "/hooks/wecom/{workspace}"): "public: WeCom callback (signature-checked)",
    ("POST", "/api/v1/events"): "API token (CurrentWorkspace)",
    ("POST", "/api/v1/rebuild"): "API token (CurrentWorkspace)",
    ("GET", "/api/v1/reports/{name}"): "API token (CurrentWorkspace)",
    ("GET", "/api/v1/campaigns"): "API token (CurrentWorkspace)",
    ("GET", "/api/v1/campaigns/{key}"): "API token (CurrentWorkspace)",
    ("POST", "/api/v1/campaigns/{key}/participants"): "API token (CurrentWorkspace)",
    ("POST", "/api/v1/campaigns/{key}/actions"): "API token (CurrentWorkspace)",
    ("GET", "/api/v1/campaigns/{key}/leaderboard"): "API token (CurrentWorkspace)",
    ("GET", "/openapi.json"): "public: the API's description",
    ("GET", "/docs"): "public: API docs page",
    ("GET", "/docs/oauth2-redirect"): "public: API docs page",
    ("GET", "/redoc"): "public: API docs page",
    ("GET", "/static/vendor/plotly.min.js"): "public: the chart library from the plotly package",
    ("MOUNT", "/static"): "public: the console's CSS, JS and icons",
    ("MOUNT", "/static-offline-docs"): "public: Swagger UI and ReDoc files from fastapi-offline",
}
LOGIN_ROUTES = {k for k, why in PUBLIC_ROUTES.items() if why.startswith("login:")}
API_ROUTES = {k for k, why in PUBLIC_ROUTES.items() if why.startswith("API token")}


def _routes(app: FastAPI) -> list[BaseRoute]:
    """The app's routes with included routers flattened (FastAPI nests them lazily)."""
    flatten = getattr(routing, "_iter_included_route_candidates", None)
    return list(flatten(app.routes)) if flatten else list(app.routes)


def _app_routes() -> list[tuple[str, str, BaseRoute]]:
    app = create_app(create_engine("sqlite://"))
    out = []
    for route in _routes(app):
        if isinstance(route, Mount):
            out.append(("MOUNT", route.path, route))
        elif isinstance(route, APIRoute | Route):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                out.append((method, route.path, route))
        else:
            out.append(("?", getattr(route, "path", repr(route)), route))
    return out


ALL_ROUTES = _app_routes()
CONSOLE_ROUTES = [(m, path) for m, path, _r in ALL_ROUTES if path.startswith(CONSOLE_PREFIX)]


def _needs(dependant: Dependant) -> Iterator[object]:
    for dep in dependant.dependencies:
        if isinstance(dep.call, need | need_login):
            yield dep.call
        yield from _needs(dep)


def _perm_of(method: str, path: str) -> Perm | None:
    route = next(r for m, p, r in ALL_ROUTES if (m, p) == (method, path))
    assert isinstance(route, APIRoute)
    found = [d.perm for d in _needs(route.dependant) if isinstance(d, need)]
    return found[0] if found else None


def _params(path: str) -> list[str]:
    return re.findall(r"{(\w+)(?::\w+)?}", path)


# Sample values of path parameters (filled per test from the console_team fixture).
SAMPLES: dict[str, Callable[[dict[str, Any]], str]] = {
    "workspace": lambda v: "default",
    "group_id": lambda v: str(v["g1"]),
    "member_id": lambda v: str(v["m1"]),
    "user_id": lambda v: str(v["target_user"]),
    "invitation_id": lambda v: str(v["invitation"]),
    "tag_id": lambda v: str(v["tag"]),
    "tag_group_id": lambda v: str(v["tag_group"]),
    "name": lambda v: "retention",
    "template_id": lambda v: str(v["poster_template"]),
    "page_id": lambda v: str(v["landing_page"]),
    "lead_id": lambda v: str(v["lead"]),
    "campaign_id": lambda v: str(v["campaign"]),
    "reward_id": lambda v: str(v["reward"]),
}


def test_every_console_route_declares_a_permission() -> None:
    assert len(CONSOLE_ROUTES) >= 8, "too few console routes found: is the walk right?"
    missing = [f"{m} {p}" for m, p in CONSOLE_ROUTES if _perm_of(m, p) is None]
    assert not missing, "console routes without Depends(need(Perm.X)):\n" + "\n".join(missing)


def test_every_other_route_is_known_public_or_token_protected() -> None:
    unknown = [
        f"{m} {p}"
        for m, p, _r in ALL_ROUTES
        if not p.startswith(CONSOLE_PREFIX) and (m, p) not in PUBLIC_ROUTES
    ]
    assert not unknown, (
        "routes that are neither console routes with need() nor in PUBLIC_ROUTES:\n"
        + "\n".join(unknown)
    )
    for m, p, route in ALL_ROUTES:
        if (m, p) in LOGIN_ROUTES:
            assert isinstance(route, APIRoute)
            assert any(isinstance(d, need_login) for d in _needs(route.dependant)), (m, p)


def test_every_path_parameter_has_a_sample_value() -> None:
    unknown = sorted({f"{name} (in {p})" for _m, p, _r in ALL_ROUTES for name in _params(p)})
    console_unknown = [
        u for u in unknown if u.split(" ")[0] not in SAMPLES and f"in {CONSOLE_PREFIX}" in u
    ]
    assert not console_unknown, (
        "add sample values to SAMPLES for these path parameters:\n" + "\n".join(console_unknown)
    )


Samples = dict[str, Any]


def _make_samples(engine: Engine, console_team: Team, n: int) -> Samples:
    """Ids for the path parameters: g1 (the operator's group), m1 (a member of g1), a
    colleague to act on, a pending invitation, a tag group and a tag; fresh ones each call, so
    a route that deletes its target finds a new one for the next role."""
    with session_scope(engine) as s:
        owner = team.user_by_email(s, console_team.emails["owner"])
        assert owner is not None
        # A colleague to act on; no password (an argon2 hash per call would be slow).
        target = User(
            email=f"target{n}@example.com",
            password_hash="!",
            display_name="目标",
            created_at_us=1,
        )
        s.add(target)
        s.flush()
        team.add_seat(s, console_team.ws_id, target, "operator", owner.id)
        s.flush()
        email = f"invitee{n}@example.com"
        team.invite(s, console_team.ws_id, owner, "owner", email, "analyst")
        s.flush()
        inv = next(i for i in team.pending_invitations(s, console_team.ws_id) if i.email == email)
        tag_group = tags.create_tag_group(s, console_team.ws_id, f"来源{n}")
        s.flush()
        tag = tags.create_tag(s, console_team.ws_id, tag_group.id, f"宝妈{n}")
        s.flush()
        page = landing.create_page(
            s,
            console_team.ws_id,
            f"页{n}",
            {"headline": "领资料", "consent_text": "我同意运营方联系我（v1）"},
        )
        key = workspace_key(s, console_team.ws_id)
        phone = f"+86138{n:08d}"
        lead = Lead(
            workspace_id=console_team.ws_id,
            page_id=page.id,
            phone_digest=key.blind_index("phone", phone),
            phone_sealed=key.seal("phone", phone),
            consent_text="我同意运营方联系我（v1）",
            consent_version=1,
            created_at_us=1,
            updated_at_us=1,
        )
        s.add(lead)
        s.flush()
        code = channels.create_code(
            s,
            console_team.ws_id,
            name=f"海报码{n}",
            channel=f"poster{n}",
            target_kind="link",
            target={"url": "https://example.com/"},
        )
        s.flush()
        poster_template, _changed = poster_templates.save_template(
            s,
            console_team.ws_id,
            None,
            poster_templates.TemplateFields(f"海报{n}", "扫码进群领资料", code.id, None),
        )
        reward = campaign_rewards.create_reward(
            s,
            console_team.ws_id,
            name=f"奖品{n}",
            kind="physical",
            unit_cost_fen=500,
            stock=10,
            config={},
        )
        start = 4_102_444_800_000_000  # 2100-01-01: a draft lottery far ahead
        campaign = campaigns.create_campaign(
            s,
            console_team.ws_id,
            kind="lottery",
            name=f"抽奖{n}",
            key=f"draw{n}",
            starts_at_us=start,
            ends_at_us=start + 86_400_000_000,
            rules={
                "lottery": {
                    "winners": 1,
                    "reward_id": reward.id,
                    "draw_at_us": start + 86_400_000_000,
                }
            },
            copy={"title": "抽奖"},
            by="pytest",
        )
        m1 = members.find_member(s, console_team.ws_id, "wecom", "m1")
        m3 = members.find_member(s, console_team.ws_id, "wecom", "m3")
        return {
            "g1": console_team.operator_groups[0],
            "g2": console_team.other_groups[0],
            "m1": m1.id,
            "m3": m3.id,
            "target_user": target.id,
            "invitation": inv.id,
            "tag": tag.id,
            "tag_group": tag_group.id,
            "poster_template": poster_template.id,
            "landing_page": page.id,
            "lead": lead.id,
            "campaign": campaign.id,
            "reward": reward.id,
        }


@pytest.fixture
def make_samples(engine: Engine, console_team: Team) -> Callable[[], Samples]:
    count = iter(range(1, 1000))
    return lambda: _make_samples(engine, console_team, next(count))


@pytest.fixture
def signed_in(engine: Engine, console_team: Team) -> Iterator[Callable[[str], TestClient]]:
    """Like conftest's login_as, but the session is started directly (no argon2 per role):
    this test logs in hundreds of times. `client.csrf` holds the CSRF token."""
    clients: list[TestClient] = []
    app = create_app(engine)

    def make(role: str) -> TestClient:
        with session_scope(engine) as s:
            user = team.user_by_email(s, console_team.emails[role])
            assert user is not None
            token = team.start_session(s, user, console_team.ws_id, "testclient", "pytest")
            s.flush()
            found = team.resolve_session(s, token)
            assert found is not None
            csrf = found[0].csrf_token
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        c.cookies.set(SESSION_COOKIE, token)
        c.csrf = csrf  # type: ignore[attr-defined]
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)


@pytest.fixture
def samples(make_samples: Callable[[], Samples]) -> Samples:
    return make_samples()


def _url(path: str, values: dict[str, Any]) -> str:
    def fill(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "group_id" and "/tags/groups/" in path:
            return str(values["tag_group"])  # a tag group, not a chat group
        assert name in SAMPLES, f"no sample value for path parameter {name!r} ({path})"
        return SAMPLES[name](values)

    return re.sub(r"{(\w+)(?::\w+)?}", fill, path)


def _request(c: TestClient, method: str, url: str, csrf: str | None) -> Any:
    if method == "GET":
        return c.get(url, follow_redirects=False)
    return c.request(method, url, data={"csrf_token": csrf} if csrf else {}, follow_redirects=False)


def _area(path: str) -> str:
    return path.removeprefix(CONSOLE_PREFIX).strip("/").split("/")[0] or "home"


# One test per console area (a fresh community each): GET routes first, then the POSTs.
AREAS = sorted({_area(p) for _m, p in CONSOLE_ROUTES})


def _walk(
    method: str,
    path: str,
    anonymous: TestClient,
    clients: dict[str, TestClient],
    make_samples: Callable[[], Samples],
) -> list[str]:
    """Problems with one route: not logged in → login page; a role without the permission
    → 403; with it → served (not 403/404/5xx); a POST without the CSRF token → 403."""
    problems: list[str] = []
    perm = _perm_of(method, path)
    assert perm is not None
    url = _url(path, make_samples())
    r = _request(anonymous, method, url, None)
    if r.status_code != 303 or not r.headers["location"].startswith("/login"):
        problems.append(f"not logged in: {method} {url} -> {r.status_code}")
    # Roles without the permission first: a refusal changes nothing for the roles after.
    for role in sorted(ROLES, key=lambda role: may(role, perm)):
        c = clients[role]
        if method != "GET" and may(role, perm):
            url = _url(path, make_samples())  # the previous role may have used it up
        r = _request(c, method, url, c.csrf)  # type: ignore[attr-defined]
        where = f"{role} ({perm} {'allowed' if may(role, perm) else 'refused'}): {method} {url}"
        if may(role, perm):
            ok = r.status_code < 500 and r.status_code not in (403, 404)
            if method == "GET":
                ok = r.status_code in (200, 303)
            if not ok:
                problems.append(f"{where} -> {r.status_code}\n{r.text[-1500:]}")
        elif r.status_code != 403:
            problems.append(f"{where} -> {r.status_code}, expected 403")
        if method != "GET":
            r = _request(c, method, url, None)
            if r.status_code != 403:
                problems.append(f"{where} without the CSRF token -> {r.status_code}")
    return problems


@pytest.mark.parametrize("area", AREAS)
def test_console_routes_by_role(
    area: str,
    engine: Engine,
    signed_in: Callable[[str], TestClient],
    make_samples: Callable[[], Samples],
) -> None:
    routes = sorted(
        ((m, p) for m, p in CONSOLE_ROUTES if _area(p) == area), key=lambda mp: mp[0] != "GET"
    )
    clients = {role: signed_in(role) for role in ROLES}
    problems: list[str] = []
    with TestClient(create_app(engine)) as anonymous:
        for method, path in routes:
            problems += _walk(method, path, anonymous, clients, make_samples)
    assert not problems, "\n\n".join(problems)


def test_operator_is_scoped_to_assigned_groups(login_as: LoginAs, samples: dict[str, Any]) -> None:
    c = login_as("operator")
    assert c.get(f"/w/default/groups/{samples['g1']}").status_code == 200
    assert c.get(f"/w/default/groups/{samples['g2']}").status_code == 404
    assert c.get(f"/w/default/members/{samples['m1']}").status_code == 200
    assert c.get(f"/w/default/members/{samples['m3']}").status_code == 404
    # The admin sees both.
    admin = login_as("admin")
    assert admin.get(f"/w/default/groups/{samples['g2']}").status_code == 200
    assert admin.get(f"/w/default/members/{samples['m3']}").status_code == 200


def test_a_workspace_without_a_seat_is_not_found(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    c = login_as("owner")
    assert c.get("/w/elsewhere/team").status_code == 404
    with session_scope(engine) as s:
        assert s.query(User).count() == 4


def test_api_routes_refuse_requests_without_a_token(engine: Engine, console_team: Team) -> None:
    with TestClient(create_app(engine)) as c:
        for method, path in sorted(API_ROUTES):
            url = path.replace("{name}", "overview")
            r = c.request(method, url)
            assert r.status_code == 401, f"{method} {url} -> {r.status_code}"
