"""任务宝 progress (valid / pending / raw per the invites report's definitions, in the campaign's
window and groups, fraud flags in review and strict mode), tier rewards once, the WeCom push,
share-link referrals, 助力 helps, and the periodic refresh."""

from __future__ import annotations

from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine, func, select
from test_campaign_service import (
    PHONE,
    group_id,
    join,
    live_campaign,
    make_reward,
    member_id,
    secs,
)

from quanzi.acquisition import fraud
from quanzi.campaigns import jobs_core, progress, rewards, service
from quanzi.campaigns.models import Campaign, CampaignAction, Participant, RewardClaim
from quanzi.connectors.models import ConnectorAction
from quanzi.connectors.wecom import service as wecom
from quanzi.core.members.service import flag_invite_fraud
from quanzi.db.engine import session_scope
from quanzi.kit.clock import DAY_US, HOUR_US, US, LocalCalendar, now_us
from quanzi.kit.errors import InvalidParameter

NOW = now_us()
START = NOW - 10 * DAY_US  # the campaign ran from 10 days ago for 17 days


def at(days_ago: float) -> int:
    return secs(NOW - int(days_ago * DAY_US))


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


def _task(c: Community, *tiers: tuple[int, int | None], key: str = "task", **rules: Any) -> int:
    spec = [
        {"invites": n, "reward_id": make_reward(c.engine, c.ws_id, stock=stock)}
        for n, stock in tiers
    ]
    return live_campaign(
        c.engine, c.ws_id, "invite_task", {"tiers": spec, **rules}, key=key, starts_at_us=START
    )


def _progress(c: Community, cid: int, pid: int, as_of: int = NOW) -> progress.Progress:
    with session_scope(c.engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, pid)
        assert camp is not None and p is not None
        return progress.progress_of(s, camp, p, as_of)


def _refresh(c: Community, cid: int, as_of: int = NOW) -> progress.Refreshed:
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        return progress.refresh_campaign(s, camp, as_of)


def _claims(c: Community) -> list[tuple[int, str]]:
    with session_scope(c.engine) as s:
        rows = s.execute(
            select(RewardClaim.participant_id, RewardClaim.reason).order_by(RewardClaim.id)
        ).all()
        return [(int(p), str(r)) for p, r in rows]


def community(c: Community) -> None:
    """boss (joined 20 days ago) invites into g1 (counted) and g2 (not counted)."""
    c.add("member.joined", at(20), group="g1", member="boss")
    c.add("member.joined", at(20), group="g2", member="veteran")
    c.add("member.joined", at(20), group="g2", member="staffer", is_staff=True)
    c.add("member.joined", at(15), group="g1", member="early", inviter="boss")  # before start
    for k in range(3):  # valid: joined 9-7 days ago, stayed
        c.add("member.joined", at(9 - k), group="g1", member=f"v{k}", inviter="boss")
    c.add("member.joined", at(8), group="g1", member="quitter", inviter="boss")
    c.add("member.left", at(8) + 3600, group="g1", member="quitter")
    c.add("member.joined", at(6), group="g1", member="veteran", inviter="boss")  # not new
    c.add("member.joined", at(6), group="g1", member="staffer", inviter="boss")  # staff
    c.add("member.joined", at(5), group="g2", member="elsewhere", inviter="boss")  # not counted
    c.add("member.joined", at(1), group="g1", member="fresh", inviter="boss")  # pending
    c.add("member.joined", at(4), group="g1", member="cheat", inviter="boss")  # flagged later


