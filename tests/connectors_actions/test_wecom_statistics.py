"""WeCom's group statistics next to Quanzi's: a corp synced from the stand-in, WeCom's figures
fetched through the console (group_statistic action → client → stand-in), both shown."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine

STANDIN_DIR = str(Path(__file__).resolve().parent.parent / "wecom_standin")
if STANDIN_DIR not in sys.path:
    sys.path.insert(0, STANDIN_DIR)

from standin import Scenario, StandIn, build_scenario, local_ts  # noqa: E402

# The same folder's helpers: the queue reset (autouse) and a signed-in console client.
from test_wecom_actions import _queue_and_no_sleep, signed_in  # noqa: E402, F401

from quanzi.analytics.service import run_report  # noqa: E402
from quanzi.connectors.wecom import statistics  # noqa: E402
from quanzi.connectors.wecom.client import WecomClient  # noqa: E402
from quanzi.connectors.wecom.service import connect  # noqa: E402
from quanzi.connectors.wecom.sync import sync  # noqa: E402
from quanzi.core.workspaces.service import get_or_create_workspace  # noqa: E402
from quanzi.db.engine import session_scope  # noqa: E402
from quanzi.web.app import create_app  # noqa: E402

CORP_ID = "ww0123456789abcdef"
AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
DAY = date(2026, 10, 1)
URL = "/w/w1/wecom/statistics"
ROW_RE = re.compile(
    r'data-metric="(\w+)" data-wecom="(-?\d*)" data-quanzi="(-?\d+)" data-differs="([01])"'
)


@pytest.fixture
def corp() -> Scenario:
    sc = build_scenario(groups=3, customers=30, staff=2, day=DAY)
    sc.corp_id = CORP_ID
    return sc


@pytest.fixture
def wecom(corp: Scenario) -> Iterator[StandIn]:
    with StandIn(corp) as server:
        yield server


def synced(engine: Engine, wecom: StandIn) -> int:
    with session_scope(engine) as s:
        ws_id = get_or_create_workspace(s, "w1", "Asia/Shanghai").id
        connect(
            s,
            ws_id,
            corp_id=CORP_ID,
            secret=wecom.sc.secret,
            token="QDG6eK",
            encoding_aes_key=AES_KEY,
            api_base=wecom.api_base,
        )
    client = WecomClient(CORP_ID, wecom.sc.secret, api_base=wecom.api_base, sleep=lambda _s: None)
    with client:
        sync(engine, ws_id, client)
    return ws_id


def shown(html: str) -> dict[str, tuple[int | None, int, bool]]:
    return {key: (int(w) if w else None, int(q), d == "1") for key, w, q, d in ROW_RE.findall(html)}


def test_the_page_shows_wecoms_figures_and_quanzis_for_the_same_groups(
    engine: Engine, wecom: StandIn, corp: Scenario
) -> None:
    ws_id = synced(engine, wecom)
    app = create_app(engine)
    owner, analyst = signed_in(engine, app, "owner"), signed_in(engine, app, "analyst")

    before = owner.get(f"{URL}?date={DAY}")
    assert before.status_code == 200 and 'data-testid="no-wecom-figures"' in before.text
    assert all(w is None for w, _q, _d in shown(before.text).values())

    r = owner.post(
        URL,
        data={
            "csrf_token": owner.csrf,  # type: ignore[attr-defined]
            "day": DAY.isoformat(),
            "owners": "",  # every owner Quanzi knows from the sync
            "idempotency_key": "fetch-1",
        },
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    assert r.headers["location"] == f"{URL}?date={DAY}&done=fetched"
    [body] = [b for p, b in wecom.requests if p == "externalcontact/groupchat/statistic"]
    assert body["owner_filter"] == {"userid_list": ["staff_00", "staff_01"]}
    assert body["day_begin_time"] == local_ts(DAY, 0)

    # WeCom's side, from the scenario itself.
    start, stop = local_ts(DAY, 0), local_ts(DAY, 86400)
    members = [m for c in corp.chats.values() for m in c.members.values()]
    wecom_expected = {
        "new_members": sum(1 for m in members if start <= m.join_time < stop),
        "member_total": len(members),
        "groups": len(corp.chats),
        "new_groups": 0,
        "groups_with_messages": 0,
        "members_with_messages": 0,
        "messages": 0,
    }
    # Quanzi's side, from its own reports of that day.
    with session_scope(engine, read_only=True) as s:
        from quanzi.core.workspaces.models import Workspace

        ws = s.get(Workspace, ws_id)
        assert ws is not None
        overview = run_report(s, ws, "overview", {"date": DAY.isoformat()})
        sizes = sum(
            g["size"] for g in run_report(s, ws, "groups", {"date": DAY.isoformat()})["groups"]
        )
    assert overview["new_members"] == corp.expect_overview(DAY)["new_members"]
    quanzi_expected = {
        "new_members": overview["new_members"],
        "member_total": sizes,
        "groups": overview["groups"],
        "new_groups": 0,
        "groups_with_messages": 0,
        "members_with_messages": overview["active_members"],
        "messages": overview["messages"],
    }

    for client in (owner, analyst):  # analysts read the stored figures too
        page = client.get(f"{URL}?date={DAY}")
        assert page.status_code == 200
        got = shown(page.text)
        assert list(got) == [k for k, _f in statistics.METRICS]
        assert {k: w for k, (w, _q, _d) in got.items()} == wecom_expected
        assert {k: q for k, (_w, q, _d) in got.items()} == quanzi_expected
        # Differences highlighted: WeCom counts the group owners (staff) as members and a
        # customer in two groups twice; the rest agrees.
        differs = {k for k, (_w, _q, d) in got.items() if d}
        assert differs == {"new_members", "member_total"}
        assert wecom_expected["member_total"] - sizes == len(corp.chats)  # one owner per group
        assert wecom_expected["new_members"] > overview["new_members"]
        assert page.text.count('class="differs"') == 2
        assert "付费的会话内容存档" in page.text  # the plain-words note, zh-CN
    assert "获取企业微信数据" in owner.get(f"{URL}?date={DAY}").text
    assert "获取企业微信数据" not in analyst.get(f"{URL}?date={DAY}").text


def test_roles_and_errors(engine: Engine, wecom: StandIn) -> None:
    ws_id = synced(engine, wecom)
    app = create_app(engine)
    owner, analyst = signed_in(engine, app, "owner"), signed_in(engine, app, "analyst")
    operator = signed_in(engine, app, "operator")
    form = {"day": DAY.isoformat(), "owners": "staff_00", "idempotency_key": "k1"}

    r = analyst.post(URL, data={"csrf_token": analyst.csrf, **form})  # type: ignore[attr-defined]
    assert r.status_code == 403
    assert owner.post(URL, data=form).status_code == 403  # no CSRF token
    assert wecom.calls_to("externalcontact/groupchat/statistic") == 0

    # Operators see assigned groups only: no corp-wide figures for them.
    page = operator.get(f"{URL}?date={DAY}")
    assert page.status_code == 200 and 'data-testid="statistics-scoped"' in page.text
    assert "data-metric=" not in page.text

    assert owner.get(f"{URL}?date=2026-13-01").status_code == 400

    # WeCom refuses (the secret lacks the permission): said in words, not a 500.
    wecom.faults.forbidden = {"externalcontact/groupchat/statistic"}
    r = owner.post(URL, data={"csrf_token": owner.csrf, **form})  # type: ignore[attr-defined]
    assert r.status_code == 502 and "errcode 48002" in r.text
    with session_scope(engine, read_only=True) as s:
        assert statistics.stored(s, ws_id, DAY) is None
