"""`quanzi campaign …` as people use it: anyone checking a lottery with verify-draw (against a
real draw and its published list), the operator downloading the list and running the sweep."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from community import Community
from sqlalchemy import Engine
from test_campaign_service import join, live_campaign, make_reward
from typer.testing import CliRunner

from quanzi.campaigns import lottery
from quanzi.campaigns.models import Campaign
from quanzi.cli.main import app
from quanzi.config import get_settings
from quanzi.db.engine import get_engine, session_scope
from quanzi.kit.clock import HOUR_US, now_us

runner = CliRunner()
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


# --- against a real draw ----------------------------------------------------------------------


@pytest.fixture
def drawn(db_url: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Engine, str, list[int]]:
    """A lottery with 12 participants, drawn (3 winners); the CLI reads the same database."""
    monkeypatch.setenv("QUANZI_DATABASE_URL", db_url)
    get_settings.cache_clear()
    engine = get_engine(db_url)
    c = Community(engine)
    draw_at = now_us() + HOUR_US
    reward = make_reward(engine, c.ws_id, stock=5, kind="points")
    rules = {"lottery": {"winners": 3, "reward_id": reward, "draw_at_us": draw_at}}
    cid = live_campaign(engine, c.ws_id, "lottery", rules, key="cj")
    for i in range(12):
        join(engine, cid, phone=f"1351234{i:04d}", name=f"参与者{i}")
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        lottery.commit(s, camp)
    with session_scope(engine) as s:
        camp = s.get(Campaign, cid)
        assert camp is not None
        won = lottery.draw(s, camp, now_us=draw_at)
    return engine, "cj", won


def _download(tmp_path: Path, fmt: str) -> Path:
    result = runner.invoke(app, ["campaign", "draw-list", "--campaign", "cj", "--format", fmt])
    assert result.exit_code == 0, result.output
    path = tmp_path / f"published.{fmt}"
    path.write_text(result.stdout, encoding="utf-8")
    return path


def test_verify_draw_reproduces_the_draw_from_the_published_list(
    drawn: tuple[Engine, str, list[int]], tmp_path: Path
) -> None:
    _engine, _key, won = drawn
    published = json.loads(_download(tmp_path, "json").read_text(encoding="utf-8"))
    assert published["algorithm"] == "quanzi-draw-v1" and published["winners"] == 3
    assert len(published["participants"]) == 12
    assert all(p["name"].startswith("参") and "*" in p["name"] for p in published["participants"])
    for fmt in ("json", "csv"):
        code, out = _verify(
            "--seed", published["seed"], "--commitment", published["commitment"],
            "--participants", str(_download(tmp_path, fmt)), "--winners", "3", "--json",
        )  # fmt: skip
        assert code == 0, out
        assert json.loads(out)["winners"] == won


def test_a_tampered_list_or_seed_is_detected(
    drawn: tuple[Engine, str, list[int]], tmp_path: Path
) -> None:
    _engine, _key, won = drawn
    path = _download(tmp_path, "json")
    published = json.loads(path.read_text(encoding="utf-8"))
    # Someone drops the first winner from the list they publish: the winners no longer match.
    published["participants"] = [p for p in published["participants"] if p["id"] != won[0]]
    tampered = tmp_path / "tampered.json"
    tampered.write_text(json.dumps(published), encoding="utf-8")
    code, out = _verify(
        "--seed", published["seed"], "--commitment", published["commitment"],
        "--participants", str(tampered), "--winners", "3", "--json",
    )  # fmt: skip
    assert code == 0 and json.loads(out)["winners"] != won
    # A seed other than the committed one: exit 2.
    seed = bytearray(bytes.fromhex(published["seed"]))
    seed[0] ^= 1
    code, out = _verify(
        "--seed", seed.hex(), "--commitment", published["commitment"],
        "--participants", str(path), "--winners", "3",
    )  # fmt: skip
    assert code == 2 and "DOES NOT MATCH" in out


def test_draw_list_of_an_unknown_or_wrong_campaign(drawn: tuple[Engine, str, list[int]]) -> None:
    result = runner.invoke(app, ["campaign", "draw-list", "--campaign", "nope"])
    assert result.exit_code == 2 and "no campaign 'nope'" in result.output
    result = runner.invoke(app, ["campaign", "draw-list", "--campaign", "cj", "--format", "xml"])
    assert result.exit_code == 2 and "json or csv" in result.output


def test_sweep_command_settles_due_work(drawn: tuple[Engine, str, list[int]]) -> None:
    result = runner.invoke(app, ["campaign", "sweep"])
    assert result.exit_code == 0, result.output
    assert "teams_refunded: 0" in result.output and "lotteries_drawn: 0" in result.output
