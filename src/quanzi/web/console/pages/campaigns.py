"""Fission campaigns (裂变活动) in the console: the list, one builder per kind, launch, end, cancel.

Everyone who may view sees the campaigns and their figures; owners and admins (manage_team, as
for channel codes) build and run them, because a campaign speaks and pays for the company.

The builder turns its form into the rules JSON of `campaigns.rules` and lets the engine judge
it: `check_rules` names every wrong field (`rules.team.size: ...`), and each message is shown
next to its field in the operator's language, with nothing saved and what they typed kept. The
compliance warnings (`campaigns.compliance.check`) are shown on the builder and the campaign
page; launching a draft with warnings needs an explicit confirmation, which the audit records.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from quanzi.acquisition import channels, poster_templates
from quanzi.campaigns import compliance, lottery, metrics, rewards
from quanzi.campaigns import rules as campaign_rules
from quanzi.campaigns import service as campaigns
from quanzi.campaigns.models import CAMPAIGN_KINDS, CAMPAIGN_STATUSES, Campaign, Participant
from quanzi.core.groups import repository as group_repo
from quanzi.core.members.models import Member
from quanzi.core.members.personal import open_value
from quanzi.core.members.repository import scope_condition
from quanzi.core.tags import service as tags
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import from_us, now_us, to_us, zone
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.kit.masking import mask_name, mask_phone
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, gettext, translate_error

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
Manager = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]

ROWS = 5  # tier / prize rows on the builder
# The copy: (key in the campaign's copy, form field).
COPY_FIELDS: tuple[tuple[str, str], ...] = (
    ("title", "copy_title"),
    ("description", "copy_description"),
    ("rules", "copy_rules"),
    ("share_text", "copy_share"),
)
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
LIVE_FIELDS = ("name", "ends", "poster_template_id")
UNCONFIRMED = (
    "confirm: this campaign has compliance warnings; read them, then tick the box to confirm "
    "you launch it anyway"
)


# --- words -------------------------------------------------------------------------------------


def kind_labels() -> dict[str, str]:
    return {
        "invite_task": gettext("Invite task"),
        "group_buy": gettext("Group buy"),
        "help_unlock": gettext("Help to unlock"),
        "bargain": gettext("Bargain"),
        "gift_coupon": gettext("Gift coupon"),
        "leaderboard": gettext("Leaderboard"),
        "lottery": gettext("Lottery"),
    }


def kind_summaries() -> dict[str, str]:
    return {
        "invite_task": gettext("Invite N friends who join to reach reward tiers."),
        "group_buy": gettext(
            "A team of N pays the group price within a time limit, or everyone is refunded."
        ),
        "help_unlock": gettext("Friends' help unlocks a reward; each helper counts once."),
        "bargain": gettext("Each helper cuts the price; the last cut reaches the floor price."),
        "gift_coupon": gettext("Send a coupon to a friend; both get theirs when it is redeemed."),
        "leaderboard": gettext("Rank by valid invites or points, with prizes by rank."),
        "lottery": gettext("A verifiable draw: the seed's hash is published before the draw."),
    }


def status_labels() -> dict[str, str]:
    return {
        "draft": gettext("Draft"),
        "live": gettext("Live"),
        "ended": gettext("Ended"),
        "cancelled": gettext("Cancelled"),
    }


def field_labels() -> dict[str, str]:
    """The builder's fields by form name, as the operator reads them."""
    return {
        "name": gettext("Campaign name"),
        "key": gettext("Campaign key"),
        "starts": gettext("Starts"),
        "ends": gettext("Ends"),
        "new_only": gettext("Who may take part"),
        "tag_ids": gettext("Members with these tags"),
        "channels": gettext("Members from these channels"),
        "group_ids": gettext("Counted groups"),
        "hold_hours": gettext("Hold window (hours)"),
        "per_person_cap": gettext("Rewards per person (cap)"),
        "campaign_cap": gettext("Participants (cap)"),
        "tiers": gettext("Reward tiers"),
        "tier_invites": gettext("Valid invites"),
        "tier_reward": gettext("Reward"),
        "team_size": gettext("Team size"),
        "team_limit_hours": gettext("Time limit (hours)"),
        "team_price": gettext("Price (yuan)"),
        "team_group_price": gettext("Group price (yuan)"),
        "team_leader_only": gettext("Only leaders open teams"),
        "help_helpers_needed": gettext("Helpers needed"),
        "help_reward_id": gettext("Reward"),
        "bargain_price": gettext("Price (yuan)"),
        "bargain_floor": gettext("Floor price (yuan)"),
        "bargain_helpers": gettext("Helpers to reach the floor"),
        "bargain_hours": gettext("Hours to bargain"),
        "bargain_reward_id": gettext("Reward at the floor (optional)"),
        "gift_sender_reward_id": gettext("Sender's reward"),
        "gift_friend_reward_id": gettext("Friend's reward"),
        "gift_max_gifts": gettext("Gifts per sender"),
        "board_metric": gettext("Rank by"),
        "prizes": gettext("Prizes by rank"),
        "prize_from": gettext("From rank"),
        "prize_to": gettext("To rank"),
        "prize_reward": gettext("Reward"),
        "lottery_winners": gettext("Winners"),
        "lottery_reward_id": gettext("Reward"),
        "lottery_draw_at": gettext("Draw time"),
        "copy_title": gettext("Title"),
        "copy_description": gettext("Description"),
        "copy_rules": gettext("Rules text"),
        "copy_share": gettext("Share copy"),
        "channel_code_id": gettext("Channel code"),
        "poster_template_id": gettext("Poster template"),
    }


