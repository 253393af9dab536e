"""Projection: orders and refunds (money in integer fen)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from quanzi.db.base import Base


class Order(Base):
    """A paid order; when two order.paid share an order id, the first by (ts, event id) counts."""

    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("workspace_id", "platform", "order_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(64))
    order_key: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(200))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(16))
    paid_us: Mapped[int] = mapped_column(BigInteger)
    paid_day: Mapped[int] = mapped_column(Integer)
    campaign: Mapped[str | None] = mapped_column(Text)
    referrer_id: Mapped[int | None] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    items: Mapped[list[dict[str, object]] | None] = mapped_column(JSON)


Index("ix_orders_ws_day", Order.workspace_id, Order.paid_day)


class Refund(Base):
    """One order.refunded; it may arrive before its order."""

    __tablename__ = "refunds"
    __table_args__ = (UniqueConstraint("workspace_id", "event_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    platform: Mapped[str] = mapped_column(String(64))
    order_key: Mapped[str] = mapped_column(String(255))
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    ts_us: Mapped[int] = mapped_column(BigInteger)
    day: Mapped[int] = mapped_column(Integer)


Index("ix_refunds_ws_order", Refund.workspace_id, Refund.platform, Refund.order_key)
Index("ix_refunds_ws_day", Refund.workspace_id, Refund.day)
