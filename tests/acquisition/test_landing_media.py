"""Uploaded images: re-encoded, resized to their purpose, metadata stripped, kept once per
workspace; garbage, bombs and oversize files refused with nothing stored; served immutable."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import Engine, func, select

from quanzi.acquisition import media
from quanzi.acquisition.models import Media
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.web.app import create_app


def _photo(width: int = 3000, height: int = 2000, *, exif: Image.Exif | None = None) -> bytes:
    """A phone-photo-like JPEG: noise over gradients, so it does not compress to nothing."""
    noise = Image.effect_noise((width, height), 40)
    grad = Image.linear_gradient("L").resize((width, height))
    img = Image.merge("RGB", (noise, grad, grad.transpose(Image.Transpose.FLIP_LEFT_RIGHT)))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95, **({"exif": exif} if exif is not None else {}))
    return out.getvalue()


def _png(img: Image.Image) -> bytes:
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def _bomb(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels."""
    data = bytearray(_png(Image.new("L", (1, 1))))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def _count(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as s:
        return int(s.scalar(select(func.count()).select_from(Media)) or 0)


@pytest.fixture
def ws_id(engine: Engine) -> int:
    with session_scope(engine) as s:
        return get_or_create_workspace(s, "default").id


def test_a_big_photo_is_stored_resized_smaller_and_without_exif(engine: Engine, ws_id: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x0131] = "SecretCam 1.0"  # Software
    upload = _photo(exif=exif)
    assert len(upload) > 1_000_000
    with session_scope(engine) as s:
        m = media.store_image(
            s, ws_id, upload, name="C:\\photos\\IMG_0001.JPG", purpose="banner", by="o@x"
        )
        stored, url = bytes(m.data), media.media_url(m)
        assert m.name == "IMG_0001.JPG" and m.content_type == "image/jpeg"
        assert m.original_size == len(upload) and m.size == len(stored)
    assert len(stored) < len(upload) // 10
    img = Image.open(io.BytesIO(stored))
    # The orientation was applied (3000×2000 displayed upright is 2000×3000), then fitted
    # into the banner's 1080×1440 box.
    assert img.format == "JPEG" and img.size == (960, 1440)
    assert not img.getexif() and "exif" not in img.info and "icc_profile" not in img.info
    assert b"PhoneMaker" not in stored and b"SecretCam" not in stored
    assert img.info.get("progressive") or img.info.get("progression")
    assert url.startswith("/m/") and url.endswith(".jpg")


def test_transparency_stays_png_and_an_opaque_alpha_becomes_jpeg(
    engine: Engine, ws_id: int
) -> None:
    logo = Image.new("RGBA", (800, 800), (0, 0, 0, 0))
    logo.paste((220, 30, 30, 255), (100, 100, 700, 700))
    opaque = Image.new("RGBA", (300, 300), (10, 200, 10, 255))
    with session_scope(engine) as s:
        qr = media.store_image(s, ws_id, _png(logo), name="logo.png", purpose="qr", by=None)
        flat = media.store_image(s, ws_id, _png(opaque), name="flat.png", purpose="qr", by=None)
        assert (qr.content_type, qr.width, qr.height) == ("image/png", 600, 600)
        assert media.media_url(qr).endswith(".png")
        assert Image.open(io.BytesIO(qr.data)).getpixel((0, 0))[3] == 0  # type: ignore[index]
        assert flat.content_type == "image/jpeg" and (flat.width, flat.height) == (300, 300)


def test_odd_modes_and_animation_are_normalised(engine: Engine, ws_id: int) -> None:
    frames = [Image.new("P", (120, 80), i) for i in (1, 2, 3)]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    cmyk = io.BytesIO()
    Image.new("CMYK", (64, 64), (0, 255, 255, 0)).save(cmyk, "JPEG")
    deep = Image.new("I;16", (50, 40))
    deep.putpixel((0, 0), 65535)
    with session_scope(engine) as s:
        a = media.store_image(s, ws_id, gif.getvalue(), name="a.gif", purpose="proof", by=None)
        b = media.store_image(s, ws_id, cmyk.getvalue(), name="b.jpg", purpose="proof", by=None)
        c = media.store_image(s, ws_id, _png(deep), name="c.png", purpose="avatar", by=None)
        for m in (a, b, c):
            img = Image.open(io.BytesIO(m.data))
            assert img.mode == "RGB" and img.format == "JPEG"
        assert (a.width, a.height) == (120, 80)
        red = Image.open(io.BytesIO(b.data)).getpixel((32, 32))
        assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60
        bright = Image.open(io.BytesIO(c.data)).getpixel((0, 0))
        assert isinstance(bright, tuple) and min(bright) > 200  # 16-bit white stays white


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "not a JPEG"),
        (b"%PDF-1.4 hello", "not a JPEG"),
        (_bomb(10_000, 10_000), "40 megapixels"),
        (_bomb(60_000, 60_000), "40 megapixels"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "JPEG"),
        (_photo(400, 300)[:2000], "damaged or truncated"),
        (b"\xff\xd8" + b"x" * (10 * 1024 * 1024), "at most 10 MB"),
    ],
)
def test_garbage_is_refused_and_nothing_is_stored(
    engine: Engine, ws_id: int, data: bytes, message: str
) -> None:
    with pytest.raises(InvalidParameter, match=message), session_scope(engine) as s:
        media.store_image(s, ws_id, data, name="x", purpose="banner", by=None)
    assert _count(engine) == 0