def test_progress_counts_by_the_invites_report(c: Community) -> None:
    community(c)
    cid = _task(c, (3, None), (5, None), group_ids=[group_id(c, "g1")])
    pid, _ = join(c.engine, cid, member_id=member_id(c, "boss"))
    got = _progress(c, cid, pid)
    # v0-2 + cheat valid; fresh pending; quitter and veteran raw only; early, staff, g2 not.
    assert (got.raw, got.valid, got.pending) == (7, 4, 1)
    flag_invite_fraud_for(c, "cheat")
    got = _progress(c, cid, pid)
    assert (got.raw, got.valid, got.pending) == (7, 3, 1)
    # each valid invite became valid at its join + 72 h
    assert got.valid_at == sorted((at(9 - k) * US) + 72 * HOUR_US for k in range(3))
    later = _progress(c, cid, pid, NOW + 3 * DAY_US)
    assert (later.valid, later.pending) == (4, 0)
    expected = {
        "v0": "valid", "v1": "valid", "v2": "valid", "quitter": "left", "veteran": "not_new",
        "fresh": "pending", "cheat": "flagged",
    }  # fmt: skip
    ids = {member_id(c, key): key for key in expected}
    with session_scope(c.engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, pid)
        assert camp is not None and p is not None
        listed = progress.invitees_of(s, camp, p, NOW)
    assert {ids[i.member_id]: i.status for i in listed} == expected
    assert listed[0].member_id == member_id(c, "fresh")  # newest first
    # every group counts when none is named
    everywhere = live_campaign(
        c.engine, c.ws_id, "invite_task", {"tiers": [{"invites": 1, "reward_id": 1}]},
        key="all", starts_at_us=START,
    )  # fmt: skip
    pid2, _ = join(c.engine, everywhere, member_id=member_id(c, "boss"))
    assert _progress(c, everywhere, pid2).raw == 8


def flag_invite_fraud_for(c: Community, key: str) -> None:
    with session_scope(c.engine) as s:
        flag_invite_fraud(s, c.ws_id, "wecom", key)


def test_review_mode_counts_suspects_strict_mode_does_not(c: Community) -> None:
    c.add("member.joined", at(20), group="g1", member="ring")
    # a sybil burst: 5 brand-new accounts within 10 minutes, none of whom ever posts
    for k in range(5):
        c.add("member.joined", at(9) + 60 * k, group="g1", member=f"s{k}", inviter="ring")
    c.add("member.joined", at(7), group="g1", member="honest", inviter="ring")
    c.add("message.posted", at(7) + 60, group="g1", member="honest")
    cid = _task(c, (1, None))
    pid, _ = join(c.engine, cid, member_id=member_id(c, "ring"))
    cal = LocalCalendar("Asia/Shanghai")
    with session_scope(c.engine) as s:
        fraud.refresh_suspects(s, c.ws_id, cal, as_of_us=NOW)
    assert _progress(c, cid, pid).valid == 6  # review mode: they count until confirmed
    with session_scope(c.engine) as s:
        fraud.set_review_mode(s, c.ws_id, "strict")
    assert _progress(c, cid, pid).valid == 1
    assert (_progress(c, cid, pid).raw, _refresh(c, cid).scores_changed) == (6, 1)


def test_tiers_are_granted_once_and_pushed_to_wecom_members(c: Community) -> None:
    community(c)
    with session_scope(c.engine) as s:
        wecom.connect(
            s, c.ws_id, corp_id="ww0123456789abcdef", secret="s3cret", token="tok123",
            encoding_aes_key="abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG",
        )  # fmt: skip
    cid = _task(c, (3, None), (4, 1), (10, None), group_ids=[group_id(c, "g1")])
    boss, _ = join(c.engine, cid, member_id=member_id(c, "boss"))
    nobody, _ = join(c.engine, cid, phone=PHONE)
    with session_scope(c.engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, boss)
        assert camp is not None and p is not None
        with pytest.raises(InvalidParameter, match="this tier needs 10"):
            progress.claim_tier(s, camp, p, 10, now_us=NOW)
        with pytest.raises(InvalidParameter, match="no tier of 7"):
            progress.claim_tier(s, camp, p, 7, now_us=NOW)
    done = _refresh(c, cid)
    assert (done.participants, done.granted, done.scores_changed) == (2, 2, 1)
    assert _refresh(c, cid).granted == 0  # twice: nothing new
    assert _claims(c) == [(boss, "tier:3"), (boss, "tier:4")]
    with session_scope(c.engine) as s:
        p = s.get(Participant, boss)
        assert p is not None and p.score == 4
        # the 4th valid invite (cheat, joined 4 days ago) became valid 72 h later
        assert p.score_at_us == at(4) * US + 72 * HOUR_US
        camp = s.get(Campaign, cid)
        assert camp is not None
        again = progress.claim_tier(s, camp, p, 3, now_us=NOW)
        assert again.reason == "tier:3"
        pushed = s.scalars(select(ConnectorAction).order_by(ConnectorAction.id)).all()
        assert [a.kind for a in pushed] == ["mass_message", "mass_message"]
        assert pushed[0].payload["external_userid"] == ["boss"]
        # both tiers were reached by the same refresh: each message says where they stand
        assert (
            "已有 4 位" in pushed[0].payload["text"] and "再邀请 6 位" in pushed[1].payload["text"]
        )
        assert [a.idempotency_key.split(":")[3] for a in pushed] == ["3", "4"]
    assert nobody not in {p for p, _r in _claims(c)}


