"""Leaderboards (比): participants ranked by score, ties to whoever reached it first.

Order: score descending, then `score_at_us` ascending (the instant the score was reached),
then participant id ascending. Two stores give the same order:

- **SQL** (embedded and the reference): the index `ix_campaign_participants_rank`
  (campaign_id, score DESC, score_at_us, id) answers the top N as an index range scan.
- **Redis** sorted sets (scale-out, when QUANZI_REDIS_URL is set): the set's score is the
  participant's score, exactly (an integer, well within a double's 53 bits); the tie-break is
  in the member name: `(MAX_AT - score_at_us)` as 18 digits, then `(MAX_ID - id)` as 10 digits.
  Redis orders equal scores by member name, in reverse for ZREVRANGE, so reversing the two
  numbers gives "earlier first, then lower id" — exact to the microsecond, which a
  `score * 2^k - time` double could not hold (a microsecond instant alone needs ~51 bits).

The Redis board follows `set_score` after each commit (the committed scores are read back, so
a rolled-back change never reaches it) and is rebuilt from SQL when it is missing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from quanzi.campaigns.models import Campaign, Participant, RewardClaim
from quanzi.config import get_settings
from quanzi.db.engine import READ_ONLY
from quanzi.kit.errors import InvalidParameter

log = logging.getLogger(__name__)

BACKENDS = ("sql", "redis")
MAX_TOP = 10_000
MAX_AT = 10**18 - 1
MAX_ID = 10**10 - 1
KEY_PREFIX = "quanzi:board:"
_PENDING = "quanzi.board.pending"  # session.info: {(campaign_id, participant_id)}
_HOOKED = "quanzi.board.hooked"
REBUILD_CHUNK = 5000

# KEYS: board zset, id→member hash, the "built" marker. ARGV: participant id, score, member.
# A board that was never built stays unbuilt: its first read builds it whole from SQL.
_FOLLOW = """
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('ZREM', KEYS[1], old) end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""


@dataclass(frozen=True)
class Ranked:
    rank: int  # 1-based
    participant_id: int
    score: int
    score_at_us: int


# --- Redis -----------------------------------------------------------------------------------

_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


def redis_client(url: str | None = None) -> Any:
    """A Redis client for `url` (default: QUANZI_REDIS_URL), or None when none is configured."""
    url = url or get_settings().redis_url
    if not url:
        return None
    with _clients_lock:
        client = _clients.get(url)
        if client is None:
            import redis

            client = _clients[url] = redis.Redis.from_url(url, decode_responses=True)
        return client


def _keys(campaign_id: int) -> tuple[str, str, str]:
    base = f"{KEY_PREFIX}{campaign_id}"
    return base, base + ":ids", base + ":built"


def redis_member(participant_id: int, score_at_us: int) -> str:
    """The sorted-set member of a participant: the tie-break, reversed, then the id, reversed."""
    if not 0 <= score_at_us <= MAX_AT or not 0 <= participant_id <= MAX_ID:
        raise ValueError("score_at_us or participant id out of the board's range")
    return f"{MAX_AT - score_at_us:018d}{MAX_ID - participant_id:010d}"


def parse_member(member: str) -> tuple[int, int]:
    """(participant id, score_at_us) of a sorted-set member."""
    return MAX_ID - int(member[18:]), MAX_AT - int(member[:18])


def rebuild_redis(session: Session, campaign: Campaign, client: Any = None) -> int:
    """Replace the campaign's Redis board by the scores in SQL; returns the participants put."""
    client = client or redis_client()
    if client is None:
        raise InvalidParameter("backend: Redis is not configured (QUANZI_REDIS_URL)")
    board, ids, built = _keys(campaign.id)
    tmp_board, tmp_ids = board + ":tmp", ids + ":tmp"
    client.delete(tmp_board, tmp_ids)
    put = 0
    rows = session.execute(
        select(Participant.id, Participant.score, Participant.score_at_us)
        .where(Participant.campaign_id == campaign.id)
        .order_by(Participant.id)
    )
    while chunk := rows.fetchmany(REBUILD_CHUNK):
        members = {redis_member(pid, at): score for pid, score, at in chunk}
        pipe = client.pipeline(transaction=False)
        pipe.zadd(tmp_board, members)
        pipe.hset(tmp_ids, mapping={str(pid): redis_member(pid, at) for pid, _s, at in chunk})
        pipe.execute()
        put += len(chunk)
    pipe = client.pipeline(transaction=True)
    if put:
        pipe.rename(tmp_board, board)
        pipe.rename(tmp_ids, ids)
    else:
        pipe.delete(board, ids)
    pipe.set(built, "1")
    pipe.execute()
    return put


def drop_redis(campaign_id: int, client: Any = None) -> None:
    client = client or redis_client()
    if client is not None:
        client.delete(*_keys(campaign_id))


def follow_score(session: Session, participant: Participant) -> None:
    """After this session commits, copy the participant's committed score to the Redis board."""
    if not get_settings().redis_url:
        return
    session.info.setdefault(_PENDING, set()).add((participant.campaign_id, participant.id))
    if not session.info.get(_HOOKED):
        sa_event.listen(session, "after_commit", _after_commit)
        sa_event.listen(session, "after_soft_rollback", _after_rollback)
        session.info[_HOOKED] = True


def _after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING, None)


def _after_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    try:
        push_scores(engine, sorted(pending))
    except Exception:  # the board is a copy: SQL has the truth, a rebuild repairs it
        log.exception("could not update the Redis leaderboard; it will be rebuilt")
        client = redis_client()
        if client is not None:
            for campaign_id in {c for c, _p in pending}:
                try:
                    client.delete(_keys(campaign_id)[2])
                except Exception:
                    log.exception("could not mark the Redis leaderboard for a rebuild")


