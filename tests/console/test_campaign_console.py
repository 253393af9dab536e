"""The campaign console: a builder per kind (good input stored as the engine's rules, bad input
shown beside its field in Chinese with nothing stored), compliance warnings that hold a launch
until confirmed, launch / end / cancel audited, analysts read only, an operator's groups, the
dashboard's figures equal to campaign_metrics, the forecast, and each kind's own section."""

from __future__ import annotations

import hashlib
import html
import json
import re
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from community import Community
from consolekit import LoginAs, Team
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from quanzi.campaigns import bargain, group_buy, lottery, rewards, service
from quanzi.campaigns.metrics import campaign_metrics
from quanzi.campaigns.models import Campaign, Participant
from quanzi.core.members.models import Member
from quanzi.db.engine import session_scope
from quanzi.kit.clock import now_us, to_us
from quanzi.team.models import AuditEntry

TZ = ZoneInfo("Asia/Shanghai")


def local(days: float = 0, hours: float = 0) -> str:
    """A datetime-local value `days` and `hours` from now, in the workspace's time zone."""
    at = datetime.now(TZ) + timedelta(days=days, hours=hours)
    return at.strftime("%Y-%m-%dT%H:%M")


def make_rewards(engine: Engine, ws_id: int) -> dict[str, int]:
    with session_scope(engine) as s:
        made = {
            "book": rewards.create_reward(
                s, ws_id, name="电子书", kind="content_link", unit_cost_fen=0,
                stock=None, config={"url": "https://example.com/book"},
            ),
            "course": rewards.create_reward(
                s, ws_id, name="课程", kind="membership_days", unit_cost_fen=1000,
                stock=None, config={"days": 30},
            ),
            "gift": rewards.create_reward(
                s, ws_id, name="保温杯", kind="physical", unit_cost_fen=3500,
                stock=10, config={},
            ),
            "coupon": rewards.create_reward(
                s, ws_id, name="满减券", kind="coupon_code", unit_cost_fen=200,
                stock=None, config={"value_fen": 1000},
            ),
        }  # fmt: skip
        return {k: r.id for k, r in made.items()}


def kind_fields(kind: str, r: dict[str, int]) -> dict[str, str]:
    """Good settings of each kind, as the builder's form fields."""
    return {
        "invite_task": {
            "tier_invites_0": "3", "tier_reward_0": str(r["book"]),
            "tier_invites_1": "10", "tier_reward_1": str(r["course"]),
        },
        "group_buy": {
            "team_size": "3", "team_limit_hours": "24", "team_price": "99",
            "team_group_price": "59.90", "team_leader_only": "1",
        },
        "help_unlock": {"help_helpers_needed": "5", "help_reward_id": str(r["book"])},
        "bargain": {
            "bargain_price": "100.00", "bargain_floor": "1", "bargain_helpers": "10",
            "bargain_hours": "24",
        },
        "gift_coupon": {
            "gift_sender_reward_id": str(r["coupon"]), "gift_friend_reward_id": str(r["coupon"]),
            "gift_max_gifts": "5",
        },
        "leaderboard": {
            "board_metric": "valid_invites",
            "prize_from_0": "1", "prize_to_0": "1", "prize_reward_0": str(r["gift"]),
            "prize_from_1": "2", "prize_to_1": "10", "prize_reward_1": str(r["book"]),
        },
        "lottery": {
            "lottery_winners": "3", "lottery_reward_id": str(r["gift"]),
            "lottery_draw_at": local(days=8),
        },
    }[kind]  # fmt: skip


