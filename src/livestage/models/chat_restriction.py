from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin


class RestrictionKind(enum.StrEnum):
    timeout = "timeout"
    ban = "ban"


class ChatRestriction(IDMixin, Base):
    """A viewer identity timed out of (until `until`) or banned from an influencer's chat and
    streams. One per influencer and identity: a new one replaces the old."""

    __tablename__ = "chat_restrictions"
    __table_args__ = (UniqueConstraint("influencer_id", "identity"),)

    influencer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("influencers.id", ondelete="CASCADE")
    )
    identity: Mapped[str] = mapped_column(String(64))
    kind: Mapped[RestrictionKind] = mapped_column(
        Enum(RestrictionKind, native_enum=False, length=16)
    )
    # None for a ban: it holds until lifted.
    until: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime]
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
