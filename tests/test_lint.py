"""Lint and types are part of the suite (STYLE.md): ruff on everything, mypy --strict on src/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        found = shutil.which(name)
        if found is None:
            pytest.fail(f"{name} is not installed: it is in the project's test extras")
        return found
    return str(path)


@pytest.mark.parametrize(
    "args",
    [["check", "src", "tests", "bench"], ["format", "--check", "src", "tests", "bench"]],
    ids=["ruff-check", "ruff-format"],
)
def test_ruff(args: list[str]) -> None:
    res = subprocess.run(
        [_tool("ruff"), *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr


def test_mypy_strict() -> None:
    res = subprocess.run(
        [_tool("mypy"), "--no-incremental"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
