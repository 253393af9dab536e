"""Every change type of the contract's table → events, from the docs-shaped fixtures; the
events pass the importer's own validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from quanzi.connectors.wecom.crypto import xml_fields
from quanzi.connectors.wecom.mapping import callback_to_events
from quanzi.core.events.schemas import parse_event

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "wecom"
GROUP: dict[str, Any] = json.loads((FIXTURES / "groupchat_get.json").read_text())["group_chat"]
STAFF, CUSTOMER, TS = "zhangsan", "woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA", 1403610513


def events_of(name: str, group: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    fetched: list[str] = []

    def fetch(chat: str) -> dict[str, Any]:
        fetched.append(chat)
        if group is None:
            raise AssertionError(f"{name} should not fetch the group")
        return group

    out = callback_to_events(xml_fields((FIXTURES / f"{name}.xml").read_text()), fetch)
    for e in out:  # every event is one the importer accepts as it is
        parse_event(orjson.dumps(e))
    assert fetched in ([], ["CHAT_ID"])
    return out


@pytest.mark.parametrize("change", ["add_external_contact", "add_half_external_contact"])
def test_a_new_contact_with_its_channel(change: str) -> None:
    assert events_of(f"cb_{change}") == [
        {
            "id": f"wecom:contact:add:{STAFF}:{CUSTOMER}:{TS}",
            "type": "contact.added",
            "ts": TS,
            "platform": "wecom",
            "member": CUSTOMER,
            "staff": STAFF,
            "channel": "teststate",
        }
    ]


def test_a_contact_without_state_has_no_channel() -> None:
    fields = xml_fields((FIXTURES / "cb_add_external_contact.xml").read_text())
    fields["State"] = ""
    (event,) = callback_to_events(fields, lambda chat: {})
    assert "channel" not in event


@pytest.mark.parametrize(
    ("change", "by"), [("del_external_contact", "staff"), ("del_follow_user", "member")]
)
def test_contact_removed_says_by_whom(change: str, by: str) -> None:
    (event,) = events_of(f"cb_{change}")
    assert event["type"] == "contact.removed"
    assert (event["member"], event["staff"], event["by"], event["ts"]) == (CUSTOMER, STAFF, by, TS)
    assert event["id"] == f"wecom:contact:del:{STAFF}:{CUSTOMER}:{TS}"


@pytest.mark.parametrize("name", ["cb_edit_external_contact", "cb_transfer_fail", "cb_tag_create"])
def test_recorded_callbacks_that_make_no_event(name: str) -> None:
    assert events_of(name) == []


def test_group_created_with_fetched_name_owner_notice_and_members() -> None:
    events = events_of("cb_chat_create", GROUP)
    created = events[0]
    assert created == {
        "id": "wecom:group:CHAT_ID:created",
        "type": "group.created",
        "ts": 1572505490,  # the group's own create_time
        "platform": "wecom",
        "group": "CHAT_ID",
        "name": "销售客服群",
        "owner": "ZhuShengBen",
        "notice": "文明沟通，拒绝脏话",
    }
    assert [(e["type"], e["member"]) for e in events[1:]] == [
        ("member.joined", "abel"),
        ("member.joined", "Jack"),
        ("member.joined", "Rose"),
    ]
    abel = events[1]
    assert abel["is_staff"] is True and abel["inviter"] == "jack" and abel["via"] == "invite"
    assert abel["name"] == "客服小张"  # the group nickname before the WeCom name


def test_add_member_uses_each_members_join_details() -> None:
    jack, rose = events_of("cb_chat_add_member", GROUP)
    assert jack == {
        "id": "wecom:join:CHAT_ID:Jack:1403610500",
        "type": "member.joined",
        "ts": 1403610500,  # join_time, not the callback's CreateTime
        "platform": "wecom",
        "group": "CHAT_ID",
        "member": "Jack",
        "name": "顾客老王",
        "via": "qrcode",
        "channel": "live_0601",
    }
    assert (rose["inviter"], rose["via"], rose["ts"]) == ("Jack", "invite", 1403610510)
    assert "is_staff" not in rose and "channel" not in rose


def test_join_scene_2_is_a_link_and_unknown_codes_are_unknown() -> None:
    group = copy.deepcopy(GROUP)
    group["member_list"][1]["join_scene"] = 2
    group["member_list"][2]["join_scene"] = 9
    jack, rose = events_of("cb_chat_add_member", group)
    assert (jack["via"], rose["via"]) == ("link", "unknown")


def test_a_member_gone_before_the_fetch_keeps_the_callbacks_facts() -> None:
    group = copy.deepcopy(GROUP)
    group["member_list"] = [m for m in group["member_list"] if m["userid"] != "Rose"]
    fields = xml_fields((FIXTURES / "cb_chat_add_member.xml").read_text())
    fields["JoinScene"] = "3"
    _jack, rose = callback_to_events(fields, lambda chat: group)
    assert rose == {
        "id": f"wecom:join:CHAT_ID:Rose:{TS}",
        "type": "member.joined",
        "ts": TS,
        "platform": "wecom",
        "group": "CHAT_ID",
        "member": "Rose",
        "via": "qrcode",
    }


def test_the_older_flat_member_change_list() -> None:
    fields = xml_fields((FIXTURES / "cb_chat_add_member.xml").read_text())
    fields["MemChangeList"] = "Jack,Rose"
    assert [e["member"] for e in callback_to_events(fields, lambda chat: GROUP)] == ["Jack", "Rose"]
    del fields["MemChangeList"]  # no list at all: every current member (known joins dedupe)
    assert [e["member"] for e in callback_to_events(fields, lambda chat: GROUP)] == [
        "abel",
        "Jack",
        "Rose",
    ]


@pytest.mark.parametrize(("scene", "via"), [("1", "removed"), ("0", "quit")])
def test_del_member_is_a_leave_at_the_callbacks_time(scene: str, via: str) -> None:
    fields = xml_fields((FIXTURES / "cb_chat_del_member.xml").read_text())
    fields["QuitScene"] = scene
    (left,) = callback_to_events(fields, lambda chat: pytest.fail("no fetch for a leave"))
    assert left == {
        "id": f"wecom:leave:CHAT_ID:Rose:{TS}",
        "type": "member.left",
        "ts": TS,
        "platform": "wecom",
        "group": "CHAT_ID",
        "member": "Rose",
        "via": via,
    }


@pytest.mark.parametrize(
    ("detail", "field", "value"),
    [
        ("change_name", "name", "销售客服群"),
        ("change_notice", "notice", "文明沟通，拒绝脏话"),
        ("change_owner", "owner", "ZhuShengBen"),
    ],
)
def test_group_updates_carry_the_fetched_value(detail: str, field: str, value: str) -> None:
    (event,) = events_of(f"cb_chat_{detail}", GROUP)
    assert event == {
        "id": f"wecom:group:CHAT_ID:updated:{field}:{TS}",
        "type": "group.updated",
        "ts": TS,
        "platform": "wecom",
        "group": "CHAT_ID",
        field: value,
    }


def test_dismiss() -> None:
    assert events_of("cb_chat_dismiss") == [
        {
            "id": "wecom:group:CHAT_ID:dismissed",
            "type": "group.dismissed",
            "ts": TS,
            "platform": "wecom",
            "group": "CHAT_ID",
        }
    ]


def test_incomplete_or_unknown_callbacks_make_nothing() -> None:
    never = lambda chat: pytest.fail("no fetch")  # noqa: E731
    assert callback_to_events({"Event": "change_external_contact"}, never) == []
    assert callback_to_events({"Event": "subscribe", "CreateTime": "1"}, never) == []
    assert (
        callback_to_events(
            {"Event": "change_external_chat", "ChangeType": "update", "ChatId": "c"}, never
        )
        == []
    )
