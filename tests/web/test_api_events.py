"""POST /api/v1/events: auth, size limit, media types, per-line reasons, strict, isolation."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from web_samples import EVENTS, NDJSON, jsonl

from quanzi.config import get_settings


def overview(
    client: TestClient, auth: dict[str, str], day: str = "2026-10-01"
) -> dict[str, object]:
    r = client.get(f"/api/v1/reports/overview?date={day}", headers=auth)
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_ingest_applies_and_answers_counts(client: TestClient, auth: dict[str, str]) -> None:
    r = client.post("/api/v1/events", content=jsonl(EVENTS), headers={**auth, **NDJSON})
    assert r.status_code == 200, r.text
    assert r.json() == {"applied": 6, "duplicates": 0, "refused": 0, "errors": [], "warnings": []}
    assert overview(client, auth)["new_members"] == 2

    again = client.post("/api/v1/events", content=jsonl(EVENTS), headers={**auth, **NDJSON})
    assert again.status_code == 200
    assert again.json()["applied"] == 0 and again.json()["duplicates"] == 6


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-ndjson",
        "application/jsonl",
        "text/plain; charset=utf-8",
        "application/json",
        'APPLICATION/X-NDJSON; charset="UTF-8"',
        None,
    ],
)
def test_every_json_lines_media_type_is_accepted(
    client: TestClient, auth: dict[str, str], content_type: str | None
) -> None:
    headers = dict(auth)
    if content_type is not None:
        headers["Content-Type"] = content_type
    r = client.post("/api/v1/events", content=jsonl(EVENTS[:2]), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["applied"] == 2


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "image/png",
        "text/plain; charset=latin-1",
        "garbage",
        ";",
    ],
)
def test_other_media_types_get_415(
    client: TestClient, auth: dict[str, str], content_type: str
) -> None:
    r = client.post(
        "/api/v1/events", content=jsonl(EVENTS), headers={**auth, "Content-Type": content_type}
    )
    assert r.status_code == 415, r.text
    assert "detail" in r.json()
    assert overview(client, auth)["new_members"] == 0


def test_bad_lines_get_400_with_reasons_and_good_lines_still_apply(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = (
        jsonl(EVENTS[:2])
        + b"not json\n"
        + b"\n"  # blank: ignored, but still counted as a line
        + orjson.dumps({**EVENTS[2], "ts": "2026-10-01 10:00:00"})
        + b"\n"
        + b'\xff\xfe{"id":"bin"}\n'
        + orjson.dumps({**EVENTS[5], "amount": 199.0})
        + b"\n"
        + jsonl(EVENTS[3:5])
    )
    r = client.post("/api/v1/events", content=body, headers={**auth, **NDJSON})
    assert r.status_code == 400, r.text
    result = r.json()
    assert result["applied"] == 4
    assert result["refused"] == 4
    assert [e.split(":")[0] for e in result["errors"]] == ["line 3", "line 5", "line 6", "line 7"]
    assert all(len(e) > len("line 7: ") for e in result["errors"])
    assert "amount" in result["errors"][3]
    assert overview(client, auth)["messages"] == 1  # e5, a good line after the bad ones


def test_strict_applies_nothing_when_a_line_is_bad(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = jsonl(EVENTS) + b'{"id":"x","type":"nope","ts":0,"platform":"wecom"}\n'
    r = client.post("/api/v1/events?strict=true", content=body, headers={**auth, **NDJSON})
    assert r.status_code == 400
    assert r.json()["refused"] == 1 and r.json()["applied"] == 0
    assert r.json()["errors"][0].startswith("line 7: ")
    assert overview(client, auth)["new_members"] == 0

    ok = client.post(
        "/api/v1/events?strict=true", content=jsonl(EVENTS), headers={**auth, **NDJSON}
    )
    assert ok.status_code == 200 and ok.json()["applied"] == 6


@pytest.mark.parametrize("body", [b"", b"\n\n  \r\n\t\n"])
def test_empty_body_gets_400(client: TestClient, auth: dict[str, str], body: bytes) -> None:
    r = client.post("/api/v1/events", content=body, headers={**auth, **NDJSON})
    assert r.status_code == 400
    assert "empty body" in r.json()["detail"]


def test_a_field_over_64_kib_is_refused_by_line(client: TestClient, auth: dict[str, str]) -> None:
    huge = {**EVENTS[4], "id": "huge", "text": "长" * (70 * 1024)}
    r = client.post("/api/v1/events", content=jsonl([EVENTS[0], huge]), headers={**auth, **NDJSON})
    assert r.status_code == 400
    assert r.json()["applied"] == 1
    assert r.json()["errors"][0].startswith("line 2: ")


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    limit = 1000
    monkeypatch.setenv("QUANZI_MAX_INGEST_BODY", str(limit))
    get_settings.cache_clear()
    return limit


def test_over_the_limit_gets_413_and_applies_nothing(
    client: TestClient, auth: dict[str, str], small_limit: int
) -> None:
    body = jsonl(EVENTS * 3)
    assert len(body) > small_limit
    r = client.post("/api/v1/events", content=body, headers={**auth, **NDJSON})
    assert r.status_code == 413
    assert "split" in r.json()["detail"]
    assert overview(client, auth)["new_members"] == 0

    fits = jsonl(EVENTS[:2])
    assert len(fits) <= small_limit
    assert (
        client.post("/api/v1/events", content=fits, headers={**auth, **NDJSON}).status_code == 200
    )


def test_limit_is_enforced_while_streaming_without_content_length(
    client: TestClient, auth: dict[str, str], small_limit: int
) -> None:
    def chunks() -> Iterator[bytes]:  # chunked transfer: no Content-Length to trust
        for _ in range(10_000):
            yield jsonl(EVENTS[:1])

    r = client.post("/api/v1/events", content=chunks(), headers={**auth, **NDJSON})
    assert r.status_code == 413
    assert overview(client, auth)["groups"] == 0


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer qz_not-a-real-token"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dXNlcjpwdw=="},
        {"Authorization": "Bearer " + "x" * 5000},
    ],
)
def test_without_a_valid_token_401(client: TestClient, headers: dict[str, str]) -> None:
    r = client.post("/api/v1/events", content=jsonl(EVENTS), headers={**headers, **NDJSON})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["detail"]
    for path in (
        "/api/v1/reports/overview",
        "/api/v1/reports/funnel?from=2026-10-01&to=2026-10-31",
    ):
        assert client.get(path, headers=headers).status_code == 401
    assert client.post("/api/v1/rebuild", headers=headers).status_code == 401


def test_workspaces_never_see_each_other(
    client: TestClient, make_token: Callable[[str], str]
) -> None:
    a = {"Authorization": f"Bearer {make_token('brand-a')}"}
    b = {"Authorization": f"Bearer {make_token('brand-b')}"}
    assert (
        client.post("/api/v1/events", content=jsonl(EVENTS), headers={**a, **NDJSON}).status_code
        == 200
    )

    assert overview(client, a)["new_members"] == 2
    assert overview(client, b) == {
        **overview(client, a),
        "members": 0,
        "new_members": 0,
        "messages": 0,
        "member_messages": 0,
        "staff_messages": 0,
        "active_members": 0,
        "groups": 0,
    }
    invites = client.get("/api/v1/reports/invites?from=2026-10-01&to=2026-10-31", headers=b).json()
    assert invites == {"inviters": []}

    # Same ids in B are B's own events, not duplicates of A's.
    r = client.post("/api/v1/events", content=jsonl(EVENTS[:3]), headers={**b, **NDJSON})
    assert r.json()["applied"] == 3 and r.json()["duplicates"] == 0
    assert overview(client, a)["new_members"] == 2
    assert overview(client, b)["new_members"] == 1
