"""Server-side speed of the console's member and group pages on a large community.

    .venv/bin/python bench/console.py [--members 100000] [--out bench/out] [--runs 5]

Builds (once, then reuses) the demo community with `bench/ingest.py`'s generator and
`quanzi ingest`, tags 20 % of its members, then times in-process (median of --runs after one
warm-up) each console read next to a plain SQL baseline on the same database. Target: every
page < 300 ms, the dashboard < 500 ms. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest as ingest_bench  # bench/ingest.py: the generator and the ingest child

TARGET_MS = 300.0
DASHBOARD_TARGET_MS = 500.0
TAG_SHARE = 0.2


def build(out: Path, members: int, groups: int, seed: int) -> Path:
    """The ingested community as a SQLite file, cached per size and seed."""
    db = out / f"console-s{seed}-m{members}-g{groups}.sqlite3"
    if db.exists():
        print(f"database     {db} (cached)")
        return db
    path, _n = ingest_bench.events_file(out, seed, members, groups)
    env = dict(os.environ)
    env["QUANZI_DATA_DIR"] = str(out / "data")
    env["PYTHONPATH"] = str(ingest_bench.ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    tmp = db.with_suffix(".building")
    seconds, _rss, answer = ingest_bench.ingest_child(path, tmp, env)
    print(f"ingested     {answer['applied']:,} events in {seconds:.1f} s")
    _tag(tmp, seed)
    for suffix in ("-wal", "-shm"):
        Path(str(tmp) + suffix).unlink(missing_ok=True)
    os.replace(tmp, db)
    return db


def _tag(db: Path, seed: int) -> None:
    from quanzi.core.members.models import Member
    from quanzi.core.tags import service as tags
    from quanzi.core.workspaces.service import get_workspace
    from quanzi.db.engine import dispose_engines, get_engine, session_scope

    engine = get_engine(f"sqlite:///{db}")
    with session_scope(engine) as s:
        ws = get_workspace(s, "bench").id
        ids = list(s.scalars(Member.__table__.select().with_only_columns(Member.id)))
        group = tags.create_tag_group(s, ws, "意向")
        hot = tags.create_tag(s, ws, group.id, "高意向")
        rng = random.Random(seed)
        chosen = [m for m in ids if rng.random() < TAG_SHARE]
        tags.tag_members(s, ws, chosen, [hot.id], by_user_id=None)
    dispose_engines()


def timed(call: Callable[[], object], runs: int) -> float:
    call()
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        call()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=100_000)
    ap.add_argument("--groups", type=int, help="default: members / 250, at least 24")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=ingest_bench.ROOT / "bench" / "out")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args(argv)
    groups_n = args.groups or max(24, args.members // 250)
    out: Path = args.out
    (out / "data").mkdir(parents=True, exist_ok=True)
    os.environ["QUANZI_DATA_DIR"] = str(out / "data")
    db = build(out, args.members, groups_n, args.seed)
    os.environ["QUANZI_DATABASE_URL"] = f"sqlite:///{db}"

    from quanzi.analytics import dashboard as board
    from quanzi.core.groups import service as groups
    from quanzi.core.members import service as members
    from quanzi.core.workspaces.service import get_workspace
    from quanzi.db.engine import get_engine, session_scope
    from quanzi.kit.clock import LocalCalendar, day_number

    day = day_number(ingest_bench.END_DAY)
    raw = sqlite3.connect(db)
    rows: list[tuple[str, float, float]] = []
    with session_scope(get_engine(f"sqlite:///{db}"), read_only=True) as s:
        ws = get_workspace(s, "bench")
        cal = LocalCalendar(ws.timezone)
        tag_id = int(
            raw.execute("SELECT id FROM tags WHERE workspace_id = ?", (ws.id,)).fetchone()[0]
        )
        channel = raw.execute(
            "SELECT channel FROM members WHERE workspace_id = ? AND channel IS NOT NULL AND channel != '(none)'"
            " GROUP BY channel ORDER BY count(*) DESC LIMIT 1",
            (ws.id,),
        ).fetchone()[0]
        biggest = max(
            groups.list_groups(s, ws.id, cal, group_ids=None, day=day, per_page=1).rows,
            key=lambda r: r.size,
        )

        def sql(q: str, *params: object) -> Callable[[], object]:
            return lambda: raw.execute(q, (ws.id, *params)).fetchall()

        def search(filt: members.MemberFilter) -> Callable[[], object]:
            return lambda: members.search_members(s, ws.id, filt, group_ids=None, today_day=day)

        def group_page() -> object:
            groups.group_detail(s, ws.id, cal, biggest.id, group_ids=None, day=day)
            return groups.group_members(s, ws.id, biggest.id, group_ids=None, day=day)

        def groups_list(cached: bool) -> Callable[[], object]:
            def call() -> object:
                if not cached:
                    groups.clear_figures()
                return groups.list_groups(
                    s, ws.id, cal, group_ids=None, day=day, sort="activity_rate_7d"
                )

            return call

        cases: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
            (
                "members list, page 1",
                search(members.MemberFilter()),
                sql(
                    "SELECT id, member_key, name FROM members WHERE workspace_id = ?"
                    " ORDER BY first_join_us DESC LIMIT 50"
                ),
            ),
            (
                f"members: channel {channel} + tag",
                search(members.MemberFilter(channel=channel, tag_ids=(tag_id,))),
                sql(
                    "SELECT m.id FROM members m WHERE m.workspace_id = ? AND m.channel = ?"
                    " AND EXISTS (SELECT 1 FROM member_tags t WHERE t.member_id = m.id"
                    " AND t.tag_id = ?) ORDER BY m.first_join_us DESC LIMIT 50",
                    channel,
                    tag_id,
                ),
            ),
            (
                "members: name search 「小」",
                search(members.MemberFilter(q="小")),
                sql(
                    "SELECT id FROM members WHERE workspace_id = ? AND lower(name) LIKE ?"
                    " ORDER BY first_join_us DESC LIMIT 50",
                    "%小%",
                ),
            ),
            (
                f"group page ({biggest.size} members)",
                group_page,
                sql(
                    "SELECT member_id FROM memberships WHERE workspace_id = ? AND group_id = ?"
                    " AND left_us IS NULL LIMIT 50",
                    biggest.id,
                ),
            ),
            (
                "groups list, page 1",
                groups_list(cached=False),
                sql("SELECT id, name FROM groups WHERE workspace_id = ? ORDER BY id LIMIT 50"),
            ),
            (
                "groups list, re-sorted (figures kept)",
                groups_list(cached=True),
                sql("SELECT id, name FROM groups WHERE workspace_id = ? ORDER BY id LIMIT 50"),
            ),
        ]
        few = frozenset(
            sorted(
                r.id
                for r in groups.list_groups(
                    s, ws.id, cal, group_ids=None, day=day, per_page=500
                ).rows
            )[:5]
        )

        def dashboard(scope: frozenset[int] | None, cached: bool) -> Callable[[], object]:
            def call() -> object:
                if not cached:
                    board.clear_cache()
                return board.dashboard(s, ws.id, cal, group_ids=scope, day=day)

            return call

        dash_base = sql(
            "SELECT day, sum(messages) FROM daily_activity WHERE workspace_id = ?"
            " AND day BETWEEN ? AND ? GROUP BY day",
            day - 89,
            day,
        )
        cases += [
            ("dashboard (workspace)", dashboard(None, False), dash_base),
            ("dashboard (workspace), cached", dashboard(None, True), dash_base),
            ("dashboard (5 groups)", dashboard(few, False), dash_base),
            ("dashboard (5 groups), cached", dashboard(few, True), dash_base),
        ]
        for label, call, base in cases:
            ms = timed(call, args.runs)
            base_ms = timed(base, args.runs)
            rows.append((label, ms, base_ms))
            print(f"  {label}: {ms:.1f} ms (baseline {base_ms:.2f} ms)", flush=True)
    print()
    print(
        f"| page | server time | baseline (raw SQL) | ratio | target < {TARGET_MS:.0f} ms"
        f" (dashboard < {DASHBOARD_TARGET_MS:.0f} ms) |"
    )
    print("| --- | --- | --- | --- | --- |")
    missed = 0
    for label, ms, base_ms in rows:
        target = DASHBOARD_TARGET_MS if label.startswith("dashboard") else TARGET_MS
        ok = ms < target
        missed += not ok
        print(
            f"| {label} | {ms:.1f} ms | {base_ms:.2f} ms | {ms / max(base_ms, 1e-3):.0f}× | {'yes' if ok else 'NO'} |"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
