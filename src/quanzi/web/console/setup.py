"""Wiring the console into the app: routers, static files, error pages, security headers."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import secrets
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware

from quanzi.kit.errors import QuanziError
from quanzi.web.console import auth_pages, pages
from quanzi.web.console.deps import LoginRequired
from quanzi.web.console.render import STATIC_DIR, plotly_js, render
from quanzi.web.i18n import gettext, translate_error

log = logging.getLogger(__name__)

# Pages: scripts and styles from this site only (Plotly draws with inline styles).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


def is_api(request: Request) -> bool:
    path = request.url.path
    return path.startswith(
        ("/api/", "/healthz", "/docs", "/openapi", "/redoc", "/hooks/", "/static-offline-docs/")
    )


def install_console(app: FastAPI) -> None:
    app.include_router(auth_pages.router)
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{pages.__name__}.{info.name}")
        app.include_router(module.router)

    @app.get("/static/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(
            plotly_js(),
            media_type="text/javascript",
            headers={"Cache-Control": "public, max-age=31536000, immutable"},
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not is_api(request):
            response.headers.setdefault("Content-Security-Policy", CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
            if response.headers.get("content-type", "").startswith("text/html"):
                response.headers.setdefault("Cache-Control", "no-store")
        return response


def error_page(request: Request, status: int, detail: str) -> Response:
    titles = {
        400: gettext("Something in the request is not right"),
        401: gettext("Please log in"),
        403: gettext("You may not do this"),
        404: gettext("Not found"),
        405: gettext("Not allowed here"),
        413: gettext("Too large"),
        429: gettext("Too many requests"),
        500: gettext("Something went wrong on our side"),
    }
    return render(
        request,
        "error.html",
        {"title": titles.get(status, gettext("Error")), "detail": detail},
        status_code=status,
    )


def install_error_pages(app: FastAPI) -> None:
    """Console requests get pages in the user's language; the API keeps its JSON answers."""

    @app.exception_handler(LoginRequired)
    async def login_required(_request: Request, exc: LoginRequired) -> Response:
        return auth_pages.redirect_to_login(exc)

    @app.exception_handler(QuanziError)
    async def quanzi_error(request: Request, exc: QuanziError) -> Response:
        if is_api(request):
            return JSONResponse(status_code=exc.status_code, content={"detail": str(exc)})
        return error_page(request, exc.status_code, translate_error(str(exc)))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if is_api(request):
            return JSONResponse(
                status_code=exc.status_code, content={"detail": exc.detail}, headers=exc.headers
            )
        detail = gettext("This page does not exist.") if exc.status_code == 404 else str(exc.detail)
        return error_page(request, exc.status_code, detail)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        ref = secrets.token_hex(4)
        log.exception("unhandled error %s on %s %s", ref, request.method, request.url.path)
        if is_api(request):
            return JSONResponse(
                status_code=500, content={"detail": f"internal error (reference {ref})"}
            )
        return error_page(
            request, 500, gettext("The error was logged with reference %(ref)s.") % {"ref": ref}
        )


def console_validation_error(request: Request, exc: RequestValidationError, text: str) -> Response:
    return error_page(request, 400, text)
