"""Workspaces and API tokens."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from quanzi.config import get_settings
from quanzi.core.workspaces.models import ApiToken, Workspace
from quanzi.kit.clock import now_us, zone
from quanzi.kit.crypto import WorkspaceKey, new_data_key, unwrap_data_key, wrap_data_key
from quanzi.kit.errors import InvalidParameter, NotFound

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
TOKEN_PREFIX = "qz_"


def validate_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidParameter(
            f"workspace name {name!r}: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


def get_workspace(session: Session, name: str) -> Workspace:
    ws = session.scalar(select(Workspace).where(Workspace.name == name))
    if ws is None:
        raise NotFound(f"workspace {name!r} does not exist")
    return ws


def get_or_create_workspace(session: Session, name: str, timezone: str | None = None) -> Workspace:
    """The workspace called `name`, created (with the default time zone) on first use."""
    validate_name(name)
    ws = session.scalar(select(Workspace).where(Workspace.name == name))
    if ws is not None:
        return ws
    tz = timezone or get_settings().default_timezone
    set_timezone_check(tz)
    try:
        with session.begin_nested():
            ws = Workspace(name=name, timezone=tz, created_at_us=now_us())
            session.add(ws)
    except IntegrityError:
        # Created by a concurrent process in the meantime.
        ws = session.scalar(select(Workspace).where(Workspace.name == name))
        assert ws is not None
    return ws


def set_timezone_check(tz: str) -> None:
    try:
        zone(tz)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise InvalidParameter(
            f"unknown time zone {tz!r} (use an IANA name such as Asia/Shanghai)"
        ) from exc


def delete_workspace(session: Session, name: str) -> bool:
    """Delete the workspace called `name` and everything in it (every table cascades from
    it); False when there is none."""
    ws = session.scalar(select(Workspace).where(Workspace.name == name))
    if ws is None:
        return False
    session.execute(delete(Workspace).where(Workspace.id == ws.id))
    return True


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(select(Workspace).order_by(Workspace.name)))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(session: Session, workspace: Workspace, name: str = "api") -> str:
    """A new API token for the workspace; the plain token is returned once and only its hash kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            workspace_id=workspace.id,
            name=name,
            prefix=token[:10],
            token_hash=_hash(token),
            created_at_us=now_us(),
        )
    )
    session.flush()
    return token


def workspace_for_token(session: Session, token: str) -> Workspace | None:
    """The workspace a (non-revoked) token belongs to, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _hash(token), ApiToken.revoked_at_us.is_(None)
        )
    )
    if row is None:
        return None
    return session.get(Workspace, row.workspace_id)


_KEYS: dict[tuple[int, str, str], WorkspaceKey] = {}


def workspace_key(conn: Connection | Session, workspace_id: int) -> WorkspaceKey:
    """The workspace's data key (made and stored, wrapped, on first use)."""
    secret = get_settings().resolved_secret_key()
    wrapped = conn.execute(
        select(Workspace.data_key_wrapped).where(Workspace.id == workspace_id)
    ).scalar()
    if wrapped is None:
        fresh = wrap_data_key(secret, new_data_key(), workspace_id)
        # Only the first writer's key is kept; a concurrent one re-reads it below.
        conn.execute(
            update(Workspace)
            .where(Workspace.id == workspace_id, Workspace.data_key_wrapped.is_(None))
            .values(data_key_wrapped=fresh)
            .execution_options(synchronize_session=False)
        )
        wrapped = conn.execute(
            select(Workspace.data_key_wrapped).where(Workspace.id == workspace_id)
        ).scalar()
        if wrapped is None:
            raise NotFound(f"workspace {workspace_id} does not exist")
    cache_key = (workspace_id, wrapped, hashlib.sha256(secret.encode()).hexdigest())
    key = _KEYS.get(cache_key)
    if key is None:
        key = WorkspaceKey(unwrap_data_key(secret, wrapped, workspace_id))
        _KEYS[cache_key] = key
    return key
