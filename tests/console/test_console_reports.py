"""Report pages: every report renders, parameters round-trip, errors are 400s in the user's
language, downloads equal the table shown, operators see their groups only, output escaped."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from community import Community
from consolekit import LoginAs, Team
from fastapi.testclient import TestClient
from openpyxl import load_workbook  # type: ignore[import-untyped]
from sqlalchemy import Engine, select

from quanzi.analytics.service import run_report
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry

REPORTS = ("retention", "lifecycle", "funnel", "channels", "invites")
WINDOW = {"from": "2026-10-26", "to": "2026-11-15"}
QUERY = "from=2026-10-26&to=2026-11-15"


def table_rows(html: str) -> list[list[str]]:
    """The raw values (data-v) of the rows of the report table; retention rows get the shown
    rates (data-rate) after the counts, as in the download."""
    m = re.search(r'<table id="report-table"[^>]*>(.*?)</table>', html, re.S)
    assert m, "no report table on the page"
    body = re.search(r"<tbody>(.*?)</tbody>", m.group(1), re.S)
    assert body
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body.group(1), re.S):
        values = re.findall(r'data-v="([^"]*)"', tr)
        rates = re.findall(r'data-rate="([^"]*)"', tr)
        rows.append(values + rates)
    return rows


def headers(html: str) -> list[str]:
    m = re.search(r'<table id="report-table"[^>]*>.*?<thead><tr>(.*?)</tr></thead>', html, re.S)
    assert m
    return [
        re.sub(r"<[^>]+>", "", h).strip()
        for h in re.findall(r"<th[^>]*>(.*?)</th>", m.group(1), re.S)
    ]


def report(
    engine: Engine, name: str, group_ids: frozenset[int] | None = None, **params: Any
) -> dict[str, Any]:
    with session_scope(engine, read_only=True) as s:
        return run_report(s, get_workspace(s, "default"), name, params, group_ids)


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "CSV without a UTF-8 BOM"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def as_text(v: Any) -> str:
    return "" if v is None else str(v)


def same_cell(value: Any, text: str) -> bool:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return text != "" and float(text) == value
    return as_text(value) == text


def test_index_lists_every_report(console_team: Team, login_as: LoginAs) -> None:
    r = login_as("analyst").get("/w/default/reports")
    assert r.status_code == 200
    for name in REPORTS:
        assert f'href="/w/default/reports/{name}"' in r.text
    assert "首次入群" in r.text  # the retention line, in Chinese


@pytest.mark.parametrize("name", REPORTS)
def test_every_report_renders(name: str, console_team: Team, login_as: LoginAs) -> None:
    c = login_as("owner")
    for query in ("", QUERY):
        r = c.get(f"/w/default/reports/{name}?{query}")
        assert r.status_code == 200, r.text
        assert f'href="/w/default/reports/{name}" aria-current="page">' in r.text
        assert "下载 CSV" in r.text or "Download CSV" in r.text
    assert c.get("/w/default/reports/overview").status_code == 404


def test_tables_equal_the_reports(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    c = login_as("owner")
    funnel = report(engine, "funnel", **WINDOW)
    rows = table_rows(c.get(f"/w/default/reports/funnel?{QUERY}").text)
    assert [int(r[1]) for r in rows] == [
        funnel[k] for k in ("acquired", "activated", "retained", "revenue", "referral")
    ]
    # Step conversion: each stage over the one before.
    assert [r[3] for r in rows][:2] == [
        "1.0",
        str(round(funnel["activated"] / funnel["acquired"], 4)),
    ]

    channels = report(engine, "channels", **WINDOW)["channels"]
    rows = table_rows(c.get(f"/w/default/reports/channels?{QUERY}").text)
    assert rows == [
        [as_text(ch[k]) for k in ("channel", "acquired", "activated", "revenue_members", "revenue")]
        for ch in channels
    ]
    assert {ch["channel"] for ch in channels} >= {"flyer", "douyin"}

    lifecycle = report(engine, "lifecycle", **WINDOW)["weeks"]
    rows = table_rows(c.get(f"/w/default/reports/lifecycle?{QUERY}").text)
    assert rows == [
        [as_text(w[k]) for k in ("week", "new", "returning", "resurrecting", "dormant")]
        for w in lifecycle
    ]

    for kind in ("activity", "membership"):
        cohorts = report(engine, "retention", kind=kind, **WINDOW)["cohorts"]
        html = c.get(f"/w/default/reports/retention?{QUERY}&kind={kind}").text
        assert f'data-kind="{kind}"' in html
        rows = table_rows(html)
        assert [r[:2] for r in rows] == [[co["week"], str(co["size"])] for co in cohorts]
        for r, co in zip(rows, cohorts, strict=True):
            assert r[2 : 2 + len(co["retained"])] == [str(n) for n in co["retained"]]
        assert 'data-chart="retention-heatmap"' in html

    invites = report(engine, "invites", **WINDOW)["inviters"]
    rows = table_rows(c.get(f"/w/default/reports/invites?{QUERY}").text)
    assert [r[2] for r in rows] == [i["inviter"] for i in invites] == ["m1"]
    assert rows[0][0] == "1" and rows[0][1] == "王小花"
    assert rows[0][3:] == [str(invites[0][k]) for k in ("raw", "new", "valid", "pending")]


def test_parameters_round_trip(console_team: Team, login_as: LoginAs) -> None:
    c = login_as("owner")
    html = c.get(
        "/w/default/reports/retention?from=2026-10-01&to=2026-11-20&kind=membership&weeks=5&as_of=2026-12-01"
    ).text
    assert 'name="from" value="2026-10-01"' in html and 'name="to" value="2026-11-20"' in html
    assert 'name="weeks" value="5"' in html and 'name="as_of" value="2026-12-01"' in html
    assert re.search(r'<option value="membership" selected>', html)
    # Only the parameters the report takes: lifecycle has no weeks, hold window or kind.
    html = c.get("/w/default/reports/lifecycle?from=2026-10-01&to=2026-11-20&weeks=5").text
    assert 'name="from" value="2026-10-01"' in html and 'name="weeks"' not in html
    html = c.get("/w/default/reports/invites?from=2026-10-01&hold_hours=24").text
    assert 'name="hold_hours" value="24"' in html and 'name="kind"' not in html
    # Downloads carry the same parameters as the page.
    assert (
        'href="/w/default/reports/invites?from=2026-10-01&amp;hold_hours=24&amp;format=csv"' in html
    )
    # Defaults are shown resolved: a 30-day window ending yesterday, 72 hours.
    html = c.get("/w/default/reports/funnel").text
    assert 'name="hold_hours" value="72"' in html


@pytest.mark.parametrize(
    ("query", "zh", "en"),
    [
        (
            "retention?weeks=abc",
            "每组统计周数：'abc' 不是整数",
            "weeks: 'abc' is not a whole number",
        ),
        (
            "retention?weeks=0",
            "每组统计周数必须在 1 到 104 之间",
            "weeks must be between 1 and 104",
        ),
        (
            "channels?from=2026-11-10&to=2026-11-01",
            "开始日期（2026-11-10）不能晚于结束日期（2026-11-01）",
            "must not be after",
        ),
        ("lifecycle?from=2026-13-40", "开始日期：'2026-13-40' 不是有效日期", "is not a date"),
        (
            "retention?kind=both",
            "留存口径只能是 activity 或 membership",
            "kind must be activity or membership",
        ),
        ("invites?hold_hours=-1", "考核期（小时）", "hold_hours"),
        ("funnel?format=pdf", "下载格式只能是 csv 或 xlsx", "format must be csv or xlsx"),
    ],
)
def test_bad_parameters_are_translated_400s(
    query: str, zh: str, en: str, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("owner")
    r = c.get(f"/w/default/reports/{query}")
    assert r.status_code == 400
    assert zh in r.text.replace("&#39;", "'")
    assert 'class="flash flash-error"' in r.text and 'id="report-table"' not in r.text
    # The form keeps what was typed, to be corrected.
    assert 'data-testid="report-params"' in r.text
    c.cookies.set("qz_lang", "en")
    r = c.get(f"/w/default/reports/{query}")
    assert r.status_code == 400 and en in r.text.replace("&#39;", "'")


def _download(c: TestClient, name: str, fmt: str, query: str = QUERY) -> tuple[bytes, str]:
    r = c.get(f"/w/default/reports/{name}?{query}&format={fmt}")
    assert r.status_code == 200, r.text
    return r.content, r.headers["content-disposition"]


@pytest.mark.parametrize("name", REPORTS)
def test_downloads_equal_the_table_shown(
    name: str, engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("analyst")
    html = c.get(f"/w/default/reports/{name}?{QUERY}").text
    shown = table_rows(html)
    body, disposition = _download(c, name, "csv")
    assert disposition == f'attachment; filename="{name}-2026-10-26-2026-11-15.csv"'
    rows = read_csv(body)
    head, data = rows[0], rows[1:]
    if name == "retention":
        assert head[:3] == ["口径", "周", "人数"] and "第0周" in head
        assert [r[1:] for r in data] == shown
    else:
        assert data == shown
        assert head == headers(html)
    workbook = load_workbook(io.BytesIO(_download(c, name, "xlsx")[0]))
    sheet = workbook.active
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == head
    # Numbers are stored as numbers (Excel reads 1.0 back as 1), text as text.
    assert [
        [same_cell(x, y) for x, y in zip(a, b, strict=True)]
        for a, b in zip(cells[1:], data, strict=True)
    ] == [[True] * len(r) for r in data]
    assert len(cells) == len(rows)
    # Switching to English changes the headers, not the numbers.
    c.cookies.set("qz_lang", "en")
    en = read_csv(_download(c, name, "csv")[0])
    assert en[1:] == data or name == "funnel"
    assert en[0] != head and all(re.fullmatch(r"[\x20-\x7e]+", h) for h in en[0])
    if name == "funnel":
        assert [r[0] for r in en[1:]] == [
            "Acquired",
            "Activated",
            "Retained",
            "Revenue",
            "Referral",
        ]
        assert [r[1:] for r in en[1:]] == [r[1:] for r in data]
    with session_scope(engine, read_only=True) as s:
        audits = list(s.scalars(select(AuditEntry).where(AuditEntry.action == "report.export")))
    assert len(audits) == 3 and {a.target for a in audits} == {name}
    assert audits[0].actor == "analyst@example.com"


def test_operator_sees_only_assigned_groups(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    c = login_as("operator")
    scope = frozenset(console_team.operator_groups)
    for name in REPORTS:
        html = c.get(f"/w/default/reports/{name}?{QUERY}").text
        assert 'data-testid="scope-note"' in html, name
    channels = report(engine, "channels", scope, **WINDOW)["channels"]
    rows = shown = table_rows(c.get(f"/w/default/reports/channels?{QUERY}").text)
    assert [r[0] for r in rows] == [ch["channel"] for ch in channels]
    # m1 (flyer) and m2 (invited, no channel) joined g1; m3 (douyin) joined g2.
    assert {r[0] for r in rows} == {"flyer", "(none)"}
    funnel = report(engine, "funnel", scope, **WINDOW)
    rows = table_rows(c.get(f"/w/default/reports/funnel?{QUERY}").text)
    assert int(rows[0][1]) == funnel["acquired"] == 2  # m1 and m2; m3 is in g2
    data = read_csv(_download(c, "channels", "csv")[0])[1:]
    assert data == shown
    owner = login_as("owner").get(f"/w/default/reports/channels?{QUERY}").text
    assert 'data-testid="scope-note"' not in owner and "douyin" in owner
    assert "douyin" not in c.get(f"/w/default/reports/channels?{QUERY}").text


def test_inviter_names_are_escaped(engine: Engine, console_team: Team, login_as: LoginAs) -> None:
    community = Community(engine)
    community.add(
        "member.joined",
        "2026-11-06T10:00:00+08:00",
        id="evil-join",
        group="g1",
        member="evil",
        name="<script>alert(1)</script>",
    )
    community.add(
        "member.joined",
        "2026-11-06T11:00:00+08:00",
        id="evil-invitee",
        group="g1",
        member="m9",
        inviter="evil",
    )
    html = login_as("owner").get(f"/w/default/reports/invites?{QUERY}").text
    assert "<script>alert(1)</script>" not in html
    assert re.search(
        r'href="/w/default/members/\d+">&lt;script&gt;alert\(1\)&lt;/script&gt;</a>', html
    )
