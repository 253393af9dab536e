"""Console fixtures: a workspace with a small community, a team of every role, logged-in clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from consolekit import PASSWORD, ROLES, LoginAs, Team, log_in, small_community
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from quanzi.cli.users import ensure_user
from quanzi.core.groups.models import Group
from quanzi.db.engine import session_scope
from quanzi.jobs import reset_backend
from quanzi.team import service as team
from quanzi.web.app import create_app


@pytest.fixture(autouse=True)
def _jobs_of_this_test() -> Iterator[None]:
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def console_team(engine: Engine) -> Team:
    """The small community plus owner@, admin@, operator@ (group g1 only), analyst@."""
    small_community(engine)
    emails = {role: f"{role}@example.com" for role in ROLES}
    with session_scope(engine) as s:
        ids = dict(
            s.execute(
                select(Group.group_key, Group.id).where(Group.group_key.in_(["g1", "g2"]))
            ).all()
        )
        for role, email in emails.items():
            user = ensure_user(s, "default", email, role, PASSWORD)
            if role == "operator":
                team.assign_groups(s, user_id=user.id, workspace_id=1, group_ids=[ids["g1"]])
        ws_id = 1
    return Team("default", ws_id, emails, [ids["g1"]], [ids["g2"]])


@pytest.fixture
def login_as(engine: Engine, console_team: Team) -> Iterator[LoginAs]:
    """`login_as("operator")`: a TestClient logged in with that role (client.csrf holds the
    CSRF token to send as the form field csrf_token)."""
    clients: list[TestClient] = []

    def make(role: str) -> TestClient:
        c = TestClient(create_app(engine))
        c.__enter__()
        clients.append(c)
        c.csrf = log_in(c, engine, console_team.emails[role])  # type: ignore[attr-defined]
        return c

    yield make
    for c in clients:
        c.__exit__(None, None, None)
