"""A campaign's figures on the hand-built community of docs/campaign-metrics.md ("Worked
example"), every one computed by hand there; on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine, select

from quanzi.acquisition.channels import create_code
from quanzi.campaigns.metrics import campaign_metrics, generations
from quanzi.campaigns.models import Campaign, Participant, Reward, RewardClaim
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Member
from quanzi.core.members.service import flag_invite_fraud
from quanzi.db.engine import session_scope
from quanzi.kit.clock import to_us
from quanzi.kit.errors import NotFound

KEY = "spring26"


def us(text: str) -> int:
    return to_us(datetime.fromisoformat(text + "+08:00"))


def ts(text: str) -> str:
    return text + "+08:00"


def build_community(c: Community) -> None:
    """The community of the worked example (times are Asia/Shanghai)."""

    def join(t: str, group: str, member: str, inviter: str | None = None, **kw: Any) -> None:
        extra = {"inviter": inviter, "via": "invite"} if inviter else {}
        c.add("member.joined", ts(t), group=group, member=member, **extra, **kw)

    join("2026-02-01T09:00:00", "g1", "s1", is_staff=True)
    join("2026-02-01T10:00:00", "g1", "wm_a", channel="store")
    join("2026-02-01T10:30:00", "g1", "wm_b", channel="store")
    join("2026-02-01T11:00:00", "g2", "wm_k")
    join("2026-02-20T10:00:00", "g1", "wm_j", "wm_a")  # before the window
    join("2026-03-03T10:00:00", "g1", "wm_c", "wm_a")
    join("2026-03-03T11:00:00", "g1", "wm_d", "wm_a")
    c.add("member.left", ts("2026-03-04T11:00:00"), group="g1", member="wm_d")  # within hold
    join("2026-03-04T09:00:00", "g1", "wm_e", "wm_a")  # flagged below
    c.add("message.posted", ts("2026-03-04T12:00:00"), group="g1", member="wm_c", text="谢谢")
    join("2026-03-05T10:00:00", "g2", "wm_f", "wm_b")  # a group that does not count
    c.add("message.posted", ts("2026-03-06T09:00:00"), group="g2", member="wm_f", text="hi")
    join("2026-03-05T11:00:00", "g1", "s2", "wm_a", is_staff=True)  # staff: no invite
    join("2026-03-06T10:00:00", "g1", "wm_g", "wm_c")
    c.add("message.posted", ts("2026-03-20T09:00:00"), group="g1", member="wm_g", text="晚了")
    join("2026-03-07T10:00:00", "g1", "wm_k", "wm_b")  # new to g1, not to the workspace
    join("2026-03-10T10:00:00", "g1", "wm_h", "wm_b")
    c.add("message.posted", ts("2026-03-11T09:00:00"), group="g1", member="wm_h", text="在")
    c.add("member.left", ts("2026-03-14T10:00:00"), group="g1", member="wm_h")  # after hold
    join("2026-03-15T20:00:00", "g1", "wm_i", "wm_a")
    c.add("member.left", ts("2026-03-25T10:00:00"), group="g1", member="wm_c")

    def paid(t: str, order: str, member: str, amount: int, **kw: Any) -> None:
        c.add("order.paid", ts(t), order=order, member=member, amount=amount, **kw)

    paid("2026-03-12T10:00:00", "o1", "wm_h", 10000, campaign=KEY)
    c.add("order.refunded", ts("2026-03-20T10:00:00"), order="o1", amount=2000)
    paid("2026-03-13T10:00:00", "o2", "wm_x", 5000, referrer="wm_a")
    paid("2026-03-14T10:00:00", "o3", "wm_c", 3000, campaign=KEY, referrer="wm_a")
    paid("2026-03-20T10:00:00", "o4", "wm_y", 4000, referrer="wm_a")  # after the window
    paid("2026-03-14T11:00:00", "o5", "wm_g", 1000, campaign=KEY)
    c.add("order.refunded", ts("2026-03-15T10:00:00"), order="o5", amount=1000)
    paid("2026-03-13T11:00:00", "o6", "wm_z", 7000, campaign="other")


def new_campaign(ws: int, key: str, kind: str, rules: dict[str, Any], **kw: Any) -> Campaign:
    """A campaign row over the worked example's window, 2026-03-02..2026-03-16 (exclusive)."""
    return Campaign(
        workspace_id=ws,
        key=key,
        slug=f"{key}-x",
        kind=kind,
        name=key,
        status="ended",
        starts_at_us=us("2026-03-02T00:00:00"),
        ends_at_us=us("2026-03-16T00:00:00"),
        rules=rules,
        copy_text={},
        created_at_us=0,
        updated_at_us=0,
        **kw,
    )


