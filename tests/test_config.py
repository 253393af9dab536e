"""Settings from the environment: where the database lives and the generated secret key."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import inspect

from quanzi.config import DEFAULT_TIMEZONE, Settings, get_settings
from quanzi.db.engine import dispose_engines, get_engine

PRINT_SECRET_KEY = (
    "from quanzi.config import get_settings; print(get_settings().resolved_secret_key())"
)


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "data"
    monkeypatch.setenv("QUANZI_DATA_DIR", str(path))
    get_settings.cache_clear()
    return path


def files_holding(directory: Path, value: str) -> list[Path]:
    return [p for p in directory.iterdir() if p.is_file() and p.read_text().strip() == value]


def test_default_database_is_a_sqlite_file_under_the_data_dir(data_dir: Path) -> None:
    url = get_settings().resolved_database_url()
    assert url.startswith("sqlite:///")
    path = Path(url.removeprefix("sqlite:///"))
    assert path.parent == data_dir
    assert data_dir.is_dir()


def test_first_use_creates_the_default_database(data_dir: Path) -> None:
    engine = get_engine()
    try:
        assert Path(engine.url.database or "").parent == data_dir
        assert Path(engine.url.database or "").is_file()
        assert "workspaces" in inspect(engine).get_table_names()
    finally:
        dispose_engines()


def test_database_url_from_the_environment_overrides_the_default(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere.sqlite3"
    monkeypatch.setenv("QUANZI_DATABASE_URL", f"sqlite:///{elsewhere}")
    get_settings.cache_clear()
    assert get_settings().resolved_database_url() == f"sqlite:///{elsewhere}"
    try:
        get_engine()
    finally:
        dispose_engines()
    assert elsewhere.is_file()
    assert not data_dir.exists() or not list(data_dir.glob("*.sqlite3"))


def test_secret_key_is_generated_once_and_readable_only_by_its_owner(data_dir: Path) -> None:
    key = Settings().resolved_secret_key()
    assert len(key) >= 32
    [stored] = files_holding(data_dir, key)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert Settings().resolved_secret_key() == key
    assert get_settings().resolved_secret_key() == key


def test_secret_key_is_the_same_in_the_next_process(data_dir: Path) -> None:
    def from_new_process() -> str:
        done = subprocess.run(
            [sys.executable, "-c", PRINT_SECRET_KEY],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip()

    first = from_new_process()
    assert first
    assert from_new_process() == first
    assert Settings().resolved_secret_key() == first


def test_secret_key_from_the_environment_is_used_and_not_stored(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUANZI_SECRET_KEY", "configured-by-the-operator")
    assert Settings().resolved_secret_key() == "configured-by-the-operator"
    assert not data_dir.exists() or not any(data_dir.iterdir())


def test_default_time_zone_is_shanghai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QUANZI_DEFAULT_TIMEZONE", raising=False)
    assert Settings().default_timezone == DEFAULT_TIMEZONE == "Asia/Shanghai"
