"""Property-based fuzzing of the whole HTTP API from its OpenAPI schema: never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import Engine

from quanzi.core.workspaces.service import create_token, get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.web.app import create_app

MAX_EXAMPLES = 40  # per operation and generation mode; keeps the whole file well under a minute

REQUIRED = {
    "group.created": ("group", "name"),
    "group.updated": ("group",),
    "group.dismissed": ("group",),
    "member.joined": ("group", "member"),
    "member.left": ("group", "member"),
    "message.posted": ("group", "member"),
    "contact.added": ("member", "staff"),
    "contact.removed": ("member", "staff"),
    "profile.updated": ("member",),
    "order.paid": ("order", "member", "amount"),
    "order.refunded": ("order", "amount"),
}
POOLS = {
    "group": ["g1", "g2"],
    "member": ["m1", "m2", "m3"],
    "staff": ["s1"],
    "order": ["o1", "o2"],
    "name": ["群一", "Group 2"],
    "inviter": ["m1", "m2", "m3"],
    "via": ["invite", "qrcode", "quit"],
    "is_staff": [True, False],
    "text": ["hi", "大家好"],
    "channel": ["live", "ad"],
}
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
)
junk = (
    scalars
    | st.lists(scalars, max_size=3)
    | st.dictionaries(st.text(max_size=5), scalars, max_size=3)
    | st.integers(min_value=-(2**70), max_value=2**70)
)
timestamps = st.sampled_from(
    ["2026-10-01T09:00:00+08:00", "2026-10-02T01:00:00Z", 1790000000, "2026-10-03T23:59:59.5-05:00"]
)
bad_timestamps = st.sampled_from(
    [
        "2026-10-01 09:00:00",
        "2026-10-01T09:00:00+0800",
        1790000000000,
        -62135596801,
        "2026-10-01T09:00:00",
        "9999-12-31T23:59:59Z",
    ]
)


@st.composite
def event_lines(draw: st.DrawFn) -> bytes:
    """A valid event of any type (ids from small pools, so joins, leaves, re-sends and
    duplicates with other content happen), often with one field made wrong."""
    etype = draw(st.sampled_from(sorted(REQUIRED)))
    obj: dict[str, Any] = {
        "id": draw(st.integers(0, 50).map("e{}".format) | st.uuids().map(str)),
        "type": etype,
        "ts": draw(timestamps),
        "platform": draw(st.sampled_from(["wecom", "telegram"])),
    }
    for key in REQUIRED[etype]:
        obj[key] = (
            draw(st.integers(0, 10**6)) if key == "amount" else draw(st.sampled_from(POOLS[key]))
        )
    for key in draw(st.sets(st.sampled_from(sorted(POOLS)), max_size=3)):
        obj.setdefault(key, draw(st.sampled_from(POOLS[key])))
    if draw(st.integers(0, 3)) == 0:  # one wrong value
        key = draw(st.sampled_from([*sorted(obj), "unknown_extra"]))
        obj[key] = draw(bad_timestamps) if key == "ts" else draw(junk)
    # The standard encoder writes 2**70 and NaN too (orjson would refuse them).
    return json.dumps(obj, ensure_ascii=draw(st.booleans())).encode()


@st.composite
def json_lines_bodies(draw: st.DrawFn) -> bytes:
    """Events, a few of them broken, mixed with lines that are not JSON or not UTF-8."""
    lines = draw(st.lists(event_lines(), min_size=1, max_size=8))
    lines += draw(
        st.lists(st.binary(max_size=80) | st.text(max_size=80).map(str.encode), max_size=2)
    )
    return b"\n".join(draw(st.permutations(lines)))


schemathesis.openapi.media_type(
    "application/x-ndjson", json_lines_bodies(), aliases=["application/jsonl"]
)


@pytest.fixture
def token(engine: Engine) -> str:
    with session_scope(engine) as session:
        return create_token(session, get_or_create_workspace(session, "fuzz"))


def fuzz(
    op: APIOperation, mode: GenerationMode, headers: dict[str, str] | None, examples: int
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=op.as_strategy(generation_mode=mode))
    def no_server_error(case: schemathesis.Case) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    try:
        no_server_error()
    except Unsatisfiable:
        # Nothing to make invalid (no parameters, no body): the positive run covered it.
        assert mode is GenerationMode.NEGATIVE, op.label


def test_no_operation_answers_a_server_error(engine: Engine, token: str) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(engine))
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/api/v1/events", "/api/v1/reports/{name}"}
    with_token = {"Authorization": f"Bearer {token}"}
    for op in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz(op, mode, with_token, MAX_EXAMPLES)
            fuzz(op, mode, None, MAX_EXAMPLES // 4)  # and without: 401s, never a 5xx
