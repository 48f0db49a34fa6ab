"""Chat's JSON: messages, the chat's opening state, posts and moderation requests."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, field_serializer

from livestage.chat.repository import NewMessage
from livestage.chat.rules import SLOW_MODE_MAX_SECONDS, TIMEOUT_MAX_MINUTES
from livestage.kit.time import as_utc
from livestage.models import ChatMessage

Role = Literal["viewer", "influencer", "admin"]


def utc_iso(value: datetime) -> str:
    return as_utc(value).isoformat().replace("+00:00", "Z")


class Author(BaseModel):
    identity: str
    name: str
    role: Role


class MessageRead(BaseModel):
    id: uuid.UUID
    author: Author
    body: str = Field(description="Plain text: pages show it as text, never as markup.")
    sent_at: datetime

    @field_serializer("sent_at")
    def _sent_at(self, value: datetime) -> str:
        return utc_iso(value)


def message_read(message: ChatMessage) -> MessageRead:
    return MessageRead(
        id=message.id,
        author=Author(
            identity=message.author_identity,
            name=message.author_name,
            role=message.author_role.value,
        ),
        body=message.body,
        sent_at=message.sent_at,
    )


def message_json(message: ChatMessage | NewMessage) -> dict[str, Any]:
    """A message as MessageRead dumps it, written out: every post is encoded once for its
    answer and every page (each field is already a plain value)."""
    return {
        "id": str(message.id),
        "author": {
            "identity": message.author_identity,
            "name": message.author_name,
            "role": message.author_role.value,
        },
        "body": message.body,
        "sent_at": utc_iso(message.sent_at),
    }


class You(BaseModel):
    identity: str
    name: str | None
    can_moderate: bool
    restricted_until: datetime | None
    banned: bool

    @field_serializer("restricted_until")
    def _until(self, value: datetime | None) -> str | None:
        return None if value is None else utc_iso(value)


class ChatState(BaseModel):
    messages: list[MessageRead]
    slow_mode_seconds: int
    you: You


class PostMessage(BaseModel):
    body: str
    name: str | None = None


class RestrictionRequest(BaseModel):
    identity: str = Field(max_length=64)
    kind: Literal["timeout", "ban"]
    minutes: int | None = Field(
        default=None, ge=1, le=TIMEOUT_MAX_MINUTES, description="Timeouts only."
    )


class RestrictionRead(BaseModel):
    identity: str
    kind: Literal["timeout", "ban"]
    until: datetime | None

    @field_serializer("until")
    def _until(self, value: datetime | None) -> str | None:
        return None if value is None else utc_iso(value)


class SlowMode(BaseModel):
    seconds: int = Field(ge=0, le=SLOW_MODE_MAX_SECONDS)


class SlowModeRead(BaseModel):
    slow_mode_seconds: int


# One event of `GET /api/watch/{handle}/chat/events`, as the OpenAPI document describes it.
CHAT_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {
            "type": "string",
            "enum": ["history", "message", "deleted", "settings", "restricted"],
        },
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}