# --- the form and the rules --------------------------------------------------------------------

# The kind's own settings: (form field, path in the rules, how the text is read). "int" goes to
# the engine as typed (it names a bad number itself), "yuan" becomes fen here, "local" is a
# local date and time, "bool" a checkbox. An empty field is left out: the engine fills in the
# default or names the field as required.
SETTINGS: dict[str, list[tuple[str, str, str]]] = {
    "invite_task": [],
    "group_buy": [
        ("team_size", "team.size", "int"),
        ("team_limit_hours", "team.limit_hours", "int"),
        ("team_price", "team.price_fen", "yuan"),
        ("team_group_price", "team.group_price_fen", "yuan"),
        ("team_leader_only", "team.leader_only", "bool"),
    ],
    "help_unlock": [
        ("help_helpers_needed", "help.helpers_needed", "int"),
        ("help_reward_id", "help.reward_id", "int"),
    ],
    "bargain": [
        ("bargain_price", "bargain.price_fen", "yuan"),
        ("bargain_floor", "bargain.floor_fen", "yuan"),
        ("bargain_helpers", "bargain.helpers", "int"),
        ("bargain_hours", "bargain.hours", "int"),
        ("bargain_reward_id", "bargain.reward_id", "int"),
    ],
    "gift_coupon": [
        ("gift_sender_reward_id", "gift.sender_reward_id", "int"),
        ("gift_friend_reward_id", "gift.friend_reward_id", "int"),
        ("gift_max_gifts", "gift.max_gifts", "int"),
    ],
    "leaderboard": [("board_metric", "board.metric", "str")],
    "lottery": [
        ("lottery_winners", "lottery.winners", "int"),
        ("lottery_reward_id", "lottery.reward_id", "int"),
        ("lottery_draw_at", "lottery.draw_at_us", "local"),
    ],
}
COMMON: list[tuple[str, str, str]] = [
    ("new_only", "eligibility.new_only", "bool"),
    ("hold_hours", "hold_hours", "int"),
    ("per_person_cap", "per_person_cap", "int"),
    ("campaign_cap", "campaign_cap", "int"),
]
# Rows of a list in the rules: (path of the list, [(form field prefix, key in a row)]).
LISTS: dict[str, tuple[str, list[tuple[str, str]]]] = {
    "invite_task": ("tiers", [("tier_invites", "invites"), ("tier_reward", "reward_id")]),
    "leaderboard": (
        "board.prizes",
        [("prize_from", "rank_from"), ("prize_to", "rank_to"), ("prize_reward", "reward_id")],
    ),
}
# Where an error about a whole section of the rules is shown.
SECTION_FIELDS = {
    "rules.team": "team_group_price",
    "rules.bargain": "bargain_floor",
    "rules.help": "help_helpers_needed",
    "rules.gift": "gift_sender_reward_id",
    "rules.lottery": "lottery_winners",
    "rules.tiers": "tiers",
    "rules.board.prizes": "prizes",
    "rules.board": "prizes",
    "rules.eligibility.tag_ids": "tag_ids",
    "rules.eligibility.channels": "channels",
    "rules.eligibility": "new_only",
    "rules.group_ids": "group_ids",
    "starts_at_us": "starts",
    "ends_at_us": "ends",
    "name": "name",
    "key": "key",
    "channel_code_id": "channel_code_id",
    "poster_template_id": "poster_template_id",
}
_SECTION_PREFIX = re.compile(r"^([a-z_]+): (.*)$", re.S)


