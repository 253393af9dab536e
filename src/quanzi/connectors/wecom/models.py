"""WeCom connection settings, the callback inbox, sync checkpoints and the last-known state."""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base

API_BASE = "https://qyapi.weixin.qq.com/cgi-bin/"


class WecomConnection(Base):
    """A workspace's WeCom corp: secrets sealed with the workspace key, never shown again."""

    __tablename__ = "wecom_connections"
    __table_args__ = (UniqueConstraint("workspace_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    corp_id: Mapped[str] = mapped_column(String(64))
    # quanzi.kit.crypto sealed values (enc:v1:…).
    secret_sealed: Mapped[str] = mapped_column(Text)
    token_sealed: Mapped[str] = mapped_column(Text)
    aes_key_sealed: Mapped[str] = mapped_column(Text)
    # Only the tests' stand-in differs from the real service.
    api_base: Mapped[str] = mapped_column(String(255), default=API_BASE)
    access_token_sealed: Mapped[str | None] = mapped_column(Text)
    access_token_expires_at_us: Mapped[int | None] = mapped_column(BigInteger)
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    updated_at_us: Mapped[int] = mapped_column(BigInteger)
    last_callback_at_us: Mapped[int | None] = mapped_column(BigInteger)
    last_sync_at_us: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at_us: Mapped[int | None] = mapped_column(BigInteger)


class WecomCallback(Base):
    """A verified, decrypted callback, stored before it is acknowledged; processed after.

    `digest` (SHA-256 of the decrypted XML) makes WeCom's retries of one delivery one row."""

    __tablename__ = "wecom_callbacks"
    __table_args__ = (UniqueConstraint("workspace_id", "digest"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(64))
    event: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str | None] = mapped_column(String(64))
    xml: Mapped[str] = mapped_column(Text)
    received_at_us: Mapped[int] = mapped_column(BigInteger)
    deliveries: Mapped[int] = mapped_column(Integer, default=1)
    processed_at_us: Mapped[int | None] = mapped_column(BigInteger)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


Index("ix_wecom_callbacks_ws_pending", WecomCallback.workspace_id, WecomCallback.processed_at_us)


class WecomSyncState(Base):
    """Where a sync of one kind (staff, contacts, groups, tags) stands: resumable after a crash."""

    __tablename__ = "wecom_sync_states"
    __table_args__ = (UniqueConstraint("workspace_id", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))  # running | done | failed
    checkpoint: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    started_at_us: Mapped[int] = mapped_column(BigInteger)
    finished_at_us: Mapped[int | None] = mapped_column(BigInteger)
    last_error: Mapped[str | None] = mapped_column(Text)


class WecomKnown(Base):
    """What Quanzi last saw of a WeCom object (a contact relation, a group, a group member, a
    tag), so a sync emits events only for differences and re-running it changes nothing."""

    __tablename__ = "wecom_known"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(255))
    state: Mapped[dict[str, Any]] = mapped_column(JSON)
    seen_at_us: Mapped[int] = mapped_column(BigInteger)
