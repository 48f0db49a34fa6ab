from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from livestage.kit.db import Base, IDMixin
from livestage.kit.time import utc_now
from livestage.models.user import User


class UserSession(IDMixin, Base):
    """A signed-in browser. The cookie carries a random token; only its SHA-256 is stored (its
    CSRF token is derived from the cookie's token: `kit.crypto.csrf_token_of`)."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime]
    ip: Mapped[str | None] = mapped_column(String(64), default=None)

    user: Mapped[User] = relationship(lazy="joined", innerjoin=True)
