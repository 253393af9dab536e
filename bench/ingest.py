"""Ingest and report speed on a large simulated community, against a plain SQLite baseline.

    .venv/bin/python bench/ingest.py [--members 100000] [--out bench/out] [--runs 5] [--check]

One run measures, on the same JSON Lines file (generated once by the demo generator and kept):

  (a) baseline: json.loads per line + executemany into ONE SQLite table (id, type, ts, raw),
      WAL, synchronous=FULL, a commit per 5,000 lines (the durability `quanzi ingest` gives);
  (b) `quanzi ingest FILE --workspace bench` as a subprocess on a fresh SQLite file: events/s
      (wall clock, process start and migration included), the ratio to (a), peak RSS;
  (c) each report's latency on that data, called in-process (`run_report`), median of --runs.

See bench/README.md. Targets (issue 3): ingest ≥ 20,000 events/s and ≥ 0.1 × baseline, every
report ≤ 500 ms, peak RSS ≤ 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import OperationalError

from quanzi.demo.generator import estimate_events, generate_lines

ROOT = Path(__file__).resolve().parent.parent

# Fixed, so the cached file stays valid and the window covers Double 11.
END_DAY = date(2026, 11, 30)
DAYS = 90
TARGET_EVENTS_PER_S = 20_000
TARGET_RATIO = 0.1
TARGET_REPORT_MS = 500.0
TARGET_RSS_MB = 500.0
BATCH = 5000


def events_file(out: Path, seed: int, members: int, groups: int) -> tuple[Path, int]:
    """The community's JSON Lines, generated on first use (atomically) and then reused."""
    path = out / f"events-s{seed}-m{members}-g{groups}-d{DAYS}-{END_DAY}.jsonl"
    if path.exists():
        with open(path, "rb") as fh:
            n = sum(buf.count(b"\n") for buf in iter(lambda: fh.read(1 << 20), b""))
        print(f"events file  {path} ({n:,} events, cached)")
        return path, n
    print(
        f"generating   ~{estimate_events(members, groups, DAYS):,} events for {members:,} members …",
        flush=True,
    )
    began = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    n = 0
    with open(tmp, "wb") as fh:
        for line in generate_lines(
            seed, members=members, groups=groups, days=DAYS, end_day=END_DAY
        ):
            fh.write(line)
            n += 1
    os.replace(tmp, path)
    print(f"events file  {path} ({n:,} events, generated in {time.perf_counter() - began:.1f} s)")
    return path, n


def fresh_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)


def baseline(path: Path, db: Path) -> tuple[int, float]:
    """(a) json.loads + executemany into one table; returns (rows, seconds)."""
    fresh_sqlite(db)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE events (id TEXT PRIMARY KEY, type TEXT NOT NULL, ts TEXT NOT NULL, raw TEXT NOT NULL)"
    )
    sql = "INSERT OR IGNORE INTO events (id, type, ts, raw) VALUES (?, ?, ?, ?)"
    began = time.perf_counter()
    rows: list[tuple[str, str, str, str]] = []
    n = 0
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            obj = json.loads(line)
            rows.append((obj["id"], obj["type"], str(obj["ts"]), line))
            if len(rows) == BATCH:
                conn.execute("BEGIN")
                conn.executemany(sql, rows)
                conn.execute("COMMIT")
                n += len(rows)
                rows.clear()
    if rows:
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        n += len(rows)
    seconds = time.perf_counter() - began
    conn.close()
    return n, seconds


def quanzi_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "quanzi.cli.main", *args]


