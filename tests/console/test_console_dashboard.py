"""Dashboard: the day's cards equal the overview report, 7-day cards, colours, lists, scoping."""

from __future__ import annotations

import re
from datetime import date, timedelta

from community import Community
from consolekit import LoginAs, Team
from sqlalchemy import Engine

from quanzi.analytics.service import run_report
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import session_scope
from quanzi.kit.clock import LocalCalendar, day_date

KPI_RE = re.compile(r'data-kpi="([a-z_0-9]+)" data-kpi-value="([^"]*)"')
OVERVIEW_KEYS = (
    "members",
    "new_members",
    "leaves",
    "messages",
    "active_members",
    "member_messages",
    "staff_messages",
    "groups",
)


def kpis(html: str) -> dict[str, str]:
    found = KPI_RE.findall(html)
    out = dict(found)
    assert len(out) == len(found), "a data-kpi key appears twice"
    return out


def kpi_block(html: str, key: str) -> str:
    m = re.search(rf'<div class="kpi" data-kpi="{key}".*?</div>\s*</div>', html, re.S)
    assert m, key
    return m.group(0)


def test_day_cards_equal_the_overview_report(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    community = Community(engine)
    c = login_as("owner")
    for day in ("2026-11-02", "2026-11-03", "2026-11-04", "2026-11-05", "2026-11-20"):
        expected = community.report("overview", date=day)
        r = c.get(f"/w/default/dashboard?date={day}")
        assert r.status_code == 200
        shown = kpis(r.text)
        for key in OVERVIEW_KEYS:
            assert shown[key] == str(expected[key]), (day, key)
        share = (
            round(expected["member_messages"] / expected["messages"], 4)
            if expected["messages"]
            else None
        )
        assert shown["ugc_share"] == ("" if share is None else str(share))
    # 2026-11-03: m3 joined, 2 messages (1 member, 1 staff) from 2 senders of whom 1 is staff.
    shown = kpis(c.get("/w/default/dashboard?date=2026-11-03").text)
    assert (shown["new_members"], shown["messages"], shown["ugc_share"]) == ("1", "2", "0.5")


def test_week_cards_add_up_the_days(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    community = Community(engine)
    c = login_as("admin")
    shown = kpis(c.get("/w/default/dashboard?date=2026-11-06").text)
    end = date(2026, 11, 6)
    days = [community.report("overview", date=str(end - timedelta(days=i))) for i in range(7)]
    assert shown["new_members_7d"] == str(sum(d["new_members"] for d in days)) == "3"
    assert shown["leaves_7d"] == str(sum(d["leaves"] for d in days)) == "1"
    assert shown["messages_7d"] == str(sum(d["messages"] for d in days)) == "3"
    assert shown["members_7d"] == str(days[0]["members"])
    # m1's order of ¥99.00 on 11-04 is the week's revenue.
    assert shown["revenue_fen_7d"] == "9900"


def test_changes_are_coloured_and_leaves_rising_is_bad(
    console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("owner")
    c.cookies.set("qz_lang", "en")
    html = c.get("/w/default/dashboard?date=2026-11-05").text
    # m2 left on 11-05 (none the day before): a rise, and bad.
    leaves = kpi_block(html, "leaves")
    assert 'class="kpi-change bad"' in leaves and "+1" in leaves
    # No one joined on 11-05 after one on 11-04... none on 11-04 either: flat.
    assert 'class="kpi-change flat"' in kpi_block(html, "new_members")
    html = c.get("/w/default/dashboard?date=2026-11-02").text
    new = kpi_block(html, "new_members")
    assert 'class="kpi-change good"' in new and "+2" in new


def test_default_day_is_yesterday_in_the_workspace_zone(
    console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("analyst")
    r = c.get("/w/default/dashboard")
    assert r.status_code == 200
    cal = LocalCalendar("Asia/Shanghai")
    yesterday = day_date(cal.today() - 1).isoformat()
    assert f'name="date" value="{yesterday}"' in r.text
    assert '<h2 id="h-day">昨日' in r.text and "<h1>概览</h1>" in r.text


def test_lists_link_to_groups_and_members(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("owner")
    html = c.get("/w/default/dashboard?date=2026-11-05").text
    g1, g2 = console_team.operator_groups[0], console_team.other_groups[0]
    top = re.search(r'data-testid="top-groups">(.*?)</table>', html, re.S)
    assert top
    assert f'href="/w/default/groups/{g1}?date=2026-11-05">妈妈群一</a>' in top.group(1)
    assert f'href="/w/default/groups/{g2}?date=2026-11-05">读书会</a>' in top.group(1)
    members = re.search(r'data-testid="top-members">(.*?)</table>', html, re.S)
    assert members and re.search(r'href="/w/default/members/\d+">王小花</a>', members.group(1))
    assert "小助手" not in members.group(1)  # staff are not members
    inviters = re.search(r'data-testid="top-inviters">(.*?)</table>', html, re.S)
    assert inviters and re.search(r'href="/w/default/members/\d+">王小花</a>', inviters.group(1))
    channels = re.search(r'data-testid="channels">(.*?)</table>', html, re.S)
    assert channels and "flyer" in channels.group(1) and "douyin" in channels.group(1)
    assert 'data-chart="dash-series"' in html and 'data-chart="dash-channels"' in html


def test_quiet_groups_show_this_and_last_week(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    # g2's only member posted on 11-04; nothing the week after: its rate fell from 100% to 0%.
    c = login_as("owner")
    c.cookies.set("qz_lang", "en")
    html = c.get("/w/default/dashboard?date=2026-11-11").text
    quiet = re.search(r'data-testid="quiet-groups">(.*?)</table>', html, re.S)
    assert quiet, "no quiet groups listed"
    row = re.search(r"读书会</a>(.*?)</tr>", quiet.group(1), re.S)
    assert row
    cells = [
        re.sub(r"<[^>]+>", "", x).strip()
        for x in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    ]
    assert cells[1:3] == ["0.0%", "100.0%"]


def test_operator_sees_only_assigned_groups(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("operator")
    html = c.get("/w/default/dashboard?date=2026-11-03").text
    assert 'data-testid="scope-note"' in html
    shown = kpis(html)
    with session_scope(engine, read_only=True) as s:
        expected = run_report(
            s,
            get_workspace(s, "default"),
            "overview",
            {"date": "2026-11-03"},
            frozenset(console_team.operator_groups),
        )
    for key in OVERVIEW_KEYS:
        assert shown[key] == str(expected[key]), key
    # m3 joined g2 that day: not the operator's.
    assert shown["new_members"] == "0" and shown["groups"] == "1"
    assert "读书会" not in html and "韩梅梅" not in html
    owner = login_as("owner").get("/w/default/dashboard?date=2026-11-03").text
    assert 'data-testid="scope-note"' not in owner and kpis(owner)["new_members"] == "1"


def test_bad_date_is_a_translated_400(console_team: Team, login_as: LoginAs) -> None:
    c = login_as("owner")
    r = c.get("/w/default/dashboard?date=2026-13-01")
    assert r.status_code == 400
    assert "不是有效日期" in r.text


def test_member_names_are_escaped(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    community = Community(engine)
    evil = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'
    # Explicit ids: the fixture's events already use the generated ones.
    community.add(
        "member.joined",
        "2026-11-04T10:00:00+08:00",
        id="evil-join",
        group="g1",
        member="evil",
        name=evil,
    )
    community.add(
        "message.posted",
        "2026-11-04T11:00:00+08:00",
        id="evil-msg",
        group="g1",
        member="evil",
        text="x",
    )
    html = login_as("owner").get("/w/default/dashboard?date=2026-11-05").text
    top = re.search(r'data-testid="top-members">(.*?)</table>', html, re.S)
    assert top and "alert(1)" in top.group(1)
    assert "<script>alert(1)" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
