"""What the browser tests share: the community's fixed facts, hostile input, small page helpers."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from quanzi.web.i18n import catalog

CHROMIUM = Path("/usr/bin/chromium")
END_DAY = date(2025, 6, 30)  # the demo window's last day (30 days: 2025-06-01 … 06-30)
PASSWORD = "browser-test-password-7"
SECRET_KEY = "browser-tests-secret-key-0123456789abcdef"
PHONE = "13812345678"
PHONE_MASKED = re.compile(r"1\d{2}\*{4}\d{4}")

# Hostile input: member names and a message that would run script if printed unescaped.
XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '"><img src=x onerror="window.__xss=2">'
HOSTILE_MESSAGE = "<script>window.__xss=3</script>看这里"
XSS_SCRIPT_KEY = "hostile_script"
INVITED_KEY = "hostile_guest_0"
HOSTILE_DAY = date(2025, 6, 20)  # outside the dashboard's 7 days, inside the 30-day reports
XSS_IMG_KEY = "hostile_img"

TAG_GROUP = "意向"
TAG_NAME = "高意向"

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "docs" / "screenshots"


@dataclass
class Console:
    """The running console and what the tests need to know about its data."""

    base: str
    engine: Engine
    workspace: str
    ws_id: int
    end_day: date
    emails: dict[str, str]  # role -> email
    operator_groups: list[int]  # Group.id of the operator's two groups
    other_group: int  # Group.id of a group the operator may not see
    hostile_group: int  # Group.id of the group the hostile members joined (the operator's first)
    phone_member: int  # Member.id of the member with a phone number (in the hostile group)
    hostile_members: list[int]  # Member.id of the two members with hostile names
    invited_member: int  # Member.id of a member the first of them invited
    states: dict[str, Any] = field(default_factory=dict)  # role -> Playwright storage state

    def url(self, path: str) -> str:
        return f"{self.base}/w/{self.workspace}{path}"

    def at_end(self, path: str) -> str:
        """A page of the workspace on the demo's last day (pages default to yesterday)."""
        sep = "&" if "?" in path else "?"
        return f"{self.url(path)}{sep}date={self.end_day.isoformat()}"


def _event(n: int, type: str, ts: str, **fields: Any) -> str:
    return json.dumps(
        {"id": f"browser-{n:04d}", "type": type, "ts": ts, "platform": "demo", **fields},
        ensure_ascii=False,
    )


def extra_events(group: str, phone_member: str) -> list[str]:
    """On HOSTILE_DAY, in `group`: two members with hostile names who post a hostile message
    and invite others (so they reach the group's top posters and the invite leaderboard), the
    message as the group's notice, and a phone number for `phone_member` (the demo gives
    nobody a phone)."""
    day = HOSTILE_DAY.isoformat()
    lines: list[str] = []

    def add(type: str, hour: int, minute: int, **fields: Any) -> None:
        ts = f"{day}T{hour:02d}:{minute:02d}:00+08:00"
        lines.append(_event(len(lines) + 1, type, ts, **fields))

    add(
        "member.joined", 8, 0, group=group, member=XSS_SCRIPT_KEY, name=XSS_SCRIPT, channel="poster"
    )
    add("member.joined", 8, 1, group=group, member=XSS_IMG_KEY, name=XSS_IMG, channel="poster")
    for i in range(8):
        inviter = XSS_SCRIPT_KEY if i < 5 else XSS_IMG_KEY
        add(
            "member.joined",
            9,
            i,
            group=group,
            member=INVITED_KEY if i == 0 else f"hostile_guest_{i}",
            name=f"受邀成员{i}",
            inviter=inviter,
            via="invite",
        )
    for i in range(10):
        add("message.posted", 10, i, group=group, member=XSS_SCRIPT_KEY, text=HOSTILE_MESSAGE)
        add("message.posted", 11, i, group=group, member=XSS_IMG_KEY, text=HOSTILE_MESSAGE)
    add("group.updated", 12, 0, group=group, notice=HOSTILE_MESSAGE)
    add("profile.updated", 12, 1, member=phone_member, phone=PHONE)
    return lines


def zh(message: str) -> str:
    """The console's Chinese for an English message (its own catalog)."""
    return catalog("zh-CN").get(message, message)


def log_in(
    page: Any, console: Console, role: str, password: str | None = None, wait_until: str = "load"
) -> None:
    """Log in as a person does: type the email and the password, press the button."""
    page.goto(f"{console.base}/login")
    page.fill("#email", console.emails[role])
    page.fill("#password", password or PASSWORD)
    page.click("form[action='/login'] button[type=submit]")
    if password is None:
        page.wait_for_url(re.compile(r"/w/[^/]+/dashboard"), wait_until=wait_until)


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save docs/screenshots/NAME.png when QUANZI_SCREENSHOTS=1 (the README shows them)."""
    if os.environ.get("QUANZI_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def record_requests(page: Any) -> list[str]:
    """Every URL the page requests from now on."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def foreign(urls: list[str], base: str) -> list[str]:
    """The URLs that left the console's host (data: and blob: stay in the page)."""
    host = urlsplit(base).netloc
    return [
        u for u in urls if urlsplit(u).scheme not in ("data", "blob") and urlsplit(u).netloc != host
    ]


def no_script_ran(page: Any) -> bool:
    return bool(page.evaluate("typeof window.__xss === 'undefined'"))


def wait_for_charts(page: Any) -> None:
    page.wait_for_selector("[data-chart][data-drawn='1']", state="attached")