@dataclass
class Built:
    """What a builder form says, read: the pieces `create_campaign` takes, the errors found
    on the way (form field → the engine's message), and where each rules path is shown."""

    rules: dict[str, Any] = field(default_factory=dict)
    copy: dict[str, str] = field(default_factory=dict)
    starts_us: int | None = None
    ends_us: int | None = None
    channel_code_id: int | None = None
    poster_template_id: int | None = None
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)  # "rules.team.size" → "team_size"

    def fail(self, message: str) -> None:
        """File an engine message ("path: problem", perhaps several joined by "; ") under the
        form field it is about, or with the general errors."""
        for part in message.split("; "):
            where, sep, problem = part.partition(": ")
            if not sep:
                self.general.append(part)
                continue
            # Model-level messages name their section first: "rules: tiers: ...".
            found = _SECTION_PREFIX.match(problem)
            while found and f"{where}.{found.group(1)}" in {**self.fields, **SECTION_FIELDS}:
                where, problem = f"{where}.{found.group(1)}", found.group(2)
                found = _SECTION_PREFIX.match(problem)
            target = self._field_of(where)
            if target is None:
                self.general.append(part)
            else:
                self.errors.setdefault(target, problem)

    def _field_of(self, where: str) -> str | None:
        path = where
        while path:
            if path in self.fields:
                return self.fields[path]
            if path in SECTION_FIELDS:
                return SECTION_FIELDS[path]
            if path.startswith("copy."):
                key = path.removeprefix("copy.")
                return next((f for k, f in COPY_FIELDS if k == key), None)
            path = path.rpartition(".")[0]
        return None

    @property
    def ok(self) -> bool:
        return not self.errors and not self.general


def _section(tree: dict[str, Any], path: str) -> dict[str, Any]:
    """The object at `path` (dotted) of `tree`, created when missing."""
    for part in filter(None, path.split(".")):
        tree = tree.setdefault(part, {})
    return tree


def _set(tree: dict[str, Any], path: str, value: Any) -> None:
    parent, _, last = path.rpartition(".")
    _section(tree, parent)[last] = value


def yuan_fen(text: str, where: str) -> int:
    """An amount typed in yuan (12.5, 1,299.00), in fen; InvalidParameter naming `where`."""
    clean = (text or "").strip().replace(",", "").replace("¥", "")
    try:
        yuan = Decimal(clean)
    except InvalidOperation:
        raise InvalidParameter(f"{where}: give an amount in yuan, not {text[:20]!r}") from None
    if not yuan.is_finite() or yuan < 0 or yuan > Decimal(10**9):
        raise InvalidParameter(f"{where}: give an amount in yuan, 0 or more")
    if yuan != yuan.quantize(Decimal("0.01")):
        raise InvalidParameter(f"{where}: at most two decimal places (fen)")
    return int(yuan * 100)


def local_us(text: str, tz: str, where: str) -> int:
    """A local date and time from a datetime-local input (2026-12-01T20:00), as UTC µs."""
    clean = (text or "").strip()
    try:
        at = datetime.fromisoformat(clean)
        if at.tzinfo is None:
            at = at.replace(tzinfo=zone(tz))
        return to_us(at)
    except (ValueError, OverflowError):
        raise InvalidParameter(
            f"{where}: give a date and time (2026-12-01T20:00), not {clean[:30]!r}"
        ) from None


