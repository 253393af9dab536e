"""bench/ingest.py runs end to end at a tiny size (no timing is asserted: see bench/README.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUANZI_")}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ingest.py"), "--members", "150", "--groups", "12",
         "--runs", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for label in (
        "(a) baseline",
        "(b) quanzi ingest",
        "ratio to baseline",
        "peak RSS",
        "report funnel",
    ):
        assert label in proc.stdout
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["refused"] == 0
    assert results["applied"] == results["events"] > 500
    assert results["peak_rss_mb"] > 10
    assert set(results["reports_ms"]) >= {
        "overview",
        "groups",
        "invites",
        "retention",
        "lifecycle",
        "funnel",
        "channels",
    }