# What the engine stores for kind_fields (reward ids filled in by the test).
EXPECTED: dict[str, Any] = {
    "invite_task": lambda r: {"tiers": [{"invites": 3, "reward_id": r["book"]},
                                        {"invites": 10, "reward_id": r["course"]}],
                              "count": "join"},
    "group_buy": lambda r: {"team": {"size": 3, "limit_hours": 24, "price_fen": 9900,
                                     "group_price_fen": 5990, "leader_only": True}},
    "help_unlock": lambda r: {"help": {"helpers_needed": 5, "reward_id": r["book"]}},
    "bargain": lambda r: {"bargain": {"price_fen": 10000, "floor_fen": 100, "helpers": 10,
                                      "hours": 24, "reward_id": None}},
    "gift_coupon": lambda r: {"gift": {"sender_reward_id": r["coupon"],
                                       "friend_reward_id": r["coupon"], "max_gifts": 5}},
    "leaderboard": lambda r: {"board": {"metric": "valid_invites", "prizes": [
        {"rank_from": 1, "rank_to": 1, "reward_id": r["gift"]},
        {"rank_from": 2, "rank_to": 10, "reward_id": r["book"]}]}},
    "lottery": lambda r: {"lottery": {"winners": 3, "reward_id": r["gift"]}},
}  # fmt: skip


def save(client: TestClient, kind: str, fields: dict[str, Any], **common: Any) -> Any:
    data: dict[str, Any] = {
        "csrf_token": client.csrf,  # type: ignore[attr-defined]
        "kind": kind,
        "name": f"测试{kind}",
        "starts": local(days=1),
        "ends": local(days=8),
        "hold_hours": "48",
        "copy_title": "邀请好友一起学",
        "copy_rules": "活动规则：邀请好友入群，有效邀请满 72 小时后计入，奖品 7 日内发放。",
    }
    data.update(fields)
    data.update(common)
    return client.post("/w/default/campaigns/save", data=data, follow_redirects=False)


def campaigns_of(engine: Engine) -> list[Campaign]:
    with session_scope(engine, read_only=True) as s:
        found = list(s.scalars(select(Campaign).order_by(Campaign.id)))
        for c in found:
            s.expunge(c)
        return found


def audits(engine: Engine, action: str) -> list[AuditEntry]:
    with session_scope(engine, read_only=True) as s:
        found = list(s.scalars(select(AuditEntry).where(AuditEntry.action == action)))
        for a in found:
            s.expunge(a)
        return found


def error_of(page: str, field: str) -> str:
    m = re.search(rf'<p class="field-error" id="err-{field}"[^>]*>(.*?)</p>', page, re.S)
    assert m, f"no error shown beside {field}"
    return html.unescape(m.group(1))


def value_of(page: str, name: str) -> str:
    m = re.search(rf'<input[^>]*name="{name}"[^>]*value="([^"]*)"', page)
    assert m, f"no input {name}"
    return html.unescape(m.group(1))


