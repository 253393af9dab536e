"""抽奖: verifiable lottery draws (commit to a seed, publish the list, draw, reveal the seed).

The algorithm, so that anyone can recompute the winners (`quanzi campaign verify-draw`):

1. Before the draw, a 32-byte random seed is drawn and its commitment
   `sha256(seed)` (hex) is published on the campaign's page.
2. The participant list is everyone who joined before `draw_at`, in ascending participant id
   order (published with masked names: `published_list`).
3. A stream of 256-bit integers: `r_i = int(HMAC-SHA256(key=seed, msg="quanzi-draw:" + str(i)))`
   (big-endian), i = 0, 1, 2, …
4. A uniform integer below m takes the next r_i, rejecting it while r_i ≥ 2^256 − (2^256 mod m)
   (no modulo bias), and answers r_i mod m.
5. A partial Fisher–Yates shuffle of the list: for k = 0 … w − 1, j = k + uniform(n − k), swap
   positions k and j. The winners are positions 0 … w − 1, in that order (w = min(winners, n)).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import logging
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from quanzi.campaigns import group_buy, rewards, service
from quanzi.campaigns.models import Campaign, Participant
from quanzi.core.members.models import Member
from quanzi.core.members.personal import open_value
from quanzi.core.workspaces.service import workspace_key
from quanzi.kit import clock
from quanzi.kit.crypto import WorkspaceKey
from quanzi.kit.errors import InvalidParameter, NotFound
from quanzi.kit.masking import mask_name, mask_phone

log = logging.getLogger(__name__)

SEED_BYTES = 32
_SPACE = 1 << 256
_LABEL = b"quanzi-draw:"


def commitment_of(seed: bytes) -> str:
    """The published commitment to a seed: sha256 of its 32 bytes, as 64 hex digits."""
    return hashlib.sha256(seed).hexdigest()


def _stream(seed: bytes) -> Iterator[int]:
    i = 0
    while True:
        digest = hmac.new(seed, _LABEL + str(i).encode(), hashlib.sha256).digest()
        yield int.from_bytes(digest, "big")
        i += 1


def _below(stream: Iterator[int], m: int) -> int:
    limit = _SPACE - _SPACE % m
    while True:
        r = next(stream)
        if r < limit:
            return r % m


def draw_winners(seed: bytes, participants: Sequence[int], winners: int) -> list[int]:
    """The winners among `participants` (in published order), first prize first."""
    if winners < 0:
        raise ValueError(f"winners must not be negative, not {winners}")
    order = list(participants)
    stream = _stream(seed)
    n = len(order)
    for k in range(min(winners, n)):
        j = k + _below(stream, n - k)
        order[k], order[j] = order[j], order[k]
    return order[: min(winners, n)]


@dataclass(frozen=True)
class PublishedEntry:
    """One line of the published participant list: the id the draw uses and a masked name."""

    participant_id: int
    name: str


def parse_published(text: str) -> list[int]:
    """Participant ids, in published order, from the JSON or CSV list a campaign page offers.

    JSON: `{"participants": [{"id": 12, "name": "张*"}, ...], ...}` or a plain list of those
    objects or of ids. CSV: a header with an `id` column. Raises ValueError saying what is wrong.
    """
    stripped = text.lstrip("\ufeff").strip()
    if not stripped:
        raise ValueError("the participant list is empty")
    if stripped[0] in "[{":
        try:
            data: Any = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"the participant list is not valid JSON: {exc}") from None
        rows = data.get("participants") if isinstance(data, dict) else data
        if not isinstance(rows, list):
            raise ValueError('the JSON list needs a "participants" array')
        ids = []
        for n, row in enumerate(rows):
            value = row.get("id") if isinstance(row, dict) else row
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"participants[{n}]: id must be an integer")
            ids.append(value)
        return ids
    reader = csv.DictReader(io.StringIO(stripped))
    if not reader.fieldnames or "id" not in reader.fieldnames:
        raise ValueError("the CSV list needs a header line with an `id` column")
    out = []
    for line, row in enumerate(reader, start=2):
        try:
            out.append(int(row["id"]))
        except (TypeError, ValueError):
            raise ValueError(f"line {line}: id must be an integer, not {row['id']!r}") from None
    return out


def to_csv(entries: Sequence[PublishedEntry]) -> str:
    """The published list as CSV (`position,id,name`), for download."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["position", "id", "name"])
    for pos, e in enumerate(entries):
        writer.writerow([pos, e.participant_id, e.name])
    return buf.getvalue()


