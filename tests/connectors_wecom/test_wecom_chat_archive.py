"""The chat-archive seam: archived group messages become message.posted, resumably, once."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from community import Community
from sqlalchemy import Engine

from quanzi.connectors.wecom.chat_archive import ArchivedMessage, archived_to_events, pull_archive

T = 1_762_000_000_000  # ms


class FakeArchive:
    """An in-memory ChatArchiveSource (the real one wraps WeCom's native SDK)."""

    def __init__(self, messages: list[ArchivedMessage], fail_after: int | None = None) -> None:
        self.messages = messages
        self.fail_after = fail_after
        self.calls = 0

    def fetch(self, after_seq: int, limit: int) -> Sequence[ArchivedMessage]:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise ConnectionError("archive SDK lost its connection")
        return [m for m in self.messages if m.seq > after_seq][:limit]


def _messages() -> list[ArchivedMessage]:
    return [
        ArchivedMessage(1, "m1", "wrChat1", "wmAlice", T, "text", "早上好"),
        ArchivedMessage(2, "m2", "", "wmAlice", T + 1000, "text", "one-to-one: not group activity"),
        ArchivedMessage(3, "m3", "wrChat1", "zhangsan", T + 2000, "emotion"),
        ArchivedMessage(4, "m4", "wrChat1", "wmBob", T + 3000, "redpacket"),
        ArchivedMessage(5, "m5", "wrChat1", "wmBob", T + 4000, "something_new"),
    ]


def test_messages_map_to_the_event_contract() -> None:
    events = archived_to_events(_messages())
    assert [e["id"] for e in events] == [
        "wecom:msg:m1",
        "wecom:msg:m3",
        "wecom:msg:m4",
        "wecom:msg:m5",
    ]
    assert events[0]["text"] == "早上好" and events[0]["ts"] == T // 1000
    assert [e["kind"] for e in events] == ["text", "sticker", "red_packet", "other"]
    assert "text" not in events[1]


def test_pull_resumes_from_its_checkpoint_and_never_doubles(engine: Engine) -> None:
    c = Community(engine)
    c.add("member.joined", T // 1000 - 60, group="wrChat1", member="wmAlice")
    c.add("member.joined", T // 1000 - 60, group="wrChat1", member="wmBob")
    broken = FakeArchive(_messages(), fail_after=2)
    with pytest.raises(ConnectionError):
        pull_archive(engine, c.ws_id, broken, batch=2)
    # Two batches (seq 1-4) were ingested and checkpointed before the failure: only seq 5
    # is fetched again.
    resumed = pull_archive(engine, c.ws_id, FakeArchive(_messages()), batch=2)
    assert resumed.fetched == 1 and resumed.applied == 1 and resumed.last_seq == 5
    again = pull_archive(engine, c.ws_id, FakeArchive(_messages()), batch=2)
    assert again.fetched == 0 and again.applied == 0
    day = "2025-11-01"
    overview = c.report("overview", date=day)
    assert overview["messages"] == 4
