"""WeCom sync tests: the stand-in (tests/wecom_standin) importable as `standin`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

STANDIN_DIR = str(Path(__file__).resolve().parent.parent / "wecom_standin")
if STANDIN_DIR not in sys.path:
    sys.path.insert(0, STANDIN_DIR)


@pytest.fixture
def corp() -> object:
    """A small corp: 3 staff, 120 customers, 6 groups."""
    from standin import build_scenario

    return build_scenario(groups=6, customers=120, staff=3)


@pytest.fixture
def wecom(corp: object) -> Iterator[object]:
    """The stand-in serving `corp` on loopback."""
    from standin import StandIn

    with StandIn(corp) as server:  # type: ignore[arg-type]
        yield server