def local_text(us: int | None, tz: str) -> str:
    return "" if us is None else from_us(us).astimezone(zone(tz)).strftime(LOCAL_FORMAT)


def _read(kind: str, text: str, where: str, tz: str) -> Any:
    if kind == "bool":
        return text == "1"
    if kind == "yuan":
        return yuan_fen(text, where)
    if kind == "local":
        return local_us(text, tz, where)
    return text.strip()


def _ids(values: list[str], where: str) -> list[int]:
    out = []
    for v in values:
        if not v.strip().isdigit():
            raise InvalidParameter(f"{where}: give a number, not {v[:20]!r}")
        out.append(int(v))
    return out


def build(v: dict[str, Any], kind: str, tz: str, group_scope: frozenset[int] | None) -> Built:
    """The builder form `v` (field → text, or list of texts) of a `kind` campaign, read."""
    b = Built()
    raw: dict[str, Any] = {}

    def take(form_field: str, path: str, how: str) -> None:
        b.fields[f"rules.{path}"] = form_field
        text = str(v.get(form_field) or "")
        if how != "bool" and not text.strip():
            # Left out: the engine names a required one ("rules.team.size: Field required").
            _section(raw, path.rpartition(".")[0])
            return
        try:
            _set(raw, path, _read(how, text, f"rules.{path}", tz))
        except InvalidParameter as exc:
            b.fail(str(exc))

    for form_field, path, how in COMMON + SETTINGS[kind]:
        take(form_field, path, how)
    for form_field, path in (("tag_ids", "eligibility.tag_ids"), ("group_ids", "group_ids")):
        try:
            _set(raw, path, _ids(list(v.get(form_field) or []), f"rules.{path}"))
        except InvalidParameter as exc:
            b.fail(str(exc))
    if group_scope is not None:
        outside = [g for g in raw.get("group_ids", []) if g not in group_scope]
        if outside:
            b.fail(f"rules.group_ids: group {outside[0]} is not one of your groups")
    picked = [str(c).strip() for c in v.get("channels") or []]
    extra = re.split(r"[\s,，]+", str(v.get("channels_extra") or ""))
    _set(raw, "eligibility.channels", list(dict.fromkeys(c for c in picked + extra if c)))
    if kind in LISTS:
        path, columns = LISTS[kind]
        rows: list[dict[str, Any]] = []
        for i in range(ROWS):
            texts = {key: str(v.get(f"{prefix}_{i}") or "").strip() for prefix, key in columns}
            if not any(texts.values()):
                continue
            for prefix, key in columns:
                b.fields[f"rules.{path}.{len(rows)}.{key}"] = f"{prefix}_{i}"
            rows.append({key: text for key, text in texts.items() if text})
        _set(raw, path, rows)
    b.rules = raw
    try:
        b.copy = campaigns.check_copy(
            {k: str(v.get(f) or "").strip() for k, f in COPY_FIELDS if str(v.get(f) or "").strip()}
        )
    except InvalidParameter as exc:
        b.fail(str(exc))
    for name, where in (("starts", "starts_at_us"), ("ends", "ends_at_us")):
        text = str(v.get(name) or "")
        if not text.strip():
            b.errors[name] = gettext("Give a date and time.")
            continue
        try:
            setattr(b, f"{name}_us", local_us(text, tz, where))
        except InvalidParameter as exc:
            b.fail(str(exc))
    for name in ("channel_code_id", "poster_template_id"):
        text = str(v.get(name) or "").strip()
        if text:
            if text.isdigit():
                setattr(b, name, int(text))
            else:
                b.fail(f"{name}: give a number, not {text[:20]!r}")
    return b


def checked_rules(b: Built, kind: str) -> dict[str, Any] | None:
    """The rules as the engine stores them, or None with the engine's messages filed."""
    try:
        return campaign_rules.check_rules(kind, b.rules)
    except InvalidParameter as exc:
        b.fail(str(exc))
        return None


