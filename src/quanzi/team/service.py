"""Users, seats in workspaces, group assignments, logins, sessions, invitations and the audit log.

Services take the session and never commit; the request or the command commits once.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from quanzi.core.groups.models import Group
from quanzi.core.workspaces.models import Workspace
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.team.errors import LoginFailed, LoginThrottled, NotAllowed
from quanzi.team.models import (
    AuditEntry,
    GroupAssignment,
    Invitation,
    LoginAttempt,
    TeamMember,
    User,
    WebSession,
)
from quanzi.team.roles import GRANTABLE, ROLES, is_scoped

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
SESSION_DAYS = 7
SESSION_IDLE_HOURS = 12
INVITE_DAYS = 7
# Login throttle: failures in the window, per email and per address.
THROTTLE_WINDOW_S = 15 * 60
MAX_FAILS_PER_EMAIL = 5
MAX_FAILS_PER_IP = 20
LOCALES = ("zh-CN", "en")

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both cases cost one argon2 verification.
_DUMMY_HASH = _hasher.hash("quanzi-dummy-password")
_US = 1_000_000


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise InvalidParameter(f"email: {email!r} is not an email address")
    return email


def check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidParameter(f"password: use at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise InvalidParameter("password: at most 1024 characters")


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidParameter(f"role: {role!r} is not one of {', '.join(ROLES)}")
    return role


# --- users and seats --------------------------------------------------------------------------


def create_user(
    session: Session, email: str, password: str, display_name: str = "", locale: str = "zh-CN"
) -> User:
    email = normalize_email(email)
    check_password(password)
    if locale not in LOCALES:
        raise InvalidParameter(f"locale: {locale!r} is not one of {', '.join(LOCALES)}")
    if session.scalar(select(User.id).where(User.email == email)) is not None:
        raise InvalidParameter(f"email: a user {email} already exists")
    user = User(
        email=email,
        password_hash=_hasher.hash(password),
        display_name=(display_name.strip() or email.split("@")[0])[:100],
        locale=locale,
        active=True,
        created_at_us=now_us(),
    )
    session.add(user)
    session.flush()
    return user


def user_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def set_password(session: Session, user: User, password: str) -> None:
    check_password(password)
    user.password_hash = _hasher.hash(password)
    # Every other login of this user ends.
    session.execute(delete(WebSession).where(WebSession.user_id == user.id))


def seat(session: Session, workspace_id: int, user_id: int) -> TeamMember | None:
    return session.scalar(
        select(TeamMember).where(
            TeamMember.workspace_id == workspace_id, TeamMember.user_id == user_id
        )
    )


def add_seat(
    session: Session, workspace_id: int, user: User, role: str, invited_by: int | None = None
) -> TeamMember:
    """Give `user` a role in the workspace (reactivating a former seat)."""
    check_role(role)
    existing = seat(session, workspace_id, user.id)
    if existing is not None:
        existing.role = role
        existing.active = True
        return existing
    tm = TeamMember(
        workspace_id=workspace_id,
        user_id=user.id,
        role=role,
        active=True,
        created_at_us=now_us(),
        invited_by_user_id=invited_by,
    )
    session.add(tm)
    session.flush()
    return tm


def workspaces_of(session: Session, user_id: int) -> list[tuple[Workspace, str]]:
    rows = session.execute(
        select(Workspace, TeamMember.role)
        .join(TeamMember, TeamMember.workspace_id == Workspace.id)
        .where(TeamMember.user_id == user_id, TeamMember.active.is_(True))
        .order_by(Workspace.name)
    )
    return [(ws, role) for ws, role in rows]


@dataclass(frozen=True)
class TeamRow:
    user_id: int
    email: str
    display_name: str
    role: str
    active: bool
    user_active: bool
    last_login_at_us: int | None
    group_ids: tuple[int, ...]


def team(session: Session, workspace_id: int) -> list[TeamRow]:
    assigned: dict[int, list[int]] = {}
    for uid, gid in session.execute(
        select(GroupAssignment.user_id, GroupAssignment.group_id).where(
            GroupAssignment.workspace_id == workspace_id
        )
    ):
        assigned.setdefault(uid, []).append(gid)
    rows = session.execute(
        select(TeamMember, User)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.workspace_id == workspace_id)
        .order_by(TeamMember.active.desc(), User.email)
    )
    return [
        TeamRow(
            user_id=u.id,
            email=u.email,
            display_name=u.display_name,
            role=tm.role,
            active=tm.active,
            user_active=u.active,
            last_login_at_us=u.last_login_at_us,
            group_ids=tuple(sorted(assigned.get(u.id, []))),
        )
        for tm, u in rows
    ]


def _owners(session: Session, workspace_id: int) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(TeamMember)
            .where(
                TeamMember.workspace_id == workspace_id,
                TeamMember.role == "owner",
                TeamMember.active.is_(True),
            )
        )
        or 0
    )


def _target_seat(session: Session, workspace_id: int, actor_role: str, user_id: int) -> TeamMember:
    tm = seat(session, workspace_id, user_id)
    if tm is None:
        raise NotFound(f"user {user_id} is not in this workspace")
    if tm.role == "owner" and actor_role != "owner":
        raise NotAllowed("only an owner may change an owner")
    return tm


def change_role(
    session: Session, workspace_id: int, actor_role: str, user_id: int, role: str
) -> tuple[str, str]:
    """Set a colleague's role; returns (old, new). The last active owner stays an owner."""
    check_role(role)
    if role not in GRANTABLE.get(actor_role, ()):
        raise NotAllowed(f"a {actor_role} may not grant the role {role}")
    tm = _target_seat(session, workspace_id, actor_role, user_id)
    old = tm.role
    if old == "owner" and role != "owner" and tm.active and _owners(session, workspace_id) <= 1:
        raise InvalidParameter("role: the workspace must keep at least one active owner")
    tm.role = role
    if not is_scoped(role):
        session.execute(
            delete(GroupAssignment).where(
                GroupAssignment.workspace_id == workspace_id, GroupAssignment.user_id == user_id
            )
        )
    return old, role


