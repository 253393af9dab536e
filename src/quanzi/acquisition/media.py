"""Uploaded images (banners, check-in screenshots, group QR codes, poster backgrounds,
avatars): checked, re-encoded with Pillow, resized to fit their purpose and kept once per
workspace, served at /m/<id>-<sha8>.<ext>.

Re-encoding is the point: whatever was uploaded (a 12 MP phone photo with GPS in its EXIF, an
animated GIF, a CMYK JPEG), what is stored and served is a plain JPEG or PNG of a sensible size
with no metadata, so a landing page stays light and leaks nothing about the operator's phone.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from typing import Any

from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

from quanzi.acquisition.models import Media
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
# Decoded size refused before any pixel is decoded: 40 MP is far beyond any phone camera's
# useful output and keeps a decompression bomb from costing more than ~160 MB of memory.
MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "BMP")
# The largest stored size per purpose (width, height); images are fitted inside, never enlarged.
MAX_BOX: dict[str, tuple[int, int]] = {
    "banner": (1080, 1440),
    "proof": (1080, 1920),
    "qr": (600, 600),
    "poster": (750, 1334),
    "avatar": (256, 256),
}
PURPOSES = tuple(MAX_BOX)
JPEG_QUALITY = 82
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png"}
MEDIA_NAME_RE = re.compile(r"^([1-9][0-9]{0,11})-([0-9a-f]{8})\.(jpg|png)$")


def _decode(data: bytes) -> Image.Image:
    """The first frame, decoded, or InvalidParameter saying why not."""
    if not data:
        raise InvalidParameter("image: the file is empty")
    if len(data) > MAX_UPLOAD_BYTES:
        raise InvalidParameter(
            f"image: {len(data) / 1048576:.1f} MB is too large (at most 10 MB per file)"
        )
    with warnings.catch_warnings():
        # Pillow only warns between its own two thresholds; any bomb here is an error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
            width, height = img.size
            if width < 1 or height < 1 or width * height > MAX_PIXELS:
                raise InvalidParameter(
                    f"image: {width}×{height} pixels is too large (at most 40 megapixels)"
                )
            img.seek(0)  # an animated GIF/WebP keeps its first frame
            img.load()
        except InvalidParameter:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise InvalidParameter("image: too many pixels (at most 40 megapixels)") from None
        except UnidentifiedImageError:
            raise InvalidParameter("image: not a JPEG, PNG, GIF, WebP or BMP image") from None
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise InvalidParameter(f"image: the file is damaged or truncated ({exc})") from None
    return img


def _to_srgb(img: Image.Image) -> Image.Image:
    """Pixels in sRGB, so dropping the ICC profile (metadata) does not shift the colours."""
    icc = img.info.get("icc_profile")
    if not icc or img.mode not in ("RGB", "RGBA"):
        return img
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        dst = ImageCms.createProfile("sRGB")
        converted = ImageCms.profileToProfile(img, src, dst, outputMode=img.mode)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return img  # a broken profile: keep the pixels as they are
    return converted if converted is not None else img


def _normal_mode(img: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is really transparent."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        img = img.convert("I")
        high = img.getextrema()[1]
        if isinstance(high, (int, float)) and high > 255:
            scale = 255 / high
            img = img.point(lambda v: v * scale)
        img = img.convert("L")
    if img.mode == "CMYK":
        img = img.convert("RGB")
    has_alpha = img.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
    img = img.convert("RGBA" if has_alpha else "RGB")
    if has_alpha:
        low = img.getchannel("A").getextrema()[0]
        if isinstance(low, int) and low == 255:  # an alpha channel with nothing transparent
            img = img.convert("RGB")
    return img


def encode_image(data: bytes, purpose: str) -> tuple[bytes, str, int, int]:
    """(stored bytes, content type, width, height) of an upload, or InvalidParameter."""
    if purpose not in MAX_BOX:
        raise InvalidParameter(f"purpose: one of {', '.join(PURPOSES)}")
    img = _decode(data)
    try:
        img = ImageOps.exif_transpose(img)
    except (OSError, ValueError, SyntaxError):
        pass  # unreadable EXIF: the orientation stays as stored
    icc = img.info.get("icc_profile")
    img = _normal_mode(img)
    if icc:
        img.info["icc_profile"] = icc
        img = _to_srgb(img)
    img.thumbnail(MAX_BOX[purpose], Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # Saving without exif=/icc_profile=/pnginfo= keeps no metadata at all.
    if img.mode == "RGBA":
        img.save(out, format="PNG", optimize=True)
        content_type = "image/png"
    else:
        img.save(out, format="JPEG", quality=JPEG_QUALITY, progressive=True, optimize=True)
        content_type = "image/jpeg"
    return out.getvalue(), content_type, img.width, img.height


def _clean_name(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return (base or "image")[:100]


def store_image(
    session: Session, ws_id: int, data: bytes, *, name: str, purpose: str, by: str | None
) -> Media:
    """Check, re-encode and keep an uploaded image; the same stored bytes in a workspace are
    kept once (the existing row is returned). Raises InvalidParameter saying what was wrong."""
    stored, content_type, width, height = encode_image(data, purpose)
    sha = hashlib.sha256(stored).hexdigest()
    existing = session.scalar(select(Media).where(Media.workspace_id == ws_id, Media.sha256 == sha))
    if existing is not None:
        return existing
    media = Media(
        workspace_id=ws_id,
        sha256=sha,
        name=_clean_name(name),
        purpose=purpose,
        content_type=content_type,
        width=width,
        height=height,
        size=len(stored),
        original_size=len(data),
        data=stored,
        created_by=by,
        created_at_us=now_us(),
    )
    try:
        with session.begin_nested():
            session.add(media)
    except IntegrityError:  # the same image uploaded at the same instant elsewhere
        found = session.scalar(
            select(Media).where(Media.workspace_id == ws_id, Media.sha256 == sha)
        )
        if found is None:
            raise
        return found
    return media


def media_url(media: Media) -> str:
    """The image's site-relative URL; the hash prefix makes it immutable (a new image, a new
    URL), so it is cached for ever."""
    return f"/m/{media.id}-{media.sha256[:8]}.{EXTENSIONS[media.content_type]}"


def load_media(session: Session, ws_id: int, media_id: int) -> Media:
    media = session.get(Media, media_id)
    if media is None or media.workspace_id != ws_id:
        raise NotFound(f"image {media_id} does not exist")
    return media


def list_media(session: Session, ws_id: int, purpose: str | None = None) -> list[Media]:
    """The workspace's images, newest first (optionally of one purpose)."""
    if purpose is not None and purpose not in MAX_BOX:
        raise InvalidParameter(f"purpose: one of {', '.join(PURPOSES)}")
    query = select(Media).where(Media.workspace_id == ws_id).options(defer(Media.data))
    if purpose is not None:
        query = query.where(Media.purpose == purpose)
    return list(session.scalars(query.order_by(Media.id.desc())))


def media_by_name(session: Session, name: str) -> tuple[bytes, str] | None:
    """(bytes, content type) for a public /m/<name>, or None when the name does not match an
    image exactly (id, hash prefix and extension)."""
    m = MEDIA_NAME_RE.match(name)
    if m is None:
        return None
    row: Any = session.execute(
        select(Media.data, Media.content_type, Media.sha256).where(Media.id == int(m.group(1)))
    ).first()
    if row is None or not row.sha256.startswith(m.group(2)):
        return None
    if EXTENSIONS.get(row.content_type) != m.group(3):
        return None
    return bytes(row.data), str(row.content_type)
