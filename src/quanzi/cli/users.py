"""`quanzi user …`: console accounts (the first owner, password resets, deactivation)."""

from __future__ import annotations

import secrets

import typer
from rich.table import Table
from sqlalchemy import delete
from sqlalchemy.orm import Session

from quanzi.cli.common import WorkspaceOption, cli_session, console, err_console
from quanzi.core.workspaces import service as workspaces
from quanzi.kit.clock import from_us
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.team import service as team
from quanzi.team.models import User, WebSession
from quanzi.team.roles import ROLES

user_app = typer.Typer(help="Console users and their roles.", no_args_is_help=True)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def _password(password: str | None, generate: bool) -> tuple[str, bool]:
    if password and generate:
        raise typer.BadParameter("give --password or --generate-password, not both")
    if generate:
        return generate_password(), True
    if password:
        return password, False
    return typer.prompt(
        "Password (at least 10 characters)", hide_input=True, confirmation_prompt=True
    ), False


def ensure_user(
    session: Session, workspace: str, email: str, role: str, password: str, name: str = ""
) -> User:
    """Create the user (or reset the password of an existing one) with `role` in `workspace`."""
    team.check_role(role)
    ws = workspaces.get_or_create_workspace(session, workspace)
    user = team.user_by_email(session, email)
    if user is None:
        user = team.create_user(session, email, password, name)
    else:
        team.set_password(session, user, password)
        user.active = True
    team.add_seat(session, ws.id, user, role)
    team.audit(
        session,
        workspace_id=ws.id,
        user_id=user.id,
        actor="cli",
        action="team.user_created",
        target=user.email,
        detail={"role": role},
    )
    return user


@user_app.command("create")
def user_create(
    email: str = typer.Option(..., "--email", help="Login email."),
    role: str = typer.Option("owner", "--role", help=f"One of: {', '.join(ROLES)}."),
    workspace: str = WorkspaceOption,
    name: str = typer.Option("", "--name", help="Display name (default: the email's user part)."),
    password: str | None = typer.Option(
        None, "--password", help="The password (prompted for when not given; visible to `ps`)."
    ),
    generate: bool = typer.Option(
        False, "--generate-password", help="Generate a password and print it once."
    ),
) -> None:
    """Create a console user with a role in a workspace (an existing user gets the seat and a
    new password)."""
    if role not in ROLES:
        raise typer.BadParameter(f"role {role!r}: use one of {', '.join(ROLES)}")
    secret, generated = _password(password, generate)
    with cli_session() as session:
        user = ensure_user(session, workspace, email, role, secret, name)
        email_shown = user.email
    console.print(f"user {email_shown}: {role} of workspace {workspace}", highlight=False)
    if generated:
        console.print(f"password {secret}   (shown once)", highlight=False)


@user_app.command("list")
def user_list(workspace: str = WorkspaceOption) -> None:
    """The workspace's team: roles, state and last login."""
    with cli_session(read_only=True) as session:
        ws = workspaces.get_workspace(session, workspace)
        t = Table("email", "name", "role", "active", "last login (UTC)")
        for row in team.team(session, ws.id):
            last = (
                from_us(row.last_login_at_us).strftime("%Y-%m-%d %H:%M")
                if row.last_login_at_us
                else "—"
            )
            t.add_row(row.email, row.display_name, row.role, "yes" if row.active else "no", last)
        console.print(t)


@user_app.command("set-password")
def user_set_password(
    email: str = typer.Option(..., "--email"),
    password: str | None = typer.Option(None, "--password"),
    generate: bool = typer.Option(False, "--generate-password"),
) -> None:
    """Set a user's password (ends every login of theirs)."""
    secret, generated = _password(password, generate)
    with cli_session() as session:
        user = team.user_by_email(session, email)
        if user is None:
            raise NotFound(f"no user {email}")
        team.set_password(session, user, secret)
    console.print(f"user {email}: password changed", highlight=False)
    if generated:
        console.print(f"password {secret}   (shown once)", highlight=False)


@user_app.command("deactivate")
def user_deactivate(email: str = typer.Option(..., "--email")) -> None:
    """Disable an account everywhere (its logins end at once)."""
    with cli_session() as session:
        user = team.user_by_email(session, email)
        if user is None:
            raise NotFound(f"no user {email}")
        if not user.active:
            raise InvalidParameter(f"user {email} is already inactive")
        user.active = False
        session.execute(delete(WebSession).where(WebSession.user_id == user.id))
    err_console.print(f"user {email}: deactivated", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(user_app, name="user")