def _digest(n: int) -> str:
    return hashlib.sha256(f"token-{n}".encode()).hexdigest()


def setup_campaign(engine: Engine) -> tuple[int, int]:
    """The community, the campaign, its five participants and three claims: (ws, campaign)."""
    c = Community(engine)
    build_community(c)
    ws = c.ws_id
    with session_scope(engine) as s:
        flag_invite_fraud(s, ws, "wecom", "wm_e")
        g1 = s.scalar(select(Group.id).where(Group.workspace_id == ws, Group.group_key == "g1"))
        code = create_code(
            s,
            ws,
            name="春季海报",
            channel="spring_poster",
            target_kind="link",
            target={"url": "https://example.com/k"},
            cost_fen=1200,
        )
        s.flush()
        camp = new_campaign(
            ws,
            KEY,
            "invite_task",
            {"group_ids": [g1], "hold_hours": 72, "tiers": [], "count": "join"},
            channel_code_id=code.id,
        )
        s.add(camp)
        s.flush()
        member = {
            k: i
            for k, i in s.execute(
                select(Member.member_key, Member.id).where(Member.workspace_id == ws)
            )
        }
        people: dict[str, Participant] = {}
        for n, (name, key, joined, referrer) in enumerate(
            [
                ("A", "wm_a", "2026-03-02T10:00:00", None),
                ("B", "wm_b", "2026-03-02T12:00:00", None),
                ("C", "wm_c", "2026-03-04T10:00:00", None),
                ("G", "wm_g", "2026-03-08T10:00:00", None),
                ("P", None, "2026-03-09T12:00:00", "B"),
            ]
        ):
            p = Participant(
                workspace_id=ws,
                campaign_id=camp.id,
                member_id=member[key] if key else None,
                phone_digest=None if key else "d" * 64,
                token_digest=_digest(n),
                referrer_id=people[referrer].id if referrer else None,
                score=0,
                score_at_us=us(joined),
                joined_at_us=us(joined),
            )
            s.add(p)
            s.flush()
            people[name] = p
        book = Reward(
            workspace_id=ws,
            campaign_id=camp.id,
            name="电子书",
            kind="content_link",
            unit_cost_fen=500,
            stock=None,
            claimed=3,
            config={},
            active=True,
            created_at_us=0,
        )
        s.add(book)
        s.flush()
        for who, reason, status, cost in [
            ("A", "tier:3", "granted", 500),
            ("B", "tier:3", "revoked", 2000),
            ("C", "tier:1", "pending", 300),
        ]:
            s.add(
                RewardClaim(
                    workspace_id=ws,
                    campaign_id=camp.id,
                    participant_id=people[who].id,
                    reward_id=book.id,
                    reason=reason,
                    status=status,
                    cost_fen=cost,
                    claimed_at_us=0,
                    updated_at_us=0,
                )
            )
        return ws, camp.id


