"""`quanzi campaign verify-draw` as anyone checking a lottery would run it."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from quanzi.campaigns import lottery
from quanzi.cli import campaign

runner = CliRunner()
# The command group as `quanzi` registers it (quanzi.cli.main adds every module the same way).
app = typer.Typer()
campaign.register(app)
SEED = hashlib.sha256(b"cli seed").digest()
PEOPLE = [11, 12, 15, 20, 31, 47, 52, 60]


def _published(tmp_path: Path, ids: list[int], fmt: str = "csv") -> Path:
    entries = [lottery.PublishedEntry(i, "张*") for i in ids]
    path = tmp_path / f"list.{fmt}"
    if fmt == "csv":
        path.write_text(lottery.to_csv(entries), encoding="utf-8")
    else:
        rows = [{"id": e.participant_id, "name": e.name} for e in entries]
        path.write_text(json.dumps({"participants": rows}, ensure_ascii=False), encoding="utf-8")
    return path


def _verify(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["campaign", "verify-draw", *args])
    return result.exit_code, result.output


def test_matching_seed_prints_the_winners_and_exits_0(tmp_path: Path) -> None:
    expected = lottery.draw_winners(SEED, PEOPLE, 3)
    for fmt in ("csv", "json"):
        code, out = _verify(
            "--seed", SEED.hex(), "--commitment", lottery.commitment_of(SEED),
            "--participants", str(_published(tmp_path, PEOPLE, fmt)), "--winners", "3",
        )  # fmt: skip
        assert code == 0, out
        assert "commitment: matches" in out
        for rank, pid in enumerate(expected, start=1):
            assert f"winner {rank}: participant {pid}" in out


def test_json_output(tmp_path: Path) -> None:
    code, out = _verify(
        "--seed", SEED.hex(), "--commitment", lottery.commitment_of(SEED),
        "--participants", str(_published(tmp_path, PEOPLE)), "--winners", "2", "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert data == {
        "commitment_matches": True,
        "participants": len(PEOPLE),
        "winners": lottery.draw_winners(SEED, PEOPLE, 2),
    }


def test_a_tampered_seed_exits_2(tmp_path: Path) -> None:
    other = hashlib.sha256(b"another seed").digest()
    code, out = _verify(
        "--seed", other.hex(), "--commitment", lottery.commitment_of(SEED),
        "--participants", str(_published(tmp_path, PEOPLE)), "--winners", "3",
    )  # fmt: skip
    assert code == 2
    assert "DOES NOT MATCH" in out


def test_bad_input_is_named_and_exits_2(tmp_path: Path) -> None:
    good = str(_published(tmp_path, PEOPLE))
    commitment = lottery.commitment_of(SEED)
    code, out = _verify(
        "--seed", "xyz", "--commitment", commitment, "--participants", good, "--winners", "1"
    )
    assert code == 2 and "hexadecimal" in out
    broken = tmp_path / "broken.json"
    broken.write_text('{"participants": [{"id": "x"}]}', encoding="utf-8")
    code, out = _verify(
        "--seed", SEED.hex(), "--commitment", commitment,
        "--participants", str(broken), "--winners", "1",
    )  # fmt: skip
    assert code == 2 and "participants[0]" in out
    code, out = _verify(
        "--seed", SEED.hex(), "--commitment", commitment,
        "--participants", str(tmp_path / "missing.csv"), "--winners", "1",
    )  # fmt: skip
    assert code == 2 and "does not exist" in out
