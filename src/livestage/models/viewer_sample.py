from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base


class ViewerSample(Base):
    """Peak concurrent viewers in one minute of one stream (for the viewers-over-time chart)."""

    __tablename__ = "viewer_samples"

    stream_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("live_streams.id", ondelete="CASCADE"), primary_key=True
    )
    minute: Mapped[datetime] = mapped_column(primary_key=True)
    viewers: Mapped[int]
