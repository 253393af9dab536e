"""Helpers for the console's analytics tests: reports of a Community limited to some groups."""

from __future__ import annotations

from typing import Any

from community import Community
from sqlalchemy import select

from quanzi.analytics.service import run_report
from quanzi.core.groups.models import Group
from quanzi.core.workspaces.models import Workspace
from quanzi.db.engine import session_scope


def group_ids(c: Community, *keys: str, platform: str = "wecom") -> frozenset[int]:
    """Group.id values of the given group ids (all of the workspace's groups when none)."""
    with session_scope(c.engine) as s:
        q = select(Group.id).where(Group.workspace_id == c.ws_id)
        if keys:
            q = q.where(Group.group_key.in_(keys), Group.platform == platform)
        return frozenset(int(g) for g in s.scalars(q))


def scoped_report(
    c: Community, name: str, scope: frozenset[int] | None, **params: Any
) -> dict[str, Any]:
    with session_scope(c.engine) as s:
        ws = s.get(Workspace, c.ws_id)
        assert ws is not None
        raw = {k.rstrip("_"): (None if v is None else str(v)) for k, v in params.items()}
        return run_report(s, ws, name, raw, group_ids=scope)
