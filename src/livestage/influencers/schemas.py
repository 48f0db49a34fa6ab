from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from livestage.influencers.tokens import TokenStatus


class InfluencerCreate(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    email: str = Field(max_length=320)
    name: str = Field(max_length=120)
    handle: str = Field(max_length=32)
    password: str | None = Field(default=None, max_length=256)


class TokenSet(BaseModel):
    token: str = Field(max_length=8000)


class RoomCodeSet(BaseModel):
    code: str | None = Field(default=None, max_length=64, description="Empty or null clears it.")


class StreamingSet(BaseModel):
    enabled: bool


class TokenInfo(BaseModel):
    status: TokenStatus
    preview: str | None
    room_id: str | None
    role: str | None
    user_id: str | None
    issued_at: datetime | None
    expires_at: datetime | None
    created_at: datetime | None
    problem: str | None = None


class InfluencerRead(BaseModel):
    id: uuid.UUID
    handle: str
    name: str
    email: str
    streaming_enabled: bool
    room_code: str | None
    room_code_source: str | None
    hms_room_id: str | None
    live_status: str | None
    token: TokenInfo


class InfluencerCreated(InfluencerRead):
    generated_password: str | None = None


class InfluencerPage(BaseModel):
    items: list[InfluencerRead]
    next_cursor: str | None = None
