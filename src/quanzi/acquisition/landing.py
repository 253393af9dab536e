"""Landing pages (H5) and lead capture: drafts, published versions rendered once, leads.

A page has a draft (the builder's blocks) and published versions; publishing validates the
blocks, renders the HTML once (server-side, mobile-first, no third-party requests) and keeps
it, so a view is a lookup. A lead is one per phone number per workspace: the number is
normalised (phonenumbers, CN by default), sealed with the workspace key and found again by its
blind index; the consent text and the version it came with are stored with it (PIPL).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

import phonenumbers
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quanzi.acquisition.models import LandingPage, LandingPageVersion, LandingVisit, Lead
from quanzi.core.members.personal import normalize_phone
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit.clock import LocalCalendar, now_us
from quanzi.kit.errors import InvalidParameter, NotFound, QuanziError
from quanzi.web.console.render import TEMPLATES_DIR

if TYPE_CHECKING:
    from quanzi.acquisition.personal_ways import LeadCode

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{2,31}$")
FIELD_KEY_RE = re.compile(r"^[a-z][a-z0-9_]{0,19}$")


class FieldSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(pattern=FIELD_KEY_RE.pattern)
    label: str = Field(min_length=1, max_length=30)
    required: bool = False


class LandingContent(BaseModel):
    """The builder's blocks: top (hook), middle (proof, urgency), bottom (form, group QR)."""

    model_config = ConfigDict(extra="forbid")
    headline: str = Field(min_length=1, max_length=60)
    hook: str = Field(default="", max_length=200)
    banner_url: str | None = Field(default=None, max_length=500, pattern=r"^(/|https://)")
    benefits: list[str] = Field(default_factory=list, max_length=8)
    testimonials: list[str] = Field(default_factory=list, max_length=6)
    # Check-in screenshots and other proof: uploaded images (/m/...) shown under the testimonials.
    proof_images: list[Annotated[str, Field(max_length=500, pattern=r"^(/|https://)")]] = Field(
        default_factory=list, max_length=6
    )
    countdown_until: datetime | None = None
    stock_left: int | None = Field(default=None, ge=0, le=1_000_000)
    form: bool = True
    fields: list[FieldSpec] = Field(default_factory=list, max_length=5)
    group_qr_url: str | None = Field(default=None, max_length=500, pattern=r"^(/|https://)")
    cta: str = Field(default="立即领取", min_length=1, max_length=20)
    thanks: str = Field(default="提交成功，我们会尽快联系你。", min_length=1, max_length=200)
    consent_text: str = Field(min_length=10, max_length=500)


def check_content(raw: dict[str, Any]) -> LandingContent:
    try:
        content = LandingContent.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "content"
        raise InvalidParameter(f"{where}: {err['msg']}") from None
    for text in content.benefits + content.testimonials:
        if not 1 <= len(text) <= 200:
            raise InvalidParameter("benefits/testimonials: each item 1-200 characters")
    return content


# --- pages ------------------------------------------------------------------------------------


def create_page(
    session: Session, ws_id: int, name: str, content: dict[str, Any], slug: str | None = None
) -> LandingPage:
    if not 1 <= len(name.strip()) <= 100:
        raise InvalidParameter("name: 1-100 characters")
    check_content(content)
    slug = slug or secrets.token_hex(4)
    if not SLUG_RE.match(slug):
        raise InvalidParameter("slug: 3-32 lowercase letters, digits or '-'")
    if session.scalar(select(LandingPage.id).where(LandingPage.slug == slug)) is not None:
        raise InvalidParameter(f"slug: {slug!r} is taken")
    now = now_us()
    page = LandingPage(
        workspace_id=ws_id,
        slug=slug,
        name=name.strip(),
        draft=content,
        created_at_us=now,
        updated_at_us=now,
    )
    session.add(page)
    session.flush()
    return page


def page_of(session: Session, ws_id: int, page_id: int) -> LandingPage:
    page = session.get(LandingPage, page_id)
    if page is None or page.workspace_id != ws_id:
        raise NotFound(f"landing page {page_id} does not exist")
    return page


VARIANTS = ("A", "B")


def _variant(variant: str) -> str:
    if variant not in VARIANTS:
        raise InvalidParameter("variant: A or B")
    return variant


def save_draft(
    session: Session, ws_id: int, page_id: int, content: dict[str, Any], variant: str = "A"
) -> None:
    """Keep the builder's blocks for variant A (the page) or B (its A/B challenger)."""
    check_content(content)
    page = page_of(session, ws_id, page_id)
    if _variant(variant) == "A":
        page.draft = content
    else:
        page.draft_b = content
    page.updated_at_us = now_us()


def set_split(session: Session, ws_id: int, page_id: int, split_b: int) -> None:
    """Send `split_b` percent of new visitors to variant B (0 ends the test: everyone sees A)."""
    if isinstance(split_b, bool) or not isinstance(split_b, int) or not 0 <= split_b <= 100:
        raise InvalidParameter("split: a whole percentage from 0 to 100")
    page = page_of(session, ws_id, page_id)
    if split_b and page.published_b_version_id is None:
        raise InvalidParameter("split: publish variant B before sending traffic to it")
    page.split_b = split_b
    page.updated_at_us = now_us()


