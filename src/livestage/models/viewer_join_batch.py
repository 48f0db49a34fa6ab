from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Integer, Text
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base

# SQLite's rowid itself (INTEGER PRIMARY KEY, no index of its own); a bigint identity on
# PostgreSQL.
BATCH_ID = BigInteger().with_variant(Integer(), "sqlite")


class ViewerJoinBatch(Base):
    """Join intents (a viewer asked to watch: a token was minted, before any provider event
    says the viewer connected), the ones to one stream written together packed in one row
    (streams/intents.py: `pack`, `unpack`).

    `stream_id` is no foreign key (a check per row): a join is only recorded for a stream the
    watch cache read, and a trigger deletes a stream's joins with the stream (migrations
    2026-12-02-0800 and 2026-12-04-1800), as ON DELETE CASCADE would."""

    __tablename__ = "viewer_join_batches"

    id: Mapped[int] = mapped_column(BATCH_ID, primary_key=True, autoincrement=True)
    stream_id: Mapped[uuid.UUID] = mapped_column(index=True)
    first_requested_at: Mapped[datetime]
    joins: Mapped[int]
    # JSON: [[viewer id, microseconds after first_requested_at], ...], in request order.
    viewers: Mapped[str] = mapped_column(Text)
