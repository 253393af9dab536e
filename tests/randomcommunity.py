"""A seeded random community with every awkward case the contract allows, for order and
crash tests: same-instant events, re-joins, leaves while out, late refunds, dismissals,
staff, self-invites, several platforms and time-zone offsets."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone

START = datetime(2026, 1, 5, tzinfo=UTC)


def _ts(rng: random.Random, t: datetime) -> object:
    form = rng.random()
    if form < 0.2:
        return int(t.timestamp())
    if form < 0.4:
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")
    tz = timezone(timedelta(hours=rng.choice([8, -5, 0, 5, 9])))
    return t.astimezone(tz).isoformat(timespec="seconds")


def random_events(seed: int, n_members: int = 300, days: int = 40) -> list[str]:
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    n = 0

    def ev(kind: str, t: datetime, **f: object) -> None:
        nonlocal n
        n += 1
        out.append({"id": f"r{seed}-{n}", "type": kind, "ts": _ts(rng, t), **f})

    def when() -> datetime:
        # Coarse minutes so that same-instant ties happen.
        return START + timedelta(minutes=rng.randrange(days * 24 * 12) * 5)

    platforms = ["wecom", "wecom", "wecom", "telegram"]
    groups = [(rng.choice(platforms), f"g{i}") for i in range(8)]
    for p, g in groups:
        if rng.random() < 0.7:
            ev("group.created", when(), platform=p, group=g, name=f"群{g}", owner="s0")
        if rng.random() < 0.5:
            ev("group.updated", when(), platform=p, group=g, name=f"新{g}")
        if rng.random() < 0.3:
            ev("group.updated", when(), platform=p, group=g, notice="公告")
    ev("group.dismissed", when(), platform=groups[0][0], group=groups[0][1])
    staff = [f"s{i}" for i in range(3)]
    for s in staff:
        p, g = rng.choice(groups)
        ev("member.joined", when(), platform=p, group=g, member=s, is_staff=True)
    members = [f"m{i}" for i in range(n_members)]
    for m in members:
        p, g = rng.choice(groups)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            t = when()
            f: dict[str, object] = {"platform": p, "group": g, "member": m}
            r = rng.random()
            if r < 0.4:
                f["inviter"] = rng.choice(members + staff + [m])
                f["via"] = "invite"
            elif r < 0.7:
                f["channel"] = rng.choice(["douyin", "xhs", "store", ""])
                f["via"] = "qrcode"
            ev("member.joined", t, **f)
            if rng.random() < 0.35:
                ev(
                    "member.left",
                    t + timedelta(hours=rng.choice([0, 1, 5, 71, 72, 73, 200])),
                    platform=p,
                    group=g,
                    member=m,
                    via=rng.choice(["quit", "removed"]),
                )
        if rng.random() < 0.2:
            ev(
                "contact.added",
                when(),
                platform=p,
                member=m,
                staff=rng.choice(staff),
                channel=rng.choice(["store", "ad", None]),
            )
        for _ in range(rng.choice([0, 0, 1, 3, 8, 20])):
            ev(
                "message.posted",
                when(),
                platform=p,
                group=rng.choice(groups)[1] if rng.random() < 0.1 else g,
                member=rng.choice([m, m, m, rng.choice(staff)]),
                text="你好",
            )
        if rng.random() < 0.2:
            ev(
                "profile.updated",
                when(),
                platform=p,
                member=m,
                city=rng.choice(["上海", "北京"]),
                attrs={"vip": True},
            )
        if rng.random() < 0.15:
            o = f"o-{m}"
            amount = rng.choice([990, 19900, 5000])
            ev(
                "order.paid",
                when(),
                platform=p,
                order=o,
                member=m,
                amount=amount,
                referrer=rng.choice(members),
            )
            for _ in range(rng.choice([0, 0, 1, 2])):
                ev(
                    "order.refunded",
                    when(),
                    platform=p,
                    order=o,
                    amount=rng.randrange(amount // 2 + 1),
                )
    lines = [
        json.dumps({k: v for k, v in e.items() if v is not None}, ensure_ascii=False) for e in out
    ]
    # Exact re-deliveries inside the data set.
    lines += rng.sample(lines, k=min(20, len(lines)))
    return lines