def drop_variant_b(session: Session, ws_id: int, page_id: int) -> None:
    """End the A/B test and forget B's draft; B's published versions (and visits) stay."""
    page = page_of(session, ws_id, page_id)
    page.draft_b, page.published_b_version_id, page.split_b = None, None, 0
    page.updated_at_us = now_us()


@lru_cache(maxsize=1)
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_page(
    slug: str,
    content: LandingContent,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    thanks: bool = False,
    version_id: int | None = None,
    personal: LeadCode | None = None,
) -> str:
    """The page; `thanks`: its thank-you state, with the lead's personal contact code if any."""
    return (
        _env()
        .get_template("public/landing.html")
        .render(
            slug=slug,
            c=content,
            error=error,
            values=values or {},
            thanks=thanks,
            version_id=version_id,
            personal=personal,
            countdown_days=(
                None
                if content.countdown_until is None
                else max(0, (content.countdown_until.timestamp() - time.time()) // 86400)
            ),
        )
    )


def publish(
    session: Session, ws_id: int, page_id: int, by: str | None, variant: str = "A"
) -> LandingPageVersion:
    """A new published version of a variant's draft: validated, rendered once, kept for ever.
    Versions are numbered per page across both variants."""
    page = page_of(session, ws_id, page_id)
    draft = page.draft if _variant(variant) == "A" else page.draft_b
    if draft is None:
        raise InvalidParameter("variant: B has no draft yet")
    content = check_content(draft)
    last = session.scalar(
        select(LandingPageVersion.version)
        .where(LandingPageVersion.page_id == page.id)
        .order_by(LandingPageVersion.version.desc())
        .limit(1)
    )
    version = LandingPageVersion(
        workspace_id=ws_id,
        page_id=page.id,
        version=(last or 0) + 1,
        variant=variant,
        content=json.loads(content.model_dump_json()),
        html="",
        consent_text=content.consent_text,
        published_by=by,
        published_at_us=now_us(),
    )
    session.add(version)
    session.flush()
    # The version id is in the form, so a lead records the version its visitor saw.
    version.html = render_page(page.slug, content, version_id=version.id)
    if variant == "A":
        page.published_version_id = version.id
    else:
        page.published_b_version_id = version.id
    page.updated_at_us = now_us()
    return version


def unpublish(session: Session, ws_id: int, page_id: int) -> None:
    """Take the page offline (both variants); its versions, visits and leads are kept."""
    page = page_of(session, ws_id, page_id)
    page.published_version_id = None
    page.published_b_version_id, page.split_b = None, 0
    page.updated_at_us = now_us()


@dataclass(frozen=True)
class Published:
    workspace_id: int
    page_id: int
    version_id: int
    version: int
    variant: str
    slug: str
    html: str
    content: LandingContent
    timezone: str


_PUBLISHED: dict[int, Published] = {}  # version id -> rendered version (versions never change)
_PUBLISHED_LOCK = threading.Lock()


def variant_for(slug: str, visitor: str | None, split_b: int) -> str:
    """The variant a visitor sees: a stable hash of (page, visitor) against the split, so a
    returning visitor keeps theirs; without a visitor id, a fair coin."""
    if split_b <= 0:
        return "A"
    if visitor is None:
        return "B" if secrets.randbelow(100) < split_b else "A"
    bucket = int.from_bytes(hashlib.sha256(f"{slug}\0{visitor}".encode()).digest()[:4], "big")
    return "B" if bucket % 100 < split_b else "A"


def _load_version(session: Session, version_id: int, slug: str) -> Published:
    with _PUBLISHED_LOCK:
        hit = _PUBLISHED.get(version_id)
    if hit is not None:
        return hit
    v = session.get(LandingPageVersion, version_id)
    if v is None:
        raise NotFound("this page does not exist or is no longer published")
    tz = session.scalar(select(Workspace.timezone).where(Workspace.id == v.workspace_id))
    assert tz is not None
    found = Published(
        v.workspace_id,
        v.page_id,
        v.id,
        v.version,
        v.variant,
        slug,
        v.html,
        LandingContent.model_validate(v.content),
        tz,
    )
    with _PUBLISHED_LOCK:
        _PUBLISHED[version_id] = found
    return found


def published(session: Session, slug: str, visitor: str | None = None) -> Published:
    """The live version of /p/<slug> for this visitor (A, or B for their share of an A/B
    test); a version's HTML is read from the database once and then served from memory."""
    row = session.execute(
        select(
            LandingPage.published_version_id,
            LandingPage.published_b_version_id,
            LandingPage.split_b,
        ).where(LandingPage.slug == slug)
    ).first()
    if row is None or row[0] is None:
        raise NotFound("this page does not exist or is no longer published")
    version_id = int(row[0])
    if row[1] is not None and variant_for(slug, visitor, int(row[2] or 0)) == "B":
        version_id = int(row[1])
    return _load_version(session, version_id, slug)


def published_version(session: Session, slug: str, version_id: int | None) -> Published:
    """The version a lead form came from, when it is a live or past version of this page;
    otherwise the page's live version A (a stale or forged `v` never moves a lead elsewhere)."""
    if version_id is not None:
        owner = session.execute(
            select(LandingPageVersion.id)
            .join(LandingPage, LandingPage.id == LandingPageVersion.page_id)
            .where(
                LandingPageVersion.id == version_id,
                LandingPage.slug == slug,
                LandingPage.published_version_id.is_not(None),
            )
        ).first()
        if owner is not None:
            return _load_version(session, version_id, slug)
    live_a = session.scalar(
        select(LandingPage.published_version_id).where(LandingPage.slug == slug)
    )
    if live_a is None:
        raise NotFound("this page does not exist or is no longer published")
    return _load_version(session, int(live_a), slug)


def record_visit(session: Session, page: Published, channel: str | None, ua_class: str) -> None:
    at = now_us()
    session.add(
        LandingVisit(
            workspace_id=page.workspace_id,
            page_id=page.page_id,
            version_id=page.version_id,
            channel=(channel or None) and channel[:30],
            ua_class=ua_class,
            at_us=at,
            day=LocalCalendar(page.timezone).day_of(at),
        )
    )


# --- leads ------------------------------------------------------------------------------------


class TooManyLeads(QuanziError):
    status_code = 429


class SlidingWindow:
    """At most `limit` hits per key in `window_s` seconds, in this process (each web process
    keeps its own count: with N processes a key gets at most N × limit)."""

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit, self.window_s = limit, window_s
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.setdefault(key, deque())
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
            if len(self._hits) > 100_000:  # forget idle keys rather than grow without bound
                for k in [k for k, v in self._hits.items() if not v][:50_000]:
                    del self._hits[k]
            return True


PER_IP = SlidingWindow(limit=20, window_s=600)
PER_PHONE = SlidingWindow(limit=5, window_s=3600)


@dataclass(frozen=True)
class LeadForm:
    name: str
    phone: str
    consent: bool
    honeypot: str
    extra: dict[str, str]


def valid_phone(raw: str, region: str = "CN") -> str | None:
    """E.164 of a number that is really assigned (not merely the right length), else None."""
    normal = normalize_phone(raw, region)
    if normal is None:
        return None
    number = phonenumbers.parse(normal)
    return normal if phonenumbers.is_valid_number(number) else None


def submit_lead(
    session: Session, page: Published, form: LeadForm, *, channel: str | None, client: str
) -> Lead | None:
    """Store (or refresh) the lead; None for a honeypot hit (answered as a success, stored
    nowhere). Raises InvalidParameter naming the field, or TooManyLeads."""
    if form.honeypot:
        return None
    if not PER_IP.hit(client):
        raise TooManyLeads("too many submissions from your network; please try again later")
    if not page.content.form:
        raise InvalidParameter("form: this page takes no form")
    name = form.name.strip()
    if len(name) > 30:
        raise InvalidParameter("name: at most 30 characters")
    phone = valid_phone(form.phone)
    if phone is None:
        raise InvalidParameter("phone: not a valid phone number")
    if not form.consent:
        raise InvalidParameter("consent: please agree to the terms to continue")
    extra: dict[str, str] = {}
    for spec in page.content.fields:
        value = form.extra.get(spec.key, "").strip()
        if len(value) > 200:
            raise InvalidParameter(f"{spec.key}: at most 200 characters")
        if spec.required and not value:
            raise InvalidParameter(f"{spec.key}: required")
        if value:
            extra[spec.key] = value
    key = workspace_key(session, page.workspace_id)
    digest = key.blind_index("phone", phone)
    if not PER_PHONE.hit(digest):
        raise TooManyLeads("this phone number was submitted too often; please try again later")
    now = now_us()
    lead = session.scalar(
        select(Lead).where(Lead.workspace_id == page.workspace_id, Lead.phone_digest == digest)
    )
    sealed_fields = (
        key.seal("lead_fields", json.dumps(extra, ensure_ascii=False)) if extra else None
    )
    if lead is None:
        lead = Lead(
            workspace_id=page.workspace_id,
            page_id=page.page_id,
            version_id=page.version_id,
            channel=(channel or None) and channel[:30],
            phone_digest=digest,
            phone_sealed=key.seal("phone", phone),
            name_sealed=key.seal("name", name) if name else None,
            fields_sealed=sealed_fields,
            consent_text=page.content.consent_text,
            consent_version=page.version,
            submissions=1,
            created_at_us=now,
            updated_at_us=now,
        )
        session.add(lead)
        session.flush()
        return lead
    session.execute(
        update(Lead)
        .where(Lead.id == lead.id)
        .values(
            submissions=Lead.submissions + 1,
            updated_at_us=now,
            consent_text=page.content.consent_text,
            consent_version=page.version,
            **({"name_sealed": key.seal("name", name)} if name else {}),
            **({"fields_sealed": sealed_fields} if sealed_fields else {}),
        )
        .execution_options(synchronize_session=False)
    )
    return lead
