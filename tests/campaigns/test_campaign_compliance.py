"""The campaign builder's platform-rule warnings on realistic Chinese (and English) copy."""

from __future__ import annotations

import pytest

from quanzi.campaigns.compliance import (
    RULE_INDUCED_SHARE,
    RULE_MOMENTS,
    RULE_MULTI_LEVEL,
    RULE_PRIZE_INFO,
    Warning,
    check,
)


def codes(text: str, kind: str = "invite_task") -> list[str]:
    return sorted({w.code for w in check(kind, {}, {"share_text": text})})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("转发朋友圈集赞30个，即可领取育儿课程", ["moments_share"]),
        ("分享到朋友圈并截图发给客服，送电子书一本", ["moments_share"]),
        ("集满20个赞找群主领红包", ["moments_share"]),
        ("朋友圈点赞满50即可参与", ["moments_share"]),
        (
            "Share this poster to your Moments and get a coupon",
            ["moments_share", "reward_for_share"],
        ),
        ("转发到5个微信群，截图给我领奖品", ["group_forwarding"]),
        ("把海报转发至3个以上的群，即可解锁课程", ["group_forwarding"]),
        ("分享到微信群就能获得优惠券", ["group_forwarding", "reward_for_share"]),
        ("转发群聊领红包", ["group_forwarding", "reward_for_share"]),
        ("分享有礼：每分享一次得10积分", ["reward_for_share"]),
        ("分享后即可获得一次抽奖机会", ["reward_for_share"]),
        ("分享给好友可增加一次抽奖机会", ["reward_for_share"]),
        ("加入三级分销，发展下线躺赚佣金", ["multi_level"]),
        ("多级返佣，团队越大收益越高", ["multi_level"]),
        ("快来帮我砍一刀！", ["friend_help"]),
    ],
)
def test_copy_that_asks_for_what_wechat_forbids(text: str, expected: list[str]) -> None:
    assert codes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "邀请好友进群，满3人送电子书，满10人送课程",
        "邀请3位好友添加客服企业微信，添加成功即得积分",
        "扫码进群，领取新人专享券",
        "无需转发朋友圈，邀请好友进群即可",
        "不用集赞，不用转发，邀请两位宝妈进群就送绘本",
        "我们的朋友圈每天更新育儿知识，欢迎关注",
        "团购价99元，三人成团，24小时内未成团自动退款",
        "二级分销：好友下单你得10%，好友的好友下单你得5%",
        "加速宝宝语言发育的亲子课",
        "Invite three friends to join the group and get the e-book",
    ],
)
def test_copy_that_is_fine(text: str) -> None:
    assert codes(text) == []


def test_warning_carries_the_rule_quote_and_where() -> None:
    found = check(
        "invite_task",
        {"tiers": [{"invites": 3, "reward_id": 1}]},
        {"title": "春季邀请有礼", "share_text": "转发朋友圈集赞领课程", "rules": "邀请好友进群"},
    )
    # Both a Moments request and a reward for it; nothing about the harmless title or rules.
    assert [(w.code, w.where) for w in found] == [
        ("moments_share", "copy.share_text"),
        ("reward_for_share", "copy.share_text"),
    ]
    w = found[0]
    assert isinstance(w, Warning)
    assert (w.code, w.where, w.severity) == ("moments_share", "copy.share_text", "warning")
    assert w.rule_quote == RULE_MOMENTS and "分享至朋友圈" in w.rule_quote
    assert "转发朋友圈" in w.message_zh and "Moments" in w.message_en
    # The rule is quoted with its source.
    assert RULE_INDUCED_SHARE.startswith("《微信外部链接内容管理规范》")
    assert "集赞" in RULE_INDUCED_SHARE and "砍价" in RULE_INDUCED_SHARE


def test_one_warning_per_code_and_place() -> None:
    found = check("invite_task", {}, {"a": "转发朋友圈，转发朋友圈", "b": "发朋友圈"})
    assert [(w.code, w.where) for w in found] == [
        ("moments_share", "copy.a"),
        ("moments_share", "copy.b"),
    ]


def test_friend_help_kinds_get_a_notice() -> None:
    for kind in ("help_unlock", "bargain"):
        found = check(kind, {}, {"title": "好友助力，免费领课"})
        assert [(w.code, w.where, w.severity) for w in found] == [("friend_help", "kind", "notice")]
        assert found[0].rule_quote == RULE_INDUCED_SHARE
    assert check("invite_task", {}, {"title": "邀请好友进群"}) == []


def test_commission_beyond_two_levels() -> None:
    three = check("invite_task", {"commission": {"levels": 3}}, {})
    assert [(w.code, w.where) for w in three] == [("multi_level", "rules.commission")]
    assert three[0].rule_quote == RULE_MULTI_LEVEL
    assert check("invite_task", {"commission": {"rates": [0.1, 0.05]}}, {}) == []
    assert [w.code for w in check("invite_task", {"commission": {"rates": [3, 2, 1]}}, {})] == [
        "multi_level"
    ]


def test_lottery_and_group_buy_without_published_rules() -> None:
    found = check("lottery", {}, {"title": "春节抽奖"})
    assert [(w.code, w.severity, w.where) for w in found] == [
        ("rules_unpublished", "notice", "copy")
    ]
    assert found[0].rule_quote == RULE_PRIZE_INFO
    rules_text = (
        "奖品：绘本100份，每人限中一次；3月20日20:00开奖，中奖名单在本页公布，7天内填写地址。"
    )
    assert check("lottery", {}, {"title": "春节抽奖", "rules": rules_text}) == []
    assert check("lottery", {}, {"rules_text": "开奖见群公告"}) != []  # too short to be rules
    assert [w.code for w in check("group_buy", {}, None)] == ["rules_unpublished"]
    assert check("invite_task", None, None) == []


def test_texts_in_rules_are_read_too() -> None:
    found = check("invite_task", {"eligibility": {"channels": ["转发朋友圈集赞"]}}, {})
    assert [(w.code, w.where) for w in found] == [("moments_share", "rules.eligibility.channels.0")]