def test_tier_out_of_stock_is_reported_not_raised(c: Community) -> None:
    community(c)
    cid = _task(c, (1, 0))
    join(c.engine, cid, member_id=member_id(c, "boss"))
    done = _refresh(c, cid)
    assert done.granted == 0 and "out of stock" in done.refused[0]


def test_share_link_referrals_count_for_the_referrer(c: Community) -> None:
    cid = _task(c, (1, None))
    referrer, _ = join(c.engine, cid, phone="13912345678")  # phone only: no personal code
    c.add("profile.updated", at(9), member="friend", phone=PHONE)
    friend, _ = join(c.engine, cid, phone=PHONE, referrer_id=referrer)
    assert _progress(c, cid, referrer).raw == 0  # has not joined a group yet
    c.add("member.joined", at(8), group="g1", member="friend")
    got = _progress(c, cid, referrer)
    assert (got.raw, got.valid) == (1, 1)
    # A join through someone else's code belongs to that inviter, not the referrer.
    c.add("profile.updated", at(9), member="friend2", phone="13712345678")
    join(c.engine, cid, phone="13712345678", referrer_id=referrer)
    c.add("member.joined", at(20), group="g1", member="other")
    c.add("member.joined", at(8), group="g1", member="friend2", inviter="other")
    assert _progress(c, cid, referrer).raw == 1
    assert friend != referrer


def test_phone_participants_are_linked_when_the_member_appears(c: Community) -> None:
    cid = _task(c, (1, None))
    pid, _ = join(c.engine, cid, phone=PHONE)
    c.add("member.joined", at(20), group="g1", member="later")
    c.add("member.joined", at(9), group="g1", member="guest", inviter="later")
    c.add("profile.updated", at(1), member="later", phone=PHONE)
    assert _refresh(c, cid).linked == 1
    with session_scope(c.engine) as s:
        p = s.get(Participant, pid)
        assert p is not None and p.member_id == member_id_in(s, c, "later") and p.score == 1
    assert _claims(c) == [(pid, "tier:1")]


def member_id_in(s: Any, c: Community, key: str) -> int:
    from quanzi.core.members.models import Member

    return int(s.scalar(select(Member.id).where(Member.member_key == key)))


# --- 助力 ------------------------------------------------------------------------------------


def _help(c: Community, cid: int, pid: int, **kw: Any) -> progress.Helped:
    with session_scope(c.engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, pid)
        assert camp is not None and p is not None
        if "helper" in kw:
            kw["helper"] = s.get(Participant, kw["helper"])
        return progress.help_participant(s, camp, p, **kw)