def values_of(c: Campaign, tz: str) -> dict[str, Any]:
    """A stored campaign as the builder's form values."""
    r = c.rules or {}
    v: dict[str, Any] = {
        "id": str(c.id),
        "kind": c.kind,
        "name": c.name,
        "key": c.key,
        "starts": local_text(c.starts_at_us, tz),
        "ends": local_text(c.ends_at_us, tz),
        "tag_ids": [str(t) for t in r.get("eligibility", {}).get("tag_ids", [])],
        "group_ids": [str(g) for g in r.get("group_ids", [])],
        "channels": list(r.get("eligibility", {}).get("channels", [])),
        "channel_code_id": str(c.channel_code_id or ""),
        "poster_template_id": str(c.poster_template_id or ""),
    }
    for key, form_field in COPY_FIELDS:
        v[form_field] = (c.copy_text or {}).get(key, "")
    for form_field, path, how in COMMON + SETTINGS.get(c.kind, []):
        value: Any = r
        for part in path.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if how == "bool":
            v[form_field] = "1" if value else ""
        elif value is None:
            v[form_field] = ""
        elif how == "yuan":
            v[form_field] = f"{Decimal(int(value)) / 100:.2f}"
        elif how == "local":
            v[form_field] = local_text(int(value), tz)
        else:
            v[form_field] = str(value)
    if c.kind in LISTS:
        path, columns = LISTS[c.kind]
        found: Any = r
        for part in path.split("."):
            found = found.get(part, []) if isinstance(found, dict) else []
        for i, row in enumerate(found[:ROWS]):
            for prefix, key in columns:
                v[f"{prefix}_{i}"] = str(row.get(key, ""))
    return v


def posted_values(form: Any) -> dict[str, Any]:
    """The builder form as posted: texts, and lists for the multiple choices."""
    v: dict[str, Any] = {k: val for k, val in form.items() if isinstance(val, str)}
    for name in ("tag_ids", "group_ids", "channels"):
        v[name] = [x for x in form.getlist(name) if isinstance(x, str)]
    return v


def default_values(kind: str, tz: str) -> dict[str, Any]:
    start = now_us() // 3_600_000_000 * 3_600_000_000 + 3_600_000_000
    v: dict[str, Any] = {
        "kind": kind,
        "starts": local_text(start, tz),
        "ends": local_text(start + 7 * 86_400_000_000, tz),
        "hold_hours": "72",
        "board_metric": "valid_invites",
    }
    if kind == "lottery":
        v["lottery_draw_at"] = local_text(start + 7 * 86_400_000_000, tz)
    return v


# --- messages in the operator's language -------------------------------------------------------


def explained(b: Built) -> tuple[dict[str, str], list[str]]:
    """The errors as shown: next to a field its problem, translated; general ones whole."""
    labels = field_labels()
    colon = "：" if current_locale.get() == "zh-CN" else ": "
    by_field = {}
    for name, problem in b.errors.items():
        label = labels.get(re.sub(r"_\d+$", "", name), "")
        text = translate_error(problem)
        by_field[name] = f"{label}{colon}{text}" if label else text
    return by_field, [translate_error(m) for m in b.general]


@dataclass(frozen=True)
class ShownWarning:
    code: str
    text: str
    rule: str
    where: str
    blocking: bool  # a "warning" (confirm before launch), not a "notice"


def warnings_of(kind: str, rules: Any, copy: Any) -> list[ShownWarning]:
    """The compliance warnings of a campaign, in the operator's language."""
    zh = current_locale.get() == "zh-CN"
    return [
        ShownWarning(
            w.code,
            w.message_zh if zh else w.message_en,
            w.rule_quote,
            w.where,
            w.severity == "warning",
        )
        for w in compliance.check(kind, rules, copy)
    ]


# --- who is who --------------------------------------------------------------------------------


def scope_groups(s: Session, p: Principal) -> list[tuple[int, str]]:
    found = group_repo.groups(s, p.ws.id, group_ids=p.group_ids, status="all", end_us=now_us())
    return sorted(((g.id, g.name or g.group_key) for g in found), key=lambda g: g[1])


def group_names(s: Session, p: Principal, ids: list[int]) -> tuple[list[str], int]:
    """The names of the groups among `ids` the user may see, and how many others there are."""
    mine = dict(scope_groups(s, p))
    shown = [mine[g] for g in ids if g in mine]
    return shown, len(ids) - len(shown)


