"""The one Huey instance; its backend (SQLite file or Redis) is chosen from the settings."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from huey import Huey  # type: ignore[import-untyped]
from huey.storage import MemoryStorage, RedisStorage, SqliteStorage  # type: ignore[import-untyped]

from quanzi.config import get_settings

QUEUE_NAME = "quanzi"
QUEUE_FILE = "jobs.sqlite3"


class ConfiguredHuey(Huey):  # type: ignore[misc]
    """A Huey whose storage is opened on first use from the settings in force then.

    Tasks register on this one instance at import time, but the backend must follow
    QUANZI_REDIS_URL / QUANZI_DATA_DIR as read when a process (or a test) starts using it,
    so the storage is created lazily and `reset_backend()` forgets it.
    """

    def __init__(self, name: str) -> None:
        self._storage: Any = None
        super().__init__(name, results=True, store_none=False, utc=True)

    def create_storage(self) -> Any:
        if self._immediate and self.immediate_use_memory:
            return MemoryStorage(self.name)
        return None  # opened from the settings on first access

    @property
    def storage(self) -> Any:
        if self._storage is None:
            self._storage = storage_from_settings(self.name)
        return self._storage

    @storage.setter
    def storage(self, value: Any) -> None:
        self._storage = value


def storage_from_settings(name: str = QUEUE_NAME) -> Any:
    """RedisStorage when QUANZI_REDIS_URL is set, else a SQLite file in the data directory."""
    settings = get_settings()
    if settings.redis_url:
        return RedisStorage(name, url=settings.redis_url)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # fsync: an acknowledged request's job must survive a crash, like its events do.
    return SqliteStorage(name, filename=str(settings.data_dir / QUEUE_FILE), fsync=True)


huey = ConfiguredHuey(QUEUE_NAME)


def reset_backend() -> None:
    """Close the open storage; the next use opens the one the current settings name."""
    storage = huey._storage
    huey._storage = None
    close = getattr(storage, "close", None)
    if close is not None:
        close()


def uses_redis() -> bool:
    return bool(get_settings().redis_url)


def describe_backend() -> str:
    """Where jobs are queued, for the start-up banner (no password shown)."""
    settings = get_settings()
    if settings.redis_url:
        url = urlsplit(settings.redis_url)
        if url.password:
            host = url.hostname or ""
            netloc = f"{url.username or ''}:***@{host}" + (f":{url.port}" if url.port else "")
            url = url._replace(netloc=netloc)
        return f"Redis {urlunsplit(url)}"
    return f"SQLite {settings.data_dir / QUEUE_FILE}"