def test_help_unlock_counts_each_helper_once(c: Community) -> None:
    c.add("member.joined", at(20), group="g1", member="m1")
    c.add("member.joined", at(20), group="g1", member="boss1", is_staff=True)
    reward = make_reward(c.engine, c.ws_id, stock=10)
    cid = live_campaign(
        c.engine, c.ws_id, "help_unlock", {"help": {"helpers_needed": 3, "reward_id": reward}}
    )
    me, _ = join(c.engine, cid, phone=PHONE)
    friends = [join(c.engine, cid, phone=f"1391234000{i}")[0] for i in range(3)]
    m1 = member_id(c, "m1")
    with pytest.raises(InvalidParameter, match="cannot help yourself"):
        _help(c, cid, me, helper=me)
    with pytest.raises(InvalidParameter, match="staff"):
        _help(c, cid, me, helper_member_id=member_id(c, "boss1"))
    with pytest.raises(InvalidParameter, match="give the helping"):
        _help(c, cid, me)
    first = _help(c, cid, me, helper=friends[0])
    assert (first.counted, first.helps, first.unlocked) == (True, 1, None)
    assert _help(c, cid, me, helper=friends[0]).counted is False  # once per campaign
    # a helper counts once per campaign, whoever they help
    assert _help(c, cid, friends[2], helper=friends[0]).counted is False
    _help(c, cid, me, helper_member_id=m1)
    done = _help(c, cid, me, helper=friends[1])
    assert done.helps == 3 and done.unlocked is not None and done.unlocked.reason == "unlock"
    more = _help(c, cid, me, helper=friends[2])
    assert more.helps == 4 and more.unlocked is not None and more.unlocked.id == done.unlocked.id
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).where(CampaignAction.kind == "help")) == 4
        p = s.get(Participant, me)
        assert p is not None and p.score == 4
    assert _claims(c) == [(me, "unlock")]
    assert _refresh(c, cid).granted == 0


def test_help_on_a_closed_or_other_campaign_is_refused(c: Community) -> None:
    reward = make_reward(c.engine, c.ws_id, stock=10)
    cid = live_campaign(
        c.engine, c.ws_id, "help_unlock", {"help": {"helpers_needed": 1, "reward_id": reward}}
    )
    me, _ = join(c.engine, cid, phone=PHONE)
    friend, _ = join(c.engine, cid, phone="13912345678")
    task = _task(c, (1, None))
    with pytest.raises(InvalidParameter, match="not a 助力"):
        _help(c, task, join(c.engine, task, phone=PHONE)[0], helper_member_id=1)
    with pytest.raises(service.CampaignClosed):
        _help(c, cid, me, helper=friend, now_us=NOW + 30 * DAY_US)
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).where(CampaignAction.kind == "help")) == 0


# --- the periodic refresh --------------------------------------------------------------------


def test_refresh_due_runs_until_the_hold_window_after_the_end(c: Community) -> None:
    community(c)
    reward = make_reward(c.engine, c.ws_id)
    rules = {"tiers": [{"invites": 3, "reward_id": reward}]}
    cid = live_campaign(
        c.engine, c.ws_id, "invite_task", rules, starts_at_us=START, ends_at_us=NOW + DAY_US
    )
    join(c.engine, cid, member_id=member_id(c, "boss"))
    assert jobs_core.due_campaigns(c.engine, NOW) == [cid]
    assert jobs_core.due_campaigns(c.engine, NOW + DAY_US + 72 * HOUR_US) == [cid]
    assert jobs_core.due_campaigns(c.engine, NOW + 5 * DAY_US) == []
    tick = jobs_core.refresh_due(c.engine, NOW)
    assert (tick.campaigns, tick.granted, tick.failed) == (1, 1, {})
    with session_scope(c.engine) as s:
        service.cancel(s, c.ws_id, cid, None)
    assert jobs_core.due_campaigns(c.engine, NOW) == []
    assert rewards_given(c) == 1


def rewards_given(c: Community) -> int:
    with session_scope(c.engine) as s:
        return int(s.scalar(select(func.count()).select_from(RewardClaim)) or 0)


def test_the_refresh_task_is_registered() -> None:
    from quanzi.jobs.consumer import TASK_MODULES

    assert "quanzi.campaigns.jobs_core" in TASK_MODULES
    assert callable(jobs_core.campaigns_refresh)
    assert rewards.REWARD_KINDS  # the module the task grants through imports cleanly
