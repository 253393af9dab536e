"""The reports of contracts/metrics.md; one implementation for CLI, API and console."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from quanzi.core.workspaces.models import Workspace

REPORT_NAMES = ("overview", "groups", "invites", "retention", "lifecycle", "funnel", "channels")


def run_report(session: Session, workspace: Workspace, name: str, raw_params: dict[str, Any]) -> dict[str, Any]:
    """Answer report `name` with parameters given as strings (date, from, to, hold_hours, as_of,
    kind, weeks; absent or None = default). Raises InvalidParameter with a clear message."""
    raise NotImplementedError  # being written in this change
