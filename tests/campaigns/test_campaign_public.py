"""Public campaign pages /k/<slug>: the visitor's page and join form (bad then good phone,
consent stored, referrer from a share link's public ref), the personal page (progress, masked
invitees, a reached tier claimed once, the sealed address form) and the live leaderboard, in
Chinese and English."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from community import Community
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from test_campaign_service import PHONE, join, live_campaign, make_reward, member_id, secs

from quanzi.acquisition import landing
from quanzi.campaigns import public_endpoints, rewards, service
from quanzi.campaigns.models import Campaign, CampaignAction, Participant, RewardClaim
from quanzi.db.engine import session_scope
from quanzi.kit.clock import DAY_US, now_us
from quanzi.web.app import create_app

NOW = now_us()
FRIEND = "13912345678"
EN = {"Accept-Language": "en-US,en;q=0.9"}


@pytest.fixture(autouse=True)
def _fresh_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(landing, "PER_IP", landing.SlidingWindow(50, 600))
    monkeypatch.setattr(landing, "PER_PHONE", landing.SlidingWindow(5, 3600))


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


@pytest.fixture
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(engine), follow_redirects=False) as tc:
        yield tc


def _slug(c: Community, cid: int) -> str:
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        return camp.slug


def _task(c: Community, stock: int | None = None, kind: str = "content_link") -> int:
    reward = make_reward(c.engine, c.ws_id, stock=stock, kind=kind)
    return live_campaign(
        c.engine,
        c.ws_id,
        "invite_task",
        {"tiers": [{"invites": 3, "reward_id": reward}], "hold_hours": 24},
        starts_at_us=NOW - 10 * DAY_US,
    )


def _form(**fields: str) -> dict[str, str]:
    return {"name": "张三", "phone": PHONE, "consent": "1", **fields}


def test_page_and_join_flow_with_a_bad_then_a_good_phone(c: Community, client: TestClient) -> None:
    slug = _slug(c, _task(c, stock=5))
    page = client.get(f"/k/{slug}")
    assert page.status_code == 200 and "<h1>邀请好友 领好礼</h1>" in page.text
    assert (
        "邀请 3 位好友: content_link reward" in page.text
        and "剩余 5" in page.text
        and "距结束还剩" in page.text
    )
    assert (
        "script" not in page.text
        and "default-src 'none'" in page.headers["content-security-policy"]
    )
    bad = client.post(f"/k/{slug}/join", data=_form(phone="12345"))
    assert bad.status_code == 400 and 'value="12345"' in bad.text
    assert 'role="alert"' in bad.text
    no_consent = client.post(f"/k/{slug}/join", data=_form(consent=""))
    assert no_consent.status_code == 400
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0
    good = client.post(f"/k/{slug}/join", data=_form())
    assert good.status_code == 303
    target = good.headers["location"]
    assert re.fullmatch(rf"/k/{slug}/me/[A-Za-z0-9_-]{{20,}}", target)
    token = target.rsplit("/", 1)[1]
    assert f"{public_endpoints.COOKIE}={token}" in good.headers["set-cookie"]
    assert "HttpOnly" in good.headers["set-cookie"]
    me = client.get(target)
    assert me.status_code == 200 and "你好，张*" in me.text and "有效邀请 0 人" in me.text
    with session_scope(c.engine) as s:
        p = s.scalar(select(Participant))
        assert p is not None and p.phone_sealed and PHONE not in p.phone_sealed
        consent = s.scalar(select(CampaignAction).where(CampaignAction.kind == "consent"))
        assert consent is not None and consent.detail is not None
        assert consent.detail["text"] == public_endpoints.DEFAULT_CONSENT
    # the cookie brings the visitor back to their page
    assert target in client.get(f"/k/{slug}").text
    # the same phone again (another device): told to use their link, nothing new stored
    again = client.post(f"/k/{slug}/join", data=_form(), cookies={})
    assert again.status_code == 400 and "专属链接" in again.text
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 1


def test_share_link_records_the_referrer_without_the_token(
    c: Community, client: TestClient
) -> None:
    slug = _slug(c, _task(c))
    me = client.post(f"/k/{slug}/join", data=_form()).headers["location"]
    token = me.rsplit("/", 1)[1]
    page = client.get(me).text
    share = re.search(rf"http://testserver/k/{slug}\?r=([0-9a-f]+\.[0-9a-f]{{10}})", page)
    assert share is not None and token not in share.group(0)
    ref = share.group(1)
    forged = ref[:-1] + ("0" if ref[-1] != "0" else "1")
    assert client.get(f"/k/{slug}?r={forged}").status_code == 400
    friend = TestClient(client.app, follow_redirects=False)
    landing_page = friend.get(f"/k/{slug}?r={ref}")
    assert f'name="r" value="{ref}"' in landing_page.text
    joined = friend.post(f"/k/{slug}/join", data=_form(name="李四", phone=FRIEND, r=ref))
    assert joined.status_code == 303
    with session_scope(c.engine) as s:
        rows = {p.id: p.referrer_id for p in s.scalars(select(Participant))}
    first = min(rows)
    assert rows == {first: None, first + 1: first}
    assert public_endpoints.ref_id(ref) == first
    bad_ref = friend.post(f"/k/{slug}/join", data=_form(phone="13712345678", r=forged))
    assert bad_ref.status_code == 400


def _invited(c: Community) -> None:
    """boss invites three new members (valid after the 24 h hold) and one still pending."""
    c.add("member.joined", secs(NOW - 20 * DAY_US), group="g1", member="boss", name="老板")
    for k, name in enumerate(("王小明", "李雷", "韩梅梅")):
        c.add(
            "member.joined", secs(NOW - (5 - k) * DAY_US), group="g1", member=f"v{k}",
            name=name, inviter="boss",
        )  # fmt: skip
    c.add("member.joined", secs(NOW - 3600 * 10**6), group="g1", member="fresh", inviter="boss")


def test_personal_page_masks_invitees_and_claims_a_tier_once(
    c: Community, client: TestClient
) -> None:
    _invited(c)
    cid = _task(c, stock=10)
    slug = _slug(c, cid)
    pid, token = join(c.engine, cid, member_id=member_id(c, "boss"))
    me = f"/k/{slug}/me/{token}"
    page = client.get(me).text
    assert "有效邀请 3 人 · 待确认 1 人" in page
    assert "王**" in page and "李*" in page and "韩**" in page and "王小明" not in page
    assert "领取奖励" in page
    for _ in range(2):  # the second press changes nothing
        done = client.post(me, data={"do": "claim", "invites": "3"})
        assert done.status_code == 303 and done.headers["location"].endswith("?ok=claim")
    with session_scope(c.engine) as s:
        claims = s.scalars(select(RewardClaim)).all()
        assert [(cl.participant_id, cl.reason) for cl in claims] == [(pid, "tier:3")]
    after = client.get(me).text
    assert "奖励已领取" not in after and "已领取" in after and "领取奖励" not in after
    bad = client.post(me, data={"do": "claim", "invites": "7"})
    assert bad.status_code == 400 and "本活动没有邀请 7 人的奖励档位" in bad.text
    garbage = client.post(me, data={"do": "claim", "invites": "x" * 50})
    assert garbage.status_code == 400 and "该奖励档位不存在" in garbage.text
    assert client.post(me, data={"do": "nuke"}).status_code == 400
    en = client.get(me, headers=EN).text
    assert "Valid invites: 3 · pending: 1" in en and "Claimed" in en


def test_a_tier_not_reached_is_refused(c: Community, client: TestClient) -> None:
    slug = _slug(c, _task(c))
    me = client.post(f"/k/{slug}/join", data=_form()).headers["location"]
    refused = client.post(me, data={"do": "claim", "invites": "3"})
    assert refused.status_code == 400 and "目前有效邀请 0 人，该档位需要 3 人" in refused.text
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(RewardClaim)) == 0


def test_address_form_is_sealed(c: Community, client: TestClient) -> None:
    slug = _slug(c, _task(c, stock=3, kind="physical"))
    me = client.post(f"/k/{slug}/join", data=_form()).headers["location"]
    assert "收货地址" in client.get(me).text
    address = {"do": "address", "name": "张三", "phone": FRIEND, "region": "上海市 浦东新区"}
    missing = client.post(me, data=address)
    assert missing.status_code == 400 and "detail" in missing.text
    saved = client.post(me, data={**address, "detail": "世纪大道 100 号"})
    assert saved.status_code == 303
    with session_scope(c.engine) as s:
        p = s.scalar(select(Participant))
        assert p is not None and p.address_sealed and "世纪大道" not in p.address_sealed
        opened = rewards.open_address(s, p)
        assert opened is not None and opened["detail"] == "世纪大道 100 号"
        assert opened["phone"] == "+86" + FRIEND
    assert "已保存收货地址" in client.get(me).text


def test_leaderboard_pages_show_the_live_top(c: Community, client: TestClient) -> None:
    reward = make_reward(c.engine, c.ws_id)
    cid = live_campaign(
        c.engine, c.ws_id, "leaderboard",
        {"board": {"prizes": [{"rank_from": 1, "rank_to": 3, "reward_id": reward}]}},
        key="board",
    )  # fmt: skip
    slug = _slug(c, cid)
    people = []
    for name, phone, score in (("赵云", "13612345678", 2), ("钱多多", "13512345678", 5)):
        pid, token = join(c.engine, cid, phone=phone, name=name)
        people.append((pid, token))
        with session_scope(c.engine) as s:
            p = s.get(Participant, pid)
            assert p is not None
            service.set_score(s, p, score, NOW)
    page = client.get(f"/k/{slug}").text
    assert "第 #1-3 名" in page and "排行榜" in page
    assert page.index("钱**") < page.index("赵*") and "钱多多" not in page
    me = client.get(f"/k/{slug}/me/{people[0][1]}").text
    assert "我的排名：第 2 名 · 成绩 2" in me
    en = client.get(f"/k/{slug}/me/{people[0][1]}", headers=EN).text
    assert "My rank: 2 · score: 2" in en and "Leaderboard" in en


@pytest.mark.parametrize("path", ["/k/nosuch", "/k/NOPE!", "/k/nosuch/me/abc"])
def test_unknown_pages_are_404_pages(client: TestClient, path: str) -> None:
    got = client.get(path)
    assert got.status_code == 404 and "text/html" in got.headers["content-type"]


def test_wrong_token_and_garbage_forms(c: Community, client: TestClient) -> None:
    slug = _slug(c, _task(c))
    assert client.get(f"/k/{slug}/me/not-a-token").status_code == 404
    raw = client.post(
        f"/k/{slug}/join", content=b"\xff\xfe", headers={"content-type": "application/json"}
    )
    assert raw.status_code == 400 and "表单" in raw.text
    huge = client.post(f"/k/{slug}/join", data={"name": "x" * 9000})
    assert huge.status_code == 400
    honeypot = client.post(f"/k/{slug}/join", data=_form(website="http://spam"))
    assert honeypot.status_code == 303 and "/me/" not in honeypot.headers["location"]
    with session_scope(c.engine) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 0


def _rules_of(c: Community, kind: str) -> dict[str, object]:
    r = make_reward(c.engine, c.ws_id)
    return {
        "invite_task": {"tiers": [{"invites": 3, "reward_id": r}]},
        "leaderboard": {"board": {"prizes": [{"rank_from": 1, "rank_to": 1, "reward_id": r}]}},
        "help_unlock": {"help": {"helpers_needed": 2, "reward_id": r}},
        "group_buy": {"team": {"size": 3, "limit_hours": 24, "price_fen": 9900,
                               "group_price_fen": 5900}},
        "bargain": {"bargain": {"price_fen": 10000, "floor_fen": 100, "helpers": 5, "hours": 24}},
        "gift_coupon": {"gift": {"sender_reward_id": r, "friend_reward_id": r, "max_gifts": 3}},
        "lottery": {"lottery": {"winners": 1, "reward_id": r, "draw_at_us": NOW + DAY_US}},
    }[kind]  # fmt: skip


@pytest.mark.parametrize(
    "kind",
    ["invite_task", "leaderboard", "help_unlock", "group_buy", "bargain", "gift_coupon", "lottery"],
)
def test_every_kind_renders_in_both_languages(c: Community, client: TestClient, kind: str) -> None:
    cid = live_campaign(c.engine, c.ws_id, kind, _rules_of(c, kind), key=kind)
    slug = _slug(c, cid)
    me = client.post(f"/k/{slug}/join", data=_form()).headers["location"]
    for headers, hello in (({}, "你好，张*"), (EN, "Hello, 张*")):
        page = client.get(f"/k/{slug}", headers=headers)
        assert page.status_code == 200 and "<h1>邀请好友 领好礼</h1>" in page.text
        mine = client.get(me, headers=headers)
        assert mine.status_code == 200 and hello in mine.text
    zh = client.get(f"/k/{slug}").text
    if kind == "group_buy":
        assert "拼团价: <strong>¥59.00</strong>" in zh and "付款在店铺中完成" in zh
    if kind == "bargain":
        assert "砍价底价: <strong>¥1.00</strong>" in zh


def test_lottery_page_shows_the_commitment_then_the_seed(c: Community, client: TestClient) -> None:
    from quanzi.campaigns import lottery

    cid = live_campaign(c.engine, c.ws_id, "lottery", _rules_of(c, "lottery"), key="draw")
    slug = _slug(c, cid)
    for name, phone in (("周一", "13612345678"), ("吴二", "13512345678"), ("郑三", FRIEND)):
        join(c.engine, cid, phone=phone, name=name)
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        commitment = lottery.commit(s, camp)
    before = client.get(f"/k/{slug}").text
    assert commitment in before and f"/k/{slug}/participants.json" in before
    assert "verify-draw" not in before
    listed = client.get(f"/k/{slug}/participants.json")
    assert listed.status_code == 200 and "周*" in listed.text and "周一" not in listed.text
    ids = lottery.parse_published(listed.text)
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        assert ids == [p.id for p in lottery.entrants(s, camp)]
        drawn = lottery.draw(s, camp, now_us=NOW + 2 * DAY_US)
        seed = camp.draw_seed
    assert seed is not None
    after = client.get(f"/k/{slug}").text
    assert seed in after and f"--seed {seed} --commitment {commitment}" in after
    checked = lottery.verify(seed, commitment, ids, 1)
    assert checked.commitment_matches and checked.winners == drawn
    assert client.get(f"/k/{_slug(c, _task(c))}/participants.json").status_code == 404
