"""The web application: health check, the HTTP API and its OpenAPI docs."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

import quanzi
from quanzi.acquisition.endpoints import router as channel_codes_router
from quanzi.acquisition.landing_endpoints import router as landing_router
from quanzi.acquisition.media_endpoints import router as media_router
from quanzi.analytics.endpoints import router as reports_router
from quanzi.campaigns.api_endpoints import router as campaigns_api_router
from quanzi.campaigns.public_endpoints import router as campaign_pages_router
from quanzi.connectors.wecom.callbacks import router as wecom_hooks_router
from quanzi.core.events.endpoints import router as events_router
from quanzi.db.engine import get_engine
from quanzi.jobs import start_in_process
from quanzi.web.auth import request_engine
from quanzi.web.console.setup import (
    console_validation_error,
    install_console,
    install_error_pages,
    is_api,
)

log = logging.getLogger(__name__)


def create_app(engine: Engine | None = None, *, run_jobs: bool = False) -> FastAPI:
    """The app on `engine` (default: QUANZI_DATABASE_URL's, migrated on first use).

    `run_jobs` starts a job consumer (threads) for the app's lifetime: the embedded runtime.
    """

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        consumer = None
        if run_jobs:
            consumer = start_in_process()
        try:
            yield
        finally:
            if consumer is not None:
                await run_in_threadpool(consumer.stop, graceful=True)

    # The API docs' Swagger UI and ReDoc come from the installed fastapi-offline package,
    # like the console's charts: nothing is fetched from a CDN.
    app = FastAPIOffline(
        title="Quanzi",
        summary="Self-hosted community operations (社群运营): events in, reports out.",
        version=quanzi.__version__,
        lifespan=lifespan,
    )
    app.state.engine = engine if engine is not None else get_engine()

    app.include_router(events_router)
    app.include_router(reports_router)
    app.include_router(wecom_hooks_router)
    app.include_router(channel_codes_router)
    app.include_router(landing_router)
    app.include_router(media_router)
    app.include_router(campaign_pages_router)
    app.include_router(campaigns_api_router)

    @app.get("/healthz", tags=["ops"], summary="Liveness and database check")
    def healthz(request: Request) -> JSONResponse:
        try:
            _ping(request_engine(request))
        except Exception as exc:
            log.warning("health check failed: %s", exc)
            return JSONResponse(
                status_code=503, content={"status": "unavailable", "detail": "database unreachable"}
            )
        return JSONResponse(content={"status": "ok"})

    install_console(app)
    _install_error_handlers(app)
    install_error_pages(app)
    _document_400_instead_of_422(app)
    return app


def _ping(engine: Engine) -> None:
    # A bare DBAPI query: an ORM transaction on SQLite begins IMMEDIATE and would queue
    # behind a long ingest for the write lock, making a busy server look dead.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
        cursor.close()
    finally:
        raw.close()


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if not is_api(request):
            return console_validation_error(request, exc, _validation_message(exc))
        return JSONResponse(status_code=400, content={"detail": _validation_message(exc)})


def _validation_message(exc: RequestValidationError) -> str:
    """`weeks: Input should be less than or equal to 104`-style lines, one per problem."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "header", "body")]
        parts.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _document_400_instead_of_422(app: FastAPI) -> None:
    """Parameter errors answer 400 {"detail"} (one error shape everywhere): say so in OpenAPI."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = FastAPI.openapi(app)
            for path in schema.get("paths", {}).values():
                for operation in path.values():
                    responses = operation.get("responses", {})
                    if responses.pop("422", None) is not None and "400" not in responses:
                        responses["400"] = {
                            "description": "Invalid parameter",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/ErrorDetail"}
                                }
                            },
                        }
            schemas = schema.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
