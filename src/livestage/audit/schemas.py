from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuditEntryRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    created_at: datetime
    actor_email: str | None
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, object]
    ip: str | None


class AuditPage(BaseModel):
    total: int
    items: list[AuditEntryRead]
    # Pass back as `cursor` for the next (older) page; None on the last one.
    next_cursor: str | None = None