def participant_labels(
    s: Session, p: Principal, people: list[Participant], *, masked: bool = False
) -> dict[int, str]:
    """How the console names participants: the member's name, else the name typed on the
    page, else the phone number. A member's name is shown to roles that may reveal personal
    data (an operator: members of their groups) unless `masked`; everything else is masked."""
    member_ids = sorted({x.member_id for x in people if x.member_id is not None})
    names: dict[int, str] = {}
    visible: set[int] = set()
    for i in range(0, len(member_ids), 500):
        chunk = member_ids[i : i + 500]
        rows = s.execute(
            select(Member.id, Member.name).where(
                Member.workspace_id == p.ws.id, Member.id.in_(chunk)
            )
        ).all()
        names.update({int(m): n or "" for m, n in rows})
        if p.may(Perm.REVEAL) and not masked:
            visible.update(
                int(m)
                for m in s.scalars(
                    select(Member.id).where(
                        Member.id.in_(chunk), scope_condition(p.ws.id, p.group_ids)
                    )
                )
            )
    key = None
    out: dict[int, str] = {}
    for x in people:
        name = names.get(x.member_id or 0, "")
        if name:
            out[x.id] = name if x.member_id in visible else mask_name(name)
            continue
        if x.name_sealed or x.phone_sealed:
            key = key or workspace_key(s, p.ws.id)
        if x.name_sealed and key is not None:
            out[x.id] = mask_name(open_value(key, "name", x.name_sealed))
        elif x.phone_sealed and key is not None:
            out[x.id] = mask_phone(open_value(key, "phone", x.phone_sealed))
        else:
            out[x.id] = "" if masked else f"#{x.id}"
    return out


# --- the list ----------------------------------------------------------------------------------


