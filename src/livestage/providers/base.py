"""The video-provider interface, owned by our domain. `hms` (100ms) and `local` implement it.

Providers never touch the database. Every failure they raise is a `ProviderError`: `transient`
tells the caller a retry later may succeed; `message` is written for a person and never carries
a secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, cast, runtime_checkable

from livestage.kit.time import from_epoch


class ProviderError(Exception):
    def __init__(self, message: str, *, transient: bool = False, status_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.transient = transient
        self.status_code = status_code


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Room:
    id: str
    name: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class RoomCode:
    code: str
    room_id: str
    role: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class JoinToken:
    token: str
    room_id: str
    role: str
    user_id: str
    # The token's `exp`, seconds since the epoch (a datetime only when asked: the viewer join
    # mints one per viewer and never asks).
    expires: int

    @property
    def expires_at(self) -> datetime:
        return from_epoch(self.expires)


@dataclass(frozen=True, slots=True)
class Peer:
    id: str
    user_id: str
    role: str
    name: str
    joined_at: datetime | None


@dataclass(frozen=True, slots=True)
class ActiveSession:
    id: str
    started_at: datetime | None
    peer_ids: frozenset[str]


@dataclass(frozen=True, slots=True)
class HlsStream:
    id: str
    room_id: str
    status: str
    playback_url: str | None


class StreamingProvider(Protocol):
    name: str

    async def ensure_room(
        self, *, name: str, description: str = "", webhook: WebhookTarget | None = None
    ) -> Room:
        """Create the room or return the existing one with this name (idempotent)."""
        ...

    async def ensure_room_codes(self, room_id: str) -> list[RoomCode]:
        """Return the room's enabled codes, creating one per role when there are none."""
        ...

    async def resolve_room_code(self, code: str) -> RoomCode:
        """Check a room code with the provider; raise ProviderError when unknown or disabled."""
        ...

    def mint_join_token(self, *, room_id: str, role: str, user_id: str) -> JoinToken: ...

    async def set_room_enabled(self, room_id: str, enabled: bool) -> Room: ...

    async def end_room(self, room_id: str, *, reason: str, lock: bool = False) -> None:
        """End the live session, if any; no error when the room has no session."""
        ...

    async def list_peers(self, room_id: str) -> list[Peer]: ...

    async def remove_user(self, room_id: str, user_id: str, *, reason: str) -> int:
        """Disconnect every peer `user_id` has in the room (a ban); how many there were."""
        ...

    async def get_active_session(self, room_id: str) -> ActiveSession | None:
        """The room's live session and its connected peers, or None when nothing is live."""
        ...

    async def start_hls(self, room_id: str, *, meeting_url: str | None = None) -> HlsStream:
        """Start HLS; `meeting_url` is the page 100ms's recorder opens (needed by templates
        created through the API, which have no 100ms subdomain)."""
        ...

    async def stop_hls(self, room_id: str) -> None: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class BrowserSignalling(Protocol):
    """A provider whose browsers signal through livestage itself (the local provider): what
    go-live hands the page besides the token, and the viewer cap."""

    name: str

    @property
    def viewer_cap(self) -> int: ...

    @property
    def ice_servers(self) -> list[dict[str, Any]]: ...

    def signal_path(self, room_id: str) -> str: ...

    async def connected_viewers(self, room_id: str) -> int: ...


_SIGNALS_IN_BROWSER: dict[type, bool] = {}


def browser_signalling(provider: object) -> BrowserSignalling | None:
    """`provider` when its browsers signal through livestage, else None.

    The answer is kept per class: `isinstance` against a runtime-checkable Protocol inspects
    every member on each call, and the viewer join asks on every request."""
    kind = type(provider)
    signals = _SIGNALS_IN_BROWSER.get(kind)
    if signals is None:
        signals = _SIGNALS_IN_BROWSER[kind] = isinstance(provider, BrowserSignalling)
    return cast(BrowserSignalling, provider) if signals else None
