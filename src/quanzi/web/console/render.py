"""Rendering console pages: one Jinja2 environment, autoescaped, with the locale's formatting."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from quanzi.kit.clock import day_date, from_us, zone
from quanzi.kit.masking import mask
from quanzi.web import i18n
from quanzi.web.console.deps import Principal, request_locale

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


@lru_cache(maxsize=1)
def plotly_js() -> Path:
    """plotly.min.js as shipped inside the installed `plotly` PyPI package (never a CDN)."""
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the plotly package is not installed (pip install plotly)")
    path = Path(next(iter(spec.submodule_search_locations))) / "package_data" / "plotly.min.js"
    if not path.exists():
        raise RuntimeError(f"plotly.min.js is missing from the plotly package ({path})")
    return path


def _local_dt(us: int | None, tz: str, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if us is None:
        return "—"
    return from_us(us).astimezone(zone(tz)).strftime(fmt)


def _day(day: int | None) -> str:
    return "—" if day is None else day_date(day).isoformat()


def _chart(spec: dict[str, Any], chart_id: str, label: str = "", height: int = 320) -> Markup:
    """A chart placeholder plus its data as JSON (drawn by console.js with Plotly; no inline JS)."""
    data = json.dumps(spec, ensure_ascii=False, default=str)
    # JSON inside <script type="application/json"> is not parsed as HTML: only "</" must not
    # appear; escape it so a member's name cannot close the element.
    data = data.replace("</", "<\\/").replace("<!--", "<\\!--")
    return Markup(
        '<figure class="chart"><figcaption class="sr-only">{label}</figcaption>'
        '<div class="chart-plot" data-chart="{cid}" style="height:{h}px"></div>'
        '<script type="application/json" id="{cid}">{data}</script></figure>'
    ).format(label=label, cid=chart_id, h=height, data=Markup(data))


def _query(request: Request, **changes: Any) -> str:
    """The current query string with some parameters changed (None removes one)."""
    params = dict(request.query_params)
    for k, v in changes.items():
        if v is None:
            params.pop(k, None)
        else:
            params[k] = str(v)
    return "?" + urlencode(params) if params else "?"


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html", "xml"], default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.filters.update(
        num=i18n.number,
        pct=i18n.percent,
        money=i18n.money,
        day=_day,
        mask=lambda value, field="phone": mask(field, str(value)) if value else "—",
        tr_error=i18n.translate_error,
    )
    env.globals.update(chart=_chart, now=datetime.now)
    return env


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    p = principal or getattr(request.state, "principal", None)
    locale = request_locale(request, p.user if p else None)
    i18n.current_locale.set(locale)
    tz = p.workspace.timezone if p and p.workspace else "Asia/Shanghai"
    ctx: dict[str, Any] = {
        "request": request,
        "p": p,
        "locale": locale,
        "lang": "zh-CN" if locale == "zh-CN" else "en",
        "dt": lambda us, fmt="%Y-%m-%d %H:%M": _local_dt(us, tz, fmt),
        "query": lambda **kw: _query(request, **kw),
        "path": request.url.path,
        "plotly_version": plotly_js().stat().st_mtime_ns,
    }
    ctx.update(context or {})
    html = environment().get_template(template).render(ctx)
    return HTMLResponse(html, status_code=status_code)
