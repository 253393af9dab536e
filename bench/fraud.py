"""Invite fraud detection on a simulated community with planted fraud: precision and recall.

    .venv/bin/python bench/fraud.py [--members 3000] [--seed 42]

The demo generator's base community plus `plant_fraud` (self-invites, quick leavers, sybil rings
half led by young accounts, device / network / poster farms with families, offices and a kiosk
as innocent controls, each with ground truth) is ingested into a fresh SQLite file, the planted
leads and poster visits stored; `detect` runs as of the window's end. For each kind: planted, flagged, true positives,
precision and recall. A suspect counts for every kind of signal it carries. Target (issue 6):
precision ≥ 0.9 and recall ≥ 0.9 per kind on 3,000 members.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import orjson
from sqlalchemy import select

from quanzi.acquisition import fraud
from quanzi.core.events.service import ingest_lines
from quanzi.core.members.models import Member
from quanzi.core.workspaces.service import get_or_create_workspace
from quanzi.db.engine import get_engine, session_scope
from quanzi.demo.fraud_leads import load_planted_acquisition
from quanzi.demo.generator import FRAUD_KINDS, DemoSpec, generate, plant_fraud
from quanzi.kit.clock import LocalCalendar

END_DAY = date(2026, 11, 30)
TARGET = 0.9


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--members", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    spec = DemoSpec(args.seed, args.members, end_day=END_DAY, fraud=True).resolved()
    base = generate(spec.seed, members=spec.members, days=spec.days, end_day=END_DAY)
    events, truth, acquisition = plant_fraud(spec, base)
    with tempfile.TemporaryDirectory() as tmp:
        engine = get_engine(f"sqlite:///{Path(tmp) / 'fraud.db'}")
        with session_scope(engine) as s:
            ws_id = get_or_create_workspace(s, "bench").id
        t0 = time.perf_counter()
        rep = ingest_lines(engine, ws_id, [orjson.dumps(e) for e in events])
        t_ingest = time.perf_counter() - t0
        n_leads, n_visits = load_planted_acquisition(engine, ws_id, acquisition)
        cal = LocalCalendar("Asia/Shanghai")
        with session_scope(engine) as s:
            t1 = time.perf_counter()
            suspects = fraud.detect(s, ws_id, cal, as_of_us=cal.day_start_us(_day(END_DAY) + 1))
            t_detect = time.perf_counter() - t1
            keys = dict(s.execute(select(Member.id, Member.member_key)).all())
        engine.dispose()
    print(
        f"community    {spec.members:,} members, {len(events):,} events ({len(rep.refused)} refused)"
    )
    print(f"planted      {n_leads:,} leads, {n_visits:,} poster visits")
    print(
        f"ingest       {t_ingest:.1f} s;  detect {t_detect * 1000:.0f} ms, {len(suspects)} suspects"
    )
    print()
    print("| kind | planted | flagged | true positives | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- |")
    ok = True
    for kind in FRAUD_KINDS:
        planted = set(truth[kind])
        flagged = {keys[x.member_id] for x in suspects if kind in x.kinds}
        tp = len(planted & flagged)
        precision = tp / len(flagged) if flagged else 0.0
        recall = tp / len(planted) if planted else 0.0
        ok = ok and precision >= TARGET and recall >= TARGET
        print(
            f"| {kind} | {len(planted)} | {len(flagged)} | {tp} | {precision:.3f} | {recall:.3f} |"
        )
    print()
    print("target: precision and recall >= 0.9 for each kind:", "met" if ok else "NOT met")
    return 0 if ok else 1


def _day(d: date) -> int:
    return (d - date(1970, 1, 1)).days


if __name__ == "__main__":
    sys.exit(main())
