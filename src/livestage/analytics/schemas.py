from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from livestage.streams.schemas import StreamRead


class PeerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    peer_id: str
    user_id: str
    name: str
    role: str
    is_broadcaster: bool
    joined_at: datetime | None
    left_at: datetime | None
    left_inferred: bool
    leave_reason: str | None


class SampleRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    minute: datetime
    viewers: int


class StreamAnalytics(BaseModel):
    stream: StreamRead
    peers: list[PeerRead]
    viewers_per_minute: list[SampleRead]
