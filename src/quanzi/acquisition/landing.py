"""Landing pages (H5) and lead capture: drafts, published versions rendered once, leads.

A page has a draft (the builder's blocks) and published versions; publishing validates the
blocks, renders the HTML once (server-side, mobile-first, no third-party requests) and keeps
it, so a view is a lookup. A lead is one per phone number per workspace: the number is
normalised (phonenumbers, CN by default), sealed with the workspace key and found again by its
blind index; the consent text and the version it came with are stored with it (PIPL).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

import phonenumbers
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Engine, bindparam, select, update
from sqlalchemy.orm import Session

from quanzi.acquisition.channels import ua_class
from quanzi.acquisition.models import LandingPage, LandingPageVersion, LandingVisit, Lead
from quanzi.acquisition.serving import Fresh, PerDatabase, forget_on_commit
from quanzi.acquisition.visitors import Visitor
from quanzi.acquisition.writers import VISITS, PendingVisit
from quanzi.core.members.personal import normalize_phone
from quanzi.core.workspaces.models import Workspace
from quanzi.core.workspaces.service import workspace_key
from quanzi.db.engine import session_scope
from quanzi.kit.clock import now_us
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
    _forget_page(session, page.slug)


def drop_variant_b(session: Session, ws_id: int, page_id: int) -> None:
    """End the A/B test and forget B's draft; B's published versions (and visits) stay."""
    page = page_of(session, ws_id, page_id)
    page.draft_b, page.published_b_version_id, page.split_b = None, None, 0
    page.updated_at_us = now_us()
    _forget_page(session, page.slug)


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
    _forget_page(session, page.slug)
    return version


def unpublish(session: Session, ws_id: int, page_id: int) -> None:
    """Take the page offline (both variants); its versions, visits and leads are kept."""
    page = page_of(session, ws_id, page_id)
    page.published_version_id = None
    page.published_b_version_id, page.split_b = None, 0
    page.updated_at_us = now_us()
    _forget_page(session, page.slug)


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
    # Bodies served, per (channel, gzip): the HTML is the same for every visitor except the
    # lead form's action, which carries the visitor's channel.
    _bodies: OrderedDict[tuple[str, bool], bytes] = field(
        default_factory=OrderedDict, repr=False, compare=False
    )
    _thanks: list[str] = field(default_factory=list, repr=False, compare=False)

    def html_for(self, channel: str | None) -> str:
        """The published HTML with the lead form posting `?c=<channel>` (a channel already
        checked against CHANNEL_RE: URL-safe, nothing to escape)."""
        action = f'action="/p/{self.slug}/lead'
        at = self.html.find(action)
        if not channel or at < 0:
            return self.html
        at += len(action)
        return f"{self.html[:at]}?c={channel}{self.html[at:]}"

    def body(self, channel: str | None, gzipped: bool = False) -> bytes:
        """The encoded page for a visitor from `channel`, gzipped or not; kept in memory (the
        most recently used MAX_BODIES variants per version)."""
        key = (channel or "", gzipped)
        found = self._bodies.get(key)
        if found is None:
            found = self.html_for(channel).encode()
            if gzipped:
                found = gzip.compress(found, compresslevel=6, mtime=0)
            if len(self._bodies) >= MAX_BODIES:
                self._bodies.popitem(last=False)
            self._bodies[key] = found
        return found

    def thanks_html(self) -> str:
        """The thank-you state after a lead, the same for every visitor of this version."""
        if not self._thanks:
            self._thanks.append(render_page(self.slug, self.content, thanks=True))
        return self._thanks[0]


MAX_BODIES = 64
LIVE_S = 1.0  # how stale a page's live versions may be: publish/unpublish shows within this


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
    v = session.get(LandingPageVersion, version_id)
    if v is None:
        raise NotFound("this page does not exist or is no longer published")
    tz = session.scalar(select(Workspace.timezone).where(Workspace.id == v.workspace_id))
    assert tz is not None
    return Published(
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


def published(session: Session, slug: str, visitor: str | None = None) -> Published:
    """The live version of /p/<slug> for this visitor (A, or B for their share of an A/B
    test), read from the database: the serving path keeps it in memory (`PublicPages`)."""
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


@dataclass(frozen=True)
class LivePage:
    """What /p/<slug> serves now: the page and its live version ids."""

    slug: str
    page_id: int
    version_a: int
    version_b: int | None
    split_b: int

    def version_for(self, visitor: str | None) -> int:
        if self.version_b is not None and variant_for(self.slug, visitor, self.split_b) == "B":
            return self.version_b
        return self.version_a


class PublicPages:
    """The serving side of one database's landing pages, in memory.

    A slug's live version ids are read from the database at most once every `LIVE_S` seconds
    per process (so publishing, unpublishing or a new split shows within that in every web
    process, with no message between them; at once in the process that made the change); a
    published version never changes, so its HTML is read once. Unknown slugs are remembered
    as such for the same time.
    """

    MAX_VERSIONS = 1_000

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.live: Fresh[LivePage] = Fresh(LIVE_S, clock=clock)
        self._versions: dict[int, Published] = {}
        self._lock = threading.Lock()

    def fresh(self, slug: str) -> tuple[bool, LivePage | None]:
        """(known, the live page or None when it is not published); not known (or known for
        longer than LIVE_S): `load` it."""
        return self.live.get(slug)

    def load(self, slug: str) -> LivePage | None:
        """Read a slug's live versions from the database (blocking) and keep them."""
        read_at = self.live.clock()
        with session_scope(self.engine, read_only=True) as s:
            row = s.execute(
                select(
                    LandingPage.id,
                    LandingPage.published_version_id,
                    LandingPage.published_b_version_id,
                    LandingPage.split_b,
                ).where(LandingPage.slug == slug)
            ).first()
        live = None
        if row is not None and row[1] is not None:
            live = LivePage(slug, int(row[0]), int(row[1]), _int_or_none(row[2]), int(row[3] or 0))
        self.live.put(slug, live, read_at)
        return live

    def version(self, version_id: int) -> Published | None:
        """A published version already in memory."""
        return self._versions.get(version_id)

    def load_version(self, version_id: int, slug: str) -> Published:
        with session_scope(self.engine, read_only=True) as s:
            found = _load_version(s, version_id, slug)
        return self._keep(found)

    def form_version(self, live: LivePage, version_id: int | None) -> Published | None:
        """The version a lead form says it came from (`v`), when it is in memory: a version
        of this page, else version A (a stale or forged `v` never moves a lead elsewhere).
        None when it must be looked up with `load_form_version`."""
        if version_id is not None and version_id != live.version_a:
            found = self._versions.get(version_id)
            if found is None:
                return None
            if found.page_id == live.page_id:
                return found
        return self._versions.get(live.version_a)

    def load_form_version(self, live: LivePage, version_id: int | None) -> Published:
        with session_scope(self.engine, read_only=True) as s:
            ours = version_id is not None and (
                s.scalar(
                    select(LandingPageVersion.id).where(
                        LandingPageVersion.id == version_id,
                        LandingPageVersion.page_id == live.page_id,
                    )
                )
                is not None
            )
            found = _load_version(
                s, version_id if ours and version_id else live.version_a, live.slug
            )
        return self._keep(found)

    def _keep(self, found: Published) -> Published:
        with self._lock:
            if len(self._versions) >= self.MAX_VERSIONS:
                self._versions.clear()
            return self._versions.setdefault(found.version_id, found)


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


