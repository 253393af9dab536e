"""Reports as flat tables, and tables as CSV (Excel-friendly) or XLSX files.

A table is (columns, rows): machine column names and rows of plain values (str, int, float,
None). `labels(name, locale)` gives each column a zh-CN or English header for the web layer.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]

Cell = str | int | float | None
Table = tuple[list[str], list[list[Cell]]]

FUNNEL_STAGES = ("acquired", "activated", "retained", "revenue", "referral")

# Machine name → (zh-CN, en). Retention's week columns (w0…, rate_w0…) are made on the fly.
_LABELS: dict[str, tuple[str, str]] = {
    "date": ("日期", "Date"),
    "members": ("成员数", "Members"),
    "new_members": ("新成员", "New members"),
    "leaves": ("退群", "Leaves"),
    "messages": ("消息数", "Messages"),
    "member_messages": ("成员消息", "Member messages"),
    "staff_messages": ("员工消息", "Staff messages"),
    "active_members": ("活跃成员", "Active members"),
    "groups": ("群数", "Groups"),
    "group": ("群 ID", "Group"),
    "name": ("群名称", "Name"),
    "size": ("人数", "Size"),
    "joins_7d": ("7日入群", "Joins (7d)"),
    "leaves_7d": ("7日退群", "Leaves (7d)"),
    "messages_7d": ("7日消息", "Messages (7d)"),
    "active_7d": ("7日活跃", "Active (7d)"),
    "activity_rate_7d": ("7日活跃率", "Activity rate (7d)"),
    "ugc_share_7d": ("7日成员消息占比", "UGC share (7d)"),
    "silent": ("沉默成员", "Silent"),
    "inviter": ("邀请人", "Inviter"),
    "raw": ("邀请", "Raw invites"),
    "new": ("新成员邀请", "New-member invites"),
    "valid": ("有效邀请", "Valid invites"),
    "pending": ("待定邀请", "Pending invites"),
    "kind": ("口径", "Kind"),
    "week": ("周", "Week"),
    "returning": ("持续活跃", "Returning"),
    "resurrecting": ("回流", "Resurrecting"),
    "dormant": ("沉寂", "Dormant"),
    "stage": ("阶段", "Stage"),
    "share_of_acquired": ("占获客比例", "Share of acquired"),
    "channel": ("渠道", "Channel"),
    "acquired": ("获客", "Acquired"),
    "activated": ("激活", "Activated"),
    "retained": ("留存", "Retained"),
    "revenue": ("付费", "Revenue"),
    "referral": ("推荐", "Referral"),
    "revenue_members": ("付费成员", "Paying members"),
    "revenue_fen": ("收入（分）", "Revenue (fen)"),
}
# `new` is a lifecycle stage as well as an invite count; the lifecycle header says which.
_LIFECYCLE_LABELS = {"new": ("新增活跃", "New")}
_STAGE_LABELS = {k: _LABELS[k] for k in FUNNEL_STAGES}


def _columns_of(rows: Sequence[dict[str, Any]], names: Sequence[str]) -> list[list[Cell]]:
    return [[r.get(n) for n in names] for r in rows]


def report_table(name: str, answer: dict[str, Any]) -> Table:
    """One report answer (contracts/metrics.md shape) as columns and rows."""
    if name == "overview":
        cols = [
            "date",
            "members",
            "new_members",
            "leaves",
            "messages",
            "member_messages",
            "staff_messages",
            "active_members",
            "groups",
        ]
        return cols, _columns_of([answer], cols)
    if name == "groups":
        keys = [
            "group",
            "name",
            "size",
            "joins_7d",
            "leaves_7d",
            "messages_7d",
            "active_7d",
            "activity_rate_7d",
            "ugc_share_7d",
            "silent",
        ]
        rows = [[answer["date"], *r] for r in _columns_of(answer["groups"], keys)]
        return ["date", *keys], rows
    if name == "invites":
        cols = ["inviter", "raw", "new", "valid", "pending"]
        return cols, _columns_of(answer["inviters"], cols)
    if name == "retention":
        return _retention_table(answer)
    if name == "lifecycle":
        cols = ["week", "new", "returning", "resurrecting", "dormant"]
        return cols, _columns_of(answer["weeks"], cols)
    if name == "funnel":
        acquired = answer["acquired"]
        stages: list[list[Cell]] = [
            [stage, answer[stage], round(answer[stage] / acquired, 4) if acquired else 0.0]
            for stage in FUNNEL_STAGES
        ]
        return ["stage", "members", "share_of_acquired"], stages
    if name == "channels":
        keys = ["channel", "acquired", "activated", "revenue_members", "revenue"]
        return ["channel", "acquired", "activated", "revenue_members", "revenue_fen"], _columns_of(
            answer["channels"], keys
        )
    raise ValueError(f"unknown report {name!r}")


def _retention_table(answer: dict[str, Any]) -> Table:
    """One row per cohort: week, size, the retained count of each week k (w0…) and its rate
    (rate_w0…, retained / size); weeks not complete yet are empty."""
    cohorts = answer["cohorts"]
    n = max((len(c["retained"]) for c in cohorts), default=0)
    cols = [
        "kind",
        "week",
        "size",
        *(f"w{k}" for k in range(n)),
        *(f"rate_w{k}" for k in range(n)),
    ]
    rows: list[list[Cell]] = []
    for c in cohorts:
        kept: list[Cell] = list(c["retained"]) + [None] * (n - len(c["retained"]))
        rates: list[Cell] = [
            None if r is None else (round(r / c["size"], 4) if c["size"] else 0.0) for r in kept
        ]
        rows.append([answer["kind"], c["week"], c["size"], *kept, *rates])
    return cols, rows


_WEEK_COL = re.compile(r"(rate_)?w(\d+)")


def labels(name: str, locale: str) -> dict[str, str]:
    """Column headers of report `name` in `locale` (zh-CN, else English), by machine name."""
    zh = locale.lower().startswith("zh")
    known = dict(_LABELS)
    if name == "lifecycle":
        known.update(_LIFECYCLE_LABELS)
    if name == "funnel":
        known["members"] = ("人数", "Members")
    out = {k: v[0] if zh else v[1] for k, v in known.items()}
    # Retention week columns, as many as a report has; the caller asks for any it finds.
    for k in range(105):
        out[f"w{k}"] = f"第{k}周" if zh else f"Week {k}"
        out[f"rate_w{k}"] = f"第{k}周留存率" if zh else f"Week {k} rate"
    return out


def stage_label(stage: str, locale: str) -> str:
    """A funnel stage's name (the `stage` column's values) in `locale`."""
    zh, en = _STAGE_LABELS[stage]
    return zh if locale.lower().startswith("zh") else en


# A plain number ("-3000", "1.5") is data, not a formula; anything else starting with one of
# these characters could be run by a spreadsheet (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def _is_formula_like(value: str) -> bool:
    return value.startswith(_FORMULA_START) and not _PLAIN_NUMBER.fullmatch(value)


def safe_cell(value: Cell) -> Cell:
    """A cell a spreadsheet will not run: text that could start a formula gets a leading '."""
    if isinstance(value, str) and _is_formula_like(value):
        return "'" + value
    return value


def to_csv(columns: Sequence[str], rows: Sequence[Sequence[Cell]]) -> bytes:
    """UTF-8 with a BOM (so Excel reads Chinese correctly), CRLF line ends, formulas defused.
    None is an empty cell."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([safe_cell(c) for c in columns])
    for row in rows:
        writer.writerow(["" if c is None else safe_cell(c) for c in row])
    return buf.getvalue().encode("utf-8-sig")


_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def to_xlsx(columns: Sequence[str], rows: Sequence[Sequence[Cell]], sheet_title: str) -> bytes:
    """One sheet: a bold header row, then the rows. Text is always stored as text (never as a
    formula), with Excel's quote prefix where it could look like one."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = _SHEET_BAD.sub("_", sheet_title).strip("'")[:31] or "Sheet1"
    table: list[Sequence[Cell]] = [list(columns), *rows]
    for r, values in enumerate(table, start=1):
        for c, value in enumerate(values, start=1):
            cell = ws.cell(row=r, column=c)
            cell.value = value
            if isinstance(value, str):
                cell.data_type = "s"
                if _is_formula_like(value):
                    cell.quotePrefix = True
            if r == 1:
                cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
