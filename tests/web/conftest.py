"""The app on the test's database, and API tokens of workspaces in it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from quanzi.core.workspaces.service import create_token, get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.jobs import reset_backend
from quanzi.web.app import create_app

MakeToken = Callable[[str], str]


@pytest.fixture(autouse=True)
def _job_queue_of_this_test() -> Iterator[None]:
    """Jobs a test queues (POST /api/v1/rebuild) go to the queue file in its own data dir."""
    reset_backend()
    yield
    reset_backend()


@pytest.fixture
def make_token(engine: Engine) -> MakeToken:
    """`make_token("acme")`: a fresh API token of workspace acme (created on first use)."""

    def make(workspace: str) -> str:
        with session_scope(engine) as session:
            return create_token(session, get_or_create_workspace(session, workspace))

    return make


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine)) as c:
        yield c


@pytest.fixture
def auth(make_token: MakeToken) -> dict[str, str]:
    """Headers of a token of workspace `default`."""
    return {"Authorization": f"Bearer {make_token('default')}"}
