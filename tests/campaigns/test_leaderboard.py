"""Leaderboards: score desc, ties to whoever reached it first, then id; the same order from SQL
(an index range scan, no sort) and from Redis sorted sets (a real redis-server), Redis kept in
step with committed scores only; prizes by rank; the points metric."""

from __future__ import annotations

import os
import random
import secrets
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from community import Community
from sqlalchemy import Engine, func, select, text
from test_campaign_service import PHONE, join, live_campaign, make_reward

from quanzi.campaigns import leaderboard, progress, service
from quanzi.campaigns.models import Campaign, Participant, RewardClaim
from quanzi.config import get_settings
from quanzi.db.engine import session_scope
from quanzi.kit.clock import now_us
from quanzi.kit.errors import InvalidParameter

BASE = now_us()


# --- a real Redis -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def _redis_server() -> Iterator[str]:
    """redis-server on a unix socket of its own (no port to race for), persistence off."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing (CI installs it)")
        pytest.skip("redis-server is not installed here")
    workdir = Path(tempfile.mkdtemp(prefix="qz-board-"))
    sock = workdir / "redis.sock"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"unix://{sock}?db=0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.exceptions.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def redis_url(_redis_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("QUANZI_REDIS_URL", _redis_server)
    get_settings.cache_clear()
    client = leaderboard.redis_client(_redis_server)
    client.flushdb()
    yield _redis_server
    client.flushdb()


# --- helpers ----------------------------------------------------------------------------------


@pytest.fixture
def c(engine: Engine) -> Community:
    return Community(engine)


def _board(c: Community, **rules: object) -> int:
    return live_campaign(
        c.engine, c.ws_id, "leaderboard", {"board": {"metric": "valid_invites", **rules}}
    )


def _people(engine: Engine, cid: int, scores: list[tuple[int, int]]) -> list[int]:
    """Participants with these (score, reached at offset) pairs, inserted in order."""
    with session_scope(engine) as s:
        rows = [
            Participant(
                workspace_id=1,
                campaign_id=cid,
                phone_digest=secrets.token_hex(32),
                token_digest=secrets.token_hex(32),
                score=score,
                score_at_us=BASE + at,
                joined_at_us=BASE,
            )
            for score, at in scores
        ]
        ws = s.get(Campaign, cid)
        assert ws is not None
        for r in rows:
            r.workspace_id = ws.workspace_id
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def _expected(engine: Engine, cid: int) -> list[int]:
    with session_scope(engine) as s:
        rows = s.execute(
            select(Participant.id, Participant.score, Participant.score_at_us).where(
                Participant.campaign_id == cid
            )
        ).all()
    return [pid for pid, _s, _a in sorted(rows, key=lambda r: (-r[1], r[2], r[0]))]


def _top(engine: Engine, cid: int, n: int = 100, backend: str | None = None) -> list[int]:
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        return [r.participant_id for r in leaderboard.top(s, camp, n, backend=backend)]


def _rank(engine: Engine, cid: int, pid: int, backend: str | None = None) -> int:
    with session_scope(engine) as s:
        camp, p = s.get(Campaign, cid), s.get(Participant, pid)
        assert camp is not None and p is not None
        return leaderboard.rank_of(s, camp, p, backend=backend)


# --- SQL --------------------------------------------------------------------------------------


def test_ties_go_to_whoever_reached_the_score_first(c: Community) -> None:
    cid = _board(c)
    a, b, d, e, f = _people(c.engine, cid, [(5, 30), (7, 50), (5, 10), (5, 10), (0, 0)])
    assert _top(c.engine, cid) == [b, d, e, a, f]
    assert [_rank(c.engine, cid, p) for p in (b, d, e, a, f)] == [1, 2, 3, 4, 5]
    assert _top(c.engine, cid, 2) == [b, d]


def test_random_boards_match_the_definition(c: Community) -> None:
    rng = random.Random(7)
    cid = _board(c)
    _people(c.engine, cid, [(rng.randint(0, 6), rng.randint(0, 4)) for _ in range(400)])
    expected = _expected(c.engine, cid)
    assert _top(c.engine, cid, 400) == expected
    for pos in rng.sample(range(400), 25):
        assert _rank(c.engine, cid, expected[pos]) == pos + 1


def test_the_top_query_is_an_index_range_scan_on_sqlite(c: Community) -> None:
    if c.engine.dialect.name != "sqlite":
        pytest.skip("the query plan check is SQLite's (EXPLAIN QUERY PLAN)")
    query = leaderboard.top_query(1, 100)
    compiled = query.compile(c.engine, compile_kwargs={"literal_binds": True})
    with c.engine.connect() as conn:
        plan = " | ".join(str(r[-1]) for r in conn.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "ix_campaign_participants_rank" in plan, plan
    assert "TEMP B-TREE" not in plan, plan


def test_bad_arguments_are_named(c: Community) -> None:
    cid = _board(c)
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        with pytest.raises(InvalidParameter, match="n: give"):
            leaderboard.top(s, camp, 0)
        with pytest.raises(InvalidParameter, match="backend: one of"):
            leaderboard.top(s, camp, 10, backend="memcached")
        with pytest.raises(InvalidParameter, match="Redis is not configured"):
            leaderboard.top(s, camp, 10, backend="redis")


# --- prizes and the points metric -------------------------------------------------------------


def test_prizes_by_rank_once_and_only_for_a_score(c: Community) -> None:
    gold = make_reward(c.engine, c.ws_id, stock=1, kind="physical")
    silver = make_reward(c.engine, c.ws_id, stock=1, kind="physical")
    cid = _board(
        c,
        prizes=[
            {"rank_from": 1, "rank_to": 1, "reward_id": gold},
            {"rank_from": 2, "rank_to": 4, "reward_id": silver},
            {"rank_from": 5, "rank_to": 9, "reward_id": gold},
        ],
    )
    a, b, d, _e = _people(c.engine, cid, [(3, 5), (3, 1), (2, 0), (0, 0)])
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        first = leaderboard.award_prizes(s, camp, by="owner")
        assert [(x.participant_id, x.reason) for x in first] == [(b, "rank:1"), (a, "rank:2")]
        again = leaderboard.award_prizes(s, camp, by="owner")
        assert [x.id for x in again] == [x.id for x in first]
    with session_scope(c.engine) as s:
        # silver had one unit (rank 2 took it); rank 3 gets nothing, score 0 never wins
        assert s.scalar(select(func.count()).select_from(RewardClaim)) == 2
        assert d not in set(s.scalars(select(RewardClaim.participant_id)))


def test_points_metric_ranks_by_points(c: Community) -> None:
    cid = live_campaign(c.engine, c.ws_id, "leaderboard", {"board": {"metric": "points"}})
    p1, _ = join(c.engine, cid, phone=PHONE)
    p2, _ = join(c.engine, cid, phone="13912345678")
    with session_scope(c.engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        for pid, key, pts, at in ((p1, "a", 5, 100), (p2, "b", 3, 50), (p2, "c", 2, 60)):
            p = s.get(Participant, pid)
            assert p is not None
            service.record_action(s, camp, p, "points", key, amount_fen=pts, now_us=BASE + at)
        progress.refresh_campaign(s, camp, BASE + 1000)
    # both have 5; p2 got there at +60, before p1 at +100
    assert _top(c.engine, cid) == [p2, p1]


# --- Redis ------------------------------------------------------------------------------------


def test_redis_member_encoding_round_trips_and_orders() -> None:
    early, late = leaderboard.redis_member(7, 1000), leaderboard.redis_member(3, 2000)
    assert leaderboard.parse_member(early) == (7, 1000)
    assert early > late  # reversed: ZREVRANGE puts the earlier first
    assert leaderboard.redis_member(3, 1000) > leaderboard.redis_member(7, 1000)  # then lower id
    with pytest.raises(ValueError):
        leaderboard.redis_member(1, -5)


def test_redis_gives_the_same_board_as_sql(c: Community, redis_url: str) -> None:
    rng = random.Random(11)
    cid = _board(c)
    _people(c.engine, cid, [(rng.randint(0, 5), rng.randint(0, 3)) for _ in range(300)])
    expected = _expected(c.engine, cid)
    assert _top(c.engine, cid, 300, backend="redis") == expected  # built on first read
    assert _top(c.engine, cid, 300) == expected  # Redis is the default when configured
    assert _top(c.engine, cid, 300, backend="sql") == expected
    for pos in rng.sample(range(300), 20):
        assert _rank(c.engine, cid, expected[pos], backend="redis") == pos + 1


def test_redis_follows_committed_scores_only(c: Community, redis_url: str) -> None:
    cid = _board(c)
    a, b, d = _people(c.engine, cid, [(1, 0), (2, 0), (3, 0)])
    assert _top(c.engine, cid, backend="redis") == [d, b, a]
    with session_scope(c.engine) as s:
        p = s.get(Participant, a)
        assert p is not None
        service.set_score(s, p, 9, BASE + 10)
    assert _top(c.engine, cid, backend="redis") == [a, d, b]
    with pytest.raises(RuntimeError), session_scope(c.engine) as s:
        p = s.get(Participant, b)
        assert p is not None
        service.set_score(s, p, 99, BASE + 20)
        raise RuntimeError("rolled back")
    assert _top(c.engine, cid, backend="redis") == [a, d, b]
    # a tie at 9 reached later ranks after a
    with session_scope(c.engine) as s:
        p = s.get(Participant, d)
        assert p is not None
        service.set_score(s, p, 9, BASE + 30)
    assert _top(c.engine, cid, backend="redis") == [a, d, b] == _expected(c.engine, cid)
    # a board lost in Redis is rebuilt from SQL on the next read
    client = leaderboard.redis_client(redis_url)
    client.flushdb()
    assert _top(c.engine, cid, backend="redis") == [a, d, b]
    assert _rank(c.engine, cid, b, backend="redis") == 3


def test_redis_rank_of_a_newcomer_falls_back_to_sql(c: Community, redis_url: str) -> None:
    cid = _board(c)
    (a,) = _people(c.engine, cid, [(4, 0)])
    assert _top(c.engine, cid, backend="redis") == [a]
    (b,) = _people(c.engine, cid, [(5, 0)])  # inserted behind the board's back
    assert _rank(c.engine, cid, b, backend="redis") == 1
