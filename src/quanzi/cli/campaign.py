"""`quanzi campaign …`: check a lottery draw, run the campaigns' due work now."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from quanzi.campaigns import lottery
from quanzi.cli.common import console, err_console

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


def register(app: typer.Typer) -> None:
    app.add_typer(campaign_app, name="campaign")
