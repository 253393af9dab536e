"""Warnings for the campaign builder: copy or rules that ask for what WeChat's rules forbid
(rewards for sharing to Moments or forwarding to groups, friend help and bargains in shared
links, multi-level commissions) and a lottery or group buy without published rules.

Warnings advise; they never refuse a campaign. Each quotes the rule it rests on, with its
source, so the operator can judge. Background: docs/campaigns_ethics.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

# 《微信外部链接内容管理规范》, the clause on induced sharing (1.2 in the upgrade in force from
# 2019-10-28; cited as 2.1.2 by 微信安全中心 in February 2026).
RULE_INDUCED_SHARE = (
    "《微信外部链接内容管理规范》（诱导分享类）：通过利益诱惑，诱导用户分享以及传播外链内容的，"
    "包括但不限于：以金钱奖励、实物奖品、虚拟奖品（包括但不限于红包、优惠券、代金券、积分、话费、"
    "流量、信息）；声称分享可增加抽奖机会、中奖概率、成功可能；通过签到打卡、邀请好友协助（包括但"
    "不限于助力、砍价、加速）、设置收集任务（包括但不限于集赞、集卡、集福、集碎片）等形式利诱、"
    "诱导用户分享以及传播外链内容的。"
)
# 《微信公众平台运营规范》 3.3.1 诱导分享.
RULE_MOMENTS = (
    "《微信公众平台运营规范》3.3.1 诱导分享：禁止通过外链或公众号消息等方式，强制或诱导用户将"
    "消息分享至朋友圈的行为。奖励的方式包括但不限于：实物奖品、虚拟奖品（积分、信息）等。"
)
# 微信公众平台《关于整顿多级分销欺诈行为的公告》 (2016-09-12), violation example 1.
RULE_MULTI_LEVEL = (
    "微信公众平台《关于整顿多级分销欺诈行为的公告》：通过发展人员形成上下线关系，依据下线人数、"
    "销售业绩等为依据计算和给付上线报酬。（Quanzi 的分销佣金最多两级：docs/campaigns_ethics.md）"
)
# 《中华人民共和国反不正当竞争法》（2019 年修正）第十条第（一）项.
RULE_PRIZE_INFO = (
    "《反不正当竞争法》第十条：经营者进行有奖销售不得存在下列情形：（一）所设奖的种类、兑奖条件、"
    "奖金金额或者奖品等有奖销售信息不明确，影响兑奖。"
)

# Stops: a request never runs across the end of a sentence or a clause.
_GAP = r"[^。！？!?\n，,；;]"
_NEGATED = re.compile(
    r"(无需|无须|不用|不需|不必|不要求|不强制|禁止|请勿|不得|严禁|no need to|don't|do not)\s*$",
    re.I,
)
_MOMENTS = [
    re.compile(rf"(分享|转发|转|发|晒|发布|发送|推荐){_GAP}{{0,6}}朋友圈"),
    re.compile(rf"朋友圈{_GAP}{{0,6}}(分享|转发|集赞|点赞|截图|留言)"),
    re.compile(r"集[满齐够]?\s*\d*\s*个?[赞👍]"),
    re.compile(r"\b(share|post)\w*\b[^.!?\n]{0,20}\bmoments\b", re.I),
]
_NUM = r"(\d+|[一二三四五六七八九十两几多数百千]+)"
_GROUPS = [
    re.compile(rf"(转发|分享|发送|转|发){_GAP}{{0,6}}?{_NUM}\s*个?(以上)?的?(微信|社|QQ)?群"),
    re.compile(
        r"(转发|分享|发送)[^。！？!?\n，,；;进入加]{0,4}(微信群|群聊|社群|群里|群内|各群|到群|至群)"
    ),
    re.compile(
        r"\b(forward|share|post)\w*\b[^.!?\n]{0,20}\b(\d+|many|several)\s+(wechat\s+)?groups\b",
        re.I,
    ),
]
_REWARD_FOR_SHARE = [
    re.compile(r"(分享|转发)(有礼|有奖|送|得|领|抽奖|返现|返利|赢)"),
    re.compile(rf"(分享|转发){_GAP}{{0,6}}(后|即|就|才)(可|能|送|得|领|获|抽|赢|解锁)"),
    re.compile(
        rf"(分享|转发){_GAP}{{0,10}}(增加|多|加)\s*(\d+|[一二两三几])?\s*(次|个)?(抽奖|中奖|机会)"
    ),
    re.compile(rf"(分享|转发){_GAP}{{0,8}}(领|得|送|抽|赢)(取|到)?(红包|奖|券|积分|课|礼|现金)"),
    re.compile(r"\bshare\w*\b[^.!?\n]{0,40}\b(to|and)\s+(get|win|earn|unlock)\b", re.I),
]
_FRIEND_HELP = re.compile(r"助力|砍一刀|帮我砍|帮忙砍|帮砍|帮我加速|帮忙加速")
_MULTI_LEVEL = re.compile(
    r"([三四五六七八九3-9]|多|无限)\s*级\s*(分销|返佣|佣金|提成|代理|返利|分润)"
    r"|发展下线|下线提成|团队计酬|拉人头|滚动发展"
    r"|\b(three|multi)[- ]level\b",
    re.I,
)
_RULE_KEY = re.compile(r"rule|terms|规则")


@dataclass(frozen=True, slots=True)
class ComplianceWarning:
    """One warning: what (`code`), said in Chinese and English, the rule quoted with its
    source, where (`copy.<key>`, `rules.<path>` or `kind`), and how strongly."""

    code: str
    message_zh: str
    message_en: str
    rule_quote: str
    where: str
    severity: str = "warning"  # warning | notice


Warning = ComplianceWarning  # the name the campaign builder imports


def _texts(copy: Any, rules: Any) -> Iterator[tuple[str, str]]:
    """(where, text) for every text in the copy and in the rules."""
    if isinstance(copy, dict):
        for key, value in copy.items():
            if isinstance(value, str):
                yield f"copy.{key}", value
    stack: list[tuple[str, Any]] = [("rules", rules)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            stack.extend((f"{where}.{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(node))


def _asked(patterns: list[re.Pattern[str]], text: str) -> str | None:
    """The first phrase of `text` matching one of `patterns` that is not negated just before
    ("无需转发朋友圈" asks for nothing)."""
    for pattern in patterns:
        for found in pattern.finditer(text):
            if not _NEGATED.search(text[max(0, found.start() - 8) : found.start()]):
                return found.group(0)
    return None


def _levels(rules: Any) -> int:
    """The deepest commission level the rules name (`commission.levels` or a list of
    `commission.rates`), 0 when none."""
    if not isinstance(rules, dict):
        return 0
    spec = rules.get("commission")
    if not isinstance(spec, dict):
        return 0
    levels = spec.get("levels")
    if isinstance(levels, int) and not isinstance(levels, bool):
        return levels
    rates = spec.get("rates")
    return len(rates) if isinstance(rates, list) else 0


class _Warnings:
    """Warnings in the order found, one per (code, where)."""

    def __init__(self) -> None:
        self.found: list[ComplianceWarning] = []
        self._seen: set[tuple[str, str]] = set()

    def add(
        self, code: str, where: str, zh: str, en: str, quote: str, severity: str = "warning"
    ) -> None:
        if (code, where) not in self._seen:
            self._seen.add((code, where))
            self.found.append(ComplianceWarning(code, zh, en, quote, where, severity))

    def friend_help(self, where: str, phrase: str) -> None:
        self.add(
            "friend_help",
            where,
            f"“{phrase}”类玩法（邀请好友助力、砍价、加速）在微信里以外链转发时属于诱导分享，链接"
            "可能被限制。建议让好友在你的群里或小程序内完成，不要要求转发链接。",
            f"“{phrase}” mechanics (friends help, bargain, speed up) are named by WeChat's "
            "rule on induced sharing when spread as an external link; keep the help inside "
            "your groups or a mini program rather than asking people to forward the link.",
            RULE_INDUCED_SHARE,
            "notice",
        )


def _scan_text(w: _Warnings, kind: str, where: str, text: str) -> None:
    phrase = _asked(_MOMENTS, text)
    if phrase:
        w.add(
            "moments_share",
            where,
            f"文案要求分享到朋友圈或集赞（“{phrase}”）：微信禁止诱导分享到朋友圈，被处罚的是你的"
            "公众号或企业微信。请改为邀请好友进群或添加客服。",
            f"The copy asks people to share to Moments or collect likes (“{phrase}”): WeChat "
            "forbids induced sharing to Moments and the account that gets banned is yours. "
            "Ask them to invite friends into the group or to add staff instead.",
            RULE_MOMENTS,
        )
    phrase = _asked(_GROUPS, text)
    if phrase:
        w.add(
            "group_forwarding",
            where,
            f"文案要求转发到微信群（“{phrase}”）：以奖励换取转发到群属于诱导分享，链接会被限制"
            "打开。请让好友通过海报或活码自己加入。",
            f"The copy asks people to forward to groups (“{phrase}”): a reward for forwarding "
            "is induced sharing and the link gets blocked. Let friends join through the "
            "poster or the channel code themselves.",
            RULE_INDUCED_SHARE,
        )
    phrase = _asked(_REWARD_FOR_SHARE, text)
    if phrase:
        w.add(
            "reward_for_share",
            where,
            f"文案以奖励换取分享（“{phrase}”）：奖励应当对应真实的结果（好友入群、下单），而不是"
            "分享这个动作。",
            f"The copy rewards the act of sharing (“{phrase}”): tie rewards to real outcomes "
            "(a friend joined, an order was paid), not to sharing.",
            RULE_INDUCED_SHARE,
        )
    found = _MULTI_LEVEL.search(text)
    if found:
        w.add(
            "multi_level",
            where,
            f"文案提到多级分销或按下线计酬（“{found.group(0)}”）：Quanzi 的分销佣金最多两级，超过"
            "两级或按发展人数计酬有传销风险，也违反微信规则。",
            f"The copy mentions multi-level commission or pay by recruits (“{found.group(0)}”): "
            "Quanzi's commissions stop at two levels; more, or pay by recruits, is a "
            "pyramid-selling risk and against WeChat's rules.",
            RULE_MULTI_LEVEL,
        )
    found = _FRIEND_HELP.search(text)
    if found and kind not in ("help_unlock", "bargain"):
        w.friend_help(where, found.group(0))


def check(kind: str, rules: Any, copy: Any) -> list[ComplianceWarning]:
    """Warnings for a campaign of `kind` with these rules and copy (either may be None)."""
    w = _Warnings()
    for where, text in _texts(copy, rules):
        _scan_text(w, kind, where, text)
    if kind in ("help_unlock", "bargain"):
        w.friend_help("kind", "助力" if kind == "help_unlock" else "砍价")
    levels = _levels(rules)
    if levels > 2:
        w.add(
            "multi_level",
            "rules.commission",
            f"分销佣金设置了 {levels} 级：Quanzi 最多支持两级。",
            f"The commission has {levels} levels: Quanzi stops at two.",
            RULE_MULTI_LEVEL,
        )
    if kind in ("lottery", "group_buy") and not _published_rules(copy):
        what_zh, what_en = ("抽奖", "lottery") if kind == "lottery" else ("拼团", "group buy")
        w.add(
            "rules_unpublished",
            "copy",
            f"{what_zh}活动没有公开的活动规则：请在文案里写明奖品、数量、参与条件、开奖或成团时间"
            "与兑奖方式。",
            f"This {what_en} has no published rules: state the prizes, how many, who may take "
            "part, when it is drawn or completes, and how prizes are collected.",
            RULE_PRIZE_INFO,
            "notice",
        )
    return w.found


def _published_rules(copy: Any) -> bool:
    """The copy has a rules text (a key naming rules or terms) of at least 10 characters."""
    if not isinstance(copy, dict):
        return False
    return any(
        isinstance(v, str) and len(v.strip()) >= 10 and _RULE_KEY.search(str(k))
        for k, v in copy.items()
    )
