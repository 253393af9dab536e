"""Ingestion: parse, validate, log and apply events (the one way in for community data)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import Engine


@dataclass
class IngestReport:
    """What an ingest did: counts, and every refused line with its reason."""

    applied: int = 0
    duplicates: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    warnings: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {
            "applied": self.applied,
            "duplicates": self.duplicates,
            "refused": len(self.refused),
            "errors": [f"line {n}: {reason}" for n, reason in self.refused],
            "warnings": [f"line {n}: {text}" for n, text in self.warnings],
        }


def ingest_lines(
    engine: Engine,
    workspace_id: int,
    lines: Iterable[bytes | str],
    *,
    strict: bool = False,
    on_progress: Callable[[int], None] | None = None,
) -> IngestReport:
    """Ingest JSON Lines (line numbers from 1); commits per batch. See contracts/events.md."""
    raise NotImplementedError  # being written in this change
