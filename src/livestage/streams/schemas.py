from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from livestage.models import LiveStream


class GoLiveRequest(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    title: str = Field(max_length=500)
    description: str = Field(default="", max_length=5000)


class StartStreamingRequest(GoLiveRequest):
    # Also start HLS on 100ms once the room is ready (refused with the local provider).
    hls: bool = False


class RoomCodeGoLiveRequest(GoLiveRequest):
    code: str = Field(max_length=64)


class StreamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    handle: str
    title: str
    description: str
    status: str
    strategy: str
    provider: str
    room_id: str | None
    room_name: str | None
    room_codes: dict[str, str]
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    duration_seconds: int | None
    end_reason: str | None
    current_viewers: int
    peak_viewers: int
    unique_viewers: int
    total_watch_seconds: float
    avg_watch_seconds: float
    room_close_pending_since: datetime | None
    chat_messages: int
    chatters: int
    # HLS: null when not asked for; `hls_problem` says why it did not start.
    hls_status: str | None
    hls_url: str | None
    hls_problem: str | None


class JoinInfo(BaseModel):
    """What the browser needs to join. A token or a room code, never the app secret."""

    kind: Literal["token", "room_code"]
    role: str
    room_id: str | None
    user_id: str
    user_name: str
    token: str | None = None
    room_code: str | None = None
    token_endpoint: str | None = None
    # "hms": join with the 100ms SDK. "local": open the WebSocket at `signal_url` (a path on
    # this server), send {"type": "join", "token": ...}, use `ice_servers` for RTCPeerConnection.
    provider: str = "hms"
    signal_url: str | None = None
    ice_servers: list[dict[str, Any]] = Field(default_factory=list)


VIEWER_NAME = "Viewer"


class TokenJoin(NamedTuple):
    """A join with a token, and how the browser reaches the provider (`provider_fields`): the
    `JoinInfo` of kind "token", made by pydantic only when asked."""

    token: str
    role: str
    room_id: str
    user_id: str
    user_name: str
    provider: dict[str, Any]

    def info(self) -> JoinInfo:
        return JoinInfo(
            kind="token",
            token=self.token,
            role=self.role,
            room_id=self.room_id,
            user_id=self.user_id,
            user_name=self.user_name,
            **self.provider,
        )

    def json(self) -> bytes:
        """`info().model_dump_json()`, byte for byte. A flash crowd's join (100ms, every string
        plain ASCII) is written straight into its template: building and dumping the model
        was a twentieth of the join's time (bench/results/NOTES.md)."""
        if self.provider.keys() == {"provider"}:
            provider: str = self.provider["provider"]
            strings = (self.role, self.room_id, self.user_id, self.user_name, self.token, provider)
            if _plain("".join(strings)):
                return (_TOKEN_JOIN_JSON % strings).encode()
        return self.info().model_dump_json().encode()


def _plain(value: str) -> bool:
    """JSON writes it between quotes as it is: no escape, no byte beyond ASCII."""
    return value.isascii() and value.isprintable() and '"' not in value and "\\" not in value


_TOKEN_JOIN_JSON = (
    '{"kind":"token","role":"%s","room_id":"%s","user_id":"%s","user_name":"%s",'
    '"token":"%s","room_code":null,"token_endpoint":null,"provider":"%s",'
    '"signal_url":null,"ice_servers":[]}'
)


class GoLiveResponse(BaseModel):
    stream: StreamRead
    join: JoinInfo
    created: bool


class CurrentStream(BaseModel):
    stream: StreamRead | None


class LiveEntry(BaseModel):
    handle: str
    name: str
    title: str
    started_at: datetime | None
    viewers: int


def stream_read(record: LiveStream) -> StreamRead:
    return StreamRead.model_validate(
        {
            **{c: getattr(record, c) for c in StreamRead.model_fields if c != "handle"},
            "handle": record.influencer.handle,
        }
    )


# One event of `GET /api/live/{handle}/events` as an OpenAPI 3.1 event-stream `schema` describes
# it: the `retry` hint comes with the first, and every `data` is the live state as JSON.
LIVE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["stream"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "retry": {"type": "integer"},
    },
}
