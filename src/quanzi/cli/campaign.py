"""`quanzi campaign …`: check a lottery draw, print its published list, settle what is due now."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer

from quanzi.campaigns import lottery
from quanzi.cli.common import WorkspaceOption, cli_session, console, err_console
from quanzi.core.workspaces import service as workspaces

campaign_app = typer.Typer(help="Fission campaigns.", no_args_is_help=True)


@campaign_app.command("verify-draw")
def verify_draw(
    seed: str = typer.Option(..., "--seed", help="The revealed seed (64 hex digits)."),
    commitment: str = typer.Option(
        ..., "--commitment", help="The commitment published before the draw (64 hex digits)."
    ),
    participants: Path = typer.Option(
        ...,
        "--participants",
        help="The published participant list (the JSON or CSV the campaign page offers).",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
    winners: int = typer.Option(..., "--winners", min=0, help="How many winners were drawn."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
) -> None:
    """Recompute a lottery's winners from its seed and published list; exit 0 only when the
    seed matches the commitment (2 otherwise)."""
    try:
        ids = lottery.parse_published(participants.read_text(encoding="utf-8"))
        result = lottery.verify(seed, commitment, ids, winners)
    except (ValueError, UnicodeDecodeError) as exc:
        err_console.print(f"[red]error:[/red] {participants}: {exc}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "commitment_matches": result.commitment_matches,
                    "participants": len(ids),
                    "winners": result.winners,
                }
            )
        )
    else:
        console.print(f"participants: {len(ids)}", highlight=False)
        for rank, pid in enumerate(result.winners, start=1):
            console.print(f"winner {rank}: participant {pid}", highlight=False)
        verdict = "matches" if result.commitment_matches else "DOES NOT MATCH"
        console.print(f"commitment: {verdict}", highlight=False)
    if not result.commitment_matches:
        raise typer.Exit(2)


@campaign_app.command("draw-list")
def draw_list(
    campaign: str = typer.Option(..., "--campaign", help="The lottery campaign's key."),
    workspace: str = WorkspaceOption,
    fmt: str = typer.Option("json", "--format", help="json (with commitment and seed) or csv."),
) -> None:
    """Print a lottery's published participant list (what its page offers for download)."""
    if fmt not in ("json", "csv"):
        raise typer.BadParameter("--format: json or csv")
    with cli_session(read_only=True) as session:
        ws = workspaces.get_workspace(session, workspace)
        published = lottery.published_list(
            session, lottery.lottery_by_key(session, ws.id, campaign)
        )
    typer.echo(published.as_json() if fmt == "json" else published.as_csv(), nl=fmt == "json")


@campaign_app.command("sweep")
def sweep() -> None:
    """Settle now what the minute job settles: expire and refund 拼团 teams, expire bargains,
    commit and draw lotteries, log campaign orders a crash left out."""
    from quanzi.campaigns.jobs_kinds import sweep as run_sweep
    from quanzi.db.engine import get_engine

    report = run_sweep(get_engine())
    for name, value in asdict(report).items():
        console.print(f"{name}: {value}", highlight=False)


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
