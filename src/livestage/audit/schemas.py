from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


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
    items: list[AuditEntryRead]
    has_more: bool = Field(description="Whether older entries follow this page.")
    next_cursor: str | None = Field(
        default=None,
        description="Pass back as `cursor` for the next (older) page; null on the last.",
    )
