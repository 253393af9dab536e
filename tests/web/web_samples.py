"""Sample events (contracts/events.md's example) and helpers the API tests share."""

from __future__ import annotations

import orjson

NDJSON = {"Content-Type": "application/x-ndjson"}

EVENTS = [
    {
        "id": "e1",
        "type": "group.created",
        "ts": "2026-10-01T09:00:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "name": "宝妈交流1群",
        "owner": "staff_anna",
    },
    {
        "id": "e2",
        "type": "member.joined",
        "ts": "2026-10-01T09:01:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "member": "staff_anna",
        "is_staff": True,
    },
    {
        "id": "e3",
        "type": "member.joined",
        "ts": "2026-10-01T10:00:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "member": "wm_001",
        "name": "小李",
        "via": "qrcode",
        "channel": "douyin_live",
    },
    {
        "id": "e4",
        "type": "member.joined",
        "ts": "2026-10-01T10:05:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "member": "wm_002",
        "inviter": "wm_001",
        "via": "invite",
    },
    {
        "id": "e5",
        "type": "message.posted",
        "ts": "2026-10-01T10:06:00+08:00",
        "platform": "wecom",
        "group": "g1",
        "member": "wm_002",
        "text": "大家好，宝宝8个月了",
        "mentions": [],
    },
    {
        "id": "e6",
        "type": "order.paid",
        "ts": "2026-10-03T20:00:00+08:00",
        "platform": "wecom",
        "order": "o1",
        "member": "wm_002",
        "amount": 19900,
        "referrer": "wm_001",
    },
]


def jsonl(events: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)