def set_active(
    session: Session, workspace_id: int, actor_role: str, user_id: int, active: bool
) -> None:
    """Deactivate (or reactivate) a colleague's seat; a deactivated seat's logins end at once."""
    tm = _target_seat(session, workspace_id, actor_role, user_id)
    if not active and tm.role == "owner" and tm.active and _owners(session, workspace_id) <= 1:
        raise InvalidParameter("the workspace must keep at least one active owner")
    tm.active = active
    if not active:
        session.execute(
            delete(WebSession).where(
                WebSession.user_id == user_id, WebSession.workspace_id == workspace_id
            )
        )


def assign_groups(
    session: Session, workspace_id: int, user_id: int, group_ids: list[int]
) -> tuple[set[int], set[int]]:
    """Replace an operator's assigned groups; returns (added, removed)."""
    tm = seat(session, workspace_id, user_id)
    if tm is None:
        raise NotFound(f"user {user_id} is not in this workspace")
    if not is_scoped(tm.role):
        raise InvalidParameter(f"groups are assigned to operators only (this user is {tm.role})")
    wanted = set(group_ids)
    known = set(
        session.scalars(
            select(Group.id).where(Group.workspace_id == workspace_id, Group.id.in_(wanted))
        )
    )
    missing = wanted - known
    if missing:
        raise InvalidParameter(f"groups: {sorted(missing)[0]} is not a group of this workspace")
    current = set(assigned_group_ids(session, workspace_id, user_id))
    added, removed = wanted - current, current - wanted
    if removed:
        session.execute(
            delete(GroupAssignment).where(
                GroupAssignment.user_id == user_id, GroupAssignment.group_id.in_(removed)
            )
        )
    for gid in sorted(added):
        session.add(GroupAssignment(workspace_id=workspace_id, user_id=user_id, group_id=gid))
    return added, removed