public_pages = PerDatabase(PublicPages)  # public_pages(engine): that database's pages


def _forget_page(session: Session, slug: str) -> None:
    """This process serves the page's new state as soon as the change commits."""
    forget_on_commit(session, lambda: [pages.live for pages in public_pages.each()], slug)


def record_visit(engine: Engine, page: Published, channel: str | None, visitor: Visitor) -> None:
    """Count a view: kept in memory and written with the others within `FLUSH_S` (never a
    transaction per view); the address stays in memory, only its digests are written."""
    VISITS.add(
        engine,
        PendingVisit(
            LandingVisit,
            page.workspace_id,
            page.timezone,
            now_us(),
            {
                "page_id": page.page_id,
                "version_id": page.version_id,
                "channel": (channel or None) and channel[:30],
                "ua_class": ua_class(visitor.user_agent),
            },
            visitor,
        ),
    )


# --- leads ------------------------------------------------------------------------------------


class TooManyLeads(QuanziError):
    status_code = 429


class SlidingWindow:
    """At most `limit` hits per key in `window_s` seconds, in this process (each web process
    keeps its own count: with N processes a key gets at most N × limit). At most `max_keys`
    keys are remembered: beyond that the least recently hit are forgotten."""

    def __init__(self, limit: int, window_s: float, max_keys: int = 100_000) -> None:
        self.limit, self.window_s, self.max_keys = limit, window_s, max_keys
        self._hits: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def hit(self, key: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._hits.get(key)
            if q is None:
                q = self._hits[key] = deque()
                while len(self._hits) > self.max_keys:
                    self._hits.popitem(last=False)
            else:
                self._hits.move_to_end(key)
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if len(q) >= self.limit:
                return False
            q.append(now)
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


@dataclass(frozen=True)
class CheckedLead:
    """A lead form that passed every check that needs no database."""

    name: str
    phone: str  # E.164
    extra: dict[str, str]


def valid_phone(raw: str, region: str = "CN") -> str | None:
    """E.164 of a number that is really assigned (not merely the right length), else None."""
    normal = normalize_phone(raw, region)
    if normal is None:
        return None
    number = phonenumbers.parse(normal)
    return normal if phonenumbers.is_valid_number(number) else None


def check_lead(page: Published, form: LeadForm, *, client: str) -> CheckedLead | None:
    """Validate a lead form (no database); None for a honeypot hit (answered as a success,
    stored nowhere). Raises InvalidParameter naming the field, or TooManyLeads."""
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
    return CheckedLead(name, phone, extra)


# Built once: building the expression is a good part of a query's cost on the lead path.
_LEAD_OF_PHONE = select(Lead).where(
    Lead.workspace_id == bindparam("ws"), Lead.phone_digest == bindparam("digest")
)


def store_lead(
    session: Session,
    page: Published,
    lead_in: CheckedLead,
    *,
    channel: str | None,
    visitor: Visitor | None = None,
) -> Lead:
    """Store a checked lead, or refresh the workspace's lead with the same phone (one per
    phone per workspace). Raises TooManyLeads past the per-phone limit."""
    keys = session.info.setdefault("quanzi_workspace_keys", {})  # one look-up per batch
    key = keys.get(page.workspace_id) or keys.setdefault(
        page.workspace_id, workspace_key(session, page.workspace_id)
    )
    digest = key.blind_index("phone", lead_in.phone)
    if not PER_PHONE.hit(digest):
        raise TooManyLeads("this phone number was submitted too often; please try again later")
    net, device = visitor.digests(key) if visitor is not None else (None, None)
    now = now_us()
    lead = session.scalar(_LEAD_OF_PHONE, {"ws": page.workspace_id, "digest": digest})
    name, extra = lead_in.name, lead_in.extra
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
            phone_sealed=key.seal("phone", lead_in.phone),
            name_sealed=key.seal("name", name) if name else None,
            fields_sealed=sealed_fields,
            consent_text=page.content.consent_text,
            consent_version=page.version,
            submissions=1,
            net_digest=net,
            device_digest=device,
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
            **({"net_digest": net, "device_digest": device} if net else {}),
        )
        .execution_options(synchronize_session=False)
    )
    return lead


def submit_lead(
    session: Session,
    page: Published,
    form: LeadForm,
    *,
    channel: str | None,
    client: str,
    visitor: Visitor | None = None,
) -> Lead | None:
    """Check and store (or refresh) the lead in one go; None for a honeypot hit. Raises
    InvalidParameter naming the field, or TooManyLeads."""
    checked = check_lead(page, form, client=client)
    if checked is None:
        return None
    return store_lead(session, page, checked, channel=channel, visitor=visitor)