@dataclass(frozen=True)
class Verification:
    """What `verify` found: whether the seed matches the commitment, and the winners."""

    commitment_matches: bool
    winners: list[int]


def seed_from_hex(seed_hex: str) -> bytes:
    """A revealed seed (64 hex digits) as bytes; ValueError naming what is wrong."""
    text = seed_hex.strip().lower()
    try:
        seed = bytes.fromhex(text)
    except ValueError:
        raise ValueError("the seed must be hexadecimal") from None
    if len(seed) != SEED_BYTES:
        raise ValueError(f"the seed must be {SEED_BYTES} bytes (64 hex digits), not {len(seed)}")
    return seed


def verify(
    seed_hex: str, commitment_hex: str, participants: Sequence[int], winners: int
) -> Verification:
    """Recompute a draw from the revealed seed and the published list."""
    seed = seed_from_hex(seed_hex)
    matches = hmac.compare_digest(commitment_of(seed), commitment_hex.strip().lower())
    return Verification(matches, draw_winners(seed, participants, winners))


# --- draws in the database -------------------------------------------------------------------


def _settings(campaign: Campaign) -> dict[str, Any]:
    return group_buy.kind_settings(campaign, "lottery")


def lottery_by_key(session: Session, ws_id: int, key: str) -> Campaign:
    """A workspace's lottery campaign by its key; NotFound / InvalidParameter otherwise."""
    found = session.scalar(
        select(Campaign).where(Campaign.workspace_id == ws_id, Campaign.key == key)
    )
    if found is None:
        raise NotFound(f"campaign: no campaign {key!r} in this workspace")
    _settings(found)
    return found


def commit(session: Session, campaign: Campaign, *, now_us: int | None = None) -> str:
    """Draw the seed and publish its commitment (once: the existing one after that). It must
    come before the draw time, so nobody can pick the seed once the list is known."""
    settings = _settings(campaign)
    if campaign.draw_commitment:
        return campaign.draw_commitment
    now = clock.now_us() if now_us is None else now_us
    if campaign.status not in ("draft", "live"):
        raise InvalidParameter(f"status: a {campaign.status} campaign draws no lots")
    if now >= int(settings["draw_at_us"]):
        raise InvalidParameter("lottery.draw_at_us: the draw time has passed without a commitment")
    seed = secrets.token_bytes(SEED_BYTES)
    done = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.draw_commitment.is_(None))
        .values(draw_commitment=commitment_of(seed), draw_seed=seed.hex())
        .execution_options(synchronize_session=False)
    )
    session.refresh(campaign)
    if getattr(done, "rowcount", 0) != 1:
        log.info("campaign %s: committed by a concurrent call", campaign.id)
    assert campaign.draw_commitment is not None
    return campaign.draw_commitment


def entrants(session: Session, campaign: Campaign) -> list[Participant]:
    """Who is in the draw: participants who joined before the draw time, by id ascending."""
    draw_at = int(_settings(campaign)["draw_at_us"])
    return list(
        session.scalars(
            select(Participant)
            .where(Participant.campaign_id == campaign.id, Participant.joined_at_us < draw_at)
            .order_by(Participant.id)
        )
    )


@dataclass(frozen=True)
class PublishedList:
    """What the campaign page publishes for anyone to check the draw with."""

    campaign: str
    commitment: str | None
    seed: str | None  # revealed only after the draw
    draw_at_us: int
    drawn_at_us: int | None
    winners: int
    entries: list[PublishedEntry]

    def as_json(self) -> str:
        return json.dumps(
            {
                "campaign": self.campaign,
                "algorithm": "quanzi-draw-v1",
                "commitment": self.commitment,
                "seed": self.seed,
                "draw_at": clock.from_us(self.draw_at_us).isoformat(),
                "drawn_at": clock.from_us(self.drawn_at_us).isoformat()
                if self.drawn_at_us is not None
                else None,
                "winners": self.winners,
                "participants": [{"id": e.participant_id, "name": e.name} for e in self.entries],
            },
            ensure_ascii=False,
            indent=1,
        )

    def as_csv(self) -> str:
        return to_csv(self.entries)


