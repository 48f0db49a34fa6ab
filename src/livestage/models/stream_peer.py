from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin


class StreamPeer(IDMixin, Base):
    """One join of one participant (100ms gives every join a new peer id)."""

    __tablename__ = "stream_peers"
    __table_args__ = (
        # Also how applying a batch of events finds its peers (by their 100ms peer ids).
        UniqueConstraint("stream_id", "peer_id"),
        # Keyset pages of a stream's participants, in joining order. With the unique
        # constraint's, it serves every read by stream: no index on stream_id alone.
        Index("ix_stream_peers_stream_joined", "stream_id", "joined_at", "id"),
        # Counts a stream's distinct viewers from the index alone (the recompute of a stream
        # whose figures are carried reads no other peer of its history).
        Index(
            "ix_stream_peers_stream_viewers", "stream_id", "user_id", "is_broadcaster", "joined_at"
        ),
    )

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("live_streams.id", ondelete="CASCADE"))
    peer_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[str] = mapped_column(String(64))
    is_broadcaster: Mapped[bool] = mapped_column(default=False)
    joined_at: Mapped[datetime | None] = mapped_column(default=None)
    left_at: Mapped[datetime | None] = mapped_column(default=None)
    # True when left_at was inferred (stream ended, reconciler) rather than reported.
    left_inferred: Mapped[bool] = mapped_column(default=False)
    leave_reason: Mapped[str | None] = mapped_column(String(200), default=None)
