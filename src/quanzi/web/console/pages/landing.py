"""Landing pages (H5) in the console: the list, the builder (three blocks, image uploads),
preview, publish / unpublish, versions, an A/B variant with its results, and the funnel
view → lead → contact → join.

Everyone who may view sees the pages and their figures; owners and admins (manage_team) build
and publish them, as with channel codes: a page speaks for the company. Every change is
audited. Leads are in pages/leads.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from quanzi.acquisition import landing, media
from quanzi.acquisition import landing_stats as stats
from quanzi.analytics.params import iso, parse_params
from quanzi.kit.clock import to_us, zone
from quanzi.kit.errors import InvalidParameter, QuanziError
from quanzi.team.roles import Perm
from quanzi.web.console.deps import Principal, need
from quanzi.web.console.render import render
from quanzi.web.i18n import current_locale, gettext, translate_error

router = APIRouter(include_in_schema=False)

Viewer = Annotated[Principal, Depends(need(Perm.VIEW))]
Manager = Annotated[Principal, Depends(need(Perm.MANAGE_TEAM))]
Variant = Annotated[str, Query(pattern="^[AB]$")]
FormVariant = Annotated[str, Form(pattern="^[AB]$")]

MAX_FIELDS = 5
MAX_PROOF = 6
DEFAULT_CONSENT = "我已阅读并同意《隐私政策》，同意运营方使用我提交的手机号与我联系。"
# The public page's policy, and no form submission from a preview (it would make a real lead).
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'none'"
)


# --- messages -----------------------------------------------------------------------------------


def field_labels() -> dict[str, str]:
    return {
        "name": gettext("Name"),
        "slug": gettext("Address (slug)"),
        "headline": gettext("Headline"),
        "hook": gettext("Hook"),
        "banner_url": gettext("Banner image"),
        "banner_file": gettext("Banner image"),
        "benefits": gettext("Benefits"),
        "testimonials": gettext("Testimonials"),
        "benefits/testimonials": gettext("Benefits or testimonials"),
        "proof_images": gettext("Check-in screenshots"),
        "proof_files": gettext("Check-in screenshots"),
        "countdown_until": gettext("Countdown until"),
        "stock_left": gettext("Remaining stock"),
        "fields": gettext("Extra form fields"),
        "group_qr_url": gettext("Group QR code"),
        "qr_file": gettext("Group QR code"),
        "cta": gettext("Button text"),
        "thanks": gettext("Thank-you text"),
        "consent_text": gettext("Consent text"),
        "split": gettext("Traffic to B"),
        "variant": gettext("Variant"),
    }


def explain(exc: QuanziError) -> tuple[str, str]:
    """(the form field at fault, the message in the user's language) of a service error such
    as "fields.0.key: String should match pattern …": the catalog's translation of the whole
    message when it has one, else the field's label and the translated problem."""
    message = str(exc)
    where, sep, problem = message.partition(": ")
    field = where.split(".")[0] if sep else ""
    label = field_labels().get(field)
    translated = translate_error(message)
    if label is None:
        return "", translated
    if translated != message:
        return field, translated
    colon = "：" if current_locale.get() == "zh-CN" else ": "
    return field, f"{label}{colon}{translate_error(problem)}"


def _flash(done: str) -> list[tuple[str, str]]:
    texts = {
        "created": gettext("Landing page created. Fill in its blocks, preview, then publish."),
        "saved": gettext("Draft saved. Publish it to put it on the public page."),
        "published": gettext("Published: the public page shows the new version now."),
        "unpublished": gettext("Taken offline: the public link answers not found."),
        "variant": gettext(
            "Variant B created from A's draft: edit it, publish it, then set the split."
        ),
        "split": gettext("Traffic split saved."),
        "ended": gettext("A/B test ended: every visitor sees A again. B's figures are kept."),
    }
    return [("ok", texts[done])] if done in texts else []


# --- the list -----------------------------------------------------------------------------------


def _list(
    p: Principal,
    values: dict[str, str] | None = None,
    error: tuple[str, str] | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    with p.read() as s:
        rows = stats.pages_overview(s, p.ws.id)
    ctx = {
        "active": "landing",
        "rows": rows,
        "v": values or {},
        "error_field": error[0] if error else "",
        "flashes": ([("error", error[1])] if error else []) + _flash(done),
        "may_edit": p.may(Perm.MANAGE_TEAM),
    }
    return render(p.request, "landing/list.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/landing")
def landing_list(p: Viewer, done: Annotated[str, Query(max_length=20)] = "") -> Response:
    return _list(p, done=done)


@router.post("/w/{workspace}/landing/create")
def create(
    p: Manager,
    name: Annotated[str, Form(max_length=200)] = "",
    slug: Annotated[str, Form(max_length=100)] = "",
    headline: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    values = {"name": name, "slug": slug, "headline": headline}
    content = {"headline": headline.strip(), "consent_text": DEFAULT_CONSENT}
    try:
        with p.write() as s:
            page = landing.create_page(s, p.ws.id, name, content, slug=slug.strip() or None)
            p.audit(s, "landing.created", target=page.slug, detail={"name": page.name})
            page_id = page.id
    except QuanziError as exc:
        return _list(p, values, explain(exc), status_code=exc.status_code)
    return RedirectResponse(p.url(f"/landing/{page_id}/edit?done=created"), status_code=303)


# --- the builder --------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def form_values(content: dict[str, Any], timezone: str) -> dict[str, Any]:
    """A draft's blocks as the builder's form values (strings, lists of strings)."""
    until = content.get("countdown_until")
    local = ""
    if until:
        at = datetime.fromisoformat(str(until))
        local = at.astimezone(zone(timezone)).strftime("%Y-%m-%dT%H:%M")
    values: dict[str, Any] = {
        "headline": content.get("headline", ""),
        "hook": content.get("hook", ""),
        "banner_url": content.get("banner_url") or "",
        "benefits": "\n".join(content.get("benefits", [])),
        "testimonials": "\n".join(content.get("testimonials", [])),
        "proof_images": list(content.get("proof_images", [])),
        "countdown_until": local,
        "stock_left": "" if content.get("stock_left") is None else str(content["stock_left"]),
        "form": "1" if content.get("form", True) else "",
        "group_qr_url": content.get("group_qr_url") or "",
        "cta": content.get("cta", "立即领取"),
        "thanks": content.get("thanks", "提交成功，我们会尽快联系你。"),
        "consent_text": content.get("consent_text", ""),
    }
    for i, spec in enumerate(content.get("fields", [])[:MAX_FIELDS]):
        values[f"field_key_{i}"] = spec.get("key", "")
        values[f"field_label_{i}"] = spec.get("label", "")
        values[f"field_required_{i}"] = "1" if spec.get("required") else ""
    return values


def _posted_values(form: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        k: v for k, v in form.multi_items() if isinstance(v, str) and k != "proof_images"
    }
    values["proof_images"] = [v for v in form.getlist("proof_images") if isinstance(v, str)]
    return values


def _countdown(text: str, timezone: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidParameter(
            f"countdown_until: {text[:30]!r} is not a date and time (2026-12-31T20:00)"
        ) from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=zone(timezone))
    to_us(at)  # inside the calendar
    return at.isoformat()


def _stock(text: str) -> int | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    if not text.isdigit() or len(text) > 9:
        raise InvalidParameter(f"stock_left: {text[:20]!r} is not a number of items")
    return int(text)


def content_of(
    values: dict[str, Any], uploaded: dict[str, list[str]], timezone: str
) -> dict[str, Any]:
    """The draft's blocks from the form (and the URLs of the images just uploaded); raises
    InvalidParameter naming the field."""
    fields = []
    for i in range(MAX_FIELDS):
        key = str(values.get(f"field_key_{i}", "")).strip()
        label = str(values.get(f"field_label_{i}", "")).strip()
        if not key and not label:
            continue
        if not key or not label:
            raise InvalidParameter(f"fields: row {i + 1} needs both a key and a label")
        if not landing.FIELD_KEY_RE.match(key):
            raise InvalidParameter(
                f"fields: key {key[:30]!r} must be 1-20 lowercase letters, digits or _, "
                "starting with a letter"
            )
        fields.append(
            {"key": key, "label": label, "required": bool(values.get(f"field_required_{i}"))}
        )
    keys = [f["key"] for f in fields]
    if len(set(keys)) != len(keys):
        raise InvalidParameter("fields: each key may be used once")
    proof = list(values.get("proof_images", [])) + uploaded.get("proof_files", [])
    if len(proof) > MAX_PROOF:
        raise InvalidParameter(f"proof_images: at most {MAX_PROOF} images")
    content: dict[str, Any] = {
        "headline": str(values.get("headline", "")).strip(),
        "hook": str(values.get("hook", "")).strip(),
        "banner_url": (uploaded.get("banner_file") or [str(values.get("banner_url", ""))])[0]
        or None,
        "benefits": _lines(str(values.get("benefits", ""))),
        "testimonials": _lines(str(values.get("testimonials", ""))),
        "proof_images": proof,
        "countdown_until": _countdown(str(values.get("countdown_until", "")), timezone),
        "stock_left": _stock(str(values.get("stock_left", ""))),
        "form": bool(values.get("form")),
        "fields": fields,
        "group_qr_url": (uploaded.get("qr_file") or [str(values.get("group_qr_url", ""))])[0]
        or None,
        "cta": str(values.get("cta", "")).strip(),
        "thanks": str(values.get("thanks", "")).strip(),
        "consent_text": str(values.get("consent_text", "")).strip(),
    }
    landing.check_content(content)
    return content


def _media_choices(s: Session, ws_id: int) -> dict[str, list[tuple[str, str]]]:
    """purpose → [(url, label)] of the workspace's uploaded images, for the pickers."""
    out: dict[str, list[tuple[str, str]]] = {}
    for purpose in ("banner", "proof", "qr"):
        out[purpose] = [
            (media.media_url(m), f"{m.name} ({m.width}×{m.height})")
            for m in media.list_media(s, ws_id, purpose)[:60]
        ]
    return out


def _builder(
    p: Principal,
    page_id: int,
    variant: str,
    values: dict[str, Any] | None = None,
    error: tuple[str, str] | None = None,
    done: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    with p.read() as s:
        page = landing.page_of(s, p.ws.id, page_id)
        draft = page.draft if variant == "A" else page.draft_b
        if draft is None:
            raise InvalidParameter("variant: B has no draft yet")
        if values is None:
            values = form_values(draft, p.ws.timezone)
        choices = _media_choices(s, p.ws.id)
        info = {"id": page.id, "name": page.name, "slug": page.slug}
    ctx = {
        "active": "landing",
        "page": info,
        "variant": variant,
        "v": values,
        "choices": choices,
        "max_fields": MAX_FIELDS,
        "error_field": error[0] if error else "",
        "error_text": error[1] if error else "",
        "flashes": ([("error", error[1])] if error else []) + _flash(done),
    }
    return render(p.request, "landing/edit.html", ctx, principal=p, status_code=status_code)


@router.get("/w/{workspace}/landing/{page_id}/edit")
def edit_page(
    page_id: int,
    p: Manager,
    variant: Variant = "A",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    return _builder(p, page_id, variant, done=done)


UPLOADS = {"banner_file": "banner", "qr_file": "qr", "proof_files": "proof"}


async def _read_uploads(form: Any) -> list[tuple[str, str, bytes]]:
    """(form field, file name, bytes) of each file chosen; at most 10 MB + 1 byte is read of
    each, so an oversize file is refused without holding all of it."""
    out = []
    for field in UPLOADS:
        for item in form.getlist(field):
            if not isinstance(item, UploadFile) or not item.filename:
                continue
            data = await item.read(media.MAX_UPLOAD_BYTES + 1)
            if data:
                out.append((field, item.filename, data))
    return out


def _save(
    p: Principal,
    page_id: int,
    variant: str,
    values: dict[str, Any],
    files: list[tuple[str, str, bytes]],
) -> None:
    """Store the uploads and the draft in one transaction: an error stores nothing."""
    with p.write() as s:
        uploaded: dict[str, list[str]] = {}
        for field, filename, data in files:
            try:
                m = media.store_image(
                    s, p.ws.id, data, name=filename, purpose=UPLOADS[field], by=p.user.email
                )
            except InvalidParameter as exc:
                raise InvalidParameter(f"{field}: {str(exc).removeprefix('image: ')}") from None
            uploaded.setdefault(field, []).append(media.media_url(m))
        content = content_of(values, uploaded, p.ws.timezone)
        landing.save_draft(s, p.ws.id, page_id, content, variant)
        page = landing.page_of(s, p.ws.id, page_id)
        p.audit(
            s,
            "landing.saved",
            target=page.slug,
            detail={"variant": variant, "uploads": len(files)},
        )


@router.post("/w/{workspace}/landing/{page_id}/save")
async def save(page_id: int, p: Manager, variant: FormVariant = "A") -> Response:
    form = await p.request.form()
    values = _posted_values(form)
    files = await _read_uploads(form)
    try:
        await run_in_threadpool(_save, p, page_id, variant, values, files)
    except InvalidParameter as exc:
        return await run_in_threadpool(
            _builder, p, page_id, variant, values, explain(exc), "", exc.status_code
        )
    return RedirectResponse(
        p.url(f"/landing/{page_id}/edit?variant={variant}&done=saved"), status_code=303
    )


@router.get("/w/{workspace}/landing/{page_id}/preview")
def preview(page_id: int, p: Viewer, variant: Variant = "A") -> Response:
    """The draft as the public page would show it (not counted, its form does not submit)."""
    with p.read() as s:
        page = landing.page_of(s, p.ws.id, page_id)
        draft = page.draft if variant == "A" else page.draft_b
        if draft is None:
            raise InvalidParameter("variant: B has no draft yet")
        html = landing.render_page(page.slug, landing.check_content(draft))
    response = HTMLResponse(html)
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    return response


# --- publishing and the A/B test ----------------------------------------------------------------


def _change(
    p: Principal,
    page_id: int,
    action: str,
    done: str,
    change: Callable[[Session], dict[str, Any] | None],
    then: str = "",
) -> Response:
    """Make one change to a page, audit it (with what `change` returns) and go back to the
    page (or to `then`, a path under the page)."""
    with p.write() as s:
        detail = change(s)
        page = landing.page_of(s, p.ws.id, page_id)
        p.audit(s, action, target=page.slug, detail=detail)
    where = then or f"?done={done}"
    return RedirectResponse(p.url(f"/landing/{page_id}{where}"), status_code=303)


@router.post("/w/{workspace}/landing/{page_id}/publish")
def publish(page_id: int, p: Manager, variant: FormVariant = "A") -> Response:
    def change(s: Session) -> dict[str, Any]:
        version = landing.publish(s, p.ws.id, page_id, p.user.email, variant)
        return {"version": version.version, "variant": variant}

    return _change(p, page_id, "landing.published", "published", change)


@router.post("/w/{workspace}/landing/{page_id}/unpublish")
def unpublish(page_id: int, p: Manager) -> Response:
    return _change(
        p,
        page_id,
        "landing.unpublished",
        "unpublished",
        lambda s: landing.unpublish(s, p.ws.id, page_id),
    )


@router.post("/w/{workspace}/landing/{page_id}/variant-b")
def create_variant_b(page_id: int, p: Manager) -> Response:
    def change(s: Session) -> None:
        page = landing.page_of(s, p.ws.id, page_id)
        landing.save_draft(s, p.ws.id, page_id, dict(page.draft), "B")

    return _change(
        p, page_id, "landing.variant_created", "variant", change, "/edit?variant=B&done=variant"
    )


@router.post("/w/{workspace}/landing/{page_id}/split")
def set_split(
    page_id: int, p: Manager, split: Annotated[str, Form(max_length=10)] = ""
) -> Response:
    text = split.strip().removesuffix("%").strip()
    if not text.isdigit() or len(text) > 3:
        raise InvalidParameter("split: a whole percentage from 0 to 100")

    def change(s: Session) -> dict[str, Any]:
        landing.set_split(s, p.ws.id, page_id, int(text))
        return {"split_b": int(text)}

    return _change(p, page_id, "landing.split", "split", change)


@router.post("/w/{workspace}/landing/{page_id}/end-test")
def end_test(page_id: int, p: Manager) -> Response:
    return _change(
        p,
        page_id,
        "landing.test_ended",
        "ended",
        lambda s: landing.drop_variant_b(s, p.ws.id, page_id),
    )


# --- one page: versions, A/B results, funnel ----------------------------------------------------


def step_labels() -> dict[str, str]:
    return {
        "view": gettext("Views"),
        "lead": gettext("Leads"),
        "contact": gettext("Added staff"),
        "join": gettext("Joined a group"),
    }


def funnel_chart(steps: list[stats.FunnelStep]) -> dict[str, Any]:
    labels = step_labels()
    return {
        "data": [
            {
                "type": "funnel",
                "y": [labels[st.key] for st in steps],
                "x": [st.count for st in steps],
                "textinfo": "value",
                "marker": {"color": "#0b5cad"},
            }
        ],
        "layout": {"margin": {"l": 110, "r": 20, "t": 10, "b": 30}},
    }


def daily_chart(days: list[tuple[int, int, int]]) -> dict[str, Any]:
    x = [iso(d) for d, _v, _l in days]
    return {
        "data": [
            {"type": "bar", "name": gettext("Views"), "x": x, "y": [v for _d, v, _l in days]},
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": gettext("Leads"),
                "x": x,
                "y": [n for _d, _v, n in days],
                "yaxis": "y2",
            },
        ],
        "layout": {
            "yaxis": {"title": {"text": gettext("Views")}, "rangemode": "tozero"},
            "yaxis2": {
                "title": {"text": gettext("Leads")},
                "overlaying": "y",
                "side": "right",
                "rangemode": "tozero",
            },
            "legend": {"orientation": "h"},
        },
    }


def verdict_text(result: stats.ABResult) -> str:
    if result.verdict == "b_better":
        return gettext("B is better: the 95% interval of the difference lies above zero.")
    if result.verdict == "a_better":
        return gettext("A is better: the 95% interval of the difference lies below zero.")
    if result.verdict == "too_early":
        return gettext(
            "Not yet clear: wait for at least %(min)s views per variant (about %(n)s more)."
        ) % {"min": stats.MIN_VIEWS_PER_VARIANT, "n": result.views_needed or 0}
    if result.views_needed is None:
        return gettext("Not yet clear: no difference between A and B so far.")
    return gettext(
        "Not yet clear: the difference could be chance. About %(n)s more views per variant "
        "would tell a difference of this size apart (80%% power)."
    ) % {"n": result.views_needed}


@router.get("/w/{workspace}/landing/{page_id}")
def page_detail(
    page_id: int,
    p: Viewer,
    frm: Annotated[str, Query(alias="from", max_length=10)] = "",
    to: Annotated[str, Query(max_length=10)] = "",
    channel: Annotated[str, Query(max_length=30)] = "",
    done: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    cal = p.calendar
    params = parse_params({"from": frm or None, "to": to or iso(cal.today())}, cal)
    chosen = channel or None
    with p.read() as s:
        page = landing.page_of(s, p.ws.id, page_id)
        versions = stats.version_figures(s, p.ws.id, page)
        ab = stats.ab_result(versions)
        steps = stats.funnel(
            s, p.ws.id, cal, params.from_day, params.to_day, page_id=page.id, channel=chosen
        )
        by_channel = stats.funnel_by_channel(
            s, p.ws.id, cal, params.from_day, params.to_day, page_id=page.id
        )
        days = stats.daily(
            s, p.ws.id, cal, params.from_day, params.to_day, page_id=page.id, channel=chosen
        )
        channels = stats.channels_seen(s, p.ws.id, page.id)
        info = {
            "id": page.id,
            "name": page.name,
            "slug": page.slug,
            "live": page.published_version_id is not None,
            "live_b": page.published_b_version_id is not None,
            "has_b": page.draft_b is not None,
            "split_b": page.split_b,
        }
    ctx = {
        "active": "landing",
        "charts": True,
        "page": info,
        "versions": versions,
        "ab": ab,
        "verdict": verdict_text(ab) if ab else "",
        "steps": steps,
        "step_labels": step_labels(),
        "by_channel": by_channel,
        "funnel_chart": funnel_chart(steps),
        "daily_chart": daily_chart(days),
        "channels": channels,
        "channel": channel,
        "from": iso(params.from_day),
        "to": iso(params.to_day),
        "flashes": _flash(done),
        "may_edit": p.may(Perm.MANAGE_TEAM),
    }
    return render(p.request, "landing/page.html", ctx, principal=p)