def test_a_bad_purpose_is_refused(engine: Engine, ws_id: int) -> None:
    with pytest.raises(InvalidParameter, match="purpose"), session_scope(engine) as s:
        media.store_image(s, ws_id, _png(Image.new("RGB", (9, 9))), name="x", purpose="x", by=None)
    assert _count(engine) == 0


def test_the_same_image_is_kept_once_per_workspace(engine: Engine, ws_id: int) -> None:
    data = _png(Image.new("RGB", (40, 40), (1, 2, 3)))
    with session_scope(engine) as s:
        other = get_or_create_workspace(s, "other").id
        first = media.store_image(s, ws_id, data, name="a.png", purpose="proof", by=None)
        again = media.store_image(s, ws_id, data, name="b.png", purpose="proof", by=None)
        theirs = media.store_image(s, other, data, name="a.png", purpose="proof", by=None)
        assert again.id == first.id and theirs.id != first.id
        assert [m.id for m in media.list_media(s, ws_id)] == [first.id]
        assert media.list_media(s, ws_id, "banner") == []
        assert media.load_media(s, ws_id, first.id).name == "a.png"
        with pytest.raises(NotFound):
            media.load_media(s, ws_id, theirs.id)
        with pytest.raises(InvalidParameter, match="purpose"):
            media.list_media(s, ws_id, "nope")


def test_images_are_served_immutable_and_only_by_their_exact_name(
    engine: Engine, ws_id: int
) -> None:
    with session_scope(engine) as s:
        m = media.store_image(s, ws_id, _photo(300, 200), name="p.jpg", purpose="proof", by=None)
        url, stored, sha = media.media_url(m), bytes(m.data), m.sha256
        png = media.media_url(
            media.store_image(
                s, ws_id, _png(Image.new("RGBA", (5, 5))), name="t.png", purpose="qr", by=None
            )
        )
    with TestClient(create_app(engine)) as client:
        r = client.get(url)
        assert r.status_code == 200 and r.content == stored
        assert r.headers["content-type"] == "image/jpeg"
        assert "immutable" in r.headers["cache-control"]
        assert r.headers["x-content-type-options"] == "nosniff"
        assert client.get(png).headers["content-type"] == "image/png"
        wrong_sha = url.replace(sha[:8], "0" * 8 if sha[:8] != "0" * 8 else "1" * 8)
        for bad in (wrong_sha, url.replace(".jpg", ".png"), "/m/999999-abcdef12.jpg", "/m/x.jpg"):
            assert client.get(bad).status_code == 404, bad
