"""Background tasks of the connectors: run an action, sweep the due ones."""

from __future__ import annotations

from typing import Any

from huey import crontab  # type: ignore[import-untyped]

from quanzi.connectors import actions
from quanzi.db.engine import get_engine
from quanzi.jobs.queue import huey


@huey.task(name="run_connector_action")  # type: ignore[untyped-decorator]
def run_connector_action(action_id: int) -> dict[str, Any]:
    """Run one action if it is still ours to run (the claim makes a second run a no-op)."""
    outcome = actions.run_action(get_engine(), action_id)
    return {"action_id": outcome.action_id, "state": outcome.state, "attempts": outcome.attempts}


@huey.periodic_task(crontab(minute="*"), name="sweep_connector_actions")  # type: ignore[untyped-decorator]
def sweep_connector_actions() -> dict[str, int]:
    """Every minute: retries that are due, actions whose job was lost, interrupted runs."""
    outcomes = actions.sweep_due(get_engine())
    return {"ran": len(outcomes)}
