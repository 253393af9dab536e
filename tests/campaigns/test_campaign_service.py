"""Campaigns: the life cycle, joining (members, phones, eligibility, the cap under concurrency),
personal links, the idempotent action log and scores. The helpers at the top are shared by the
other campaign test files."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from community import Community
from sqlalchemy import Engine, func, select

from quanzi.campaigns import rewards, service
from quanzi.campaigns.models import Campaign, CampaignAction, Participant
from quanzi.core.groups.models import Group
from quanzi.core.members.models import Member
from quanzi.core.tags import service as tags
from quanzi.db.engine import session_scope
from quanzi.kit.clock import DAY_US, HOUR_US, US, now_us
from quanzi.kit.errors import InvalidParameter, NotFound

PHONE = "13812345678"


# --- shared helpers ---------------------------------------------------------------------------


def secs(us: int) -> int:
    """An instant in UTC microseconds as the events' integer Unix seconds."""
    return us // US


def member_id(c: Community, key: str) -> int:
    with session_scope(c.engine) as s:
        found = s.scalar(
            select(Member.id).where(Member.workspace_id == c.ws_id, Member.member_key == key)
        )
        assert found is not None, key
        return int(found)


def group_id(c: Community, key: str) -> int:
    with session_scope(c.engine) as s:
        found = s.scalar(
            select(Group.id).where(Group.workspace_id == c.ws_id, Group.group_key == key)
        )
        assert found is not None, key
        return int(found)


def make_reward(
    engine: Engine, ws_id: int, stock: int | None = None, kind: str = "content_link", cost: int = 0
) -> int:
    config: dict[str, Any] = {
        "content_link": {"url": "https://example.com/ebook"},
        "points": {"points": 10},
        "membership_days": {"days": 7},
        "coupon_code": {},
        "physical": {},
    }[kind]
    with session_scope(engine) as s:
        r = rewards.create_reward(
            s,
            ws_id,
            name=f"{kind} reward",
            kind=kind,
            unit_cost_fen=cost,
            stock=stock,
            config=config,
        )
        return r.id


def live_campaign(
    engine: Engine,
    ws_id: int,
    kind: str,
    rules: dict[str, Any],
    *,
    key: str = "spring",
    starts_at_us: int | None = None,
    ends_at_us: int | None = None,
) -> int:
    """A launched campaign that started an hour ago (or at `starts_at_us`) and runs a week."""
    start = now_us() - HOUR_US if starts_at_us is None else starts_at_us
    with session_scope(engine) as s:
        c = service.create_campaign(
            s,
            ws_id,
            kind=kind,
            name="春季裂变",
            key=key,
            starts_at_us=start,
            ends_at_us=ends_at_us or max(start, now_us()) + 7 * DAY_US,
            rules=rules,
            copy={"title": "邀请好友 领好礼"},
            by="owner@example.com",
        )
        service.launch(s, ws_id, c.id, "owner@example.com")
        return c.id


def join(engine: Engine, campaign_id: int, **kw: Any) -> tuple[int, str | None]:
    with session_scope(engine) as s:
        c = s.get(Campaign, campaign_id)
        assert c is not None
        got = service.join(s, c, **kw)
        return got.participant.id, got.token


def tiers_rules(engine: Engine, ws_id: int) -> dict[str, Any]:
    return {"tiers": [{"invites": 3, "reward_id": make_reward(engine, ws_id)}]}


# --- the life cycle ---------------------------------------------------------------------------


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


