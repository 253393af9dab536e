"""Hostile member names and messages render as text in a real browser; the login and the
session cookie behave."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from browser_support import (
    HOSTILE_DAY,
    HOSTILE_MESSAGE,
    PASSWORD,
    XSS_IMG,
    XSS_SCRIPT,
    Console,
    log_in,
    no_script_ran,
    zh,
)

from quanzi.web.console.deps import SESSION_COOKIE

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

BOTH = (XSS_SCRIPT, XSS_IMG)

# page id -> (its URL, the hostile texts it must show as text)
PAGES: dict[str, tuple[Callable[[Console], str], tuple[str, ...]]] = {
    "members-list": (lambda c: c.url("/members?q=window.__xss"), BOTH),
    "member-script": (lambda c: c.url(f"/members/{c.hostile_members[0]}"), (XSS_SCRIPT,)),
    "member-img": (lambda c: c.url(f"/members/{c.hostile_members[1]}"), (XSS_IMG,)),
    "member-invited": (lambda c: c.url(f"/members/{c.invited_member}"), (XSS_SCRIPT,)),
    "group": (
        lambda c: c.url(f"/groups/{c.hostile_group}?date={HOSTILE_DAY}"),
        (*BOTH, HOSTILE_MESSAGE),
    ),
    "dashboard": (lambda c: c.url(f"/dashboard?date={HOSTILE_DAY}"), BOTH),
    "invite-leaderboard": (
        lambda c: c.url(f"/reports/invites?from={c.end_day - timedelta(days=29)}&to={c.end_day}"),
        BOTH,
    ),
}


@pytest.mark.parametrize("name", list(PAGES))
def test_hostile_text_renders_as_text(page_as: Any, console: Console, name: str) -> None:
    url, texts = PAGES[name]
    page = page_as("owner")
    response = page.goto(url(console))
    assert response is not None and response.status == 200, response and response.status
    assert "script-src 'self'" in (response.headers.get("content-security-policy") or "")
    page.wait_for_load_state("load")
    assert no_script_ran(page), f"a hostile name ran script on {name}"
    assert page.locator("img[src=x]").count() == 0, f"a hostile name made an <img> on {name}"
    main = page.locator("main").inner_text()
    for text in texts:
        assert text in main, f"{text!r} is not shown as text on {name}"


def test_wrong_password_is_refused_with_a_message(page: Any, console: Console) -> None:
    log_in(page, console, "analyst", password="not-" + PASSWORD)
    alert = page.get_by_role("alert")
    assert zh("Wrong email or password.") in alert.inner_text()
    assert "/login" in page.url
    # The email stays filled in; the password does not.
    assert page.input_value("#email") == console.emails["analyst"]
    assert page.input_value("#password") == ""


def test_session_cookie_is_http_only(page: Any, console: Console) -> None:
    response = page.goto(f"{console.base}/login")
    assert response is not None
    assert "frame-ancestors 'none'" in (response.headers.get("content-security-policy") or "")
    log_in(page, console, "analyst")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert SESSION_COOKIE in cookies
    assert cookies[SESSION_COOKIE]["httpOnly"] is True
    assert cookies[SESSION_COOKIE]["sameSite"] in ("Lax", "Strict")
    assert SESSION_COOKIE not in page.evaluate("document.cookie")
