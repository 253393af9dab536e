"""WeCom sync tests: the stand-in (tests/wecom_standin) importable as `standin`."""

from __future__ import annotations

import sys
from pathlib import Path

STANDIN_DIR = str(Path(__file__).resolve().parent.parent / "wecom_standin")
if STANDIN_DIR not in sys.path:
    sys.path.insert(0, STANDIN_DIR)