def test_create_launch_end_and_slug(c: Community) -> None:
    rules = tiers_rules(c.engine, c.ws_id)
    start = now_us()
    with session_scope(c.engine) as s:
        camp = service.create_campaign(
            s, c.ws_id, kind="invite_task", name=" 春季裂变 ", key="spring-26",
            starts_at_us=start, ends_at_us=start + DAY_US, rules=rules,
            copy={"title": "邀请3人得电子书"}, by="owner@example.com",
        )  # fmt: skip
        assert camp.status == "draft" and camp.name == "春季裂变"
        assert camp.rules["hold_hours"] == 72 and len(camp.slug) == service.SLUG_LEN
        cid, slug = camp.id, camp.slug
    with session_scope(c.engine) as s:
        assert service.campaign_by_slug(s, slug).id == cid
        with pytest.raises(NotFound):
            service.campaign_by_slug(s, "nope-NOPE")
        with pytest.raises(InvalidParameter, match="only a live campaign can be ended"):
            service.end(s, c.ws_id, cid, None)
        service.launch(s, c.ws_id, cid, "owner@example.com")
    with session_scope(c.engine) as s:
        with pytest.raises(InvalidParameter, match="only a draft can be launched"):
            service.launch(s, c.ws_id, cid, None)
        with pytest.raises(InvalidParameter, match="rules: cannot change once"):
            service.update_campaign(s, c.ws_id, cid, rules=rules)
        changed = service.update_campaign(s, c.ws_id, cid, name="春季裂变2", copy={"title": "x"})
        assert changed.name == "春季裂变2" and changed.copy_text == {"title": "x"}
        assert service.end(s, c.ws_id, cid, None).status == "ended"
    with session_scope(c.engine) as s:
        with pytest.raises(InvalidParameter, match="ended campaign cannot be changed"):
            service.update_campaign(s, c.ws_id, cid, name="again")
        with pytest.raises(NotFound):
            service.get_campaign(s, c.ws_id + 1, cid)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "raffle"}, "kind: 'raffle'"),
        ({"name": ""}, "name: give 1-100"),
        ({"key": "has space"}, "key: give 1-30"),
        ({"ends_at_us": 0}, "ends_at_us: the campaign must end after it starts"),
        ({"starts_at_us": "soon"}, "starts_at_us: give an instant"),
        ({"rules": {"tiers": [{"invites": 3, "reward_id": 999999}]}}, "reward 999999 does not"),
        ({"rules+": {"group_ids": [424242]}}, "rules.group_ids: group 424242"),
        ({"rules+": {"eligibility": {"tag_ids": [77]}}}, "tag_ids: tag 77"),
        ({"copy": {"Title": "x"}}, "copy.Title"),
        ({"copy": {"title": 5}}, "copy.title"),
        ({"channel_code_id": 31337}, "channel_code_id: channel code 31337"),
    ],
)
def test_create_refuses_bad_input_and_stores_nothing(
    c: Community, change: dict[str, Any], message: str
) -> None:
    reward = make_reward(c.engine, c.ws_id)
    start = now_us()
    args: dict[str, Any] = {
        "kind": "invite_task",
        "name": "x",
        "key": "k1",
        "starts_at_us": start,
        "ends_at_us": start + DAY_US,
        "rules": {"tiers": [{"invites": 3, "reward_id": reward}]},
        "copy": None,
        "by": None,
    }
    if "rules+" in change:
        change = {"rules": {**args["rules"], **change["rules+"]}}
    with session_scope(c.engine) as s, pytest.raises(InvalidParameter) as err:
        service.create_campaign(s, c.ws_id, **{**args, **change})
    assert message in str(err.value)
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Campaign)) == 0


def test_key_is_unique_in_the_workspace_and_contact_counting_waits(c: Community) -> None:
    rules = tiers_rules(c.engine, c.ws_id)
    live_campaign(c.engine, c.ws_id, "invite_task", rules, key="k1")
    start = now_us()
    with session_scope(c.engine) as s:
        with pytest.raises(InvalidParameter, match="key: 'k1' is already used"):
            service.create_campaign(
                s, c.ws_id, kind="invite_task", name="x", key="k1", starts_at_us=start,
                ends_at_us=start + DAY_US, rules=rules, copy=None, by=None,
            )  # fmt: skip
        other = service.create_campaign(
            s, c.ws_id, kind="invite_task", name="x", key="k2", starts_at_us=start,
            ends_at_us=start + DAY_US, rules={**rules, "count": "contact"}, copy=None, by=None,
        )  # fmt: skip
        oid = other.id
    with session_scope(c.engine) as s, pytest.raises(InvalidParameter, match=r"rules\.count"):
        service.launch(s, c.ws_id, oid, None)


