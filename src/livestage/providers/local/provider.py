"""`StreamingProvider` without any service: rooms, sessions and peers live in this process.

Room ids are derived from room names (24 hex digits, like 100ms ids), so "ensure the room" is
idempotent across restarts. Join tokens have the 100ms auth-token claims and are signed with a
key derived from LIVESTAGE_SECRET_KEY; the signalling endpoint verifies them.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from redis.asyncio import Redis

from livestage.config import Settings
from livestage.kit.time import Clock, utc_now
from livestage.providers.base import (
    ActiveSession,
    HlsStream,
    JoinToken,
    Peer,
    ProviderError,
    Room,
    RoomCode,
    WebhookTarget,
)
from livestage.providers.hms.tokens import TokenBuildError, token_expiry
from livestage.providers.local import tokens
from livestage.providers.local.cluster import ClusterHub
from livestage.providers.local.protocol import (
    EventSink,
)
from livestage.providers.local.signalling import SignallingHub

SIGNAL_PATH = "/ws/local/{room_id}"
Hub = SignallingHub | ClusterHub


def room_id_for(name: str) -> str:
    """The room's id, a pure function of its name (so ensuring a room is idempotent)."""
    return hashlib.sha256(f"livestage-local-room:{name}".encode()).hexdigest()[:24]


