"""Pydantic models of the 100ms REST objects we send and read.

Responses ignore fields we do not use, so 100ms adding fields never breaks parsing. The
templates API speaks camelCase; every other endpoint speaks snake_case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

# 100ms writes Go's zero time for unset timestamps (e.g. `updated_at` in list rooms).
_GO_ZERO_TIME = "0001-01-01T00:00:00Z"


def _unset_time(value: object) -> object:
    return None if value in (None, "", _GO_ZERO_TIME) else value


def _null_list(value: object) -> object:
    return [] if value is None else value


def _null_dict(value: object) -> object:
    return {} if value is None else value


Timestamp = Annotated[datetime | None, BeforeValidator(_unset_time)]


class HmsModel(BaseModel):
    model_config = ConfigDict(extra="ignore")


class HmsCamelModel(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)


T = TypeVar("T")


class Page(HmsModel, Generic[T]):
    limit: int = 0
    data: Annotated[list[T], BeforeValidator(_null_list)] = Field(default_factory=list)
    last: str | None = None

    @property
    def has_more(self) -> bool:
        return bool(self.last) and len(self.data) >= self.limit > 0


class DataList(HmsModel, Generic[T]):
    data: Annotated[list[T], BeforeValidator(_null_list)] = Field(default_factory=list)


class WebhookConfig(HmsModel):
    url: str
    headers: dict[str, str] = Field(default_factory=dict)


class Room(HmsModel):
    id: str
    name: str = ""
    enabled: bool = True
    description: str = ""
    customer_id: str = ""
    app_id: str = ""
    template_id: str = ""
    region: str = ""
    large_room: bool = False
    size: int | None = None
    max_duration_seconds: int | None = None
    webhook: WebhookConfig | None = None
    created_at: Timestamp = None
    updated_at: Timestamp = None


class RoomCode(HmsModel):
    code: str
    room_id: str
    role: str
    enabled: bool
    created_at: Timestamp = None
    updated_at: Timestamp = None


class ActiveRoomSession(HmsModel):
    id: str
    created_at: Timestamp = None
    peers: Annotated[list[str], BeforeValidator(_null_list)] = Field(default_factory=list)


class ActiveRoom(HmsModel):
    id: str
    name: str = ""
    customer_id: str = ""
    session: ActiveRoomSession | None = None


class ActivePeer(HmsModel):
    id: str
    name: str = ""
    user_id: str = ""
    metadata: str = ""
    role: str = ""
    joined_at: Timestamp = None


class ActivePeers(HmsModel):
    peers: Annotated[dict[str, ActivePeer], BeforeValidator(_null_dict)] = Field(
        default_factory=dict
    )


class SessionPeer(HmsModel):
    id: str
    session_id: str = ""
    name: str = ""
    role: str = ""
    user_id: str = ""
    joined_at: Timestamp = None
    left_at: Timestamp = None


class Session(HmsModel):
    id: str
    room_id: str
    customer_id: str = ""
    app_id: str = ""
    active: bool = False
    peers: Annotated[dict[str, SessionPeer], BeforeValidator(_null_dict)] = Field(
        default_factory=dict
    )
    created_at: Timestamp = None
    updated_at: Timestamp = None


class LiveStreamPlayback(HmsModel):
    url: str | None = None


class LiveStreamRecording(HmsModel):
    hls_vod: bool = False
    single_file_per_layer: bool = False


class LiveStream(HmsModel):
    id: str
    room_id: str
    session_id: str = ""
    status: str
    meeting_url: str = ""
    playback: LiveStreamPlayback | None = None
    recording: LiveStreamRecording | None = None
    recording_assets: list[dict[str, Any]] | None = None
    started_by: str = ""
    stopped_by: str = ""
    created_at: Timestamp = None
    started_at: Timestamp = None
    updated_at: Timestamp = None
    stopped_at: Timestamp = None

    @property
    def playback_url(self) -> str | None:
        return self.playback.url if self.playback else None


class PublishParams(HmsCamelModel):
    allowed: list[str] = Field(default_factory=list)


class SubscribeParams(HmsCamelModel):
    subscribe_to_roles: list[str] = Field(default_factory=list)
    max_subs_bit_rate: int | None = None


class TemplateRole(HmsCamelModel):
    name: str
    publish_params: PublishParams = Field(default_factory=PublishParams)
    subscribe_params: SubscribeParams = Field(default_factory=SubscribeParams)
    permissions: dict[str, bool] = Field(default_factory=dict)
    priority: int | None = None
    max_peer_count: int | None = None


class Template(HmsCamelModel):
    id: str
    name: str = ""
    customer_id: str = ""
    roles: dict[str, TemplateRole] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    destinations: dict[str, Any] = Field(default_factory=dict)
    created_at: Timestamp = None
    updated_at: Timestamp = None


class TokenReply(HmsModel):
    token: str


# Request bodies: dumped with exclude_none so an omitted option keeps 100ms's default.


class RoomCreate(HmsModel):
    name: str | None = None
    description: str | None = None
    template_id: str | None = None
    region: str | None = None
    size: int | None = None
    max_duration_seconds: int | None = None
    large_room: bool | None = None
    webhook: WebhookConfig | None = None


class RoomUpdate(HmsModel):
    name: str | None = None
    description: str | None = None
    region: str | None = None
    size: int | None = None
    max_duration_seconds: int | None = None
    large_room: bool | None = None
    webhook: WebhookConfig | None = None
    enabled: bool | None = None


class RemovePeers(HmsModel):
    peer_id: str | None = None
    role: str | None = None
    reason: str | None = None


class EndRoom(HmsModel):
    reason: str | None = None
    lock: bool = False


class LiveStreamStart(HmsModel):
    meeting_url: str | None = None
    recording: LiveStreamRecording | None = None


class TemplateCreate(HmsCamelModel):
    name: str
    roles: dict[str, TemplateRole]
    settings: dict[str, Any] | None = None
    destinations: dict[str, Any] | None = None


class WebhookDelivery(HmsModel):
    """One event in the analytics webhook history (shape UNCONFIRMED; see the emulator)."""

    id: str
    event: dict[str, Any]
    status: str = ""
    attempts: int = 0


class HistoryPagination(HmsModel):
    page: int = 1
    limit: int = 50
    total: int = 0
    total_pages: int = 0


class WebhookHistory(HmsModel):
    data: Annotated[list[WebhookDelivery], BeforeValidator(_null_list)] = Field(
        default_factory=list
    )
    pagination: HistoryPagination = Field(default_factory=HistoryPagination)


# The generic replies, parametrized once. pydantic keeps parametrized models in a weak cache, so
# a go-live that came after a garbage collection built `Page[RoomCode]` again (~0.9 ms, on 44 %
# of go-lives in the bench): these names hold them for the life of the process.
RoomPage = Page[Room]
RoomCodePage = Page[RoomCode]
RoomCodeList = DataList[RoomCode]
SessionPage = Page[Session]
LiveStreamPage = Page[LiveStream]
TemplatePage = Page[Template]
