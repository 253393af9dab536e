"""Every report of contracts/metrics.md on the hand-worked example, in any order of its lines."""

from __future__ import annotations

import random
from typing import Any

import pytest
from community import EXAMPLES, SHARED_EXAMPLES, Community, worked_cases, worked_lines
from sqlalchemy import Engine

CASES = worked_cases()


def _case_id(case: dict[str, Any]) -> str:
    p = case["params"]
    bits = [case["report"], *(f"{k}={v}" for k, v in p.items() if k != "fraud_flagged")]
    if p.get("fraud_flagged"):
        bits.append("fraud=" + "+".join(p["fraud_flagged"]))
    return ",".join(bits)


def test_fixture_copy_matches_shared() -> None:
    if not SHARED_EXAMPLES.exists():
        pytest.skip("shared/ is not beside the repository")
    for name in ("worked.jsonl", "worked_expected.json"):
        assert (EXAMPLES / name).read_bytes() == (SHARED_EXAMPLES / name).read_bytes()


@pytest.fixture
def worked(engine: Engine) -> Community:
    c = Community(engine)
    rep = c.ingest(worked_lines())
    assert rep.refused == []
    assert rep.applied == 51
    assert rep.duplicates == 2  # m02 again, and t11 with different content
    assert [n for n, _ in rep.warnings] == [53]
    return c


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_worked_case(worked: Community, case: dict[str, Any]) -> None:
    params = dict(case["params"])
    flagged = params.pop("fraud_flagged", [])
    assert worked.report(case["report"], fraud_flagged=flagged, **params) == case["answer"]


def _shuffled(seed: int) -> list[list[str]]:
    """The worked lines shuffled and split into 1-5 parts. The two lines with id t11 keep their
    relative order: with the same id and different content, the first stored wins (events.md
    rule 6), so their order is the one thing that may change the answer."""
    lines = worked_lines()
    rng = random.Random(seed)
    rng.shuffle(lines)
    t11 = [i for i, ln in enumerate(lines) if '"id":"t11"' in ln]
    first = [ln for ln in worked_lines() if '"id":"t11"' in ln]
    for i, ln in zip(t11, first, strict=True):
        lines[i] = ln
    parts = rng.randint(1, 5)
    cuts = sorted(rng.sample(range(1, len(lines)), parts - 1))
    return [lines[a:b] for a, b in zip([0, *cuts], [*cuts, len(lines)], strict=True)]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_any_order_same_answers(engine: Engine, seed: int) -> None:
    c = Community(engine)
    for part in _shuffled(seed):
        assert c.ingest(part).refused == []
    for case in CASES:
        params = dict(case["params"])
        flagged = params.pop("fraud_flagged", [])
        assert c.report(case["report"], fraud_flagged=flagged, **params) == case["answer"], (
            _case_id(case)
        )


def test_resending_changes_nothing(worked: Community) -> None:
    before = [
        worked.report(c["report"], **{k: v for k, v in c["params"].items() if k != "fraud_flagged"})
        for c in CASES
    ]
    again = worked.ingest(worked_lines())
    assert (again.applied, again.duplicates) == (0, 53)
    after = [
        worked.report(c["report"], **{k: v for k, v in c["params"].items() if k != "fraud_flagged"})
        for c in CASES
    ]
    assert after == before
