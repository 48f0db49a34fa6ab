from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from livestage.kit.db import Base, IDMixin, TimestampMixin
from livestage.models.user import User


class Influencer(IDMixin, TimestampMixin, Base):
    __tablename__ = "influencers"
    # Keyset pages of the admin list (newest first).
    __table_args__ = (Index("ix_influencers_created_at_id", "created_at", "id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    handle: Mapped[str] = mapped_column(String(32), unique=True)
    streaming_enabled: Mapped[bool] = mapped_column(default=True)

    hms_room_id: Mapped[str | None] = mapped_column(String(64), default=None)
    hms_room_name: Mapped[str | None] = mapped_column(String(128), default=None)
    room_code: Mapped[str | None] = mapped_column(String(32), default=None)
    room_code_source: Mapped[str | None] = mapped_column(String(16), default=None)

    # The admin-set 100ms auth token: ciphertext only, plus what was decoded from it when stored.
    auth_token_encrypted: Mapped[str | None] = mapped_column(String(4096), default=None)
    token_preview: Mapped[str | None] = mapped_column(String(32), default=None)
    token_room_id: Mapped[str | None] = mapped_column(String(64), default=None)
    token_role: Mapped[str | None] = mapped_column(String(64), default=None)
    token_user_id: Mapped[str | None] = mapped_column(String(128), default=None)
    token_issued_at: Mapped[datetime | None] = mapped_column(default=None)
    token_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    token_created_at: Mapped[datetime | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
