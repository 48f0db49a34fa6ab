"""In-memory 100ms objects, serialised the way the REST API shows them.

Dicts keep insertion order, which is creation order; lists are answered newest first.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from starlette.datastructures import QueryParams

from hms_emulator.errors import invalid_query

T = TypeVar("T")

ZERO_TIME = "0001-01-01T00:00:00Z"
ACTIVE_STREAM_STATUSES = frozenset({"starting", "running", "stopping", "post_processing"})


def new_uuid() -> str:
    return str(uuid.uuid4())


def ts(value: datetime) -> str:
    """RFC 3339 UTC with milliseconds, as rooms and room codes show them."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def ts_nanos(value: datetime) -> str:
    # Sessions and beams show nanosecond fractions on the real API; clients must parse nine digits.
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"


def ts_seconds(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_RFC3339 = re.compile(
    r"^(\d{4}-\d\d-\d\d)[Tt](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:\d\d)$"
)


def parse_ts(value: str) -> datetime | None:
    """RFC 3339 with a zone to an aware UTC datetime; None when malformed or finer than 1 µs
    (nanosecond digits must be zeros, so nothing is silently rounded)."""
    match = _RFC3339.match(value)
    if match is None:
        return None
    day, clock, fraction, zone = match.groups()
    fraction = fraction or ""
    if fraction[6:].strip("0"):
        return None
    zone = "+00:00" if zone in ("Z", "z") else zone
    try:
        parsed = datetime.fromisoformat(f"{day}T{clock}.{fraction[:6].ljust(6, '0')}{zone}")
    except ValueError:
        return None
    return parsed.astimezone(UTC)


def new_room_code() -> str:
    def letters(n: int) -> str:
        return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))

    return f"{letters(3)}-{letters(4)}-{letters(3)}"


@dataclass
class Template:
    id: str
    name: str
    customer_id: str
    roles: dict[str, dict[str, Any]]
    settings: dict[str, Any]
    destinations: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    # Dashboard templates have a subdomain; REST-created ones do not, so HLS needs a meeting_url.
    subdomain: str | None = None
    app_id: str = ""

    def max_peers(self, role: str) -> int | None:
        value = self.roles.get(role, {}).get("maxPeerCount", 0)
        return value if isinstance(value, int) and value > 0 else None

    @property
    def region(self) -> str:
        return str(self.settings.get("region", "in"))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "customerId": self.customer_id,
            # Deprecated twins 100ms still sends (the server SDK's Template type declares them).
            "customer": self.customer_id,
            "appId": self.app_id,
            "roles": self.roles,
            "settings": self.settings,
            "destinations": self.destinations,
            "plugins": {},
            "createdAt": ts(self.created_at),
            "updatedAt": ts(self.updated_at),
        }


@dataclass
class Room:
    id: str
    name: str
    customer_id: str
    app_id: str
    template_id: str
    template_name: str
    region: str
    created_at: datetime
    updated_at: datetime
    description: str = ""
    enabled: bool = True
    large_room: bool = False
    size: int = 0
    max_duration_seconds: int = 0
    webhook: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "enabled": self.enabled,
            "description": self.description,
            "customer_id": self.customer_id,
            "customer": self.customer_id,
            "app_id": self.app_id,
            "recording_info": {"enabled": False},
            "recording_source_template": True,
            "template_id": self.template_id,
            "template": self.template_name,
            "region": self.region,
            "large_room": self.large_room,
            "size": self.size,
            "max_duration_seconds": self.max_duration_seconds,
            "polls": [],
            "webhook": self.webhook,
            "key": f"{self.customer_id}:{self.name}",
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
        }


@dataclass
class RoomCode:
    code: str
    room_id: str
    role: str
    created_at: datetime
    updated_at: datetime
    enabled: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "room_id": self.room_id,
            "role": self.role,
            "enabled": self.enabled,
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
        }


@dataclass
class Peer:
    id: str
    session_id: str
    room_id: str
    user_id: str
    name: str
    role: str
    metadata: str
    joined_at: datetime
    left_at: datetime | None = None
    tracks: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_active_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "user_id": self.user_id,
            "metadata": self.metadata,
            "role": self.role,
            "joined_at": ts_nanos(self.joined_at),
        }

    def to_session_json(self) -> dict[str, Any]:
        body = {
            "id": self.id,
            "session_id": self.session_id,
            "name": self.name,
            "role": self.role,
            "user_id": self.user_id,
            "user": self.user_id,
            "joined_at": ts_nanos(self.joined_at),
        }
        # A connected peer's left_at is Go's zero time, as 100ms renders other unset times (the
        # server SDK's type declares the key on every session peer; the value is UNCONFIRMED).
        body["left_at"] = ts_nanos(self.left_at) if self.left_at is not None else ZERO_TIME
        return body


@dataclass
class Session:
    id: str
    room_id: str
    customer_id: str
    app_id: str
    created_at: datetime
    updated_at: datetime
    active: bool = True
    peers: dict[str, Peer] = field(default_factory=dict)

    def connected_peers(self) -> list[Peer]:
        return [p for p in self.peers.values() if p.left_at is None]

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room_id": self.room_id,
            "customer_id": self.customer_id,
            "app_id": self.app_id,
            "active": self.active,
            "peers": {pid: peer.to_session_json() for pid, peer in self.peers.items()},
            "created_at": ts_nanos(self.created_at),
            "updated_at": ts_nanos(self.updated_at),
        }


