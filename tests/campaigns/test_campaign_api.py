"""The campaigns API: token required, list/get, join by phone or member, actions recorded once
per Idempotency-Key (the same answer on retry), the leaderboard, and garbage bodies answered
4xx naming the field (a little hypothesis fuzzing), never 500."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from community import Community
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select
from test_campaign_service import PHONE, live_campaign, make_reward, secs

from quanzi.campaigns import public_endpoints
from quanzi.campaigns.models import CampaignAction, Participant, RewardClaim
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import create_token
from quanzi.db.engine import session_scope
from quanzi.kit.clock import DAY_US, now_us
from quanzi.web.app import create_app

NOW = now_us()


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


@pytest.fixture
def api(c: Community) -> Iterator[TestClient]:
    with session_scope(c.engine) as s:
        ws = s.get(Workspace, c.ws_id)
        assert ws is not None
        token = create_token(s, ws)
    with TestClient(create_app(c.engine)) as tc:
        tc.headers["Authorization"] = f"Bearer {token}"
        yield tc


def _help_campaign(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id)
    live_campaign(
        c.engine, c.ws_id, "help_unlock",
        {"help": {"helpers_needed": 2, "reward_id": reward}}, key="help",
    )  # fmt: skip


def test_token_is_required(c: Community) -> None:
    with TestClient(create_app(c.engine)) as tc:
        assert tc.get("/api/v1/campaigns").status_code == 401
        got = tc.post("/api/v1/campaigns/x/actions", json={"kind": "help", "participant": 1})
        assert got.status_code == 401
        bad = tc.get("/api/v1/campaigns", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401


def test_list_get_join_and_idempotent_actions(c: Community, api: TestClient) -> None:
    _help_campaign(c)
    listed = api.get("/api/v1/campaigns").json()["campaigns"]
    assert [(x["key"], x["kind"], x["status"]) for x in listed] == [("help", "help_unlock", "live")]
    assert api.get("/api/v1/campaigns/help").json()["participants"] == 0
    missing = api.get("/api/v1/campaigns/nope")
    assert missing.status_code == 404 and missing.json()["field"] == "key"
    first = api.post("/api/v1/campaigns/help/participants", json={"phone": PHONE, "name": "张三"})
    assert first.status_code == 201 and first.json()["page"].startswith("/k/")
    owner = first.json()["participant"]
    assert public_endpoints.ref_id(first.json()["ref"]) == owner
    again = api.post("/api/v1/campaigns/help/participants", json={"phone": PHONE})
    assert again.status_code == 200 and again.json()["participant"] == owner
    friend = api.post(
        "/api/v1/campaigns/help/participants",
        json={"phone": "13912345678", "referrer": first.json()["ref"]},
    ).json()["participant"]
    with session_scope(c.engine) as s:
        p = s.get(Participant, friend)
        assert p is not None and p.referrer_id == owner
    body = {"kind": "help", "participant": owner, "other": friend}
    headers = {"Idempotency-Key": "help-1"}
    one = api.post("/api/v1/campaigns/help/actions", json=body, headers=headers)
    two = api.post("/api/v1/campaigns/help/actions", json=body, headers=headers)
    assert one.status_code == two.status_code == 200
    assert one.json() == two.json() and one.json()["counted"] is True
    assert two.headers.get("idempotent-replayed") == "true"
    with session_scope(c.engine) as s:
        helps = s.scalar(
            select(func.count()).select_from(CampaignAction).where(CampaignAction.kind == "help")
        )
        assert helps == 1
    # without a key the engine still counts the helper once
    three = api.post("/api/v1/campaigns/help/actions", json=body)
    assert three.status_code == 200 and three.json()["counted"] is False
    lb = api.get("/api/v1/campaigns/help/leaderboard?n=5")
    assert lb.status_code == 200 and len(lb.json()["top"]) == 2
    assert api.get("/api/v1/campaigns/help/leaderboard?n=0").status_code == 400


def test_invite_task_claim_through_the_api_once(c: Community, api: TestClient) -> None:
    c.add("member.joined", secs(NOW - 20 * DAY_US), group="g1", member="boss")
    for k in range(3):
        c.add(
            "member.joined", secs(NOW - (5 - k) * DAY_US), group="g1", member=f"v{k}",
            inviter="boss",
        )  # fmt: skip
    reward = make_reward(c.engine, c.ws_id, stock=5)
    live_campaign(
        c.engine, c.ws_id, "invite_task",
        {"tiers": [{"invites": 3, "reward_id": reward}], "hold_hours": 24},
        key="task", starts_at_us=NOW - 10 * DAY_US,
    )  # fmt: skip
    joined = api.post(
        "/api/v1/campaigns/task/participants", json={"platform": "wecom", "member_key": "boss"}
    )
    assert joined.status_code == 201
    pid = joined.json()["participant"]
    body = {"kind": "claim", "participant": pid, "invites": 3}
    answers = [api.post("/api/v1/campaigns/task/actions", json=body).json() for _ in range(2)]
    assert answers[0]["claim"] == answers[1]["claim"] and answers[0]["status"] == "granted"
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(RewardClaim)) == 1
    nobody = api.post(
        "/api/v1/campaigns/task/participants", json={"platform": "wecom", "member_key": "ghost"}
    )
    assert nobody.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "fly", "participant": 1}, "kind"),
        ({"kind": "help"}, "participant"),
        ({"kind": "help", "participant": -3}, "participant"),
        ({"kind": "help", "participant": 1, "extra": 1}, "extra"),
        ({"kind": "claim", "participant": 1, "invites": "many"}, "invites"),
    ],
)
def test_bad_action_bodies_name_the_field(
    c: Community, api: TestClient, body: dict[str, Any], field: str
) -> None:
    _help_campaign(c)
    got = api.post("/api/v1/campaigns/help/actions", json=body)
    assert got.status_code == 400 and field in got.json()["detail"]


def test_unknown_participant_and_missing_helper(c: Community, api: TestClient) -> None:
    _help_campaign(c)
    ghost = api.post("/api/v1/campaigns/help/actions", json={"kind": "help", "participant": 999})
    assert ghost.status_code == 404
    pid = api.post("/api/v1/campaigns/help/participants", json={"phone": PHONE}).json()
    alone = api.post(
        "/api/v1/campaigns/help/actions", json={"kind": "help", "participant": pid["participant"]}
    )
    assert alone.status_code == 400 and alone.json()["field"] == "other"
    bad_phone = api.post("/api/v1/campaigns/help/participants", json={"phone": "123"})
    assert bad_phone.status_code == 400 and bad_phone.json()["field"] == "phone"


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    body=st.one_of(
        st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8))),
        st.lists(st.integers(), max_size=3),
        st.text(max_size=20),
    )
)
def test_fuzzed_bodies_are_4xx(c: Community, api: TestClient, body: Any) -> None:
    for path in ("/api/v1/campaigns/help/actions", "/api/v1/campaigns/help/participants"):
        got = api.post(path, json=body)
        assert 400 <= got.status_code < 500, (body, got.status_code, got.text)