# --- joining ----------------------------------------------------------------------------------


def test_member_and_phone_participants_and_their_links(c: Community) -> None:
    t = secs(now_us())
    c.add("member.joined", t - 600, group="g1", member="alice")
    c.add("profile.updated", t - 500, member="bob", phone=PHONE)
    cid = live_campaign(c.engine, c.ws_id, "invite_task", tiers_rules(c.engine, c.ws_id))
    alice = member_id(c, "alice")
    pa, token_a = join(c.engine, cid, member_id=alice)
    assert token_a is not None
    again, token_again = join(c.engine, cid, member_id=alice)
    assert (again, token_again) == (pa, None)
    # A phone that belongs to a member is that member's participant.
    pb, token_b = join(c.engine, cid, phone="+86 138 1234 5678", name="小鲍", referrer_id=pa)
    pc, token_c = join(c.engine, cid, phone="13912345678")
    assert token_b and token_c and len({pa, pb, pc}) == 3
    bob = member_id(c, "bob")
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        b = service.participant_by_token(s, camp, token_b)
        assert b.id == pb and b.member_id == bob and b.referrer_id == pa
        assert b.phone_sealed and PHONE not in b.phone_sealed and b.name_sealed
        assert b.token_digest == service.token_digest(token_b) and token_b not in b.token_digest
        assert service.participant_by_token(s, camp, token_c).member_id is None
        with pytest.raises(NotFound):
            service.participant_by_token(s, camp, token_b + "x")
        joins = s.scalars(
            select(CampaignAction.idem_key).where(CampaignAction.kind == "join")
        ).all()
        assert sorted(joins) == sorted(f"join:{p}" for p in (pa, pb, pc))
    assert join(c.engine, cid, phone="138-1234-5678") == (pb, None)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({}, "phone: give a phone number"),
        ({"phone": "12345"}, "phone: not a valid phone number"),
        ({"phone": PHONE, "name": "x" * 31}, "name: at most 30"),
        ({"phone": PHONE, "referrer_id": 99999}, "referrer_id: 99999"),
        ({"member_id": 99999}, "member_id: member 99999"),
    ],
)
def test_bad_join_input_is_named_and_changes_nothing(
    c: Community, kw: dict[str, Any], message: str
) -> None:
    cid = live_campaign(c.engine, c.ws_id, "invite_task", tiers_rules(c.engine, c.ws_id))
    with pytest.raises((InvalidParameter, NotFound)) as err:
        join(c.engine, cid, **kw)
    assert message in str(err.value)
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


def test_closed_campaigns_take_nobody(c: Community) -> None:
    rules = tiers_rules(c.engine, c.ws_id)
    later = live_campaign(
        c.engine, c.ws_id, "invite_task", rules, key="later", starts_at_us=now_us() + DAY_US
    )
    with pytest.raises(service.CampaignClosed, match="has not started"):
        join(c.engine, later, phone=PHONE)
    cid = live_campaign(c.engine, c.ws_id, "invite_task", rules, key="now")
    with pytest.raises(service.CampaignClosed, match="is over"):
        join(c.engine, cid, phone=PHONE, now_us=now_us() + 30 * DAY_US)
    with session_scope(c.engine) as s:
        service.end(s, c.ws_id, cid, None)
    with pytest.raises(service.CampaignClosed, match="it is ended"):
        join(c.engine, cid, phone=PHONE)


