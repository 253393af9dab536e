"""Settings read from the environment (QUANZI_*)."""

from __future__ import annotations

import os
import secrets
from functools import lru_cache
from pathlib import Path

from platformdirs import user_data_dir
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_TIMEZONE = "Asia/Shanghai"


class Settings(BaseSettings):
    """Everything configurable; each field is QUANZI_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="QUANZI_", extra="ignore")

    data_dir: Path = Field(default_factory=lambda: Path(user_data_dir("quanzi", appauthor=False)))
    database_url: str = ""
    secret_key: str = ""
    redis_url: str = ""
    default_timezone: str = DEFAULT_TIMEZONE
    # Largest accepted body of POST /api/v1/events, in bytes.
    max_ingest_body: int = 32 * 1024 * 1024
    # Minutes between two scheduled WeCom syncs of a workspace; 0 turns the schedule off.
    wecom_sync_minutes: int = Field(default=30, ge=0)
    # Minutes between two scheduled invite-fraud re-scans of a workspace whose data changed
    # (quanzi.acquisition.fraud_jobs); 0 turns the schedule off.
    fraud_scan_minutes: int = Field(default=10, ge=0)
    # Peers whose X-Forwarded-For is believed: comma-separated addresses or networks (CIDR), or
    # "*". A request from one of them comes from the last address in that header that is not
    # itself a trusted proxy; from any other peer, the header is ignored. The public pages
    # rate-limit and fingerprint (as keyed digests) by that address.
    trusted_proxies: str = "127.0.0.1,::1"

    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{self.data_dir / 'quanzi.sqlite3'}"

    def resolved_secret_key(self) -> str:
        """The secret key; generated once and kept in the data directory when not configured."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        # Written whole to a private temporary file, then linked into place: link() fails if
        # the name exists, so two processes starting at once end up with the same, complete key.
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text().strip()
        finally:
            tmp.unlink()
        return key


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