def run_child(cmd: list[str], env: dict[str, str]) -> tuple[int, float, float, str, str]:
    """Run cmd; (exit code, seconds, peak RSS in MB of that child, stdout, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        began = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        _pid, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage, not all children's
        seconds = time.perf_counter() - began
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        rss_mb = usage.ru_maxrss / 1024  # kilobytes on Linux
        return proc.returncode, seconds, rss_mb, out.read().decode(), err.read().decode()


def ingest_child(path: Path, db: Path, env: dict[str, str]) -> tuple[float, float, dict[str, int]]:
    """`quanzi ingest path` in a subprocess on a fresh SQLite file `db`: (seconds, peak RSS in MB,
    the --json answer)."""
    fresh_sqlite(db)
    env = {**env, "QUANZI_DATABASE_URL": f"sqlite:///{db}"}
    cmd = quanzi_cmd("ingest", str(path), "--workspace", "bench", "--json")
    code, seconds, rss_mb, out, err = run_child(cmd, env)
    if code != 0:
        raise SystemExit(f"quanzi ingest {path} failed with exit code {code}:\n{err[-4000:]}")
    return seconds, rss_mb, json.loads(out.strip().splitlines()[-1])


def quanzi_ingest(path: Path, db: Path, data_dir: Path) -> dict[str, float | int]:
    """(b) `quanzi ingest` in a subprocess on a fresh SQLite file."""
    env = dict(os.environ)
    env.pop("QUANZI_REDIS_URL", None)
    env["QUANZI_DATA_DIR"] = str(data_dir)
    env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + env.get("PYTHONPATH", "")
    # Process start + migration alone, to show how much of (b) is fixed cost.
    empty = data_dir / "empty.jsonl"
    empty.write_bytes(b"")
    startup_s, _rss, _answer = ingest_child(empty, data_dir / "startup.sqlite3", env)
    seconds, rss_mb, answer = ingest_child(path, db, env)
    return {
        "applied": int(answer["applied"]),
        "duplicates": int(answer["duplicates"]),
        "refused": int(answer["refused"]),
        "seconds": seconds,
        "startup_seconds": startup_s,
        "peak_rss_mb": rss_mb,
    }


def timed_ms(session: Any, call: Callable[[], object], timeout_s: float) -> float | None:
    """Milliseconds `call` took, or None when it ran past `timeout_s` and was interrupted."""
    dbapi = session.connection().connection.dbapi_connection
    timer = threading.Timer(timeout_s, dbapi.interrupt)  # sqlite3: abort the running statement
    timer.start()
    began = time.perf_counter()
    try:
        call()
    except OperationalError as exc:
        if "interrupt" not in str(exc):
            raise
        session.rollback()
        return None
    finally:
        timer.cancel()
    return (time.perf_counter() - began) * 1000


def report_latencies(db: Path, runs: int, timeout_s: float) -> list[tuple[str, float | None, str]]:
    """(c) each report on the ingested data, in-process: (label, median ms or None, params)."""
    from quanzi.analytics.service import run_report
    from quanzi.core.workspaces.service import get_workspace
    from quanzi.db.engine import get_engine, session_scope

    engine = get_engine(f"sqlite:///{db}")
    start = END_DAY - timedelta(days=DAYS - 1)
    as_of = f"{END_DAY + timedelta(days=1)}T00:00:00+08:00"
    window = {"from": start.isoformat(), "to": END_DAY.isoformat()}
    cases: list[tuple[str, str, dict[str, str]]] = [
        ("overview", "overview", {"date": END_DAY.isoformat()}),
        ("groups", "groups", {"date": END_DAY.isoformat()}),
        ("invites", "invites", {**window, "as_of": as_of}),
        ("retention", "retention", {**window, "kind": "activity", "weeks": "8", "as_of": as_of}),
        (
            "retention (membership)",
            "retention",
            {**window, "kind": "membership", "weeks": "8", "as_of": as_of},
        ),
        ("lifecycle", "lifecycle", window),
        ("funnel", "funnel", {**window, "as_of": as_of}),
        ("channels", "channels", window),
    ]
    out: list[tuple[str, float | None, str]] = []
    with session_scope(engine) as session:
        workspace = get_workspace(session, "bench")
        for label, name, params in cases:

            def call(name: str = name, params: dict[str, str] = params) -> object:
                return run_report(session, workspace, name, params)

            # The first call warms caches and compiles statements; a report far over its
            # target is then timed once more instead of --runs times.
            warm = timed_ms(session, call, timeout_s)
            median: float | None = None
            if warm is not None:
                n = runs if warm < 20 * TARGET_REPORT_MS else 1
                times = [timed_ms(session, call, timeout_s) for _ in range(n)]
                done = [t for t in times if t is not None]
                median = statistics.median(done) if len(done) == len(times) else None
            shown = (
                f"{median:,.1f} ms" if median is not None else f"> {timeout_s:g} s (interrupted)"
            )
            print(f"  (c) {label}: {shown}", flush=True)
            out.append((label, median, " ".join(f"{k}={v}" for k, v in params.items())))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--members", type=int, default=100_000, help="members (default 100000)")
    ap.add_argument("--groups", type=int, help="groups (default: members / 250, at least 24)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="default bench/out")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per report (default 5)")
    ap.add_argument(
        "--report-timeout", type=float, default=60.0, help="seconds before a report is interrupted"
    )
    ap.add_argument(
        "--reports-only", action="store_true", help="only (c), on the database of the last run"
    )
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args(argv)
    groups = args.groups or max(24, args.members // 250)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    data_dir = out / "data"
    data_dir.mkdir(exist_ok=True)
    db = out / "quanzi-bench.sqlite3"
    # Nothing in this process may touch the developer's own database or data directory.
    os.environ["QUANZI_DATABASE_URL"] = f"sqlite:///{db}"
    os.environ["QUANZI_DATA_DIR"] = str(data_dir)

    path, n_events = events_file(out, args.seed, args.members, groups)
    size_mb = path.stat().st_size / 1e6
    print(f"community    {args.members:,} members, {groups} groups, {DAYS} days to {END_DAY}")
    print(f"             {n_events:,} events, {size_mb:.0f} MB", flush=True)

    rows: list[tuple[str, str, str, bool]] = []
    results: dict[str, Any] = {"members": args.members, "groups": groups, "events": n_events}
    if args.reports_only:
        if not db.exists():
            raise SystemExit(f"{db} does not exist: run without --reports-only first")
    else:
        base_rows, base_s = baseline(path, out / "baseline.sqlite3")
        base_rate = base_rows / base_s
        print(f"  (a) baseline: {base_rate:,.0f} events/s", flush=True)
        ing = quanzi_ingest(path, db, data_dir)
        seconds, startup = float(ing["seconds"]), float(ing["startup_seconds"])
        rate = n_events / seconds
        ratio = rate / base_rate
        rss = float(ing["peak_rss_mb"])
        print(f"  (b) quanzi ingest: {rate:,.0f} events/s, peak RSS {rss:.0f} MB", flush=True)
        counts = f"{ing['applied']:,} / {ing['duplicates']:,} / {ing['refused']:,}"
        all_applied = ing["applied"] == n_events and ing["refused"] == 0
        rows += [
            ("(a) baseline: json.loads + executemany, 1 table", f"{base_rate:,.0f} events/s", "", True),
            ("    time", f"{base_s:.1f} s", "", True),
            ("(b) quanzi ingest (subprocess, fresh SQLite)", f"{rate:,.0f} events/s",
             f"≥ {TARGET_EVENTS_PER_S:,}", rate >= TARGET_EVENTS_PER_S),
            ("    time (of which start + migrate)", f"{seconds:.1f} s ({startup:.1f} s)", "", True),
            ("    ratio to baseline", f"{ratio:.3f}", f"≥ {TARGET_RATIO}", ratio >= TARGET_RATIO),
            ("    peak RSS", f"{rss:.0f} MB", f"≤ {TARGET_RSS_MB:.0f} MB", rss <= TARGET_RSS_MB),
            ("    applied / duplicates / refused", counts, f"{n_events:,} / 0 / 0", all_applied),
        ]  # fmt: skip
        results.update(
            baseline_events_per_s=round(base_rate),
            ingest_events_per_s=round(rate),
            ingest_seconds=round(seconds, 2),
            startup_seconds=round(startup, 2),
            ratio=round(ratio, 4),
            peak_rss_mb=round(rss, 1),
            applied=ing["applied"],
            refused=ing["refused"],
        )
    reports = report_latencies(db, max(1, args.runs), args.report_timeout)
    for label, ms, _params in reports:
        figure = f"{ms:,.1f} ms" if ms is not None else f"> {args.report_timeout:g} s"
        ok = ms is not None and ms <= TARGET_REPORT_MS
        rows.append((f"(c) report {label}", figure, f"≤ {TARGET_REPORT_MS:.0f} ms", ok))
    results["reports_ms"] = {
        label: None if ms is None else round(ms, 1) for label, ms, _ in reports
    }
    results["all_targets_met"] = all(ok for _l, _f, target, ok in rows if target)

    header = ("measure", "figure", "target")
    texts = [(label, figure, target) for label, figure, target, _ok in rows]
    widths = [max(len(h), *(len(t[i]) for t in texts)) for i, h in enumerate(header)]
    print()
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + "  ok")
    print("  ".join("-" * w for w in widths) + "  --")
    for label, figure, target, ok in rows:
        mark = ("yes" if ok else "NO") if target else ""
        cells = (label, figure, target)
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + "  " + mark)
    print(f"\nreports: median of {args.runs} runs after a warm-up; parameters:")
    for label, _ms, params in reports:
        print(f"  {label}: {params}")
    (out / "results.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(f"\nresults      {out / 'results.json'}")
    return 1 if args.check and not results["all_targets_met"] else 0


if __name__ == "__main__":
    sys.exit(main())