def test_eligibility_new_only_tags_channels_staff(c: Community) -> None:
    t = secs(now_us())
    c.add("member.joined", t - 2 * 86400, group="g1", member="old", channel="ads")
    c.add("member.joined", t - 86400, group="g1", member="staff1", is_staff=True)
    c.add("member.joined", t - 60, group="g1", member="fresh", channel="poster")
    rules = tiers_rules(c.engine, c.ws_id)
    start = now_us() - HOUR_US
    new_only = live_campaign(
        c.engine, c.ws_id, "invite_task", {**rules, "eligibility": {"new_only": True}},
        key="new", starts_at_us=start,
    )  # fmt: skip
    with pytest.raises(service.NotEligible, match="join the community during the campaign"):
        join(c.engine, new_only, member_id=member_id(c, "old"))
    assert join(c.engine, new_only, member_id=member_id(c, "fresh"))[1] is not None
    assert join(c.engine, new_only, phone=PHONE)[1] is not None  # no member yet: new
    with pytest.raises(service.NotEligible, match="staff"):
        join(c.engine, new_only, member_id=member_id(c, "staff1"))

    by_channel = live_campaign(
        c.engine, c.ws_id, "invite_task", {**rules, "eligibility": {"channels": ["ads"]}},
        key="ch",
    )  # fmt: skip
    assert join(c.engine, by_channel, member_id=member_id(c, "old"))[1] is not None
    with pytest.raises(service.NotEligible, match="channels"):
        join(c.engine, by_channel, member_id=member_id(c, "fresh"))
    with pytest.raises(service.NotEligible, match="channels"):
        join(c.engine, by_channel, phone=PHONE)

    fresh = member_id(c, "fresh")
    with session_scope(c.engine) as s:
        group = tags.create_tag_group(s, c.ws_id, "意向")
        vip = tags.create_tag(s, c.ws_id, group.id, "VIP").id
        tags.tag_members(s, c.ws_id, [fresh], [vip], by_user_id=None)
    by_tag = live_campaign(
        c.engine, c.ws_id, "invite_task", {**rules, "eligibility": {"tag_ids": [vip]}}, key="tag"
    )
    assert join(c.engine, by_tag, member_id=member_id(c, "fresh"))[1] is not None
    with pytest.raises(service.NotEligible, match="tags"):
        join(c.engine, by_tag, member_id=member_id(c, "old"))


def test_campaign_cap_is_never_exceeded_under_concurrency(c: Community) -> None:
    rules = {**tiers_rules(c.engine, c.ws_id), "campaign_cap": 20}
    cid = live_campaign(c.engine, c.ws_id, "invite_task", rules)
    phones = [f"1391234{i:04d}" for i in range(60)]
    full = threading.Event()

    def one(phone: str) -> str:
        try:
            join(c.engine, cid, phone=phone)
            return "in"
        except service.CampaignFull:
            full.set()
            return "full"

    with ThreadPoolExecutor(max_workers=12) as pool:
        outcomes = list(pool.map(one, phones))
    assert outcomes.count("in") == 20 and outcomes.count("full") == 40 and full.is_set()
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 20


# --- the action log and scores ----------------------------------------------------------------


def test_actions_are_recorded_once_and_scores_keep_who_was_first(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "invite_task", tiers_rules(c.engine, c.ws_id))
    pid, _ = join(c.engine, cid, phone=PHONE)
    with session_scope(c.engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, pid)
        assert camp is not None and p is not None
        first = service.record_action(s, camp, p, "points", "pts:1", amount_fen=5)
        assert first is not None and first.amount_fen == 5
        assert service.record_action(s, camp, p, "points", "pts:1", amount_fen=9) is None
        with pytest.raises(InvalidParameter, match="kind"):
            service.record_action(s, camp, p, "Bad Kind!", "x")
        with pytest.raises(InvalidParameter, match="idem_key"):
            service.record_action(s, camp, p, "points", "")
        service.set_score(s, p, 3, 1000)
        service.set_score(s, p, 3, 2000)  # the same score: when it was reached stays
        assert (p.score, p.score_at_us) == (3, 1000)
        service.set_score(s, p, 4, 3000)
    with session_scope(c.engine) as s:
        p = s.get(Participant, pid)
        assert p is not None and (p.score, p.score_at_us) == (4, 3000)
        assert s.scalar(select(func.count()).select_from(CampaignAction)) == 2  # join + points
