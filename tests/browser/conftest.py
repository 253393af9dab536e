"""Browser tests: the real app under uvicorn, driven by Debian's Chromium through Playwright.

- `console` (session): a SQLite file holding a small deterministic demo community (seed 7,
  300 members, 30 days ending END_DAY), hostile names and messages, one member with a phone,
  and the users owner@/operator@ (two groups)/analyst@ with PASSWORD; the app is served by
  uvicorn in a background thread on 127.0.0.1 and a free port.
- `browser` (session): one headless Chromium (/usr/bin/chromium; never a downloaded one).
- `page`: a fresh context per test (zh-CN, 1280×800); `page_as("analyst")`: a page already
  logged in as that role (the login is done once per role and its cookies reused).

Without /usr/bin/chromium the tests are skipped with the reason, except under CI=true, where a
missing browser is a failure: scripts/test installs it (apt-get install chromium).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import (
    CHROMIUM,
    END_DAY,
    INVITED_KEY,
    PASSWORD,
    SECRET_KEY,
    TAG_GROUP,
    TAG_NAME,
    XSS_IMG_KEY,
    XSS_SCRIPT_KEY,
    Console,
    extra_events,
    log_in,
)
from sqlalchemy import Engine, select

from quanzi.cli.users import ensure_user
from quanzi.config import get_settings
from quanzi.core.events.service import ingest_lines
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Member, Membership
from quanzi.core.tags import service as tags
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import make_engine, session_scope
from quanzi.db.migrate import upgrade_to_head
from quanzi.demo.generator import DemoSpec
from quanzi.demo.loader import ingest_file, write_events
from quanzi.team import service as team

LAUNCH_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROLES = ("owner", "operator", "analyst")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "browser: drives the console in Chromium (tests/browser; needs /usr/bin/chromium)",
    )


def _require_browser() -> None:
    """Skip (locally) or fail (CI=true) when Chromium or Playwright is missing."""
    problem = None
    if not CHROMIUM.exists():
        problem = (
            f"{CHROMIUM} is missing (apt-get install chromium fonts-noto-cjk; scripts/test does it)"
        )
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            problem = "the playwright package is missing (pip install -e '.[test]')"
    if problem is None:
        return
    if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
        pytest.fail(f"browser tests cannot run under CI: {problem}", pytrace=False)
    pytest.skip(f"browser tests skipped: {problem}")


def _load(engine: Engine, data_dir: Path) -> dict[str, Any]:
    """The demo community plus the tests' own events; returns the ids the tests need."""
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "default").id
    spec = DemoSpec(seed=7, members=300, days=30, groups=24, end_day=END_DAY)
    path = data_dir / "demo.jsonl"
    write_events(spec, path)
    report = ingest_file(engine, ws_id, path)
    assert not report.refused, report.refused[:5]
    with session_scope(engine, read_only=True) as s:
        groups = list(
            s.execute(
                select(Group.group_key, Group.id)
                .where(Group.workspace_id == ws_id)
                .order_by(Group.group_key)
            ).all()
        )
        base_key, base_id = groups[0]
        phone_key = s.scalar(
            select(Member.member_key)
            .join(Membership, Membership.member_id == Member.id)
            .where(
                Membership.group_id == base_id,
                Membership.left_us.is_(None),
                Member.is_staff.is_(False),
            )
            .order_by(Member.member_key)
            .limit(1)
        )
    assert phone_key is not None
    report = ingest_lines(engine, ws_id, extra_events(base_key, phone_key))
    assert not report.refused, report.refused[:5]
    with session_scope(engine) as s:
        tags.create_tag(s, ws_id, tags.create_tag_group(s, ws_id, TAG_GROUP).id, TAG_NAME)
    with session_scope(engine, read_only=True) as s:
        keys = [phone_key, XSS_SCRIPT_KEY, XSS_IMG_KEY, INVITED_KEY]
        members = dict(
            s.execute(
                select(Member.member_key, Member.id).where(
                    Member.workspace_id == ws_id, Member.member_key.in_(keys)
                )
            ).all()
        )
    return {
        "ws_id": ws_id,
        "operator_groups": [groups[0][1], groups[1][1]],
        "other_group": groups[5][1],
        "hostile_group": base_id,
        "phone_member": members[phone_key],
        "hostile_members": [members[XSS_SCRIPT_KEY], members[XSS_IMG_KEY]],
        "invited_member": members[INVITED_KEY],
    }


class _Server(threading.Thread):
    def __init__(self, app: Any, sock: socket.socket) -> None:
        super().__init__(name="quanzi-browser-server", daemon=True)
        import uvicorn

        self.sock = sock
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
        )

    def run(self) -> None:
        self.server.run(sockets=[self.sock])

    def start_and_wait(self) -> None:
        self.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the console did not start under uvicorn")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.join(timeout=10)


@pytest.fixture(scope="session")
def console() -> Iterator[Console]:
    _require_browser()
    from quanzi.web.app import create_app

    root = Path(tempfile.mkdtemp(prefix="quanzi-browser-"))
    engine = make_engine(f"sqlite:///{root / 'quanzi.sqlite3'}")
    server = None
    try:
        # The console's settings while it is built; during each test `_console_settings` sets
        # them again (only there: other tests in this process must not see them).
        with pytest.MonkeyPatch.context() as env:
            env.setenv("QUANZI_DATA_DIR", str(root))
            env.setenv("QUANZI_SECRET_KEY", SECRET_KEY)
            get_settings.cache_clear()
            upgrade_to_head(engine)
            facts = _load(engine, root)
            emails = {role: f"{role}@browser.quanzi.test" for role in ROLES}
            with session_scope(engine) as s:
                for role, email in emails.items():
                    user = ensure_user(s, "default", email, role, PASSWORD)
                    if role == "operator":
                        team.assign_groups(s, facts["ws_id"], user.id, facts["operator_groups"])
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = _Server(create_app(engine), sock)
            server.start_and_wait()
        get_settings.cache_clear()
        yield Console(
            base=f"http://127.0.0.1:{port}",
            engine=engine,
            workspace="default",
            end_day=END_DAY,
            emails=emails,
            **facts,
        )
    finally:
        if server is not None:
            server.stop()
        engine.dispose()
        get_settings.cache_clear()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def _console_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The server thread reads settings too: during a browser test they are the console's
    (its secret key opens the workspace's personal data), not the per-test data directory."""
    monkeypatch.setenv("QUANZI_SECRET_KEY", SECRET_KEY)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def browser(console: Console) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _new_context(browser: Any, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"locale": "zh-CN", "viewport": {"width": 1280, "height": 800}}
    options.update(kwargs)
    context = browser.new_context(**options)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = _new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


PageAs = Callable[..., Any]


@pytest.fixture
def page_as(browser: Any, console: Console) -> Iterator[PageAs]:
    """`page_as("analyst", viewport={...})`: a new page whose context is logged in as the role."""
    contexts: list[Any] = []

    def make(role: str, **kwargs: Any) -> Any:
        if role not in console.states:
            ctx = _new_context(browser)
            try:
                log_in(ctx.new_page(), console, role, wait_until="commit")
                console.states[role] = ctx.storage_state()
            finally:
                ctx.close()
        context = _new_context(browser, storage_state=console.states[role], **kwargs)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()
