"""The app itself: health check, OpenAPI, docs."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from quanzi.db.engine import make_engine
from quanzi.web.app import create_app


def test_healthz_ok(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_healthz_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'no-such-dir' / 'quanzi.sqlite3'}")
    try:
        with TestClient(create_app(engine)) as client:
            r = client.get("/healthz")
    finally:
        engine.dispose()
    assert r.status_code == 503
    assert r.json()["status"] == "unavailable"


def test_openapi_declares_the_api(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    assert {"/healthz", "/api/v1/events", "/api/v1/reports/{name}", "/api/v1/rebuild"} <= set(paths)

    events = paths["/api/v1/events"]["post"]
    assert set(events["requestBody"]["content"]) == {
        "application/x-ndjson",
        "application/jsonl",
        "text/plain",
        "application/json",
    }
    assert {"200", "400", "401", "413", "415"} <= set(events["responses"])
    assert "still applied" in events["description"]

    report = paths["/api/v1/reports/{name}"]["get"]
    params = {p["name"]: p for p in report["parameters"]}
    assert set(params) == {"name", "date", "from", "to", "hold_hours", "as_of", "kind", "weeks"}
    assert all(not p.get("required") for n, p in params.items() if n != "name")
    assert "overview" in params["name"]["schema"]["enum"]
    # Parameter errors are 400 {"detail"}; FastAPI's 422 is not what the API answers.
    assert all("422" not in op["responses"] for path in paths.values() for op in path.values())
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_docs_page_and_root(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    # The root is the console's: without a login it leads to the login page.
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
