"""Placeholder: filled in by its owner in this same change."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    return None
