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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

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
