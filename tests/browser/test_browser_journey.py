"""The main journey through the console, walked in Chromium as a person walks it: log in, read
the dashboard (its numbers are `quanzi report overview`'s), open a group and a member, tag
members in bulk, switch to English, log out. Then what the other roles may not see."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from browser_support import (
    PHONE,
    PHONE_MASKED,
    TAG_NAME,
    Console,
    foreign,
    log_in,
    record_requests,
    screenshot,
    wait_for_charts,
    zh,
)

from quanzi.analytics.service import run_report
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import session_scope

pytestmark = [pytest.mark.browser, pytest.mark.xdist_group("browser")]

NAV = "nav.sidebar"


def overview(console: Console) -> dict[str, Any]:
    """`quanzi report overview --date END` (the CLI calls the same function)."""
    with session_scope(console.engine, read_only=True) as s:
        ws = get_workspace(s, console.workspace)
        return run_report(s, ws, "overview", {"date": console.end_day.isoformat()})


def test_login_page_in_chinese(page: Any, console: Console) -> None:
    page.goto(f"{console.base}/login")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    assert page.get_by_label(zh("Email")).is_visible()
    assert page.get_by_label(zh("Password")).is_visible()
    screenshot(page, "login", full_page=False)


def test_main_journey(page: Any, console: Console) -> None:
    requests = record_requests(page)

    # Log in: type the email and the password, press the button; the dashboard opens.
    log_in(page, console, "owner")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    nav = page.locator(NAV)
    assert nav.get_by_role("link", name=zh("Dashboard"), exact=True).is_visible()
    assert nav.get_by_role("link", name=zh("Groups"), exact=True).is_visible()

    # The demo's last day: its figures are the overview report's, number for number.
    page.goto(console.at_end("/dashboard"))
    expected = overview(console)
    shown = {
        el.get_attribute("data-kpi"): el.get_attribute("data-kpi-value")
        for el in page.locator("[data-kpi][data-kpi-value]").all()
    }
    compared = [k for k in expected if k in shown]
    assert {"members", "new_members", "leaves", "messages", "active_members"} <= set(compared), (
        f"the dashboard shows {sorted(shown)}"
    )
    for key in compared:
        assert shown[key] == str(expected[key]), (key, shown[key], expected[key])
    assert int(expected["members"]) > 0 and int(expected["messages"]) > 0
    # The figure is also what a person reads on the card.
    members_card = page.locator("[data-testid=kpis-day] [data-kpi=members] .kpi-value")
    assert re.sub(r"\D", "", members_card.inner_text()) == str(expected["members"])

    # Charts drawn by Plotly served from this site (the installed plotly package), no CDN.
    wait_for_charts(page)
    assert page.evaluate("typeof window.Plotly") == "object"
    assert f"{console.base}/static/vendor/plotly.min.js" in [u.split("?")[0] for u in requests]
    screenshot(page, "dashboard")

    # Groups: from the sidebar, the report day chosen in the filter, one group opened.
    nav.get_by_role("link", name=zh("Groups"), exact=True).click()
    page.wait_for_url(re.compile(r"/groups"))
    page.fill("#f-date", console.end_day.isoformat())
    page.get_by_role("button", name=zh("Filter"), exact=True).click()
    page.wait_for_url(re.compile(r"date=" + console.end_day.isoformat()))
    rows = page.locator("tbody tr[data-group]")
    assert rows.count() >= 10
    screenshot(page, "groups")
    group_id = console.operator_groups[1]
    page.locator(
        f"tbody a[href$='/groups/{group_id}'], tbody a[href*='/groups/{group_id}?']"
    ).first.click()
    page.wait_for_url(re.compile(rf"/groups/{group_id}\b"))
    assert page.get_by_test_id("verdict").inner_text().strip()
    wait_for_charts(page)
    screenshot(page, "group")

    # A member of the group, opened from the group's member list.
    page.locator("main a[href*='/members/']").first.click()
    page.wait_for_url(re.compile(r"/members/\d+"))
    assert page.locator("h1").inner_text().strip()
    screenshot(page, "member")

    # Members list → select three rows → choose a tag → add: the flash counts them.
    nav.get_by_role("link", name=zh("Members"), exact=True).click()
    page.wait_for_url(re.compile(r"/members"))
    screenshot(page, "members", full_page=False)
    boxes = page.locator("#member-rows input[data-row]")
    chosen = []
    for i in range(3):
        box = boxes.nth(i)
        box.check()
        chosen.append(box.get_attribute("value"))
    assert page.locator("[data-selected-count]").first.inner_text() == "3"
    page.select_option("#bulk-tags", label=TAG_NAME)
    page.get_by_role("button", name=zh("Add tags"), exact=True).click()
    page.wait_for_url(re.compile(r"done=tagged"))
    flash = page.locator(".flash").first.inner_text()
    assert "3" in flash, flash
    page.goto(console.url(f"/members/{chosen[0]}"))
    assert page.locator("main .tag", has_text=TAG_NAME).count() >= 1

    # Retention, drawn.
    nav.get_by_role("link", name=zh("Retention"), exact=True).click()
    page.wait_for_url(re.compile(r"/reports/retention"))
    page.fill("#rp-from", (console.end_day - timedelta(days=29)).isoformat())
    page.fill("#rp-to", console.end_day.isoformat())
    with page.expect_navigation():
        page.locator("[data-testid=report-params] button[type=submit]").click()
    assert page.locator("#report-table tbody tr").count() >= 4
    if page.locator("[data-chart]").count():
        wait_for_charts(page)
    screenshot(page, "retention")

    # English: the same dashboard, the nav reads "Dashboard".
    page.goto(console.at_end("/dashboard"))
    page.locator("header .lang-switch").click()
    page.wait_for_url(re.compile(r"/dashboard"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert nav.get_by_role("link", name="Dashboard", exact=True).is_visible()
    wait_for_charts(page)
    screenshot(page, "dashboard-en")

    # Log out: back at the login page, and the console asks for a login again.
    page.get_by_test_id("logout").click()
    page.wait_for_url(re.compile(r"/login"))
    page.goto(console.url("/dashboard"))
    assert "/login" in page.url

    assert not foreign(requests, console.base), "requests left 127.0.0.1"


def test_dashboard_on_a_phone(page_as: Any, console: Console) -> None:
    page = page_as("owner", viewport={"width": 390, "height": 844})
    page.goto(console.at_end("/dashboard"))
    wait_for_charts(page)
    screenshot(page, "dashboard-phone", full_page=False)


def test_operator_is_refused_a_group_not_assigned(page_as: Any, console: Console) -> None:
    page = page_as("operator")
    page.goto(console.at_end("/groups"))
    listed = {
        int(m.group(1))
        for href in page.locator("tbody a[href*='/groups/']").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))"
        )
        if (m := re.search(r"/groups/(\d+)", href))
    }
    assert listed == set(console.operator_groups)
    response = page.goto(console.url(f"/groups/{console.other_group}"))
    assert response is not None and response.status == 404
    assert zh("Not found") in page.locator("main").inner_text()
    response = page.goto(console.url(f"/groups/{console.operator_groups[0]}"))
    assert response is not None and response.status == 200


def test_analyst_sees_a_masked_phone_and_no_reveal(page_as: Any, console: Console) -> None:
    page = page_as("analyst")
    page.goto(console.url(f"/members/{console.phone_member}"))
    phone = page.locator("dd[data-field=phone]").inner_text()
    assert PHONE_MASKED.search(phone), phone
    assert PHONE not in page.content()
    assert page.locator("form[action$='/reveal']").count() == 0


def test_owner_may_reveal_the_phone(page_as: Any, console: Console) -> None:
    page = page_as("owner")
    page.goto(console.url(f"/members/{console.phone_member}"))
    assert PHONE_MASKED.search(page.locator("dd[data-field=phone]").inner_text())
    page.locator("dd[data-field=phone] form[action$='/reveal'] button").click()
    page.wait_for_load_state()
    assert PHONE in page.locator("dd[data-field=phone]").inner_text()
