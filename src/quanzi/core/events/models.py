"""The event log: append-only, one row per event id and workspace."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base


class EventRecord(Base):
    """One accepted event, kept exactly as parsed (unknown fields included)."""

    __tablename__ = "events"
    # One index only (the unique one): reports read projections, and rebuild reads by `seq`;
    # every further index on a million-row log is paid by every ingest.
    __table_args__ = (UniqueConstraint("workspace_id", "event_id"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str] = mapped_column(String(64))
    ts_us: Mapped[int] = mapped_column(BigInteger)
    raw: Mapped[str] = mapped_column(Text)
    received_at_us: Mapped[int] = mapped_column(BigInteger)