def push_scores(engine: Engine, pairs: Sequence[tuple[int, int]]) -> None:
    """Copy the committed scores of (campaign id, participant id) pairs to Redis."""
    client = redis_client()
    if client is None or not pairs:
        return
    with engine.execution_options(**{READ_ONLY: True}).connect() as conn:
        rows = conn.execute(
            select(
                Participant.campaign_id,
                Participant.id,
                Participant.score,
                Participant.score_at_us,
            ).where(Participant.id.in_([p for _c, p in pairs]))
        ).all()
    script = client.register_script(_FOLLOW)
    pipe = client.pipeline(transaction=False)
    for campaign_id, pid, score, at in rows:
        script(keys=list(_keys(campaign_id)), args=[pid, score, redis_member(pid, at)], client=pipe)
    pipe.execute()


# --- reading ---------------------------------------------------------------------------------


def _backend(backend: str | None) -> str:
    if backend is None:
        return "redis" if get_settings().redis_url else "sql"
    if backend not in BACKENDS:
        raise InvalidParameter(f"backend: one of {BACKENDS}")
    return backend


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_TOP:
        raise InvalidParameter(f"n: give 1-{MAX_TOP}")
    return n


def _order() -> tuple[Any, ...]:
    return (Participant.score.desc(), Participant.score_at_us, Participant.id)


def top_query(campaign_id: int, n: int) -> Any:
    """The SQL of the top n (what EXPLAIN checks uses the rank index)."""
    return (
        select(Participant.id, Participant.score, Participant.score_at_us)
        .where(Participant.campaign_id == campaign_id)
        .order_by(*_order())
        .limit(n)
    )


def _redis_ready(session: Session, campaign: Campaign, client: Any) -> None:
    if not client.exists(_keys(campaign.id)[2]):
        rebuild_redis(session, campaign, client)


def top(
    session: Session, campaign: Campaign, n: int = 100, *, backend: str | None = None
) -> list[Ranked]:
    """The first n, best first."""
    n = _check_n(n)
    if _backend(backend) == "redis":
        client = redis_client()
        if client is None:
            raise InvalidParameter("backend: Redis is not configured (QUANZI_REDIS_URL)")
        _redis_ready(session, campaign, client)
        out = []
        pairs = client.zrevrange(_keys(campaign.id)[0], 0, n - 1, withscores=True)
        for i, (member, score) in enumerate(pairs):
            pid, at = parse_member(member)
            out.append(Ranked(i + 1, pid, int(score), at))
        return out
    rows = session.execute(top_query(campaign.id, n)).all()
    return [Ranked(i + 1, int(r[0]), int(r[1]), int(r[2])) for i, r in enumerate(rows)]


def rank_of(
    session: Session, campaign: Campaign, participant: Participant, *, backend: str | None = None
) -> int:
    """The participant's rank (1-based) on the board."""
    if participant.campaign_id != campaign.id:
        raise InvalidParameter("participant: not in this campaign")
    if _backend(backend) == "redis":
        client = redis_client()
        if client is None:
            raise InvalidParameter("backend: Redis is not configured (QUANZI_REDIS_URL)")
        _redis_ready(session, campaign, client)
        found = client.zrevrank(
            _keys(campaign.id)[0], redis_member(participant.id, participant.score_at_us)
        )
        if found is not None:
            return int(found) + 1
        # Not on the board yet (joined since the last rebuild): SQL knows.
    s, at, pid = participant.score, participant.score_at_us, participant.id
    ahead = session.scalar(
        select(func.count())
        .select_from(Participant)
        .where(
            Participant.campaign_id == campaign.id,
            or_(
                Participant.score > s,
                and_(Participant.score == s, Participant.score_at_us < at),
                and_(Participant.score == s, Participant.score_at_us == at, Participant.id < pid),
            ),
        )
    )
    return int(ahead or 0) + 1


# --- prizes ----------------------------------------------------------------------------------


def award_prizes(
    session: Session, campaign: Campaign, *, by: str | None = None, now_us: int | None = None
) -> list[RewardClaim]:
    """Give each prize of the rules to the ranks it names (reason `rank:<n>`), from the SQL
    board (the reference). Only a score above 0 wins; a prize out of stock is logged and the
    ranks after it get nothing of it. Running it again gives nothing twice."""
    from quanzi.campaigns.rewards import CapReached, OutOfStock, grant

    prizes = (campaign.rules.get("board") or {}).get("prizes") or []
    if not prizes:
        return []
    last = max(int(p["rank_to"]) for p in prizes)
    board = top(session, campaign, min(last, MAX_TOP), backend="sql")
    by_rank = {r.rank: r for r in board}
    claims: list[RewardClaim] = []
    for prize in prizes:
        for rank in range(int(prize["rank_from"]), int(prize["rank_to"]) + 1):
            ranked = by_rank.get(rank)
            if ranked is None or ranked.score <= 0:
                break
            participant = session.get(Participant, ranked.participant_id)
            assert participant is not None
            try:
                claims.append(
                    grant(
                        session,
                        campaign,
                        participant,
                        int(prize["reward_id"]),
                        f"rank:{rank}",
                        by=by,
                        now_us=now_us,
                    )
                )
            except OutOfStock:
                log.warning("campaign %s: prize for rank %s is out of stock", campaign.id, rank)
                break
            except CapReached:
                log.warning(
                    "campaign %s: rank %s already has all a person may get", campaign.id, rank
                )
    return claims
