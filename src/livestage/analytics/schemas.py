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
    # One page of participants, in joining order; `peers_next_cursor` asks for the next one.
    peers: list[PeerRead]
    peers_next_cursor: str | None = None
    viewers_per_minute: list[SampleRead]


class StreamPage(BaseModel):
    items: list[StreamRead]
    next_cursor: str | None = None