def test_each_kind_is_built_through_the_console(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    assert owner.get("/w/default/campaigns/new").status_code == 200
    g1 = console_team.operator_groups[0]
    for kind in EXPECTED:
        form = owner.get(f"/w/default/campaigns/new?kind={kind}")
        assert form.status_code == 200 and 'data-testid="builder"' in form.text
        res = save(owner, kind, kind_fields(kind, r), group_ids=[str(g1)], channels=["flyer"])
        assert res.status_code == 303, (kind, res.text[-3000:])
        assert "done=created" in res.headers["location"]
    stored = {c.kind: c for c in campaigns_of(engine)}
    assert set(stored) == set(EXPECTED)
    for kind, c in stored.items():
        want = EXPECTED[kind](r)
        for section, value in want.items():
            got = c.rules[section]
            if kind == "lottery":
                got = {k: v for k, v in got.items() if k != "draw_at_us"}
            assert got == value, kind
        assert c.rules["hold_hours"] == 48 and c.rules["group_ids"] == [g1]
        assert c.rules["eligibility"]["channels"] == ["flyer"]
        assert c.status == "draft" and c.copy_text["title"] == "邀请好友一起学"
        # The window was typed in Asia/Shanghai local time.
        assert (c.ends_at_us - c.starts_at_us) == 7 * 86_400_000_000
    draw_at = stored["lottery"].rules["lottery"]["draw_at_us"]
    assert draw_at - stored["lottery"].starts_at_us == 7 * 86_400_000_000
    assert len(audits(engine, "campaign.created")) == len(EXPECTED)
    listing = owner.get("/w/default/campaigns?kind=group_buy")
    assert listing.status_code == 200 and "拼团" in listing.text
    assert listing.text.count("data-campaign=") == 1
    assert owner.get("/w/default/campaigns?status=draft").text.count("data-campaign=") == 7
    assert owner.get("/w/default/campaigns?status=bogus").status_code == 400


# (kind, fields changed from the good ones, the field the error is shown beside, its words)
BAD_SETTINGS = [
    ("group_buy", {"team_group_price": "120"}, "team_group_price", "拼团价必须低于原价"),
    ("group_buy", {"team_size": "1"}, "team_size", "不能小于 2"),
    ("bargain", {"bargain_floor": "abc"}, "bargain_floor", "不是以元为单位的金额"),
    ("bargain", {"bargain_floor": "100"}, "bargain_floor", "底价必须低于原价"),
    ("invite_task", {"tier_invites_1": "2"}, "tiers", "每一档的邀请数必须比上一档多"),
    ("lottery", {"lottery_winners": ""}, "lottery_winners", "必填"),
    ("leaderboard", {"prize_to_0": "5"}, "prizes", "名次区间有重叠"),
    ("help_unlock", {"help_helpers_needed": "x"}, "help_helpers_needed", "请填写整数"),
]


def test_bad_settings_are_shown_beside_the_field_and_nothing_is_stored(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    for kind, fields, field, words in BAD_SETTINGS:
        res = save(owner, kind, {**kind_fields(kind, r), **fields}, name="春季裂变")
        assert res.status_code == 400, kind
        assert words in error_of(res.text, field), (kind, field)
        assert "未保存" in res.text
        # What they typed is kept.
        assert value_of(res.text, "name") == "春季裂变"
        for name, typed in fields.items():
            if typed:
                assert value_of(res.text, name) == typed
    assert campaigns_of(engine) == []


def test_window_and_reference_errors_from_the_engine(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    fields = kind_fields("invite_task", r)
    res = save(owner, "invite_task", fields, ends=local(days=-1))
    assert res.status_code == 400
    assert "结束时间必须晚于开始时间" in error_of(res.text, "ends")
    res = save(owner, "invite_task", fields, starts="明天")
    assert res.status_code == 400 and "不是有效的日期时间" in error_of(res.text, "starts")
    res = save(owner, "invite_task", {**fields, "tier_reward_0": "999999"})
    assert res.status_code == 400 and "奖励 999999" in res.text
    res = save(owner, "invite_task", fields, key="bad key!")
    assert res.status_code == 400 and "字母、数字" in error_of(res.text, "key")
    assert campaigns_of(engine) == []
    # The same key twice: the second is refused beside the key.
    assert save(owner, "invite_task", fields, key="spring").status_code == 303
    res = save(owner, "invite_task", fields, key="spring")
    assert res.status_code == 400 and "已被其他活动使用" in error_of(res.text, "key")
    assert len(campaigns_of(engine)) == 1


def _post(client: TestClient, url: str, **data: str) -> Any:
    data["csrf_token"] = client.csrf  # type: ignore[attr-defined]
    return client.post(url, data=data, follow_redirects=False)


def test_compliance_warnings_hold_the_launch_until_confirmed(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    copy = {"copy_share": "转发到朋友圈，集满 20 个赞领取电子书"}
    res = save(owner, "invite_task", kind_fields("invite_task", r), starts=local(hours=-1), **copy)
    assert res.status_code == 303
    (c,) = campaigns_of(engine)
    page = owner.get(f"/w/default/campaigns/{c.id}")
    assert 'data-warning="moments_share"' in page.text
    assert "《微信公众平台运营规范》3.3.1 诱导分享" in page.text  # the rule, quoted
    assert 'name="confirm"' in page.text
    refused = _post(owner, f"/w/default/campaigns/{c.id}/launch")
    assert refused.status_code == 400 and "请阅读后勾选确认框" in refused.text
    assert campaigns_of(engine)[0].status == "draft"
    assert audits(engine, "campaign.launched") == []
    done = _post(owner, f"/w/default/campaigns/{c.id}/launch", confirm="1")
    assert done.status_code == 303
    assert campaigns_of(engine)[0].status == "live"
    (entry,) = audits(engine, "campaign.launched")
    assert entry.detail is not None and entry.detail["confirmed"] is True
    assert "moments_share" in entry.detail["warnings"]


def test_launch_end_cancel_are_audited_and_only_drafts_change_rules(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    fields = kind_fields("invite_task", r)
    save(owner, "invite_task", fields, starts=local(hours=-1), key="a")
    save(owner, "invite_task", fields, key="b")
    a, b = campaigns_of(engine)
    assert _post(owner, f"/w/default/campaigns/{a.id}/end").status_code == 400
    assert _post(owner, f"/w/default/campaigns/{a.id}/launch").status_code == 303
    (launched,) = audits(engine, "campaign.launched")
    assert launched.detail == {"warnings": [], "confirmed": False}
    # Live: the name changes, the rules stay as launched.
    edit = owner.get(f"/w/default/campaigns/{a.id}/edit")
    assert edit.status_code == 200 and "规则保持上线时的设置" in edit.text
    res = save(owner, "invite_task", {**fields, "tier_invites_0": "1"}, id=str(a.id), name="改名")
    assert res.status_code == 303
    a2 = campaigns_of(engine)[0]
    assert a2.name == "改名" and a2.rules["tiers"][0]["invites"] == 3 and a2.key == "a"
    assert audits(engine, "campaign.updated")[0].detail == {"changed": ["name"]}
    # A draft changes its rules.
    res = save(owner, "invite_task", {**fields, "tier_invites_0": "2"}, id=str(b.id), key="b")
    assert res.status_code == 303
    assert campaigns_of(engine)[1].rules["tiers"][0]["invites"] == 2
    assert _post(owner, f"/w/default/campaigns/{a.id}/end").status_code == 303
    assert _post(owner, f"/w/default/campaigns/{b.id}/cancel").status_code == 303
    a3, b3 = campaigns_of(engine)
    assert (a3.status, b3.status) == ("ended", "cancelled")
    assert len(audits(engine, "campaign.ended")) == len(audits(engine, "campaign.cancelled")) == 1
    again = _post(owner, f"/w/default/campaigns/{a.id}/end")
    assert again.status_code == 400 and "只有进行中的活动可以结束" in again.text
    # Ended campaigns are not edited: the edit page leads back to the figures.
    assert owner.get(f"/w/default/campaigns/{a.id}/edit", follow_redirects=False).status_code == 303


def test_analysts_read_but_change_nothing(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    save(owner, "invite_task", kind_fields("invite_task", r), starts=local(hours=-1))
    (c,) = campaigns_of(engine)
    analyst = login_as("analyst")
    assert analyst.get("/w/default/campaigns").status_code == 200
    page = analyst.get(f"/w/default/campaigns/{c.id}")
    assert page.status_code == 200 and 'data-testid="launch"' not in page.text
    assert analyst.get("/w/default/campaigns/new?kind=lottery").status_code == 403
    assert analyst.get(f"/w/default/campaigns/{c.id}/edit").status_code == 403
    assert save(analyst, "invite_task", kind_fields("invite_task", r)).status_code == 403
    for action in ("launch", "cancel", "forecast"):
        assert _post(analyst, f"/w/default/campaigns/{c.id}/{action}").status_code == 403
    assert [x.status for x in campaigns_of(engine)] == ["draft"]
    # Another workspace's campaign number is not found.
    assert owner.get("/w/default/campaigns/999999").status_code == 404


def _live(engine: Engine, ws_id: int, kind: str, rules: dict[str, Any]) -> int:
    now = now_us()
    with session_scope(engine) as s:
        c = service.create_campaign(
            s, ws_id, kind=kind, name=f"进行中{kind}", key=f"live-{kind}",
            starts_at_us=now - 3_600_000_000, ends_at_us=now + 7 * 86_400_000_000,
            rules=rules, copy={"title": "活动"}, by="pytest",
        )  # fmt: skip
        service.launch(s, ws_id, c.id, "pytest")
        return c.id


def _member(engine: Engine, ws_id: int, key: str) -> Member:
    with session_scope(engine, read_only=True) as s:
        m = s.scalar(select(Member).where(Member.workspace_id == ws_id, Member.member_key == key))
        assert m is not None
        s.expunge(m)
        return m


def test_operator_sees_their_groups_and_analysts_masked_names(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    g1, g2 = console_team.operator_groups[0], console_team.other_groups[0]
    rules = {"group_ids": [g1, g2], "board": {"metric": "valid_invites", "prizes": []}}
    cid = _live(engine, console_team.ws_id, "leaderboard", rules)
    m1, m3 = _member(engine, 1, "m1"), _member(engine, 1, "m3")
    with session_scope(engine) as s:
        c = service.get_campaign(s, console_team.ws_id, cid)
        for member, score in ((m1, 5), (m3, 3)):
            joined = service.join(s, c, member_id=member.id)
            service.set_score(s, joined.participant, score, joined.participant.joined_at_us + 1)
    name1, name3 = m1.name or "", m3.name or ""
    masked1, masked3 = name1[0] + "*" * (len(name1) - 1), name3[0] + "*" * (len(name3) - 1)

    def board(role: str) -> tuple[str, str]:
        """The page above the leaderboard, and the leaderboard."""
        page = login_as(role).get(f"/w/default/campaigns/{cid}")
        assert page.status_code == 200
        m = re.search(r'<table data-testid="board">(.*?)</table>', page.text, re.S)
        assert m
        return page.text[: m.start()], m.group(1)

    above, table = board("operator")
    assert "妈妈群一" in above and "读书会" not in above
    assert "另有 1 个不归你负责的群" in above
    assert name1 in table and masked3 in table and name3 not in table
    _above, table = board("analyst")
    assert masked1 in table and masked3 in table and name1 not in table
    above, owner = board("owner")
    assert "妈妈群一" in above and "读书会" in above
    assert name1 in owner and name3 in owner
    # The first is ranked first.
    ranks = re.findall(r'<tr data-participant="(\d+)"><td class="num">(\d+)</td>', owner)
    assert [rank for _pid, rank in ranks] == ["1", "2"]


def _ts(text: str) -> str:
    return text + "+08:00"


def test_dashboard_figures_equal_campaign_metrics(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    """A small campaign over 2026-11-01..06: m1 invites m2 (left within the hold window, not
    valid) and m4 (valid, posts, takes part and pays); a claim of 35.00 and an order."""
    c = Community(engine)
    c.add("member.joined", _ts("2026-11-03T09:00:00"), id="cc1", group="g1", member="m4",
          inviter="m1", via="invite", name="赵四")  # fmt: skip
    c.add("message.posted", _ts("2026-11-04T09:00:00"), id="cc2", group="g1", member="m4",
          text="来了")  # fmt: skip
    c.add("order.paid", _ts("2026-11-04T12:00:00"), id="cc3", order="o9", member="m4",
          amount=5000, campaign="autumn")  # fmt: skip
    r = make_rewards(engine, console_team.ws_id)
    g1 = console_team.operator_groups[0]
    start = to_us(datetime(2026, 11, 1, tzinfo=TZ))
    with session_scope(engine) as s:
        camp = service.create_campaign(
            s, 1, kind="invite_task", name="秋季任务宝", key="autumn",
            starts_at_us=start, ends_at_us=start + 5 * 86_400_000_000,
            rules={"group_ids": [g1], "tiers": [{"invites": 1, "reward_id": r["gift"]}]},
            copy={}, by="pytest",
        )  # fmt: skip
        camp.status = "ended"
        ids = {
            key: mid
            for key, mid in s.execute(
                select(Member.member_key, Member.id).where(Member.workspace_id == 1)
            )
        }
        people = []
        for n, key in enumerate(("m1", "m4")):
            joined = start + (n + 1) * 86_400_000_000
            p = Participant(
                workspace_id=1, campaign_id=camp.id, member_id=ids[key],
                token_digest=hashlib.sha256(f"t{n}".encode()).hexdigest(),
                referrer_id=people[0].id if people else None, score=0,
                score_at_us=joined, joined_at_us=joined,
            )  # fmt: skip
            s.add(p)
            s.flush()
            people.append(p)
        rewards.grant(s, camp, people[0], r["gift"], "tier:1")
        cid = camp.id
    page = login_as("analyst").get(f"/w/default/campaigns/{cid}")
    assert page.status_code == 200
    with session_scope(engine, read_only=True) as s:
        m = campaign_metrics(s, 1, cid).as_dict()
    shown = dict(re.findall(r'data-figure="(\w+)" data-value="([^"]*)"', page.text))
    assert len(shown) == 21
    for key, value in shown.items():
        assert value == ("" if m[key] is None else str(m[key])), key
    # The data set is not trivial: one valid invite, one acquired, costs and revenue.
    assert (m["participants"], m["invites_raw"], m["invites_valid"]) == (2, 2, 1)
    assert (m["acquired"], m["reward_cost_fen"], m["revenue_fen"]) == (1, 3500, 5000)
    assert shown["roi"] == str(round((5000 - 3500) / 3500, 4))
    cohorts = dict(re.findall(r'data-cohort="([\w-]+)" data-value="([^"]*)"', page.text))
    assert cohorts["ours-members"] == str(m["campaign_cohort"]["members"])
    assert cohorts["other-retention_7d"] == str(m["other_cohort"]["retention_7d"])
    assert 'data-chart="campaign-daily"' in page.text and "campaign-money" in page.text


def test_forecast_before_launch_and_beside_the_figures_after(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    save(owner, "invite_task", kind_fields("invite_task", r), starts=local(days=2))
    (c,) = campaigns_of(engine)
    url = f"/w/default/campaigns/{c.id}/forecast"
    bad = _post(owner, url, seeds="abc", runs="200")
    assert bad.status_code == 400 and "预计种子参与者：请填写" in bad.text
    assert campaigns_of(engine)[0].forecast is None
    assert _post(login_as("analyst"), url, seeds="10", runs="200").status_code == 403
    assert _post(owner, url, seeds="10", runs="200").status_code == 303
    stored = campaigns_of(engine)[0].forecast
    assert stored is not None and stored["inputs"]["runs"] == 200
    page = owner.get(f"/w/default/campaigns/{c.id}").text
    row = re.search(r'<tr data-forecast="participants">(.*?)</tr>', page, re.S)
    assert row is not None
    cells = dict(re.findall(r'data-q="(\w+)">([^<]*)<', row.group(1)))
    assert cells["p10"] == str(stored["participants"]["p10"])
    assert cells["p90"] == str(stored["participants"]["p90"])
    assert len(audits(engine, "campaign.forecast")) == 1
    # Once live, the forecast stands beside what happened and is not made again.
    assert _post(owner, f"/w/default/campaigns/{c.id}/launch").status_code == 303
    assert _post(owner, url, seeds="10", runs="200").status_code == 400
    page = owner.get(f"/w/default/campaigns/{c.id}").text
    row = re.search(r'<tr data-forecast="participants">(.*?)</tr>', page, re.S)
    assert row is not None and re.search(r"data-actual>0<", row.group(1))


def test_lottery_commitment_list_and_seed(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    r = make_rewards(engine, console_team.ws_id)
    owner = login_as("owner")
    fields = {**kind_fields("lottery", r), "lottery_draw_at": local(days=1)}
    assert save(owner, "lottery", fields, starts=local(hours=-1)).status_code == 303
    (c,) = campaigns_of(engine)
    assert _post(owner, f"/w/default/campaigns/{c.id}/launch").status_code == 303
    committed = campaigns_of(engine)[0].draw_commitment
    assert committed and re.fullmatch(r"[0-9a-f]{64}", committed)
    page = owner.get(f"/w/default/campaigns/{c.id}").text
    assert f"<code data-commitment>{committed}</code>" in page and "data-seed" not in page
    m1 = _member(engine, 1, "m1")
    with session_scope(engine) as s:
        camp = service.get_campaign(s, 1, c.id)
        service.join(s, camp, member_id=m1.id)
    listed = owner.get(f"/w/default/campaigns/{c.id}/draw-list?format=json")
    assert listed.status_code == 200 and "attachment" in listed.headers["content-disposition"]
    body = json.loads(listed.text)
    assert body["commitment"] == committed and body["seed"] is None
    assert len(body["participants"]) == 1
    with session_scope(engine) as s:
        camp = service.get_campaign(s, 1, c.id)
        lottery.draw(s, camp, now_us=int(camp.rules["lottery"]["draw_at_us"]))
    page = owner.get(f"/w/default/campaigns/{c.id}").text
    seed = re.search(r"<code data-seed>([0-9a-f]{64})</code>", page)
    assert seed is not None
    assert hashlib.sha256(bytes.fromhex(seed.group(1))).hexdigest() == committed
    csv_list = owner.get(f"/w/default/campaigns/{c.id}/draw-list?format=csv")
    assert csv_list.status_code == 200
    assert owner.get(f"/w/default/campaigns/{c.id}/draw-list?format=pdf").status_code == 400


def test_group_buy_teams_and_bargains_in_progress(
    engine: Engine, console_team: Team, login_as: LoginAs
) -> None:
    team = {"size": 3, "limit_hours": 24, "price_fen": 9900, "group_price_fen": 5990}
    gb = _live(engine, 1, "group_buy", {"team": team})
    bg = _live(engine, 1, "bargain", {"bargain": {"price_fen": 10000, "floor_fen": 100,
                                                  "helpers": 5, "hours": 24}})  # fmt: skip
    m1 = _member(engine, 1, "m1")
    with session_scope(engine) as s:
        c = service.get_campaign(s, 1, gb)
        leader = service.join(s, c, member_id=m1.id).participant
        opened = group_buy.open_team(s, c, leader)
        group_buy.pay(s, c, opened, leader, "order-1", 5990)
        c2 = service.get_campaign(s, 1, bg)
        b = bargain.start_bargain(s, c2, service.join(s, c2, member_id=m1.id).participant)
        assert b.current_fen == 10000
    owner = login_as("owner")
    page = owner.get(f"/w/default/campaigns/{gb}").text
    assert '<strong data-teams="open">1</strong>' in page
    assert '<strong data-teams="complete">0</strong>' in page
    assert "1 / 3" in page
    page = owner.get(f"/w/default/campaigns/{bg}").text
    assert '<strong data-bargains="in_progress">1</strong>' in page
    assert '<strong data-bargains="completed">0</strong>' in page
    assert "¥100.00" in page and "0 / 5" in page
    with session_scope(engine, read_only=True) as s:
        assert s.scalar(select(func.count()).select_from(Participant)) == 2