class LocalProvider:
    """The embedded provider: WebRTC between browsers, signalling by `SignallingHub`."""

    name = "local"

    def __init__(
        self,
        *,
        secret_keys: tuple[str, ...],
        broadcaster_role: str = "broadcaster",
        viewer_role: str = "viewer",
        viewer_cap: int = 16,
        ice_servers: list[dict[str, Any]] | None = None,
        join_token_ttl: timedelta = timedelta(hours=4),
        reconnect_grace: timedelta = timedelta(seconds=60),
        clock: Clock = utc_now,
    ) -> None:
        if not secret_keys:
            raise ValueError("the local provider needs LIVESTAGE_SECRET_KEY")
        self._signing_keys = tuple(tokens.derive_signing_key(k) for k in secret_keys)
        self.broadcaster_role, self.viewer_role = broadcaster_role, viewer_role
        self.join_token_ttl = join_token_ttl
        self.clock = clock
        self.hub: Hub = SignallingHub(
            broadcaster_role=broadcaster_role,
            viewer_role=viewer_role,
            viewer_cap=viewer_cap,
            ice_servers=ice_servers,
            reconnect_grace=reconnect_grace,
            clock=clock,
        )
        self._rooms: dict[str, Room] = {}
        self._disabled: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock = utc_now) -> LocalProvider:
        return cls(
            secret_keys=settings.secret_keys,
            broadcaster_role=settings.hms_broadcaster_role,
            viewer_role=settings.hms_viewer_role,
            viewer_cap=settings.local_viewer_cap,
            ice_servers=[s.model_dump(exclude_none=True) for s in settings.ice_servers],
            join_token_ttl=timedelta(seconds=settings.hms_auth_token_ttl_seconds),
            reconnect_grace=settings.reconnect_grace,
            clock=clock,
        )

    def bind_events(self, sink: EventSink) -> None:
        """Where lifecycle events go (the app's provider-event inbox)."""
        self.hub.sink = sink

    async def join_cluster(self, redis: Redis, *, prefix: str) -> None:
        """Several processes serve this site: rooms are shared through Redis from now on
        (called at start, before any connection)."""
        hub = self.hub
        assert isinstance(hub, SignallingHub), "join_cluster is called once, at start"
        self.hub = ClusterHub(
            redis,
            prefix=prefix,
            broadcaster_role=hub.broadcaster_role,
            viewer_role=hub.viewer_role,
            viewer_cap=hub.viewer_cap,
            ice_servers=hub.ice_servers,
            reconnect_grace=hub.reconnect_grace,
            absence_margin=hub.absence_margin,
            clock=hub.clock,
            sink=hub.sink,
        )
        await self.hub.start()

    # -- what go-live hands the browser ----------------------------------------------------

    @property
    def viewer_cap(self) -> int:
        return self.hub.viewer_cap

    @property
    def ice_servers(self) -> list[dict[str, Any]]:
        return list(self.hub.ice_servers)

    def signal_path(self, room_id: str) -> str:
        return SIGNAL_PATH.format(room_id=room_id)

    async def connected_viewers(self, room_id: str) -> int:
        return await self.hub.viewer_count(room_id)

    def verify_join_token(self, token: str, room_id: str) -> tokens.JoinClaims:
        """Raises `tokens.TokenRefused` with a short reason."""
        return tokens.verify_join_token(
            token,
            signing_keys=self._signing_keys,
            room_id=room_id,
            roles=frozenset({self.broadcaster_role, self.viewer_role}),
            now=self.clock(),
        )

    # -- StreamingProvider -----------------------------------------------------------------

    async def ensure_room(
        self, *, name: str, description: str = "", webhook: WebhookTarget | None = None
    ) -> Room:
        """`webhook` is ignored: events go straight to the inbox."""
        if not name.strip():
            raise ProviderError("a room needs a name")
        room_id = room_id_for(name)
        room = Room(room_id, name, enabled=self.is_room_enabled(room_id))
        return self._rooms.setdefault(room_id, room)

    async def ensure_room_codes(self, room_id: str) -> list[RoomCode]:
        """Room codes are a 100ms concept; local rooms are joined with server-minted tokens."""
        return []

    async def resolve_room_code(self, code: str) -> RoomCode:
        raise ProviderError("room codes are a 100ms feature; the local provider needs none")

    def mint_join_token(self, *, room_id: str, role: str, user_id: str) -> JoinToken:
        now = self.clock()
        try:
            token = tokens.mint_join_token(
                signing_key=self._signing_keys[0],
                room_id=room_id,
                role=role,
                user_id=user_id,
                ttl=self.join_token_ttl,
                now=now,
            )
        except TokenBuildError as exc:
            raise ProviderError(f"cannot mint a local join token: {exc}") from exc
        expires = token_expiry(ttl=self.join_token_ttl, now=now)
        return JoinToken(token, room_id, role, user_id, int(expires.timestamp()))

    def is_room_enabled(self, room_id: str) -> bool:
        return room_id not in self._disabled

    async def set_room_enabled(self, room_id: str, enabled: bool) -> Room:
        """A disabled room refuses joins (4403); disabling it ends its session."""
        known = self._rooms.get(room_id)
        room = Room(room_id, known.name if known else "", enabled=enabled)
        self._rooms[room_id] = room
        if enabled:
            self._disabled.discard(room_id)
        else:
            self._disabled.add(room_id)
            await self.hub.end_room(room_id)
        return room

    async def end_room(self, room_id: str, *, reason: str, lock: bool = False) -> None:
        """Close every connection in the room (they are told `room-ended`), end its session."""
        await self.hub.end_room(room_id, reason=reason)

    async def list_peers(self, room_id: str) -> list[Peer]:
        return [
            Peer(m.peer_id, m.user_id, m.role, m.name, m.joined_at)
            for m in await self.hub.members(room_id)
        ]

    async def remove_user(self, room_id: str, user_id: str, *, reason: str) -> int:
        """Close the user's connections (4403, with `reason` for the person)."""
        return await self.hub.remove_user(room_id, user_id, reason=reason)

    async def get_active_session(self, room_id: str) -> ActiveSession | None:
        session = await self.hub.session(room_id)
        if session is None:
            return None
        peers = frozenset(m.peer_id for m in await self.hub.members(room_id))
        return ActiveSession(session.id, session.started_at, peers)

    async def start_hls(self, room_id: str, *, meeting_url: str | None = None) -> HlsStream:
        raise ProviderError("HLS is not available with the local provider; it needs 100ms")

    async def stop_hls(self, room_id: str) -> None:
        raise ProviderError("HLS is not available with the local provider; it needs 100ms")

    async def aclose(self) -> None:
        await self.hub.aclose()
