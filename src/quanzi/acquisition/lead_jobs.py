"""Background linking of leads to members by phone (lead_links.py).

- After an ingest that brought phone numbers: `quanzi.jobs.tasks.new_phones` (queued by the
  ingest after its commit) runs `link_workspace_leads`, registered here.
- Every LINK_MINUTES minutes, every workspace with leads (the safety net: a lost job, an
  erasure that cleared a member's phone, an ingest in a process without a queue).
"""

from __future__ import annotations

from typing import Any

from huey import crontab  # type: ignore[import-untyped]
from sqlalchemy import Engine, select

from quanzi.acquisition.lead_links import link_leads
from quanzi.acquisition.models import Lead
from quanzi.db.engine import get_engine, session_scope
from quanzi.jobs.queue import huey
from quanzi.jobs.tasks import PHONE_FOLLOWUPS

LINK_MINUTES = 10


def link_workspace_leads(workspace_id: int, engine: Engine | None = None) -> int:
    """Link the workspace's leads by phone now; how many were linked."""
    with session_scope(engine or get_engine()) as s:
        return link_leads(s, workspace_id)


def link_all_leads(engine: Engine | None = None) -> dict[int, int]:
    """{workspace id: leads linked} for every workspace that has leads."""
    engine = engine or get_engine()
    with session_scope(engine, read_only=True) as s:
        workspaces = list(s.scalars(select(Lead.workspace_id).distinct()))
    return {ws: link_workspace_leads(ws, engine) for ws in sorted(workspaces)}


if link_workspace_leads not in PHONE_FOLLOWUPS:
    PHONE_FOLLOWUPS.append(link_workspace_leads)


@huey.periodic_task(crontab(minute=f"*/{LINK_MINUTES}"), name="link_leads")  # type: ignore[untyped-decorator]
def link_leads_periodically() -> dict[str, Any]:
    """Every LINK_MINUTES minutes: link (and re-check) every workspace's leads by phone."""
    done = link_all_leads()
    return {"workspaces": len(done), "linked": sum(done.values())}
