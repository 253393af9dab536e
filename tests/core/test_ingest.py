"""Ingestion rules of contracts/events.md: order, idempotency, refusals, strict, isolation, rebuild."""

from __future__ import annotations

import json
import random

from community import Community, line, worked_lines
from randomcommunity import random_events
from snapshot import projections
from sqlalchemy import Engine, func, select

from quanzi.core.events.models import EventRecord
from quanzi.core.events.projections import rebuild


def _count_events(engine: Engine, ws: int) -> int:
    with engine.connect() as c:
        return int(
            c.scalar(
                select(func.count()).select_from(EventRecord).where(EventRecord.workspace_id == ws)
            )
            or 0
        )


def test_bad_lines_refused_one_by_one_good_lines_applied(engine: Engine) -> None:
    c = Community(engine)
    lines = [
        line(
            id="a",
            type="member.joined",
            ts="2026-01-01T10:00:00Z",
            platform="wecom",
            group="g",
            member="m",
        ),
        "{broken",
        "",
        line(
            id="b",
            type="order.paid",
            ts="2026-01-01T10:00:00Z",
            platform="wecom",
            order="o",
            member="m",
            amount=1.5,
        ),
        line(
            id="c",
            type="message.posted",
            ts="2026-01-01T11:00:00Z",
            platform="wecom",
            group="g",
            member="m",
        ),
    ]
    rep = c.ingest(lines)
    assert (rep.applied, rep.duplicates) == (2, 0)
    assert [n for n, _ in rep.refused] == [2, 4]
    assert rep.as_dict()["errors"][1] == "line 4: amount must be an integer (minor units)"
    assert _count_events(engine, c.ws_id) == 2
    assert c.report("overview", date="2026-01-01")["messages"] == 1


def test_strict_applies_nothing_when_a_line_is_bad(engine: Engine) -> None:
    c = Community(engine)
    good = worked_lines()
    rep = c.ingest([*good[:30], '{"id":"x"}', *good[30:]], strict=True)
    assert rep.applied == 0 and [n for n, _ in rep.refused] == [31]
    assert _count_events(engine, c.ws_id) == 0
    assert c.report("overview", date="2025-12-22")["members"] == 0
    rep = c.ingest(good, strict=True)
    assert rep.applied == 51 and not rep.refused


def test_strict_across_batches_rolls_everything_back(engine: Engine) -> None:
    from quanzi.core.events.service import ingest_lines

    c = Community(engine)
    lines = random_events(7, n_members=60)
    rep = ingest_lines(engine, c.ws_id, [*lines, "nope"], strict=True, batch_lines=50)
    assert rep.applied == 0 and len(rep.refused) == 1
    assert _count_events(engine, c.ws_id) == 0


def test_same_id_different_content_first_wins_with_warning(engine: Engine) -> None:
    c = Community(engine)
    first = line(
        id="x",
        type="member.joined",
        ts="2026-01-01T10:00:00Z",
        platform="wecom",
        group="g1",
        member="m",
    )
    other = line(
        id="x",
        type="member.joined",
        ts="2026-01-01T10:00:00Z",
        platform="wecom",
        group="g2",
        member="m",
    )
    same_reformatted = json.dumps(json.loads(first), indent=None, separators=(", ", ": "))
    rep = c.ingest([first])
    rep2 = c.ingest([other, same_reformatted])
    assert (rep2.applied, rep2.duplicates) == (0, 2)
    assert [n for n, _ in rep2.warnings] == [1]  # only the one whose content differs
    assert [g["group"] for g in c.report("groups", date="2026-01-01")["groups"]] == ["g1"]
    assert rep.applied == 1


def test_unknown_fields_are_kept_in_the_raw_log(engine: Engine) -> None:
    c = Community(engine)
    raw = line(
        id="u",
        type="group.created",
        ts=1,
        platform="wecom",
        group="g",
        name="n",
        future_field={"x": [1, 2]},
    )
    c.ingest([raw])
    with engine.connect() as conn:
        stored = conn.scalar(select(EventRecord.raw).where(EventRecord.event_id == "u"))
    assert json.loads(stored)["future_field"] == {"x": [1, 2]}


def test_workspaces_never_see_each_other(engine: Engine) -> None:
    a, b = Community(engine, "brand-a"), Community(engine, "brand-b")
    a.ingest(worked_lines())
    b.ingest([ln for ln in worked_lines() if '"id":"t10"' in ln])
    assert b.report("overview", date="2025-12-22")["members"] == 1
    assert a.report("overview", date="2025-12-22")["members"] == 3
    assert [g["group"] for g in b.report("groups", date="2025-12-29")["groups"]] == ["gA"]
    assert b.report("invites", from_="2025-12-01", to="2026-01-31") == {"inviters": []}
    # the same event id in another workspace is not a duplicate
    rep = b.ingest(worked_lines())
    assert rep.applied == 50 and rep.duplicates == 3
    assert projections(engine, a.ws_id) == projections(engine, b.ws_id)


def test_rebuild_equals_incremental_on_a_large_shuffled_dataset(engine: Engine) -> None:
    lines = random_events(11, n_members=1500, days=50)
    rng = random.Random(5)
    rng.shuffle(lines)
    c = Community(engine)
    from quanzi.core.events.service import ingest_lines

    # Incremental, in small shuffled batches so that late events are the rule.
    for i in range(0, len(lines), 2000):
        assert not ingest_lines(engine, c.ws_id, lines[i : i + 2000], batch_lines=300).refused
    incremental = projections(engine, c.ws_id)
    assert len(incremental["memberships"]) > 1500 and len(incremental["daily_activity"]) > 1000
    replayed = rebuild(engine, c.ws_id)
    assert replayed == _count_events(engine, c.ws_id)
    assert projections(engine, c.ws_id) == incremental

    # And the same set in file order, in one go, into another workspace.
    d = Community(engine, "other")
    assert not d.ingest(sorted(lines)).refused
    assert projections(engine, d.ws_id) == incremental


def test_rebuild_keeps_operator_marks(engine: Engine) -> None:
    from quanzi.core.members.service import mark_staff
    from quanzi.db.engine import session_scope

    c = Community(engine)
    c.ingest(worked_lines())
    with session_scope(engine) as s:
        mark_staff(s, c.ws_id, "wecom", "wm_a")
    before = c.report(
        "invites",
        from_="2025-12-22",
        to="2026-01-07",
        as_of="2026-01-08T00:00:00+08:00",
        fraud_flagged=["wm_f"],
    )
    rebuild(engine, c.ws_id)
    after = c.report(
        "invites", from_="2025-12-22", to="2026-01-07", as_of="2026-01-08T00:00:00+08:00"
    )
    assert (
        after
        == before
        == {"inviters": [{"inviter": "wm_b", "raw": 2, "new": 2, "valid": 0, "pending": 1}]}
    )
