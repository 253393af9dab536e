"""Validation exactly as contracts/events.md says: every rule refuses with a reason naming the field."""

from __future__ import annotations

import json

import pytest

from quanzi.core.events.schemas import EventRefused, parse_event, parse_ts

BASE = {"id": "e1", "ts": "2026-10-01T09:00:00+08:00", "platform": "wecom"}


def ev(type: str, **fields: object) -> str:
    return json.dumps({**BASE, "type": type, **fields}, ensure_ascii=False)


VALID = [
    ev("group.created", group="g1", name="宝妈交流1群", owner="staff_anna"),
    ev("group.updated", group="g1", notice=""),
    ev("group.dismissed", group="g1"),
    ev(
        "member.joined",
        group="g1",
        member="m",
        inviter="x",
        via="invite",
        channel="c",
        is_staff=False,
        name="",
    ),
    ev("member.left", group="g1", member="m", via="removed", by="s1"),
    ev(
        "message.posted",
        group="g",
        member="m",
        kind="red_packet",
        text="",
        reply_to="x",
        mentions=["a", "b"],
    ),
    ev("contact.added", member="m", staff="s", channel="store"),
    ev("contact.removed", member="m", staff="s", by="staff"),
    ev(
        "profile.updated",
        member="m",
        phone="13800138000",
        attrs={"vip": True, "score": 1.5, "level": 3, "tier": "A"},
    ),
    ev(
        "order.paid", order="o", member="m", amount=0, items=[{"sku": "a", "qty": 2, "price": 9950}]
    ),
    ev("order.paid", order="o", member="m", amount=2**63 - 1),
    ev("order.refunded", order="o", amount=1),
    ev("member.joined", group="g", member="m", inviter=None, extra={"kept": True}),
]


@pytest.mark.parametrize("line", VALID)
def test_valid_events_parse(line: str) -> None:
    parsed = parse_event(line)
    assert parsed.id == "e1"
    assert parsed.raw == line  # kept as sent, unknown fields included


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "an event must be a JSON object"),
        (ev("group.created", group="g"), "name is required"),
        (ev("bogus.type"), "unknown type 'bogus.type'"),
        (json.dumps({**BASE, "type": "group.dismissed"}), "group is required"),
        (ev("group.dismissed", group=""), "group must not be empty"),
        (ev("group.created", group="g", name=""), "name must not be empty"),
        (
            ev("order.paid", order="o", member="m", amount=19900.0),
            "amount must be an integer (minor units)",
        ),
        (
            ev("order.paid", order="o", member="m", amount="19900"),
            "amount must be an integer (minor units)",
        ),
        (
            ev("order.paid", order="o", member="m", amount=True),
            "amount must be an integer (minor units)",
        ),
        (ev("order.paid", order="o", member="m", amount=-1), "amount must not be negative"),
        (
            ev("order.paid", order="o", member="m", amount=2**63),
            "amount must be at most 9223372036854775807",
        ),
        (
            ev("order.refunded", order="o", amount=10**30),
            "amount must be at most 9223372036854775807",
        ),
        (
            ev(
                "order.paid",
                order="o",
                member="m",
                amount=1,
                items=[{"sku": "a", "qty": 1.0, "price": 1}],
            ),
            "items[0].qty must be an integer",
        ),
        (
            ev(
                "order.paid",
                order="o",
                member="m",
                amount=1,
                items=[{"sku": "a", "qty": 1, "price": -5}],
            ),
            "items[0].price must not be negative",
        ),
        (ev("member.joined", group="g", member="m", via="scan"), "via must be one of"),
        (ev("member.left", group="g", member="m", via="kicked"), "via must be one of"),
        (ev("message.posted", group="g", member="m", kind="gif"), "kind must be one of"),
        (ev("contact.removed", member="m", staff="s", by="robot"), "by must be one of"),
        (
            ev("member.joined", group="g", member="m", is_staff="yes"),
            "is_staff must be true or false",
        ),
        (ev("member.joined", group="g", member=7), "member must be a string"),
        (ev("message.posted", group="g", member="m", mentions="a"), "mentions must be a list"),
        (
            ev("message.posted", group="g", member="m", mentions=["a", 1]),
            "mentions[1] must be a string",
        ),
        (
            ev("profile.updated", member="m", attrs={"a": [1]}),
            "attrs.a must be a string, number or boolean",
        ),
        (
            ev("message.posted", group="g", member="m", text="长" * 30000),
            "text is longer than 65536 bytes",
        ),
        (
            json.dumps({**BASE, "id": "", "type": "group.dismissed", "group": "g"}),
            "id must not be empty",
        ),
        (
            json.dumps({**BASE, "id": "x" * 201, "type": "group.dismissed", "group": "g"}),
            "id is longer than 200",
        ),
        (
            json.dumps({**BASE, "platform": "", "type": "group.dismissed", "group": "g"}),
            "platform must not be empty",
        ),
    ],
)
def test_bad_lines_are_refused_with_the_field_named(line: str, reason: str) -> None:
    with pytest.raises(EventRefused) as err:
        parse_event(line)
    assert str(err.value).startswith(reason), str(err.value)


@pytest.mark.parametrize(
    ("ts", "us"),
    [
        ("2026-11-01T08:00:00+08:00", 1_793_491_200_000_000),
        ("2026-11-01T00:00:00Z", 1_793_491_200_000_000),
        ("2026-11-01t00:00:00z", 1_793_491_200_000_000),
        ("2026-10-31T19:00:00-05:00", 1_793_491_200_000_000),
        ("2026-11-01T00:00:00.5Z", 1_793_491_200_500_000),
        ("2026-11-01T00:00:00.123456789Z", 1_793_491_200_123_456),
        (1_793_491_200, 1_793_491_200_000_000),
        (0, 0),
    ],
)
def test_timestamps(ts: object, us: int) -> None:
    assert parse_ts(ts) == us


@pytest.mark.parametrize(
    "ts",
    [
        "2026-11-01 08:00:00+08:00",  # space instead of T
        "2026-11-01T08:00:00+0800",  # no colon in the offset
        "2026-11-01T08:00:00",  # no offset
        "2026-11-01",
        "2026-13-01T00:00:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-01T24:00:00Z",
        1_793_491_200_000,  # milliseconds
        253_402_300_800,  # after year 9999
        -62_135_596_801,  # before year 1
        1.5,
        True,
        None,
    ],
)
def test_bad_timestamps(ts: object) -> None:
    with pytest.raises(ValueError):
        parse_ts(ts)


def test_bad_ts_in_a_line_names_ts() -> None:
    with pytest.raises(EventRefused, match=r"^ts "):
        parse_event(
            json.dumps({**BASE, "ts": "yesterday", "type": "group.dismissed", "group": "g"})
        )
    with pytest.raises(EventRefused, match=r"^ts "):
        parse_event(
            json.dumps({**BASE, "ts": 1_793_491_200_000, "type": "group.dismissed", "group": "g"})
        )


def test_null_optional_fields_are_absent() -> None:
    e = parse_event(
        ev("member.joined", group="g", member="m", via=None, inviter=None, is_staff=None)
    )
    assert "via" not in e.data and "inviter" not in e.data


def test_lone_surrogates_and_bad_utf8_are_refused() -> None:
    with pytest.raises(EventRefused):
        parse_event('{"id":"a","type":"group.dismissed","ts":1,"platform":"x","group":"\\ud800"}')
    with pytest.raises(EventRefused, match="UTF-8"):
        parse_event(b'{"id":"a","type":"group.dismissed","ts":1,"platform":"x","group":"\xff"}')
