"""The import page: a JSON Lines upload gives the CLI's line-by-line result; strict; refusals."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from consolekit import LoginAs, Team
from sqlalchemy import Engine, func, select

from quanzi.config import get_settings
from quanzi.core.events.models import EventRecord
from quanzi.core.events.service import ingest_lines
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry

GOOD = [
    {
        "id": "imp-1",
        "type": "member.joined",
        "ts": "2026-11-06T10:00:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "member": "m9",
        "name": "新人",
    },
    {
        "id": "imp-2",
        "type": "message.posted",
        "ts": "2026-11-06T10:05:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "member": "m9",
        "text": "<script>alert(1)</script>",
    },
]
BAD = '{"id": "imp-bad", "type": "member.joined", "ts": "not a time", "platform": "wecom"}'


def _file(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def _events(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(EventRecord)) or 0)


def _upload(c, content: bytes, name: str = "events.jsonl", strict: bool = False):  # type: ignore[no-untyped-def]
    data = {"csrf_token": c.csrf}
    if strict:
        data["strict"] = "1"
    return c.post(
        "/w/default/import",
        data=data,
        files={"file": (name, content, "application/x-ndjson")},
        follow_redirects=False,
    )


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    monkeypatch.setenv("QUANZI_MAX_INGEST_BODY", "1000")
    get_settings.cache_clear()
    yield 1000
    monkeypatch.undo()
    get_settings.cache_clear()


def test_import_page_shows_the_form_in_chinese(login_as: LoginAs, console_team: Team) -> None:
    r = login_as("admin").get("/w/default/import")
    assert r.status_code == 200
    assert 'enctype="multipart/form-data"' in r.text and "严格模式" in r.text
    assert '<label for="import-file">' in r.text


def test_good_lines_are_applied_and_bad_ones_reported_like_the_cli(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    content = _file(json.dumps(GOOD[0]), BAD, json.dumps(GOOD[1]), json.dumps(GOOD[0]))
    before = _events(engine)
    c = login_as("admin")
    r = _upload(c, content)
    assert r.status_code == 303
    page = c.get(r.headers["location"])
    assert page.status_code == 200
    assert _events(engine) == before + 2
    # The CLI's result for the same lines, in another workspace.
    with session_scope(engine) as s:
        other = get_or_create_workspace(s, "other").id
    cli = ingest_lines(engine, other, content.splitlines(keepends=True)).as_dict()
    assert cli["applied"] == 2 and cli["duplicates"] == 1
    errors = cli["errors"]
    assert isinstance(errors, list) and errors[0].startswith("line 2: ")
    for line in errors:
        assert line.replace('"', "&#34;").replace("'", "&#39;") in page.text
    assert re.search(r'data-testid="applied">2<', page.text)
    assert re.search(r'data-testid="duplicates">1<', page.text)
    assert re.search(r'data-testid="refused">1<', page.text)
    assert "events.jsonl" in page.text and "耗时" in page.text
    with session_scope(engine, read_only=True) as s:
        entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "import.events"))
        assert entry is not None and entry.detail is not None
        assert entry.target == "events.jsonl"
        assert entry.detail["size"] == len(content)
        assert (entry.detail["applied"], entry.detail["duplicates"], entry.detail["refused"]) == (
            2,
            1,
            1,
        )
    # The result links from the audit log.
    assert f"/import?result={entry.id}" in c.get("/w/default/audit").text


def test_strict_applies_nothing(engine: Engine, login_as: LoginAs, console_team: Team) -> None:
    before = _events(engine)
    c = login_as("owner")
    r = _upload(c, _file(json.dumps(GOOD[0]), BAD), strict=True)
    assert r.status_code == 303
    page = c.get(r.headers["location"]).text
    assert _events(engine) == before
    assert "整个文件均未导入" in page and "line 2: " in page


def test_a_bom_is_dropped_and_the_first_line_applied(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    before = _events(engine)
    c = login_as("owner")
    r = _upload(c, b"\xef\xbb\xbf" + _file(json.dumps(GOOD[0])))
    assert r.status_code == 303
    assert _events(engine) == before + 1


def test_non_utf8_wrong_type_and_empty_files_are_refused(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    before = _events(engine)
    c = login_as("admin")
    gbk = _file(json.dumps(GOOD[0]), json.dumps({**GOOD[1], "text": "你好"}, ensure_ascii=False))
    r = _upload(c, gbk.decode().encode("gbk"))
    assert r.status_code == 400
    assert "不是 UTF-8 文本（第 2 行）" in r.text
    r = _upload(c, b"\x89PNG\r\n\x1a\n", name="photo.png")
    assert r.status_code == 415 and "只能导入 JSON Lines 文件" in r.text
    r = _upload(c, b"\n\n")
    assert r.status_code == 400 and "文件为空" in r.text
    r = c.post("/w/default/import", data={"csrf_token": c.csrf})
    assert r.status_code == 400 and "请选择要导入的" in r.text
    assert _events(engine) == before
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(AuditEntry).where(AuditEntry.action == "import.events")) is None


def test_too_large_files_get_413(
    engine: Engine, login_as: LoginAs, console_team: Team, small_limit: int
) -> None:
    before = _events(engine)
    c = login_as("admin")
    content = _file(*[json.dumps({**GOOD[0], "id": f"x{i}"}) for i in range(10)])
    assert len(content) > small_limit
    r = _upload(c, content)
    assert r.status_code == 413 and "文件超过 1 KB" in r.text
    # Far over the limit: refused from the declared length, before the body is read.
    r = _upload(c, content * 400)
    assert r.status_code == 413 and "请拆分" in r.text
    assert 'name="file"' not in r.text  # the error page, not the form after reading it
    assert _events(engine) == before


def test_only_roles_with_import_may_upload(
    engine: Engine, login_as: LoginAs, console_team: Team
) -> None:
    before = _events(engine)
    for role in ("operator", "analyst"):
        c = login_as(role)
        assert c.get("/w/default/import").status_code == 403
        assert _upload(c, _file(json.dumps(GOOD[0]))).status_code == 403
    assert _events(engine) == before


def test_a_result_of_another_workspace_is_not_shown(login_as: LoginAs, console_team: Team) -> None:
    c = login_as("owner")
    assert c.get("/w/default/import?result=999999").status_code == 404