def test_worked_example_every_figure(engine: Engine) -> None:
    ws, cid = setup_campaign(engine)
    with session_scope(engine) as s:
        m = campaign_metrics(s, ws, cid, as_of_us=us("2026-04-30T00:00:00"))
    assert m.participants == 5
    assert (m.invites_raw, m.invites_new, m.invites_valid, m.invites_pending) == (7, 7, 5, 0)
    assert m.converted == 2
    assert (m.invites_per_participant, m.conversion, m.k_factor) == (1.0, 0.4, 0.4)
    assert m.generations == 3
    assert m.cycle_time_hours == 96.0
    assert (m.acquired, m.activated) == (4, 2)
    assert (m.reward_cost_fen, m.campaign_cost_fen, m.total_cost_fen) == (800, 1200, 2000)
    assert (m.cost_per_acquired_fen, m.cost_per_activated_fen) == (500, 1000)
    ours, other = m.campaign_cohort, m.other_cohort
    assert (ours.members, ours.activated, ours.base_7d, ours.retained_7d) == (4, 2, 4, 3)
    assert (ours.base_30d, ours.retained_30d) == (4, 2)
    assert (ours.retention_7d, ours.retention_30d, ours.activation_rate) == (0.75, 0.5, 0.5)
    assert (other.members, other.activated, other.base_7d, other.retained_7d) == (3, 1, 3, 2)
    assert (other.base_30d, other.retained_30d, other.retention_7d) == (3, 2, 0.6667)
    assert (m.orders, m.revenue_fen) == (3, 16000)
    assert m.roi == 7.0
    d = m.as_dict()
    assert d["campaign_cohort"]["retention_7d"] == 0.75 and d["total_cost_fen"] == 2000


def test_as_of_decides_hold_and_retention_windows(engine: Engine) -> None:
    ws, cid = setup_campaign(engine)
    with session_scope(engine) as s:
        m = campaign_metrics(s, ws, cid, as_of_us=us("2026-03-17T12:00:00"))
    # wm_i joined 03-15 20:00: pending until 03-18 20:00, so not (yet) acquired.
    assert (m.invites_raw, m.invites_valid, m.invites_pending) == (7, 4, 1)
    assert (m.acquired, m.activated) == (3, 2)
    # 7 days have passed for C, G and H (H left on 03-14); 30 days for nobody.
    c = m.campaign_cohort
    assert (c.base_7d, c.retained_7d, c.base_30d, c.retained_30d) == (3, 2, 0, 0)
    assert c.retention_30d == 0.0
    assert m.cost_per_acquired_fen == 2000 // 3


def test_fraud_flag_removed_makes_the_invite_valid(engine: Engine) -> None:
    ws, cid = setup_campaign(engine)
    from quanzi.core.members.service import unflag_invite_fraud

    with session_scope(engine) as s:
        unflag_invite_fraud(s, ws, "wecom", "wm_e")
    with session_scope(engine) as s:
        m = campaign_metrics(s, ws, cid, as_of_us=us("2026-04-30T00:00:00"))
    assert (m.invites_valid, m.acquired, m.other_cohort.members) == (6, 5, 2)


def test_empty_campaign_and_unknown_campaign(engine: Engine) -> None:
    ws, cid = setup_campaign(engine)
    with session_scope(engine) as s:
        empty = new_campaign(ws, "quiet", "lottery", {})
        s.add(empty)
        s.flush()
        m = campaign_metrics(s, ws, empty.id, as_of_us=us("2026-04-30T00:00:00"))
        assert (m.participants, m.invites_raw, m.generations, m.k_factor) == (0, 0, 0, 0.0)
        assert (m.cycle_time_hours, m.roi, m.cost_per_acquired_fen) == (None, None, None)
        # Nobody came through it, so every new member of the window is "other".
        assert (m.acquired, m.other_cohort.members) == (0, 7)
        assert m.hold_hours == 72
        with pytest.raises(NotFound, match="campaign"):
            campaign_metrics(s, ws + 1000, cid)
        with pytest.raises(NotFound, match="campaign"):
            campaign_metrics(s, ws, 999_999)


def test_generations_follow_parents_and_cut_loops() -> None:
    assert generations({2: 1, 3: 2, 5: 4}, [1, 2, 3, 4, 5]) == {1: 1, 2: 2, 3: 3, 4: 1, 5: 2}
    gen = generations({1: 2, 2: 1}, [1, 2])  # inconsistent data: a loop
    assert sorted(gen.values()) == [1, 2]
    assert generations({}, []) == {}


def test_hold_hours_from_rules(engine: Engine) -> None:
    ws, cid = setup_campaign(engine)
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        # With a 100-hour hold, wm_h (left 96 h after joining) is no longer valid.
        camp.rules = {**camp.rules, "hold_hours": 100}
        s.flush()
        m = campaign_metrics(s, ws, cid, as_of_us=us("2026-04-30T00:00:00"))
    assert m.hold_hours == 100
    assert (m.invites_valid, m.acquired) == (4, 3)
