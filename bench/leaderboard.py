"""A campaign leaderboard's top 100 with 100,000 participants: the embedded backend (SQLite and
its covering index) and the scale-out one (Redis sorted sets), each beside a plain-SQL baseline
(the same ORDER BY ... LIMIT through the raw sqlite3 driver) measured in the same run.

    .venv/bin/python bench/leaderboard.py [--participants 100000] [--reads 50]

Needs `redis-server` on PATH (scripts/test installs it); it is started on a private unix socket.
Target (issue 7): top 100 in under 20 ms.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from quanzi.campaigns import leaderboard
from quanzi.campaigns.models import Campaign, Participant
from quanzi.config import get_settings
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import make_engine, session_scope
from quanzi.db.migrate import upgrade_to_head

TARGET_MS = 20.0


def _timed(f: Callable[[], Any], reads: int) -> tuple[float, float]:
    f()  # warm
    times = []
    for _ in range(reads):
        start = time.perf_counter()
        f()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), max(times)


def _fill(db: Path, n: int) -> int:
    engine = make_engine(f"sqlite:///{db}")
    upgrade_to_head(engine)
    rng = random.Random(1)
    with session_scope(engine) as s:
        ws = get_or_create_workspace(s, "bench").id
        campaign = Campaign(
            workspace_id=ws,
            key="board",
            slug="bench-board",
            kind="leaderboard",
            name="bench",
            status="live",
            starts_at_us=0,
            ends_at_us=10**15,
            rules={"board": {"metric": "valid_invites", "prizes": []}},
            copy_text={},
            created_at_us=0,
            updated_at_us=0,
        )
        s.add(campaign)
        s.flush()
        cid = campaign.id
        for lo in range(0, n, 10_000):
            s.execute(
                insert(Participant),
                [
                    {
                        "workspace_id": ws,
                        "campaign_id": cid,
                        "phone_digest": f"{i:064x}",
                        "token_digest": f"{i:064x}",
                        "score": rng.randint(0, 50),
                        "score_at_us": rng.randint(0, 10**12),
                        "joined_at_us": 0,
                    }
                    for i in range(lo, min(n, lo + 10_000))
                ],
            )
    engine.dispose()
    return cid


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=100_000)
    parser.add_argument("--reads", type=int, default=50)
    args = parser.parse_args()
    if shutil.which("redis-server") is None:
        raise SystemExit(
            "redis-server is missing (apt-get install redis-server; scripts/test does)"
        )
    root = Path(tempfile.mkdtemp(prefix="quanzi-board-"))
    redis = None
    try:
        print(f"filling {args.participants:,} participants ...", flush=True)
        db = root / "board.sqlite3"
        cid = _fill(db, args.participants)
        sock = root / "redis.sock"
        redis = subprocess.Popen(
            [
                *("redis-server", "--port", "0", "--unixsocket", str(sock)),
                *("--save", "", "--appendonly", "no"),
            ],
            stdout=subprocess.DEVNULL,
        )
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        os.environ["QUANZI_REDIS_URL"] = f"unix://{sock}?db=0"
        get_settings.cache_clear()
        engine = make_engine(f"sqlite:///{db}")
        raw = sqlite3.connect(db)
        plain = (
            "SELECT id, score, score_at_us FROM campaign_participants WHERE campaign_id = ? "
            "ORDER BY score DESC, score_at_us, id LIMIT 100"
        )
        with session_scope(engine, read_only=True) as s:
            campaign = s.get(Campaign, cid)
            assert campaign is not None
            start = time.perf_counter()
            leaderboard.rebuild_redis(s, campaign)
            rebuilt_s = time.perf_counter() - start
            by_sql = [r.participant_id for r in leaderboard.top(s, campaign, 100, backend="sql")]
            by_redis = [
                r.participant_id for r in leaderboard.top(s, campaign, 100, backend="redis")
            ]
            by_plain = [int(r[0]) for r in raw.execute(plain, (cid,))]
            assert by_sql == by_redis == by_plain, "the backends disagree on the top 100"
            base = _timed(lambda: raw.execute(plain, (cid,)).fetchall(), args.reads)
            sql = _timed(lambda: leaderboard.top(s, campaign, 100, backend="sql"), args.reads)
            red = _timed(lambda: leaderboard.top(s, campaign, 100, backend="redis"), args.reads)
        raw.close()
        engine.dispose()
        print(
            f"\n{args.participants:,} participants, top 100, median / max of {args.reads} reads\n"
        )
        print("| read | median ms | max ms | ratio to plain SQL | target | result |")
        print("| --- | --- | --- | --- | --- | --- |")
        print(f"| plain SQL (sqlite3, same index) | {base[0]:.2f} | {base[1]:.2f} | 1.00 | — | — |")
        for name, (med, top) in (("embedded: SQLite index", sql), ("scale-out: Redis", red)):
            verdict = "PASS" if med < TARGET_MS else "FAIL"
            print(
                f"| {name} | {med:.2f} | {top:.2f} | {med / base[0]:.1f} | < {TARGET_MS:.0f} ms "
                f"| {verdict} |"
            )
        print(
            f"\nRedis board rebuilt from SQL in {rebuilt_s:.2f} s; all three agree on the top 100."
        )
    finally:
        if redis is not None:
            redis.terminate()
            redis.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