@dataclass
class LiveStream:
    id: str
    room_id: str
    session_id: str
    meeting_url: str
    playback_url: str
    created_at: datetime
    updated_at: datetime
    status: str = "starting"
    recording: dict[str, Any] = field(default_factory=dict)
    started_at: datetime | None = None
    stopped_at: datetime | None = None
    # What `timed-metadata` added, for the playlist: (payload, duration seconds, at).
    timed_metadata: list[tuple[str, int, datetime]] = field(default_factory=list)
    recording_paused: bool = False

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STREAM_STATUSES

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "room_id": self.room_id,
            "session_id": self.session_id,
            "status": self.status,
            "meeting_url": self.meeting_url,
            "playback": {"url": self.playback_url},
            "recording": {
                "hls_vod": bool(self.recording.get("hls_vod", False)),
                "single_file_per_layer": bool(self.recording.get("single_file_per_layer", False)),
            },
            "destination": "",
            "recording_assets": None,
            "created_at": ts_nanos(self.created_at),
            "started_at": _maybe_ts(self.started_at),
            "updated_at": ts_nanos(self.updated_at),
            "started_by": "",
            "stopped_at": _maybe_ts(self.stopped_at),
            "stopped_by": "",
        }


def _maybe_ts(value: datetime | None) -> str | None:
    return ts_nanos(value) if value is not None else None


@dataclass(frozen=True)
class WebhookAttempt:
    event_id: str
    type: str
    room_id: str
    url: str
    attempt: int
    status: int | None
    error: str | None
    timestamp: datetime
    # Which copy of the event (chaos mode sends several) and whether it was a replay.
    copy: int = 1
    replay: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "type": self.type,
            "room_id": self.room_id,
            "url": self.url,
            "attempt": self.attempt,
            "status": self.status,
            "error": self.error,
            "timestamp": ts(self.timestamp),
            "copy": self.copy,
            "replay": self.replay,
        }


@dataclass
class EventDelivery:
    """Delivery history of one event: all copies, retries and replays together."""

    envelope: dict[str, Any]
    room_id: str
    at: datetime
    in_flight: int = 0
    delivered: bool = False
    attempts: int = 0
    last_status_code: int | None = None

    @property
    def status(self) -> str:
        if self.delivered:
            return "success"
        return "pending" if self.in_flight else "failed"

    def to_history_json(self) -> dict[str, Any]:
        return {
            "id": self.envelope["id"],
            "event_name": self.envelope["type"],
            "room_id": self.room_id,
            "event": self.envelope,
            "status": self.status,
            "attempts": self.attempts,
            "last_status_code": self.last_status_code,
            "created_at": ts_nanos(self.at),
        }


@dataclass
class ReplayWorkflow:
    id: str
    filters: dict[str, Any]
    event_ids: list[str]
    created_at: datetime
    status: str = "started"
    sent: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    completed_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow_id": self.id,
            "status": self.status,
            "filters": self.filters,
            "total": len(self.event_ids),
            "sent": self.sent,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "created_at": ts_nanos(self.created_at),
            "completed_at": _maybe_ts(self.completed_at),
        }


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    status: int
    fault: str | None
    token_jti: str | None
    token_exp: int | None
    received_at: datetime
    timestamp: datetime  # when it was answered

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "fault": self.fault,
            "token_jti": self.token_jti,
            "token_exp": self.token_exp,
            "received_at": ts(self.received_at),
            "timestamp": ts(self.timestamp),
        }


@dataclass
class EmulatorState:
    templates: dict[str, Template] = field(default_factory=dict)
    rooms: dict[str, Room] = field(default_factory=dict)
    room_codes: dict[str, RoomCode] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    live_streams: dict[str, LiveStream] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    webhook_attempts: list[WebhookAttempt] = field(default_factory=list)
    # Keyed by event id, in emission order; only events that had somewhere to go.
    deliveries: dict[str, EventDelivery] = field(default_factory=dict)
    chaos_plan: list[dict[str, Any]] = field(default_factory=list)
    replays: dict[str, ReplayWorkflow] = field(default_factory=dict)
    requests: list[RequestRecord] = field(default_factory=list)

    def room_by_name(self, name: str) -> Room | None:
        wanted = name.casefold()
        return next((r for r in self.rooms.values() if r.name.casefold() == wanted), None)

    def template_by_name(self, name: str) -> Template | None:
        return next((t for t in self.templates.values() if t.name == name), None)

    def active_session(self, room_id: str) -> Session | None:
        return next((s for s in self.sessions.values() if s.room_id == room_id and s.active), None)

    def codes_of(self, room_id: str) -> list[RoomCode]:
        return [c for c in self.room_codes.values() if c.room_id == room_id]


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    limit: int
    last: str

    def to_json(self, render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
        return {"limit": self.limit, "data": [render(i) for i in self.items], "last": self.last}


def paginate(items: Sequence[T], key: Callable[[T], str], query: QueryParams) -> Page[T]:
    """`start` is the previous page's `last`; `last` is this page's last id ("" when empty)."""
    limit = _limit(query.get("limit"))
    ids = [key(item) for item in items]
    start = query.get("start") or ""
    offset = 0
    if start:
        if start not in ids:
            raise invalid_query("start")
        offset = ids.index(start) + 1
    page = list(items[offset : offset + limit])
    return Page(page, limit, key(page[-1]) if page else "")


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return 10
    try:
        value = int(raw)
    except ValueError:
        raise invalid_query("limit") from None
    return min(max(value, 10), 100)


def parse_bool_query(query: QueryParams, name: str) -> bool | None:
    raw = query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1"):
        return True
    if raw.lower() in ("false", "0"):
        return False
    raise invalid_query(name)


def newest_first(items: Sequence[T]) -> list[T]:
    return list(reversed(items))
