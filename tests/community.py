"""Helpers to describe a small community as events and ask reports about it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, select

from quanzi.analytics.service import run_report
from quanzi.core.events.service import IngestReport, ingest_lines
from quanzi.core.members.models import InviteFlag, Member
from quanzi.core.members.service import flag_invite_fraud
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import session_scope

# A copy of shared/contracts/examples (the binding worked example); test_worked_example checks
# that the copy still equals shared/ when shared/ sits beside the repository.
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "contracts"
SHARED_EXAMPLES = Path(__file__).resolve().parents[2] / "shared" / "contracts" / "examples"


def line(**event: Any) -> str:
    return json.dumps(event, ensure_ascii=False)


class Community:
    """A workspace fed with events, asked for reports."""

    def __init__(self, engine: Engine, workspace: str = "default") -> None:
        self.engine = engine
        self.name = workspace
        with session_scope(engine) as s:
            self.ws_id = get_or_create_workspace(s, workspace).id
        self._n = 0

    def ingest(self, lines: list[str] | list[bytes], strict: bool = False) -> IngestReport:
        return ingest_lines(self.engine, self.ws_id, lines, strict=strict)

    def add(
        self, type: str, ts: Any, platform: str = "wecom", id: str | None = None, **fields: Any
    ) -> str:
        """Ingest one event (ids are generated in order unless given); returns its id."""
        self._n += 1
        eid = id or f"ev{self._n:05d}"
        rep = self.ingest([line(id=eid, type=type, ts=ts, platform=platform, **fields)])
        assert not rep.refused, rep.refused
        return eid

    def report(
        self, name: str, fraud_flagged: list[str] | None = None, **params: Any
    ) -> dict[str, Any]:
        with session_scope(self.engine) as s:
            from quanzi.core.workspaces.models import Workspace

            ws = s.get(Workspace, self.ws_id)
            assert ws is not None
            if fraud_flagged is not None:
                s.execute(delete(InviteFlag).where(InviteFlag.workspace_id == self.ws_id))
                for key in fraud_flagged:
                    platform = s.scalar(
                        select(Member.platform).where(
                            Member.workspace_id == self.ws_id, Member.member_key == key
                        )
                    )
                    flag_invite_fraud(s, self.ws_id, platform or "wecom", key)
            raw = {k.rstrip("_"): (None if v is None else str(v)) for k, v in params.items()}
            return run_report(s, ws, name, raw)


def worked_lines() -> list[str]:
    return (EXAMPLES / "worked.jsonl").read_text(encoding="utf-8").splitlines()


def worked_cases() -> list[dict[str, Any]]:
    return json.loads((EXAMPLES / "worked_expected.json").read_text(encoding="utf-8"))["cases"]
