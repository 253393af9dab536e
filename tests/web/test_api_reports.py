"""GET /api/v1/reports/{name}: the service's numbers, its errors as 400/404."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from web_samples import EVENTS, NDJSON, jsonl

from quanzi.analytics.service import REPORT_NAMES, run_report
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import session_scope

PARAMS = {
    "from": "2026-09-28",
    "to": "2026-10-11",
    "as_of": "2026-11-01T00:00:00+08:00",
    "date": "2026-10-01",
    "hold_hours": "48",
    "kind": "membership",
    "weeks": "3",
}


@pytest.mark.parametrize("name", REPORT_NAMES)
def test_every_report_answers_what_the_service_answers(
    client: TestClient, auth: dict[str, str], engine: Engine, name: str
) -> None:
    assert (
        client.post("/api/v1/events", content=jsonl(EVENTS), headers={**auth, **NDJSON}).status_code
        == 200
    )
    r = client.get(f"/api/v1/reports/{name}", params=PARAMS, headers=auth)
    assert r.status_code == 200, r.text
    with session_scope(engine) as session:
        expected = run_report(session, get_workspace(session, "default"), name, dict(PARAMS))
    assert r.json() == expected


@pytest.mark.parametrize(
    ("query", "word"),
    [
        ("date=2026-13-01", "date"),
        ("from=2026-10-05&to=2026-10-01", "from"),
        ("weeks=0", "weeks"),
        ("weeks=abc", "weeks"),
        ("hold_hours=-1", "hold_hours"),
        ("kind=both", "kind"),
        ("as_of=yesterday", "as_of"),
        ("weeks=99999999999999999999999", "weeks"),
    ],
)
def test_bad_parameters_get_400_naming_the_parameter(
    client: TestClient, auth: dict[str, str], query: str, word: str
) -> None:
    name = "retention" if "weeks" in query or "kind" in query else "funnel"
    if query.startswith("date"):
        name = "overview"
    if query.startswith("hold_hours"):
        name = "invites"
    r = client.get(f"/api/v1/reports/{name}?{query}", headers=auth)
    assert r.status_code == 400, r.text
    assert word in r.json()["detail"]


def test_unknown_report_404(client: TestClient, auth: dict[str, str]) -> None:
    r = client.get("/api/v1/reports/revenue", headers=auth)
    assert r.status_code == 404
    assert "overview" in r.json()["detail"]  # lists the reports there are
