"""Loading the demo community into a workspace, through the same ingest path as `quanzi ingest`.

The community is first written to a JSON Lines file under the data directory (kept, so the
operator can read what the platform was fed and replay it), then ingested. Loading is
idempotent: event ids are stable, ingest skips known ids, and the generator's last event
(`DemoSpec.marker_event_id`) is only stored once every line before it is (ingest commits its
batches in file order), so its presence means "already loaded".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from pathlib import Path

import orjson
from sqlalchemy import Engine

from quanzi.config import get_settings
from quanzi.core.events.service import IngestReport, ingest_lines, stored_event_ts
from quanzi.core.workspaces import service as workspaces
from quanzi.db.engine import session_scope
from quanzi.demo.generator import TIMEZONE, DemoSpec, default_end_day, generate
from quanzi.kit.clock import from_us, zone


@dataclass
class DemoState:
    """What a workspace holds of one demo community."""

    spec: DemoSpec  # end_day resolved: the stored community's, else the one asked for / yesterday
    started: bool  # its first event is stored
    complete: bool  # its last event is stored (so everything before it is)
    stored_end_day: date | None  # the end day of the community already stored, if any


def demo_state(engine: Engine, workspace_id: int, spec: DemoSpec) -> DemoState:
    """Whether the community `spec` names is in the workspace, and with which dates.

    Without an explicit `end_day`, a community already (partly) stored keeps the dates it was
    generated with, so a run on a later day resumes or recognises it instead of loading a
    second, shifted copy. With one that differs from the stored community's, `stored_end_day`
    tells the caller (the ids would collide: only --reset can change the dates).
    """
    first_us = stored_event_ts(engine, workspace_id, spec.first_event_id)
    stored_end: date | None = None
    if first_us is not None:
        first_day = from_us(first_us).astimezone(zone(TIMEZONE)).date()
        stored_end = first_day + timedelta(days=spec.days - 1)
    if spec.end_day is None:
        spec = replace(spec, end_day=stored_end or default_end_day())
    complete = (
        first_us is not None
        and stored_event_ts(engine, workspace_id, spec.marker_event_id) is not None
    )
    return DemoState(
        spec=spec, started=first_us is not None, complete=complete, stored_end_day=stored_end
    )


def demo_file(spec: DemoSpec, directory: Path | None = None) -> Path:
    """Where the community's JSON Lines are kept (one file per spec and end day)."""
    assert spec.end_day is not None
    directory = directory or get_settings().data_dir / "demo"
    act = "" if spec.activity == 1.0 else f"-a{spec.activity:g}"
    name = f"demo-s{spec.seed}-m{spec.members}-g{spec.groups}-d{spec.days}{act}-{spec.end_day.isoformat()}.jsonl"
    return directory / name


def write_events(
    spec: DemoSpec, path: Path, on_progress: Callable[[int], None] | None = None
) -> int:
    """Write the community to `path` (atomically: a complete file or none); return the line count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    n = 0
    dumps = orjson.dumps
    try:
        with open(tmp, "wb") as fh:
            chunk: list[bytes] = []
            for ev in generate(
                spec.seed,
                members=spec.members,
                days=spec.days,
                groups=spec.groups,
                end_day=spec.end_day,
                activity=spec.activity,
            ):
                chunk.append(dumps(ev))
                if len(chunk) == 5000:
                    fh.write(b"\n".join(chunk) + b"\n")
                    n += len(chunk)
                    chunk.clear()
                    if on_progress:
                        on_progress(5000)
            if chunk:
                fh.write(b"\n".join(chunk) + b"\n")
                n += len(chunk)
                if on_progress:
                    on_progress(len(chunk))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return n


def count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b""))


def _file_lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        yield from fh


def ingest_file(
    engine: Engine, workspace_id: int, path: Path, on_progress: Callable[[int], None] | None = None
) -> IngestReport:
    """Ingest the file exactly as `quanzi ingest FILE` does."""
    return ingest_lines(engine, workspace_id, _file_lines(path), on_progress=on_progress)


def delete_workspace(engine: Engine, name: str) -> bool:
    """Delete the workspace called `name` and everything it holds; False when there is none.
    `quanzi demo --reset` recreates it afterwards."""
    with session_scope(engine) as session:
        return workspaces.delete_workspace(session, name)


def parse_day(value: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from exc
