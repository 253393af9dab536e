"""The app as `quanzi serve` runs it, plus a hello-world route for bench/landing.py's baseline.

    python bench/landing_server.py PORT

Same app (`create_app` with the embedded job consumer), same uvicorn settings
(`quanzi.web.server.run`); the only addition is GET /__bench/hello, first in the route list so
that it pays the least routing. The product has no such route: only this script adds it.
"""

from __future__ import annotations

import sys

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

HELLO = "/__bench/hello"


async def hello(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello, world")


def with_hello(app: object) -> None:
    """Put the hello-world route in front of the app's routes."""
    router = app.router  # type: ignore[attr-defined]
    router.routes.insert(0, Route(HELLO, hello, methods=["GET"]))
    changed = getattr(router, "_mark_routes_changed", None)
    if changed is not None:
        changed()


def main() -> None:
    from quanzi.db.engine import get_engine
    from quanzi.web.app import create_app
    from quanzi.web.server import run

    app = create_app(get_engine(), run_jobs=True)
    with_hello(app)
    run(app, "127.0.0.1", int(sys.argv[1]))


if __name__ == "__main__":
    main()