def assigned_group_ids(session: Session, workspace_id: int, user_id: int) -> list[int]:
    return list(
        session.scalars(
            select(GroupAssignment.group_id).where(
                GroupAssignment.workspace_id == workspace_id, GroupAssignment.user_id == user_id
            )
        )
    )


# --- invitations ----------------------------------------------------------------------------


def invite(
    session: Session, workspace_id: int, actor: User, actor_role: str, email: str, role: str
) -> str:
    """An invitation link token for `email` (shown once; only its hash is stored)."""
    email = normalize_email(email)
    check_role(role)
    if role not in GRANTABLE.get(actor_role, ()):
        raise NotAllowed(f"a {actor_role} may not invite a {role}")
    existing = user_by_email(session, email)
    if existing is not None:
        tm = seat(session, workspace_id, existing.id)
        if tm is not None and tm.active:
            raise InvalidParameter(f"email: {email} is already in this workspace")
    token = secrets.token_urlsafe(32)
    now = now_us()
    session.add(
        Invitation(
            workspace_id=workspace_id,
            email=email,
            role=role,
            token_hash=_sha(token),
            invited_by_user_id=actor.id,
            created_at_us=now,
            expires_at_us=now + INVITE_DAYS * 86400 * _US,
        )
    )
    session.flush()
    return token


def open_invitation(session: Session, token: str) -> Invitation:
    inv = session.scalar(select(Invitation).where(Invitation.token_hash == _sha(token)))
    if (
        inv is None
        or inv.accepted_at_us is not None
        or inv.revoked_at_us is not None
        or inv.expires_at_us < now_us()
    ):
        raise NotFound("this invitation link is not valid (used, revoked or expired)")
    return inv


def accept_invitation(
    session: Session, token: str, password: str, display_name: str = ""
) -> tuple[User, Invitation]:
    """Join the invitation's workspace: a new account, or an existing one proven by its password."""
    inv = open_invitation(session, token)
    user = user_by_email(session, inv.email)
    if user is None:
        user = create_user(session, inv.email, password, display_name)
    else:
        try:
            _hasher.verify(user.password_hash, password)
        except (VerificationError, InvalidHashError):
            raise LoginFailed("password: wrong password for the existing account") from None
    add_seat(session, inv.workspace_id, user, inv.role, inv.invited_by_user_id)
    inv.accepted_at_us = now_us()
    return user, inv


def pending_invitations(session: Session, workspace_id: int) -> list[Invitation]:
    return list(
        session.scalars(
            select(Invitation)
            .where(
                Invitation.workspace_id == workspace_id,
                Invitation.accepted_at_us.is_(None),
                Invitation.revoked_at_us.is_(None),
                Invitation.expires_at_us >= now_us(),
            )
            .order_by(Invitation.created_at_us.desc())
        )
    )


def revoke_invitation(session: Session, workspace_id: int, invitation_id: int) -> Invitation:
    inv = session.get(Invitation, invitation_id)
    if inv is None or inv.workspace_id != workspace_id:
        raise NotFound(f"invitation {invitation_id} does not exist")
    inv.revoked_at_us = now_us()
    return inv


# --- logins and sessions ----------------------------------------------------------------------


def _throttle(session: Session, email: str, ip: str, now: int) -> None:
    since = now - THROTTLE_WINDOW_S * _US
    for column, value, limit in (
        (LoginAttempt.email, email, MAX_FAILS_PER_EMAIL),
        (LoginAttempt.ip, ip, MAX_FAILS_PER_IP),
    ):
        fails = list(
            session.scalars(
                select(LoginAttempt.at_us)
                .where(
                    column == value, LoginAttempt.at_us >= since, LoginAttempt.succeeded.is_(False)
                )
                .order_by(LoginAttempt.at_us.desc())
                .limit(limit)
            )
        )
        if len(fails) >= limit:
            retry = max(1, (fails[-1] + THROTTLE_WINDOW_S * _US - now) // _US)
            raise LoginThrottled(
                f"too many failed logins; try again in {(retry + 59) // 60} minutes", int(retry)
            )


def authenticate(session: Session, email: str, password: str, ip: str) -> User:
    """The user these credentials name. Failures are counted (and throttled) per email and
    address; the caller must commit even when this raises LoginFailed, so the try is kept."""
    now = now_us()
    email = email.strip().lower()[:254]
    ip = ip[:64]
    session.execute(delete(LoginAttempt).where(LoginAttempt.at_us < now - 86400 * _US))
    _throttle(session, email, ip, now)
    user = user_by_email(session, email)
    ok = False
    try:
        ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password[:1024])
    except (VerificationError, InvalidHashError):
        ok = False
    ok = ok and user is not None and user.active
    session.add(LoginAttempt(email=email, ip=ip, at_us=now, succeeded=ok))
    if not ok or user is None:
        raise LoginFailed("wrong email or password")
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at_us = now
    return user


