"""Share posters: Chinese text really drawn, the member's QR code in place, cached once."""

from __future__ import annotations

import io
import os

import pytest
import segno
from PIL import Image, ImageChops

from quanzi.acquisition import posters
from quanzi.acquisition.posters import HEIGHT, QR_SIZE, WIDTH, PosterSpec, member_state
from quanzi.kit.errors import InvalidParameter

HAVE_FONT = any(os.path.exists(p) for p in posters.FONT_PATHS)
needs_font = pytest.mark.skipif(
    not HAVE_FONT and os.environ.get("CI") != "true",
    reason="Debian's fonts-noto-cjk is not installed (scripts/test installs it)",
)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def _open(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


@needs_font
def test_chinese_names_are_drawn_as_glyphs_not_boxes() -> None:
    a = _open(
        posters.render(PosterSpec("张三", "扫码进群，领取育儿资料包", "https://q.test/c/ab?m=m1"))
    )
    b = _open(
        posters.render(PosterSpec("李四", "扫码进群，领取育儿资料包", "https://q.test/c/ab?m=m1"))
    )
    assert a.size == (WIDTH, HEIGHT)
    # Missing glyphs would draw the same box for both names; real glyphs differ.
    assert ImageChops.difference(a, b).getbbox() is not None


@needs_font
def test_the_qr_code_carries_the_members_state() -> None:
    url = f"https://q.test/c/ab?m={member_state(1234)}"
    img = _open(posters.render(PosterSpec("王小花", "一起读书", url)))
    box = (WIDTH - 80 - QR_SIZE, HEIGHT - 80 - QR_SIZE, WIDTH - 80, HEIGHT - 80)
    expected = _open(_qr_png(url)).resize((QR_SIZE, QR_SIZE), Image.Resampling.NEAREST)
    assert ImageChops.difference(img.crop(box), expected).getbbox() is None
    assert member_state(1234) == "m:ya" and len(member_state(10**12)) <= 30


def _qr_png(url: str) -> bytes:
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="png", scale=10, border=2)
    return buf.getvalue()


@needs_font
def test_backgrounds_and_avatars_are_fitted(tmp_path: object) -> None:
    background = _png(Image.new("RGB", (300, 2000), "#ff0000"))
    avatar = _png(Image.new("RGB", (50, 80), "#00ff00"))
    img = _open(posters.render(PosterSpec("Amy", "hello", "https://q.test", background, avatar)))
    assert img.size == (WIDTH, HEIGHT)
    assert img.getpixel((10, 10)) == (255, 0, 0)  # the operator's background, fitted
    assert img.getpixel((80 + 64, HEIGHT - 560 + 36 + 64)) == (0, 255, 0)  # the avatar


@needs_font
def test_posters_are_rendered_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = posters.render
    monkeypatch.setattr(posters, "render", lambda spec: calls.append(spec) or real(spec))
    spec = PosterSpec("张三", "欢迎", "https://q.test/c/x?m=m1")
    first = posters.poster(spec)
    assert posters.poster(spec) == first and len(calls) == 1
    posters.poster(PosterSpec("张三", "欢迎!", "https://q.test/c/x?m=m1"))
    assert len(calls) == 2


def test_bad_input_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidParameter, match="background"):
        posters.render(PosterSpec("a", "b", "https://q.test", background=b"not an image"))
    with pytest.raises(InvalidParameter, match="name"):
        posters.render(PosterSpec("  ", "b", "https://q.test"))
    with pytest.raises(InvalidParameter, match="copy"):
        posters.render(PosterSpec("a", "x" * 301, "https://q.test"))
