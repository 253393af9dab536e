"""Personal share posters (海报): a background, the member's name and avatar, the operator's copy,
and a QR code carrying that member's invite `state`, drawn with Pillow in a CJK font.

The font is Debian's Noto Sans CJK (`apt-get install fonts-noto-cjk`); without it Chinese
text cannot be drawn, and rendering says so instead of producing boxes. Posters are cached on
disk by the hash of everything drawn, so the same poster is rendered once.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import segno
from PIL import Image, ImageDraw, ImageFont, ImageOps

from quanzi.acquisition.states import member_state as member_state  # posters carry it
from quanzi.config import get_settings
from quanzi.kit.errors import InvalidParameter, QuanziError

WIDTH, HEIGHT = 750, 1334  # a phone screen at 2x: what WeChat shares full-width
QR_SIZE = 260
AVATAR_SIZE = 128
COPY_FONT, COPY_LINE, COPY_LINES = 26, 36, 8  # the copy's column, left of the QR code
LAYOUT = "v2"  # part of the cache key: a layout change renders every poster afresh
MAX_IMAGE_BYTES = 8 * 1024 * 1024
FONT_PATHS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)
# Index of Simplified Chinese in Noto's CJK collections (JP, KR, SC, TC, HK).
SC_INDEX = 2


class FontMissing(QuanziError):
    status_code = 503


@lru_cache(maxsize=8)
def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    for path in FONT_PATHS:
        if os.path.exists(path):
            return ImageFont.truetype(path, size, index=SC_INDEX)
    raise FontMissing(
        "no Chinese font: install Debian's fonts-noto-cjk (apt-get install fonts-noto-cjk)"
    )


@dataclass(frozen=True)
class PosterSpec:
    name: str  # the member's display name
    copy: str  # the operator's text
    qr_url: str  # carries the member's invite state, e.g. https://host/c/<code>?m=<state>
    background: bytes | None = None  # operator's upload (PNG/JPEG); None: a plain gradient
    avatar: bytes | None = None

    def key(self) -> str:
        h = hashlib.sha256()
        for part in (self.name, self.copy, self.qr_url):
            h.update(part.encode() + b"\0")
        for blob in (self.background, self.avatar):
            h.update(hashlib.sha256(blob or b"").digest())
        h.update(f"{WIDTH}x{HEIGHT}:{QR_SIZE}:{LAYOUT}".encode())
        return h.hexdigest()


def _image(blob: bytes, what: str) -> Image.Image:
    if len(blob) > MAX_IMAGE_BYTES:
        raise InvalidParameter(f"{what}: larger than {MAX_IMAGE_BYTES // (1024 * 1024)} MB")
    try:
        img = Image.open(io.BytesIO(blob))
        img.load()
    except Exception:
        raise InvalidParameter(f"{what}: not a PNG or JPEG image") from None
    return ImageOps.exif_transpose(img).convert("RGB")


def _background(blob: bytes | None) -> Image.Image:
    if blob is None:
        img = Image.new("RGB", (WIDTH, HEIGHT), "#0b5cad")
        draw = ImageDraw.Draw(img)
        for y in range(HEIGHT):  # a vertical gradient, brand blue to a lighter blue
            t = y / HEIGHT
            draw.line(
                [(0, y), (WIDTH, y)], fill=(int(11 + 80 * t), int(92 + 90 * t), int(173 + 60 * t))
            )
        return img
    return ImageOps.fit(_image(blob, "background"), (WIDTH, HEIGHT), Image.Resampling.LANCZOS)


def _qr(url: str) -> Image.Image:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=10, border=2)
    buf.seek(0)
    return Image.open(buf).convert("RGB").resize((QR_SIZE, QR_SIZE), Image.Resampling.NEAREST)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int, lines: int) -> list[str]:
    """`text` in lines at most `width` pixels wide, at most `lines` of them (the last ends with
    … when the text does not fit). Chinese breaks between any two characters; a Latin word is
    kept whole when it fits on a line."""
    out: list[str] = []
    for para in text.strip().splitlines() or [""]:
        line = ""
        for ch in para:
            if font.getlength(line + ch) <= width:
                line += ch
                continue
            cut = line.rfind(" ") if ch != " " and line[-1:].isascii() else -1
            if cut > 0 and line[cut + 1 :].isascii():  # carry the unfinished word over
                out.append(line[:cut].rstrip())
                line = line[cut + 1 :] + ch
            else:
                out.append(line.rstrip())
                line = ch.lstrip()
        out.append(line.rstrip())
    if len(out) > lines:
        last = out[lines - 1]
        while last and font.getlength(last + "…") > width:
            last = last[:-1]
        out = [*out[: lines - 1], last + "…"]
    return out


def render(spec: PosterSpec) -> bytes:
    """The poster as PNG bytes (not cached: see `poster`)."""
    if not spec.name.strip():
        raise InvalidParameter("name: empty")
    if len(spec.copy) > 300:
        raise InvalidParameter("copy: at most 300 characters")
    img = _background(spec.background)
    draw = ImageDraw.Draw(img)
    # A white card at the bottom holds the name, the copy and the QR code.
    card_top = HEIGHT - 560
    draw.rounded_rectangle([40, card_top, WIDTH - 40, HEIGHT - 40], radius=28, fill="white")
    y = card_top + 36
    if spec.avatar is not None:
        avatar = ImageOps.fit(_image(spec.avatar, "avatar"), (AVATAR_SIZE, AVATAR_SIZE))
        mask = Image.new("L", (AVATAR_SIZE, AVATAR_SIZE), 0)
        ImageDraw.Draw(mask).ellipse([0, 0, AVATAR_SIZE - 1, AVATAR_SIZE - 1], fill=255)
        img.paste(avatar, (80, y), mask)
        name_x = 80 + AVATAR_SIZE + 24
    else:
        name_x = 80
    draw.text((name_x, y + 20), spec.name.strip()[:20], font=cjk_font(44), fill="#1c2430")
    draw.text((name_x, y + 80), "邀请你加入", font=cjk_font(28), fill="#55606e")
    # The copy fills the column left of the QR code (so long copy never runs under it).
    qr_x, qr_y = WIDTH - 80 - QR_SIZE, HEIGHT - 80 - QR_SIZE
    copy_y = y + AVATAR_SIZE + 28
    column = qr_x - 24 - 80
    for i, line in enumerate(wrap(spec.copy, cjk_font(COPY_FONT), column, COPY_LINES)):
        draw.text((80, copy_y + i * COPY_LINE), line, font=cjk_font(COPY_FONT), fill="#1c2430")
    img.paste(_qr(spec.qr_url), (qr_x, qr_y))
    hint, hint_font = "长按识别二维码", cjk_font(22)
    hint_x = qr_x + (QR_SIZE - hint_font.getlength(hint)) / 2
    draw.text((hint_x, qr_y + QR_SIZE + 2), hint, font=hint_font, fill="#55606e")
    out = io.BytesIO()
    img.save(out, format="PNG", optimize=False, compress_level=6)
    return out.getvalue()


def cache_dir() -> Path:
    return get_settings().data_dir / "posters"


def poster(spec: PosterSpec) -> bytes:
    """The poster, rendered once per distinct content and then read from the disk cache."""
    path = cache_dir() / f"{spec.key()}.png"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    data = render(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)  # whole or not at all, even with two renderers at once
    return data
