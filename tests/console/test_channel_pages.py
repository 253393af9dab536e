"""The channel codes page: create (audited), the channels report's figures per code, cost per
acquired member, turning a code off; analysts read only."""

from __future__ import annotations

import re

from consolekit import LoginAs, Team
from sqlalchemy import Engine, select

from quanzi.acquisition.models import ChannelCode
from quanzi.analytics.service import run_report
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope
from quanzi.team.models import AuditEntry

RANGE = "from=2026-11-01&to=2026-11-05"


def _create(client, **form: str):  # type: ignore[no-untyped-def]
    data = {
        "csrf_token": client.csrf,
        "name": "门店传单",
        "channel": "flyer",
        "target_kind": "link",
        "url": "https://example.com/flyer",
        "cost": "12.50",
    }
    data.update(form)
    return client.post("/w/default/channels/save", data=data, follow_redirects=False)


def test_owner_creates_a_code_and_sees_the_reports_figures(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    r = _create(owner)
    assert r.status_code == 303 and "done=created" in r.headers["location"]
    with session_scope(engine, read_only=True) as s:
        code = s.scalar(select(ChannelCode))
        assert code is not None and code.cost_fen == 1250 and code.channel == "flyer"
        assert s.scalar(select(AuditEntry.action).where(AuditEntry.action == "channel.created"))
        ws = s.get(Workspace, console_team.ws_id)
        assert ws is not None
        report = run_report(s, ws, "channels", {"from": "2026-11-01", "to": "2026-11-05"})
    flyer = next(c for c in report["channels"] if c["channel"] == "flyer")
    page = owner.get(f"/w/default/channels?{RANGE}")
    assert page.status_code == 200
    row = re.search(rf'<tr data-code="{code.code}">(.*?)</tr>', page.text, re.S)
    assert row is not None
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1))
    # visits, scans, acquired, activated, paying members, revenue, cost, per acquired, …
    assert cells[2] == str(flyer["acquired"]) and cells[3] == str(flyer["activated"])
    assert cells[6] == "¥12.50"
    assert cells[7] == f"¥{12.50 / flyer['acquired']:,.2f}"


def test_bad_cost_is_refused_in_the_form(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    r = _create(owner, cost="abc")
    assert r.status_code == 400 and "abc" in r.text
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(ChannelCode)) is None


def test_analysts_read_but_do_not_create_and_an_inactive_code_is_gone(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    owner = login_as("owner")
    _create(owner)
    with session_scope(engine, read_only=True) as s:
        code = s.scalar(select(ChannelCode))
        assert code is not None
        slug, code_id = code.code, code.id
    analyst = login_as("analyst")
    assert analyst.get(f"/w/default/channels?{RANGE}").status_code == 200
    assert _create(analyst, channel="other").status_code == 403
    assert owner.get(f"/c/{slug}", follow_redirects=False).status_code == 302
    r = owner.post(
        "/w/default/channels/active",
        data={"csrf_token": owner.csrf, "id": str(code_id), "active": "0"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    assert owner.get(f"/c/{slug}", follow_redirects=False).status_code == 404
