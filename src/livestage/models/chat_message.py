from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Enum, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin


class ChatRole(enum.StrEnum):
    viewer = "viewer"
    influencer = "influencer"
    admin = "admin"


class ChatMessage(IDMixin, Base):
    """One chat message of a stream. `author_identity` is the viewer identity of SPEC §4
    (`user-<id>` or the anonymous `viewer-...`); a deleted message is kept, marked."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        Index("ix_chat_messages_stream_seq", "stream_id", "seq", unique=True),
        # The rate limit and slow mode read an identity's recent messages in a stream.
        Index("ix_chat_messages_stream_author_sent", "stream_id", "author_identity", "sent_at"),
    )

    stream_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("live_streams.id", ondelete="CASCADE"))
    # The message's place in its stream (1, 2, ...): sent_at alone ties within a clock tick.
    seq: Mapped[int]
    author_identity: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(40))
    author_role: Mapped[ChatRole] = mapped_column(Enum(ChatRole, native_enum=False, length=16))
    body: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[datetime]
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)
    deleted_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
