"""The team rules: roles an actor may grant, the last owner, group assignment, invitations."""

from __future__ import annotations

import pytest
from consolekit import PASSWORD, Team
from sqlalchemy import Engine, select

from quanzi.db.engine import session_scope
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.team import service as team
from quanzi.team.errors import LoginFailed, NotAllowed
from quanzi.team.models import User
from quanzi.team.roles import ROLE_PERMS, Perm, may


def _uid(s: object, email: str) -> int:
    uid = s.scalar(select(User.id).where(User.email == email))  # type: ignore[attr-defined]
    assert uid is not None
    return int(uid)


def test_role_matrix() -> None:
    assert may("owner", Perm.MANAGE_TEAM) and may("admin", Perm.AUDIT)
    assert may("operator", Perm.REVEAL) and not may("operator", Perm.MANAGE_TEAM)
    assert not may("operator", Perm.IMPORT)
    # The analyst reads numbers only.
    assert ROLE_PERMS["analyst"] == frozenset({Perm.VIEW})
    assert not may("nobody", Perm.VIEW)


def test_admin_cannot_touch_owners_or_make_them(engine: Engine, console_team: Team) -> None:
    with session_scope(engine) as s:
        owner = _uid(s, "owner@example.com")
        analyst = _uid(s, "analyst@example.com")
        with pytest.raises(NotAllowed):
            team.change_role(s, console_team.ws_id, "admin", analyst, "owner")
        with pytest.raises(NotAllowed):
            team.change_role(s, console_team.ws_id, "admin", owner, "analyst")
        with pytest.raises(NotAllowed):
            team.set_active(s, console_team.ws_id, "admin", owner, False)
        assert team.change_role(s, console_team.ws_id, "admin", analyst, "operator") == (
            "analyst",
            "operator",
        )


def test_the_last_owner_stays(engine: Engine, console_team: Team) -> None:
    with session_scope(engine) as s:
        owner = _uid(s, "owner@example.com")
        with pytest.raises(InvalidParameter, match="at least one active owner"):
            team.change_role(s, console_team.ws_id, "owner", owner, "admin")
        with pytest.raises(InvalidParameter, match="at least one active owner"):
            team.set_active(s, console_team.ws_id, "owner", owner, False)
        admin = _uid(s, "admin@example.com")
        team.change_role(s, console_team.ws_id, "owner", admin, "owner")
        # With a second owner, the first may step down.
        team.change_role(s, console_team.ws_id, "owner", owner, "admin")


def test_groups_are_assigned_to_operators_of_this_workspace_only(
    engine: Engine, console_team: Team
) -> None:
    with session_scope(engine) as s:
        op = _uid(s, "operator@example.com")
        analyst = _uid(s, "analyst@example.com")
        both = console_team.operator_groups + console_team.other_groups
        added, removed = team.assign_groups(s, console_team.ws_id, op, both)
        assert added == set(console_team.other_groups) and removed == set()
        added, removed = team.assign_groups(s, console_team.ws_id, op, console_team.other_groups)
        assert removed == set(console_team.operator_groups)
        assert team.assigned_group_ids(s, console_team.ws_id, op) == console_team.other_groups
        with pytest.raises(InvalidParameter, match="operators only"):
            team.assign_groups(s, console_team.ws_id, analyst, both)
        with pytest.raises(InvalidParameter, match="not a group of this workspace"):
            team.assign_groups(s, console_team.ws_id, op, [999_999])
        # Becoming an admin drops the assignments (admins see every group).
        team.change_role(s, console_team.ws_id, "owner", op, "admin")
        assert team.assigned_group_ids(s, console_team.ws_id, op) == []


def test_invitation_is_single_use(engine: Engine, console_team: Team) -> None:
    with session_scope(engine) as s:
        owner = s.get(User, _uid(s, "owner@example.com"))
        assert owner is not None
        token = team.invite(s, console_team.ws_id, owner, "owner", "New@Example.com", "analyst")
    with session_scope(engine) as s:
        user, inv = team.accept_invitation(s, token, "a-long-password", "新人")
        assert user.email == "new@example.com" and inv.role == "analyst"
        seat = team.seat(s, console_team.ws_id, user.id)
        assert seat is not None and seat.role == "analyst"
    with session_scope(engine) as s, pytest.raises(NotFound):
        team.accept_invitation(s, token, "a-long-password")


def test_invitation_for_an_existing_account_needs_its_password(
    engine: Engine, console_team: Team
) -> None:
    with session_scope(engine) as s:
        owner = s.get(User, _uid(s, "owner@example.com"))
        assert owner is not None
        team.create_user(s, "elsewhere@example.com", PASSWORD)
        token = team.invite(
            s, console_team.ws_id, owner, "owner", "elsewhere@example.com", "operator"
        )
    with session_scope(engine) as s, pytest.raises(LoginFailed):
        team.accept_invitation(s, token, "not-the-password")
    with session_scope(engine) as s:
        user, _inv = team.accept_invitation(s, token, PASSWORD)
        assert team.seat(s, console_team.ws_id, user.id) is not None


def test_bad_accounts_are_refused_with_the_field_named(engine: Engine) -> None:
    with session_scope(engine) as s:
        with pytest.raises(InvalidParameter, match=r"^email: "):
            team.create_user(s, "not-an-email", PASSWORD)
        with pytest.raises(InvalidParameter, match=r"^password: "):
            team.create_user(s, "ok@example.com", "short")
        team.create_user(s, "ok@example.com", PASSWORD)
        with pytest.raises(InvalidParameter, match="already exists"):
            team.create_user(s, "OK@example.com", PASSWORD)
