from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin
from livestage.kit.time import utc_now


class ProviderEvent(IDMixin, Base):
    """A provider event exactly as received (the inbox). Processed at most once, in the worker."""

    __tablename__ = "provider_events"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index(
            "ix_provider_events_unprocessed",
            "received_at",
            sqlite_where=text("processed_at IS NULL"),
            postgresql_where=text("processed_at IS NULL"),
        ),
    )

    source: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime | None] = mapped_column(default=None)
    received_at: Mapped[datetime] = mapped_column(default=utc_now)
    processed_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    stream_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The event's room (`data.room_id`, none if longer than a stream's): which of the worker's
    # lanes applies it (tracking.repository.Lane).
    room_id: Mapped[str | None] = mapped_column(String(64), default=None)
