"""API token authentication: `Authorization: Bearer <token>` names one workspace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from quanzi.core.workspaces.service import workspace_for_token
from quanzi.db.engine import session_scope

# Declares the scheme in OpenAPI; the checks (and their 401s) are ours.
bearer_scheme = HTTPBearer(
    auto_error=False,
    description="An API token of one workspace: `quanzi token create --workspace NAME`.",
)

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quanzi"'}
BAD_TOKEN_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="quanzi", error="invalid_token"'}


@dataclass(frozen=True)
class WorkspaceRef:
    """The workspace a request acts for (ids, not ORM objects, cross the thread boundary)."""

    id: int
    name: str
    timezone: str


def request_engine(request: Request) -> Engine:
    """The engine the app was created with."""
    engine: Engine = request.app.state.engine
    return engine


def current_workspace(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> WorkspaceRef:
    """The token's workspace, or 401 with a challenge saying what was wrong."""
    if credentials is None:
        raise HTTPException(
            status_code=401,
            detail="missing API token: send 'Authorization: Bearer <token>' "
            "(create one with `quanzi token create --workspace NAME`)",
            headers=CHALLENGE,
        )
    with session_scope(request_engine(request), read_only=True) as session:
        ws = workspace_for_token(session, credentials.credentials)
        if ws is None:
            raise HTTPException(
                status_code=401,
                detail="invalid or revoked API token",
                headers=BAD_TOKEN_CHALLENGE,
            )
        return WorkspaceRef(id=ws.id, name=ws.name, timezone=ws.timezone)


CurrentWorkspace = Annotated[WorkspaceRef, Depends(current_workspace)]