@router.get("/w/{workspace}/campaigns")
def campaigns_page(
    p: Viewer,
    status: Annotated[str, Query(max_length=12)] = "",
    kind: Annotated[str, Query(max_length=16)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    if status and status not in CAMPAIGN_STATUSES:
        raise InvalidParameter(f"status: one of {', '.join(CAMPAIGN_STATUSES)}, not {status!r}")
    if kind and kind not in CAMPAIGN_KINDS:
        raise InvalidParameter(f"kind: one of {', '.join(CAMPAIGN_KINDS)}, not {kind!r}")
    rows = []
    with p.read() as s:
        for c in campaigns.list_campaigns(s, p.ws.id, status or None):
            if kind and c.kind != kind:
                continue
            m = metrics.campaign_metrics(s, p.ws.id, c.id) if c.status != "draft" else None
            rows.append(
                {
                    "c": c,
                    "participants": m.participants if m else 0,
                    "valid": m.invites_valid if m else 0,
                    "reward_cost": m.reward_cost_fen if m else 0,
                    "roi": m.roi if m else None,
                }
            )
    ctx = {
        "active": "campaigns",
        "rows": rows,
        "kinds": kind_labels(),
        "summaries": kind_summaries(),
        "statuses": status_labels(),
        "f": {"status": status, "kind": kind},
        "may_edit": p.may(Perm.MANAGE_TEAM),
        "flashes": [("ok", gettext("Campaign cancelled."))] if done == "cancelled" else [],
    }
    return render(p.request, "campaigns/list.html", ctx, principal=p)


# --- the builder -------------------------------------------------------------------------------


def _builder(
    p: Principal,
    kind: str,
    v: dict[str, Any],
    campaign: Campaign | None = None,
    b: Built | None = None,
    status_code: int = 200,
) -> Response:
    with p.read() as s:
        cid = campaign.id if campaign is not None else None
        reward_choices = [
            (
                r.id,
                r.name,
                r.kind,
                r.unit_cost_fen,
                None if r.stock is None else r.stock - r.claimed,
            )
            for r in rewards.list_rewards(s, p.ws.id, cid)
            if r.active and r.campaign_id in (None, cid)
        ]
        tag_choices = [
            (t.id, f"{g.name} · {t.name}") for g in tags.list_tag_groups(s, p.ws.id) for t in g.tags
        ]
        codes = channels.list_codes(s, p.ws.id)
        code_choices = [(c.id, c.name, c.channel) for c in codes]
        known_channels = sorted({c.channel for c in codes})
        posters = [(t.id, t.name) for t in poster_templates.list_templates(s, p.ws.id)]
        groups = scope_groups(s, p)
    errors, general = explained(b) if b is not None else ({}, [])
    rules = b.rules if b is not None else (campaign.rules if campaign is not None else {})
    copy = b.copy if b is not None else (campaign.copy_text if campaign is not None else {})
    ctx = {
        "active": "campaigns",
        "kind": kind,
        "kinds": kind_labels(),
        "summaries": kind_summaries(),
        "labels": field_labels(),
        "v": v,
        "campaign": campaign,
        "locked": campaign is not None and campaign.status != "draft",
        "rows": ROWS,
        "rewards": reward_choices,
        "reward_kinds": reward_kind_labels(),
        "tag_choices": tag_choices,
        "known_channels": known_channels,
        "codes": code_choices,
        "posters": posters,
        "groups": groups,
        "errors": errors,
        "general": general,
        "warnings": warnings_of(kind, rules, copy) if (rules or copy) else [],
    }
    return render(p.request, "campaigns/edit.html", ctx, principal=p, status_code=status_code)


def reward_kind_labels() -> dict[str, str]:
    return {
        "coupon_code": gettext("Coupon codes"),
        "membership_days": gettext("Membership days"),
        "points": gettext("Points"),
        "content_link": gettext("Content link"),
        "physical": gettext("Physical gift"),
    }


@router.get("/w/{workspace}/campaigns/new")
def new_page(p: Manager, kind: Annotated[str, Query(max_length=16)] = "") -> Response:
    if kind not in CAMPAIGN_KINDS:
        ctx = {"active": "campaigns", "kinds": kind_labels(), "summaries": kind_summaries()}
        return render(p.request, "campaigns/new.html", ctx, principal=p)
    return _builder(p, kind, default_values(kind, p.ws.timezone))


@router.get("/w/{workspace}/campaigns/{campaign_id:int}/edit")
def edit_page(campaign_id: int, p: Manager) -> Response:
    with p.read() as s:
        c = campaigns.get_campaign(s, p.ws.id, campaign_id)
        s.expunge(c)
    if c.status in ("ended", "cancelled"):
        return RedirectResponse(p.url(f"/campaigns/{c.id}"), status_code=303)
    return _builder(p, c.kind, values_of(c, p.ws.timezone), c)


def _new_key(kind: str, tz: str) -> str:
    day = from_us(now_us()).astimezone(zone(tz)).strftime("%Y%m%d")
    return f"{kind.replace('_', '')}-{day}-{secrets.token_hex(2)}"


@router.post("/w/{workspace}/campaigns/save")
async def save(p: Manager, id: Annotated[str, Form(max_length=12)] = "") -> Response:
    form = await p.request.form()
    v = posted_values(form)
    existing: Campaign | None = None
    if id:
        with p.read() as s:
            existing = campaigns.get_campaign(s, p.ws.id, int(id) if id.isdigit() else 0)
            s.expunge(existing)
    kind = existing.kind if existing is not None else str(v.get("kind") or "")
    campaign_rules.check_kind(kind)
    locked = existing is not None and existing.status != "draft"
    if locked and existing is not None:
        # A live campaign's rules stay as launched: only these fields come from the form.
        editable = {k: x for k, x in v.items() if k in LIVE_FIELDS or k.startswith("copy_")}
        v = values_of(existing, p.ws.timezone) | editable
    b = build(v, kind, p.ws.timezone, p.group_ids)
    clean = None if locked else checked_rules(b, kind)
    if not b.ok:
        return _builder(p, kind, v, existing, b, 400)
    try:
        with p.write() as s:
            if existing is None:
                assert b.starts_us is not None and b.ends_us is not None and clean is not None
                c = campaigns.create_campaign(
                    s,
                    p.ws.id,
                    kind=kind,
                    name=str(v.get("name") or ""),
                    key=str(v.get("key") or "").strip() or _new_key(kind, p.ws.timezone),
                    starts_at_us=b.starts_us,
                    ends_at_us=b.ends_us,
                    rules=clean,
                    copy=b.copy,
                    by=p.user.email,
                    channel_code_id=b.channel_code_id,
                    poster_template_id=b.poster_template_id,
                )
                p.audit(s, "campaign.created", target=c.key, detail={"kind": kind, "id": c.id})
                done = "created"
            else:
                c = _update(s, p, existing, v, b, clean)
                done = "saved"
            cid = c.id
    except QuanziError as exc:
        b.fail(str(exc))
        return _builder(p, kind, v, existing, b, exc.status_code)
    return RedirectResponse(p.url(f"/campaigns/{cid}?done={done}"), status_code=303)


def _update(
    s: Session,
    p: Principal,
    c: Campaign,
    v: dict[str, Any],
    b: Built,
    clean: dict[str, Any] | None,
) -> Campaign:
    """Save the builder over a campaign: everything of a draft; of a live one only what the
    engine lets change (name, copy, poster, end)."""
    changes: dict[str, Any] = {
        "name": str(v.get("name") or ""),
        "copy": b.copy,
        "poster_template_id": b.poster_template_id,
        "ends_at_us": b.ends_us,
    }
    if c.status == "draft":
        changes.update(
            key=str(v.get("key") or "").strip() or c.key,
            starts_at_us=b.starts_us,
            rules=clean,
            channel_code_id=b.channel_code_id,
        )
    before = {
        "name": c.name,
        "copy": c.copy_text,
        "poster_template_id": c.poster_template_id,
        "ends_at_us": c.ends_at_us,
        "key": c.key,
        "starts_at_us": c.starts_at_us,
        "rules": c.rules,
        "channel_code_id": c.channel_code_id,
    }
    updated = campaigns.update_campaign(s, p.ws.id, c.id, by=p.user.email, **changes)
    changed = sorted(k for k, value in changes.items() if before.get(k) != value)
    if changed:
        p.audit(s, "campaign.updated", target=updated.key, detail={"changed": changed})
    return updated


# --- draft → live → ended / cancelled ------------------------------------------------------------


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/launch")
def launch(
    campaign_id: int,
    p: Manager,
    confirm: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    """draft → live. With compliance warnings, only when the operator ticked that they read
    them; the audit entry records which warnings were confirmed."""
    from quanzi.web.console.pages.campaign_dashboard import dashboard

    try:
        with p.write() as s:
            c = campaigns.get_campaign(s, p.ws.id, campaign_id)
            found = [w for w in warnings_of(c.kind, c.rules, c.copy_text) if w.blocking]
            if found and confirm != "1":
                raise InvalidParameter(UNCONFIRMED)
            campaigns.launch(s, p.ws.id, campaign_id, p.user.email)
            if c.kind == "lottery":
                # Commit to the seed now, before anyone joins (the minute sweep would too).
                lottery.commit(s, c)
            p.audit(
                s,
                "campaign.launched",
                target=c.key,
                detail={"warnings": [w.code for w in found], "confirmed": bool(found)},
            )
    except QuanziError as exc:
        return dashboard(campaign_id, p, error=translate_error(str(exc)), status_code=400)
    return RedirectResponse(p.url(f"/campaigns/{campaign_id}?done=launched"), status_code=303)


def _move(p: Principal, campaign_id: int, what: str) -> Response:
    from quanzi.web.console.pages.campaign_dashboard import dashboard

    step = {"ended": campaigns.end, "cancelled": campaigns.cancel}[what]
    try:
        with p.write() as s:
            c = step(s, p.ws.id, campaign_id, p.user.email)
            p.audit(s, f"campaign.{what}", target=c.key, detail={"id": c.id})
    except InvalidParameter as exc:
        return dashboard(campaign_id, p, error=translate_error(str(exc)), status_code=400)
    return RedirectResponse(p.url(f"/campaigns/{campaign_id}?done={what}"), status_code=303)


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/end")
def end(campaign_id: int, p: Manager) -> Response:
    return _move(p, campaign_id, "ended")


@router.post("/w/{workspace}/campaigns/{campaign_id:int}/cancel")
def cancel(campaign_id: int, p: Manager) -> Response:
    return _move(p, campaign_id, "cancelled")
