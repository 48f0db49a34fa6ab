from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base

# SQLite's rowid itself (INTEGER PRIMARY KEY, no index of its own); a bigint identity on
# PostgreSQL.
JOIN_ID = BigInteger().with_variant(Integer(), "sqlite")


class ViewerJoin(Base):
    """A viewer asked to watch (a token was minted): the join intent, before any provider
    event says the viewer really connected.

    A flash crowd writes thousands a second, so a row costs as little as it can: an increasing
    integer key, and `stream_id` is no foreign key (a check per row). A join is only recorded
    for a stream the watch cache read, and a trigger deletes a stream's joins with the stream
    (migration 2026-12-02-0800), as the foreign key's ON DELETE CASCADE did."""

    __tablename__ = "viewer_joins"

    id: Mapped[int] = mapped_column(JOIN_ID, primary_key=True, autoincrement=True)
    stream_id: Mapped[uuid.UUID] = mapped_column(index=True)
    viewer_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