def _shown_names(session: Session, campaign: Campaign, people: list[Participant]) -> list[str]:
    """Masked names for the public list: the name given on the page, else the member's, else
    the masked phone number, else nothing."""
    key: WorkspaceKey | None = None
    member_ids = [p.member_id for p in people if p.member_id is not None]
    members: dict[int, str | None] = {}
    for start in range(0, len(member_ids), 500):
        chunk = member_ids[start : start + 500]
        rows = session.execute(select(Member.id, Member.name).where(Member.id.in_(chunk))).all()
        members.update((mid, name) for mid, name in rows)
    out = []
    for p in people:
        if p.name_sealed:
            key = key or workspace_key(session, campaign.workspace_id)
            out.append(mask_name(open_value(key, "name", p.name_sealed)))
        elif p.member_id is not None and members.get(p.member_id):
            out.append(mask_name(members[p.member_id] or ""))
        elif p.phone_sealed:
            key = key or workspace_key(session, campaign.workspace_id)
            out.append(mask_phone(open_value(key, "phone", p.phone_sealed)))
        else:
            out.append("")
    return out


def published_list(session: Session, campaign: Campaign) -> PublishedList:
    """The draw's participant list (ids ascending, masked names), its commitment, and after
    the draw the seed: everything `quanzi campaign verify-draw` needs."""
    settings = _settings(campaign)
    people = entrants(session, campaign)
    names = _shown_names(session, campaign, people)
    return PublishedList(
        campaign=campaign.key,
        commitment=campaign.draw_commitment,
        seed=campaign.draw_seed if campaign.drawn_at_us is not None else None,
        draw_at_us=int(settings["draw_at_us"]),
        drawn_at_us=campaign.drawn_at_us,
        winners=int(settings["winners"]),
        entries=[PublishedEntry(p.id, n) for p, n in zip(people, names, strict=True)],
    )


def winner_ids(session: Session, campaign: Campaign) -> list[int]:
    """The winners of a drawn lottery, first prize first (recomputed from the seed); [] before."""
    if campaign.drawn_at_us is None or not campaign.draw_seed:
        return []
    ids = [p.id for p in entrants(session, campaign)]
    return draw_winners(bytes.fromhex(campaign.draw_seed), ids, int(_settings(campaign)["winners"]))


def draw(session: Session, campaign: Campaign, *, now_us: int | None = None) -> list[int]:
    """Draw the winners at or after the draw time, reveal the seed and grant each winner the
    reward (reason `draw`); once: a drawn lottery answers its winners again."""
    settings = _settings(campaign)
    now = clock.now_us() if now_us is None else now_us
    if campaign.drawn_at_us is not None:
        return winner_ids(session, campaign)
    if campaign.status not in ("live", "ended"):
        raise InvalidParameter(f"status: a {campaign.status} campaign draws no lots")
    if not campaign.draw_commitment or not campaign.draw_seed:
        raise InvalidParameter("lottery: no commitment was published, so there is no fair draw")
    if now < int(settings["draw_at_us"]):
        raise InvalidParameter("lottery.draw_at_us: the draw time has not come yet")
    done = session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id, Campaign.drawn_at_us.is_(None))
        .values(drawn_at_us=now)
        .execution_options(synchronize_session=False)
    )
    session.refresh(campaign)
    if getattr(done, "rowcount", 0) != 1:
        return winner_ids(session, campaign)  # drawn by a concurrent call
    won = winner_ids(session, campaign)
    reward_id = int(settings["reward_id"])
    for rank, pid in enumerate(won, start=1):
        winner = session.get(Participant, pid)
        assert winner is not None
        service.record_action(
            session, campaign, winner, "draw_win", f"draw:win:{pid}",
            detail={"rank": rank}, now_us=now,
        )  # fmt: skip
        try:
            rewards.grant(session, campaign, winner, reward_id, "draw", now_us=now)
        except (rewards.OutOfStock, rewards.CapReached) as exc:
            log.warning("campaign %s: winner %s gets no reward: %s", campaign.id, pid, exc)
    return won
