"""HTTP API of the reports: GET /api/v1/reports/{name} (contracts/metrics.md shapes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from quanzi.analytics.params import MAX_HOLD_HOURS, MAX_WEEKS
from quanzi.analytics.service import REPORT_NAMES, run_report
from quanzi.core.events.endpoints import ErrorDetail
from quanzi.core.workspaces.service import get_workspace
from quanzi.db.engine import session_scope
from quanzi.web.auth import CurrentWorkspace, request_engine

router = APIRouter(prefix="/api/v1", tags=["reports"])

_DATE = {"format": "date"}


@router.get(
    "/reports/{name}",
    summary="One report of contracts/metrics.md",
    description="The same numbers as `quanzi report NAME --json`, for the token's workspace. "
    "Days are the workspace's local days; parameters a report does not use are ignored.",
    responses={
        200: {"content": {"application/json": {"schema": {"type": "object"}}}},
        400: {
            "model": ErrorDetail,
            "description": "A parameter is invalid (the message says which)",
        },
        401: {"model": ErrorDetail, "description": "Missing, invalid or revoked API token"},
        404: {"model": ErrorDetail, "description": "No report of that name"},
    },
)
def get_report(
    request: Request,
    workspace: CurrentWorkspace,
    name: Annotated[
        str, Path(description="Report name.", json_schema_extra={"enum": list(REPORT_NAMES)})
    ],
    date: Annotated[
        str | None,
        Query(
            description="Day (YYYY-MM-DD) for overview and groups; default yesterday.",
            json_schema_extra=_DATE,
        ),
    ] = None,
    from_: Annotated[
        str | None,
        Query(
            alias="from",
            description="First day of the window, inclusive; default to − 29 days.",
            json_schema_extra=_DATE,
        ),
    ] = None,
    to: Annotated[
        str | None,
        Query(
            description="Last day of the window, inclusive; default yesterday.",
            json_schema_extra=_DATE,
        ),
    ] = None,
    hold_hours: Annotated[
        int | None,
        Query(ge=0, le=MAX_HOLD_HOURS, description="Hold window of a valid invite, hours (72)."),
    ] = None,
    as_of: Annotated[
        str | None,
        Query(
            description="Instant at which hold windows and complete weeks are judged: RFC 3339, "
            "a date, or Unix seconds; default now."
        ),
    ] = None,
    kind: Annotated[
        str | None,
        Query(
            description="Retention kind (activity).",
            json_schema_extra={"enum": ["activity", "membership"]},
        ),
    ] = None,
    weeks: Annotated[
        int | None, Query(ge=1, le=MAX_WEEKS, description="Retention weeks per cohort (8).")
    ] = None,
) -> dict[str, Any]:
    params = {
        "date": date,
        "from": from_,
        "to": to,
        "hold_hours": hold_hours,
        "as_of": as_of,
        "kind": kind,
        "weeks": weeks,
    }
    with session_scope(request_engine(request), read_only=True) as session:
        return run_report(session, get_workspace(session, workspace.name), name, params)
