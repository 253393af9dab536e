"""Reports as tables, CSV and XLSX: shapes, headers in two languages, formula injection."""

from __future__ import annotations

import csv
import io
from typing import Any

import openpyxl
import pytest
from community import Community, worked_cases
from scoped_community import D1, LATER, D, group_ids, scoped_report

from quanzi.analytics.exports import (
    labels,
    report_table,
    safe_cell,
    stage_label,
    to_csv,
    to_xlsx,
)
from quanzi.analytics.service import REPORT_NAMES

CASES = worked_cases()


def _case(report: str, **match: Any) -> dict[str, Any]:
    for c in CASES:
        if c["report"] == report and all(c["params"].get(k) == v for k, v in match.items()):
            return c["answer"]  # type: ignore[no-any-return]
    raise LookupError(report)


def test_every_worked_answer_flattens_with_labels_for_every_column() -> None:
    for case in CASES:
        columns, rows = report_table(case["report"], case["answer"])
        assert all(len(r) == len(columns) for r in rows)
        for locale in ("zh-CN", "en"):
            names = labels(case["report"], locale)
            assert all(names.get(c) for c in columns), (case["report"], locale)
    assert {c["report"] for c in CASES} == set(REPORT_NAMES)


def test_retention_is_one_row_per_cohort_with_counts_and_rates() -> None:
    answer = {
        "kind": "activity",
        "cohorts": [
            {"week": "2025-W52", "size": 4, "retained": [4, 3, 1]},
            {"week": "2026-W01", "size": 3, "retained": [2]},
        ],
    }
    columns, rows = report_table("retention", answer)
    assert columns == ["kind", "week", "size", "w0", "w1", "w2", "rate_w0", "rate_w1", "rate_w2"]
    assert rows == [
        ["activity", "2025-W52", 4, 4, 3, 1, 1.0, 0.75, 0.25],
        ["activity", "2026-W01", 3, 2, None, None, 0.6667, None, None],  # weeks not complete
    ]
    assert labels("retention", "zh-CN")["rate_w1"] == "第1周留存率"
    assert labels("retention", "en")["w2"] == "Week 2"


def test_funnel_is_one_row_per_stage() -> None:
    answer = {"acquired": 8, "activated": 6, "retained": 3, "revenue": 2, "referral": 0}
    columns, rows = report_table("funnel", answer)
    assert columns == ["stage", "members", "share_of_acquired"]
    assert rows == [
        ["acquired", 8, 1.0],
        ["activated", 6, 0.75],
        ["retained", 3, 0.375],
        ["revenue", 2, 0.25],
        ["referral", 0, 0.0],
    ]
    assert stage_label("activated", "zh-CN") == "激活"
    assert stage_label("activated", "en") == "Activated"


def test_groups_and_lifecycle_tables() -> None:
    answer = _case("groups", date="2025-12-23")
    columns, rows = report_table("groups", answer)
    assert columns[:3] == ["date", "group", "name"]
    assert rows[0][:3] == ["2025-12-23", "gA", "宝妈1群🌸"]
    assert labels("lifecycle", "zh-CN")["new"] != labels("invites", "zh-CN")["new"]


def test_csv_has_a_bom_and_reads_back() -> None:
    answer = _case("groups", date="2025-12-23")
    columns, rows = report_table("groups", answer)
    head = labels("groups", "zh-CN")
    data = to_csv([head[c] for c in columns], rows)
    assert data.startswith(b"\xef\xbb\xbf")
    back = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert back[0][:3] == ["日期", "群 ID", "群名称"]
    assert back[1][2] == "宝妈1群🌸"
    assert len(back) == 1 + len(rows)


@pytest.mark.parametrize("text", ['=HYPERLINK("x")', "+1+2", "-2+3", "@SUM(A1)", "\tx", "=1"])
def test_text_that_could_be_a_formula_gets_an_apostrophe(text: str) -> None:
    assert safe_cell(text) == "'" + text
    data = to_csv(["name"], [[text]])
    assert list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))[1] == ["'" + text]


@pytest.mark.parametrize("value", ["-1001", "-3000", "+86", "普通群", "a=b", 5, -3000, 0.25, None])
def test_plain_values_are_left_alone(value: Any) -> None:
    assert safe_cell(value) == value


def test_xlsx_reads_back_with_openpyxl() -> None:
    columns = ["group", "name", "size", "ugc_share_7d", "revenue_fen"]
    rows: list[list[Any]] = [
        ["gA", "宝妈1群🌸", 6, 0.8333, -3000],
        ["-1001", "=cmd|' /C calc'!A0", 1, None, 0],
    ]
    data = to_xlsx(columns, rows, "群/报表:2025[12]*")
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb.active
    assert ws.title == "群_报表_2025_12__"
    got = [list(r) for r in ws.iter_rows(values_only=True)]
    assert got == [columns, *rows]
    cell = ws.cell(row=3, column=2)
    assert cell.data_type == "s" and cell.quotePrefix  # text, never a formula
    assert ws.cell(row=1, column=1).font.bold


def test_exports_of_a_scoped_community(three_groups: Community) -> None:
    """Every report of the hand-worked three-group community exports on both stores."""
    mine = group_ids(three_groups, "g1", "g2")
    asks: dict[str, dict[str, Any]] = {
        "overview": {"date": D},
        "groups": {"date": D1},
        "invites": {"from_": D, "to": D1, "as_of": LATER},
        "retention": {"from_": D, "to": D, "as_of": LATER},
        "lifecycle": {"from_": D, "to": D},
        "funnel": {"from_": D, "to": D1, "as_of": LATER},
        "channels": {"from_": D, "to": D1, "as_of": LATER},
    }
    for name, params in asks.items():
        columns, rows = report_table(name, scoped_report(three_groups, name, mine, **params))
        wb = openpyxl.load_workbook(io.BytesIO(to_xlsx(columns, rows, name)))
        assert [list(r) for r in wb.active.iter_rows(values_only=True)] == [columns, *rows]
    columns, rows = report_table(
        "channels", scoped_report(three_groups, "channels", mine, **asks["channels"])
    )
    assert rows == [["(none)", 2, 1, 0, 0], ["c1", 1, 1, 0, 0], ["store", 1, 1, 1, 7000]]
    assert columns[-1] == "revenue_fen"
