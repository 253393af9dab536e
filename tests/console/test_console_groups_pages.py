"""Groups pages: the list equals the groups report, sorting, filtering, paging, scoping, health."""

from __future__ import annotations

import re

from community import Community
from consolekit import LoginAs, Team
from sqlalchemy import Engine

DAY = "2026-11-05"


def _rows(html: str) -> list[tuple[str, list[str]]]:
    """(group key, cell texts) of each list row."""
    out = []
    for key, body in re.findall(r'<tr data-group="([^"]+)">(.*?)</tr>', html, re.S):
        cells = [
            re.sub(r"<[^>]+>", "", c).strip()
            for c in re.findall(r"<td[^>]*>(.*?)</td>", body, re.S)
        ]
        out.append((key, cells))
    return out


def test_list_figures_equal_the_groups_report(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    expected = Community(engine).report("groups", date=DAY)["groups"]
    c = login_as("owner")
    c.cookies.set("qz_lang", "en")
    r = c.get(f"/w/default/groups?date={DAY}&sort=name&desc=0")
    assert r.status_code == 200
    rows = dict(_rows(r.text))
    assert set(rows) == {e["group"] for e in expected}
    for e in expected:
        cells = rows[e["group"]]
        assert cells[1:4] == [str(e["size"]), str(e["joins_7d"]), str(e["leaves_7d"])]
        assert cells[4] == str(e["messages_7d"])
        assert cells[5] == f"{e['activity_rate_7d'] * 100:.1f}%"
        assert cells[7] == str(e["silent"])


def test_sorting_filtering_and_paging(console_team: Team, login_as: LoginAs) -> None:
    c = login_as("admin")

    def keys(query: str) -> list[str]:
        return [k for k, _ in _rows(c.get(f"/w/default/groups?date={DAY}&{query}").text)]

    # g1 had 2 messages in the week (m1 and staff1), g2 one.
    assert keys("sort=messages_7d&desc=1") == ["g1", "g2"]
    assert keys("sort=messages_7d&desc=0") == ["g2", "g1"]
    asc = [k for k, _ in _rows(c.get(f"/w/default/groups?date={DAY}&sort=name&desc=0").text)]
    desc = [k for k, _ in _rows(c.get(f"/w/default/groups?date={DAY}&sort=name&desc=1").text)]
    assert asc == list(reversed(desc)) and len(asc) == 2
    found = _rows(c.get(f"/w/default/groups?date={DAY}&q=读书").text)
    assert [k for k, _ in found] == ["g2"]
    assert _rows(c.get(f"/w/default/groups?date={DAY}&status=dismissed").text) == []
    # An unknown sort or a page past the end is refused or empty, never a crash.
    assert c.get("/w/default/groups?sort=nope").status_code == 400
    assert c.get("/w/default/groups?page=0").status_code == 400
    assert _rows(c.get(f"/w/default/groups?date={DAY}&page=5").text) == []


def test_group_page_shows_figures_verdict_members_and_history(
    console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("owner")
    gid = console_team.operator_groups[0]
    r = c.get(f"/w/default/groups/{gid}?date={DAY}")
    assert r.status_code == 200
    assert "妈妈群一" in r.text
    assert 'data-chart="group-size"' in r.text and 'data-chart="group-flow"' in r.text
    assert 'data-testid="verdict"' in r.text
    assert "新群" in r.text  # created 2026-11-01: less than 14 days old
    assert "王小花" in r.text and "小助手" in r.text  # current members, staff marked
    assert "李雷" not in r.text.split('id="members"')[1]  # m2 left on 11-05
    c.cookies.set("qz_lang", "en")
    r = c.get(f"/w/default/groups/{gid}?date={DAY}")
    assert "New group" in r.text and "too young to compare weeks" in r.text


def test_operator_sees_only_assigned_groups(console_team: Team, login_as: LoginAs) -> None:
    c = login_as("operator")
    keys = [k for k, _ in _rows(c.get(f"/w/default/groups?date={DAY}&status=all").text)]
    assert keys == ["g1"]
    assert c.get(f"/w/default/groups/{console_team.other_groups[0]}").status_code == 404
    assert c.get(f"/w/default/groups/{console_team.operator_groups[0]}").status_code == 200
    assert c.get("/w/default/groups/999999").status_code == 404


def test_hostile_group_names_are_escaped(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    bad = '"><img src=x onerror=alert(1)>'
    Community(engine).add(
        "group.updated", "2026-11-04T10:00:00+08:00", id="xss-g2", group="g2", name=bad
    )
    c = login_as("owner")
    for url in (
        f"/w/default/groups?date={DAY}",
        f"/w/default/groups/{console_team.other_groups[0]}?date={DAY}",
    ):
        r = c.get(url)
        assert r.status_code == 200
        assert "<img src=x" not in r.text
        assert "&lt;img src=x onerror=alert(1)&gt;" in r.text
