from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from livestage.kit.db import Base, IDMixin
from livestage.kit.time import utc_now


class AuditLog(IDMixin, Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        # Keyset pages of the log (newest first), whole or for one action.
        Index("ix_audit_log_created_at_id", "created_at", "id"),
        Index("ix_audit_log_action_created", "action", "created_at", "id"),
    )

    created_at: Mapped[datetime] = mapped_column(default=utc_now, index=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    actor_email: Mapped[str | None] = mapped_column(String(320), default=None)
    action: Mapped[str] = mapped_column(String(64), index=True)
    target_type: Mapped[str | None] = mapped_column(String(32), default=None)
    target_id: Mapped[str | None] = mapped_column(String(64), default=None)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ip: Mapped[str | None] = mapped_column(String(64), default=None)
