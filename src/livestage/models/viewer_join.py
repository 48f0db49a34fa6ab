from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin


class ViewerJoin(IDMixin, Base):
    """A viewer asked to watch (a token was minted): the join intent, before any provider
    event says the viewer really connected."""

    __tablename__ = "viewer_joins"

    stream_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("live_streams.id", ondelete="CASCADE"), index=True
    )
    viewer_id: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]
