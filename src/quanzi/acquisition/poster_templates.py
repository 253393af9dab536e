"""Poster templates (how a workspace's share posters look) and a member's personal poster.

A template holds a name, the operator's copy (at most COPY_MAX characters: the column beside
the QR code holds about eight lines of eleven), an uploaded background (Media, purpose
"poster") and the channel code the QR code opens. A member's poster is that template drawn
with the member's name and a QR code of `<base>/c/<code>?m=<member_state(id)>`, so a scan
through it is counted on the code with the member as referrer and a join it brings is that
member's invite. Rendering is cached by posters.poster (the same content renders once).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select
from sqlalchemy.orm import Session

from quanzi.acquisition import channels, media, posters
from quanzi.acquisition.models import ChannelCode, Media, PosterTemplate
from quanzi.acquisition.states import member_state
from quanzi.core.members.models import Member
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound

COPY_MAX = 80
NAME_MAX = 100
BULK_MAX = 500  # posters in one zip download
SAMPLE_NAME = "示例成员"


class TemplateNotFound(NotFound):
    """No poster template with that id in this workspace."""


@dataclass(frozen=True)
class TemplateFields:
    """What an operator sets on a template (validated by `save_template`)."""

    name: str
    copy_text: str
    channel_code_id: int | None
    background_media_id: int | None


def list_templates(s: Session, ws_id: int) -> list[PosterTemplate]:
    return list(
        s.scalars(
            select(PosterTemplate)
            .where(PosterTemplate.workspace_id == ws_id)
            .order_by(PosterTemplate.id)
        )
    )


def get_template(s: Session, ws_id: int, template_id: int) -> PosterTemplate:
    tpl = s.get(PosterTemplate, template_id)
    if tpl is None or tpl.workspace_id != ws_id:
        raise TemplateNotFound(f"poster template {template_id} does not exist")
    return tpl


def _checked(s: Session, ws_id: int, f: TemplateFields) -> TemplateFields:
    name = f.name.strip()
    if not 1 <= len(name) <= NAME_MAX:
        raise InvalidParameter(f"name: give 1-{NAME_MAX} characters")
    copy_text = f.copy_text.strip()
    if not 1 <= len(copy_text) <= COPY_MAX:
        raise InvalidParameter(f"copy: give 1-{COPY_MAX} characters (now {len(copy_text)})")
    if f.channel_code_id is None:
        raise InvalidParameter("channel code: choose the code the poster's QR code opens")
    try:
        channels.get_code(s, ws_id, f.channel_code_id)
    except NotFound:
        raise InvalidParameter(
            f"channel code: {f.channel_code_id} is not a code of this workspace"
        ) from None
    if f.background_media_id is not None:
        try:
            found = media.load_media(s, ws_id, f.background_media_id)
        except NotFound:
            raise InvalidParameter(
                f"background: image {f.background_media_id} is not in this workspace"
            ) from None
        if found.purpose != "poster":
            raise InvalidParameter("background: choose an image uploaded as a poster background")
    return TemplateFields(name, copy_text, f.channel_code_id, f.background_media_id)


def save_template(
    s: Session, ws_id: int, template_id: int | None, fields: TemplateFields
) -> tuple[PosterTemplate, list[str]]:
    """Create (template_id None) or update a template; (the template, the fields changed).
    InvalidParameter names the field that is wrong and nothing is stored."""
    f = _checked(s, ws_id, fields)
    now = now_us()
    if template_id is None:
        tpl = PosterTemplate(
            workspace_id=ws_id,
            name=f.name,
            copy_text=f.copy_text,
            channel_code_id=f.channel_code_id,
            background_media_id=f.background_media_id,
            created_at_us=now,
            updated_at_us=now,
        )
        s.add(tpl)
        s.flush()
        return tpl, ["name", "copy_text", "channel_code_id", "background_media_id"]
    tpl = get_template(s, ws_id, template_id)
    changed = []
    for attr in ("name", "copy_text", "channel_code_id", "background_media_id"):
        if getattr(tpl, attr) != getattr(f, attr):
            setattr(tpl, attr, getattr(f, attr))
            changed.append(attr)
    if changed:
        tpl.updated_at_us = now
    s.flush()
    return tpl, changed


def _code(s: Session, ws_id: int, tpl: PosterTemplate) -> ChannelCode:
    if tpl.channel_code_id is None:  # its code was deleted
        raise InvalidParameter(
            f"poster template {tpl.id}: its channel code is gone; choose another one"
        )
    return channels.get_code(s, ws_id, tpl.channel_code_id)


def qr_url(base_url: str, code: ChannelCode, member_id: int | None) -> str:
    """What the poster's QR code opens: the code's short link, with the member's state."""
    url = f"{base_url.rstrip('/')}/c/{code.code}"
    return url if member_id is None else f"{url}?m={quote(member_state(member_id), safe=':')}"


def _background(s: Session, ws_id: int, tpl: PosterTemplate) -> bytes | None:
    if tpl.background_media_id is None:
        return None
    found: Media = media.load_media(s, ws_id, tpl.background_media_id)
    return bytes(found.data)


def _spec(
    s: Session, ws_id: int, tpl: PosterTemplate, base_url: str, member: Member | None
) -> posters.PosterSpec:
    code = _code(s, ws_id, tpl)
    return posters.PosterSpec(
        name=SAMPLE_NAME if member is None else display_name(member),
        copy=tpl.copy_text,
        qr_url=qr_url(base_url, code, None if member is None else member.id),
        background=_background(s, ws_id, tpl),
    )


def display_name(m: Member) -> str:
    """The name drawn on a member's poster: their name, else their platform id."""
    return ((m.name or "").strip() or m.member_key)[:20]


def sample_poster(s: Session, ws_id: int, template_id: int, base_url: str) -> bytes:
    """The template with a sample name; its QR code opens the code without a referrer."""
    return posters.poster(_spec(s, ws_id, get_template(s, ws_id, template_id), base_url, None))


def member_of(s: Session, ws_id: int, member_id: int) -> Member:
    m = s.get(Member, member_id)
    if m is None or m.workspace_id != ws_id:
        raise NotFound(f"no member {member_id} in this workspace")
    return m


def member_poster(s: Session, ws_id: int, template_id: int, member_id: int, base_url: str) -> bytes:
    """The member's personal poster (PNG). The caller checks the member is in scope."""
    tpl = get_template(s, ws_id, template_id)
    return posters.poster(_spec(s, ws_id, tpl, base_url, member_of(s, ws_id, member_id)))


def posters_zip(
    s: Session, ws_id: int, template_id: int, member_ids: list[int], base_url: str
) -> bytes:
    """A zip of the members' posters (`<member id>.png`), at most BULK_MAX of them."""
    if len(member_ids) > BULK_MAX:
        raise InvalidParameter(
            f"members: {len(member_ids)} match; narrow the filter to at most {BULK_MAX}"
        )
    tpl = get_template(s, ws_id, template_id)
    base = _spec(s, ws_id, tpl, base_url, None)  # checks the code once, reads the background once
    code = _code(s, ws_id, tpl)
    buf = io.BytesIO()
    # PNGs are already compressed: stored, not deflated again.
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for member_id in member_ids:
            m = member_of(s, ws_id, member_id)
            spec = posters.PosterSpec(
                name=display_name(m),
                copy=base.copy,
                qr_url=qr_url(base_url, code, m.id),
                background=base.background,
            )
            zf.writestr(f"{m.id}.png", posters.poster(spec))
    return buf.getvalue()
