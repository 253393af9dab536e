"""Share posters per second: rendered (cold) and served from the cache (warm), next to a
baseline of Pillow encoding a blank poster-sized PNG in the same run. See bench/README.md."""

from __future__ import annotations

import io
import os
import statistics
import sys
import tempfile
import time

from PIL import Image


def main() -> int:
    os.environ.setdefault("QUANZI_DATA_DIR", tempfile.mkdtemp(prefix="quanzi-posters-"))
    from quanzi.acquisition import posters
    from quanzi.acquisition.posters import HEIGHT, WIDTH, PosterSpec, member_state

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    specs = [
        PosterSpec(
            f"会员{i}",
            "扫码进群，领取 0-3 岁育儿资料包",
            f"https://q.test/c/ab?m={member_state(i)}",
        )
        for i in range(n)
    ]

    def rate(call: object, items: list[object]) -> float:
        began = time.perf_counter()
        for item in items:
            call(item)  # type: ignore[operator]
        return len(items) / (time.perf_counter() - began)

    def blank(_i: object) -> bytes:
        buf = io.BytesIO()
        Image.new("RGB", (WIDTH, HEIGHT), "#0b5cad").save(buf, format="PNG", compress_level=6)
        return buf.getvalue()

    baseline = statistics.median(rate(blank, list(range(n))) for _ in range(3))
    cold = rate(posters.poster, list(specs))
    warm = statistics.median(rate(posters.poster, list(specs)) for _ in range(3))
    print("| what | posters/s | baseline: blank PNG encode/s | ratio |")
    print("| --- | --- | --- | --- |")
    print(f"| rendered (cold cache) | {cold:,.1f} | {baseline:,.1f} | {cold / baseline:.2f} |")
    print(f"| from the cache (warm) | {warm:,.1f} | {baseline:,.1f} | {warm / baseline:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