def start_session(
    session: Session, user: User, workspace_id: int | None, ip: str, user_agent: str
) -> str:
    """A new login; returns the cookie token (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = now_us()
    session.add(
        WebSession(
            token_hash=_sha(token),
            user_id=user.id,
            workspace_id=workspace_id,
            csrf_token=secrets.token_urlsafe(32),
            created_at_us=now,
            last_seen_at_us=now,
            expires_at_us=now + SESSION_DAYS * 86400 * _US,
            ip=ip[:64],
            user_agent=user_agent[:255],
        )
    )
    return token


def resolve_session(session: Session, token: str) -> tuple[WebSession, User] | None:
    """The live login behind a cookie token, or None (unknown, expired, idle, or user inactive)."""
    if not token or len(token) > 128:
        return None
    row = session.execute(
        select(WebSession, User)
        .join(User, User.id == WebSession.user_id)
        .where(WebSession.token_hash == _sha(token))
    ).first()
    if row is None:
        return None
    ws_session, user = row
    now = now_us()
    if (
        not user.active
        or ws_session.expires_at_us < now
        or ws_session.last_seen_at_us < now - SESSION_IDLE_HOURS * 3600 * _US
    ):
        return None
    return ws_session, user


def touch_session(session: Session, ws_session: WebSession) -> None:
    """Record activity (at most once a minute, to keep reads from writing)."""
    now = now_us()
    if now - ws_session.last_seen_at_us > 60 * _US:
        ws_session.last_seen_at_us = now


def end_session(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.token_hash == _sha(token)))


# --- audit ------------------------------------------------------------------------------------


def audit(
    session: Session,
    *,
    workspace_id: int | None,
    user_id: int | None,
    actor: str,
    action: str,
    target: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> None:
    """Write one audit entry in the caller's transaction (`actor`: the email, or "cli")."""
    session.add(
        AuditEntry(
            workspace_id=workspace_id,
            user_id=user_id,
            actor=actor[:254],
            action=action[:64],
            target=target[:255] if target else None,
            detail=detail,
            ip=ip[:64] if ip else None,
            user_agent=user_agent[:255] if user_agent else None,
            at_us=now_us(),
        )
    )


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditEntry]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def audit_log(
    session: Session,
    workspace_id: int,
    *,
    action: str | None = None,
    actor: str | None = None,
    page: int = 1,
    per_page: int = 50,
) -> AuditPage:
    if page < 1 or page > 100_000:
        raise InvalidParameter("page must be between 1 and 100000")
    conds: list[Any] = [AuditEntry.workspace_id == workspace_id]
    if action:
        conds.append(AuditEntry.action == action)
    if actor:
        conds.append(AuditEntry.actor.contains(actor.strip().lower()))
    total = int(session.scalar(select(func.count()).select_from(AuditEntry).where(*conds)) or 0)
    rows = list(
        session.scalars(
            select(AuditEntry)
            .where(*conds)
            .order_by(AuditEntry.at_us.desc(), AuditEntry.id.desc())
            .offset((page - 1) * per_page)
            .limit(per_page)
        )
    )
    return AuditPage(rows, total, page, per_page)


def audit_actions(session: Session, workspace_id: int) -> list[str]:
    return list(
        session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.workspace_id == workspace_id)
            .distinct()
            .order_by(AuditEntry.action)
        )
    )
