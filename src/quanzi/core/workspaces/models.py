"""Workspaces (one brand or company each) and their API tokens."""

from __future__ import annotations

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    timezone: Mapped[str] = mapped_column(String(64))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    # The workspace's data key, wrapped by the secret key (quanzi.kit.crypto); made on first use.
    data_key_wrapped: Mapped[str | None] = mapped_column(String(128))
    # Invite fraud: "review" (suspects count until an operator confirms) or "strict" (excluded
    # from valid invites at once).
    invite_review_mode: Mapped[str] = mapped_column(
        String(8), default="review", server_default="review"
    )


class ApiToken(Base):
    """An API token; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str] = mapped_column(String(64))
    created_at_us: Mapped[int] = mapped_column(BigInteger)
    revoked_at_us: Mapped[int | None] = mapped_column(BigInteger)
