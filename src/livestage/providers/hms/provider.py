"""`StreamingProvider` over 100ms: our domain's calls mapped onto `HmsClient` and local tokens."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import structlog

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
from livestage.providers.hms import schemas
from livestage.providers.hms.client import HmsClient, Sleep
from livestage.providers.hms.errors import (
    HmsConflict,
    HmsError,
    HmsNotFound,
    HmsRequestError,
    HmsTransientError,
)
from livestage.providers.hms.tokens import (
    AuthTokenMinter,
    ManagementTokenSource,
    StaticManagementToken,
    TokenBuildError,
    TokenSource,
    unverified_claims,
)

FINISHED_STREAM_STATUSES = frozenset({"completed", "failed"})

log = structlog.get_logger()


@dataclass(frozen=True, slots=True)
class Credentials:
    """What a person should check when 100ms rejects our management token."""

    what: str
    settings: str


APP_CREDENTIALS = Credentials(
    "app credentials", "LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET"
)
DASHBOARD_TOKEN = Credentials("configured management token", "LIVESTAGE_HMS_MANAGEMENT_TOKEN")


def token_source_from_settings(settings: Settings, *, clock: Clock = utc_now) -> TokenSource:
    """Mint with the app secret when there is one; else use the dashboard management token."""
    secret = settings.hms_app_secret.get_secret_value()
    static_token = settings.hms_management_token.get_secret_value()
    try:
        if secret and settings.hms_access_key:
            ttl = timedelta(seconds=settings.hms_management_token_ttl_seconds)
            return ManagementTokenSource(
                access_key=settings.hms_access_key, app_secret=secret, ttl=ttl, clock=clock
            )
        if static_token:
            return StaticManagementToken(static_token, clock=clock)
    except TokenBuildError as exc:
        raise ProviderError(str(exc)) from exc
    if secret:
        raise ProviderError("set LIVESTAGE_HMS_ACCESS_KEY, the app access key shown next to it")
    raise ProviderError(
        "100ms is not configured: set LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET "
        "(100ms dashboard, Developer section)"
    )


def translate_error(
    exc: HmsError | TokenBuildError, *, doing: str, credentials: Credentials
) -> ProviderError:
    """A `ProviderError` a person can act on; `doing` reads like "creating room 'x'"."""
    if isinstance(exc, TokenBuildError):
        return ProviderError(str(exc))
    if isinstance(exc, HmsTransientError):
        return ProviderError(
            f"100ms is unreachable or failing ({exc.message}); try again in a minute",
            transient=True,
            status_code=exc.status_code,
        )
    if isinstance(exc, HmsRequestError):
        return ProviderError(
            _request_error_message(exc, doing, credentials), status_code=exc.status_code
        )
    return ProviderError(f"100ms sent a reply livestage could not use while {doing}: {exc}")


def _request_error_message(exc: HmsRequestError, doing: str, credentials: Credentials) -> str:
    status, said = exc.status_code, exc.hms_message
    if status == 401:
        return f"100ms rejected the {credentials.what} (401): check {credentials.settings}"
    if status == 403:
        return (
            f"100ms refused {doing} (403: {said}); if every call fails like this, "
            f"check {credentials.settings}"
        )
    if status == 404:
        return f"100ms found nothing while {doing} (404: {said})"
    if status == 409:
        return f"100ms reported a conflict while {doing} (409: {said})"
    details = f" - {'; '.join(exc.details)}" if exc.details else ""
    return f"100ms rejected {doing} ({status}: {said}{details})"


class HmsProvider:
    """The 100ms implementation of `StreamingProvider`."""

    name = "hms"

    def __init__(
        self,
        client: HmsClient,
        *,
        access_key: str,
        app_secret: str | None,
        template_id: str | None = None,
        join_token_ttl: timedelta = timedelta(hours=4),
        credentials: Credentials = APP_CREDENTIALS,
        clock: Clock = utc_now,
    ) -> None:
        self._client = client
        self._access_key = access_key
        self._app_secret = app_secret
        self._template_id = template_id
        self._join_token_ttl = join_token_ttl
        self._credentials = credentials
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Clock = utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> HmsProvider:
        source = token_source_from_settings(settings, clock=clock)
        client = HmsClient(
            token_source=source,
            base_url=settings.hms_api_url,
            auth_url=settings.hms_auth_url,
            timeout=settings.hms_timeout_seconds,
            max_retries=settings.hms_max_retries,
            transport=transport,
            sleep=sleep,
            clock=clock,
        )
        return cls(
            client,
            access_key=settings.hms_access_key,
            app_secret=settings.hms_app_secret.get_secret_value() or None,
            template_id=settings.hms_template_id or None,
            join_token_ttl=timedelta(seconds=settings.hms_auth_token_ttl_seconds),
            credentials=APP_CREDENTIALS if source.renewable else DASHBOARD_TOKEN,
            clock=clock,
        )

    async def aclose(self) -> None:
        await self._client.close()

    @contextmanager
    def _translated(self, doing: str) -> Iterator[None]:
        try:
            yield
        except (HmsError, TokenBuildError) as exc:
            raise translate_error(exc, doing=doing, credentials=self._credentials) from exc

    async def ensure_room(
        self, *, name: str, description: str = "", webhook: WebhookTarget | None = None
    ) -> Room:
        hook = schemas.WebhookConfig(url=webhook.url, headers=webhook.headers) if webhook else None
        with self._translated(f"creating room {name!r}"):
            room = await self._client.create_room(
                name,
                description=description or None,
                template_id=self._template_id,
                webhook=hook,
            )
        return _room(room)

    async def ensure_template(
        self, name: str, *, broadcaster_role: str = "broadcaster", viewer_role: str = "viewer"
    ) -> str:
        """The template livestage needs (one broadcaster, viewers); returns its id."""
        with self._translated(f"creating template {name!r}"):
            template = await self._client.ensure_livestage_template(
                name, broadcaster_role=broadcaster_role, viewer_role=viewer_role
            )
        return template.id

    async def ensure_room_codes(self, room_id: str) -> list[RoomCode]:
        with self._translated(f"getting room codes for room {room_id}"):
            codes = await self._client.list_room_codes(room_id, enabled=True)
            if not any(code.enabled for code in codes):
                codes = await self._client.create_room_codes(room_id)
                log.info("hms.room_codes.created", room_id=room_id, count=len(codes))
        return [_room_code(code) for code in codes if code.enabled]

    async def resolve_room_code(self, code: str) -> RoomCode:
        with self._translated("checking a room code"):
            try:
                token = await self._client.exchange_room_code(code)
            except HmsRequestError as exc:
                if exc.status_code == 403:
                    raise ProviderError(
                        "this room code is disabled or its room is inactive", status_code=403
                    ) from exc
                if exc.status_code == 404:
                    raise ProviderError("room code not found", status_code=404) from exc
                raise
        claims = self._room_token_claims(token)
        room_id, role = claims.get("room_id"), claims.get("role")
        if not isinstance(room_id, str) or not isinstance(role, str) or not room_id or not role:
            raise ProviderError("100ms returned a room-code token without a room and role")
        return RoomCode(code=code, room_id=room_id, role=role, enabled=True)

    def _room_token_claims(self, token: str) -> dict[str, Any]:
        # Decode only: the token comes straight from 100ms's auth host over TLS, we read its
        # room and role and never trust it for anything else. No source says 100ms signs
        # room-code tokens with the workspace app secret, so verifying could reject good codes.
        try:
            return unverified_claims(token)
        except TokenBuildError:
            raise ProviderError("100ms returned a room-code token that is not a JWT") from None

    @functools.cached_property
    def _join_minter(self) -> AuthTokenMinter:
        """Made at the first join (a bad TTL is that join's ProviderError, as any bad input)."""
        return AuthTokenMinter(
            access_key=self._access_key, app_secret=self._app_secret or "", ttl=self._join_token_ttl
        )

    def mint_join_token(self, *, room_id: str, role: str, user_id: str) -> JoinToken:
        if not self._app_secret:
            raise ProviderError(
                "minting 100ms join tokens needs LIVESTAGE_HMS_ACCESS_KEY and "
                "LIVESTAGE_HMS_APP_SECRET; a dashboard management token cannot sign them"
            )
        try:
            token, expires = self._join_minter.mint(
                room_id=room_id, role=role, user_id=user_id, now=self._clock()
            )
        except TokenBuildError as exc:
            raise ProviderError(f"cannot mint a 100ms join token: {exc}") from exc
        return JoinToken(token, room_id, role, user_id, expires)

    async def set_room_enabled(self, room_id: str, enabled: bool) -> Room:
        doing = f"{'enabling' if enabled else 'disabling'} room {room_id}"
        with self._translated(doing):
            return _room(await self._client.set_room_enabled(room_id, enabled))

    async def end_room(self, room_id: str, *, reason: str, lock: bool = False) -> None:
        with self._translated(f"ending the session in room {room_id}"):
            try:
                await self._client.end_room(room_id, reason=reason, lock=lock)
            except HmsNotFound:
                log.info("hms.room.end.no_session", room_id=room_id)

    async def list_peers(self, room_id: str) -> list[Peer]:
        with self._translated(f"listing peers in room {room_id}"):
            try:
                peers = await self._client.list_active_peers(room_id)
            except HmsNotFound:
                return []
        return [Peer(p.id, p.user_id, p.role, p.name, p.joined_at) for p in peers]

    async def remove_user(self, room_id: str, user_id: str, *, reason: str) -> int:
        with self._translated(f"removing a user's peers from room {room_id}"):
            try:
                peers = await self._client.list_active_peers(room_id, user_id=user_id)
            except HmsNotFound:
                return 0
            for peer in peers:
                with suppress(HmsNotFound):  # it left meanwhile
                    await self._client.remove_peers(room_id, peer_id=peer.id, reason=reason)
        return len(peers)

    async def get_active_session(self, room_id: str) -> ActiveSession | None:
        with self._translated(f"checking the live session of room {room_id}"):
            try:
                room = await self._client.get_active_room(room_id)
            except HmsNotFound:
                return None
        if room.session is None:
            return None
        return ActiveSession(
            room.session.id, room.session.created_at, frozenset(room.session.peers)
        )

    async def webhook_history(
        self, *, since: datetime, until: datetime
    ) -> AsyncIterator[dict[str, Any]]:
        """Every event 100ms recorded sending in the range, delivered or not."""
        with self._translated("reading the webhook history"):
            async for envelope in self._client.iter_webhook_history(
                start_time=since, end_time=until
            ):
                yield envelope

    async def start_hls(self, room_id: str, *, meeting_url: str | None = None) -> HlsStream:
        with self._translated(f"starting HLS in room {room_id}"):
            try:
                stream = await self._client.start_live_stream(room_id, meeting_url=meeting_url)
            except HmsConflict:
                stream = await self._running_stream(room_id)
        return HlsStream(stream.id, stream.room_id, stream.status, stream.playback_url)

    async def _running_stream(self, room_id: str) -> schemas.LiveStream:
        page = await self._client.list_live_streams(room_id=room_id)
        for stream in page.data:
            if stream.status not in FINISHED_STREAM_STATUSES:
                return stream
        raise ProviderError(
            f"100ms says HLS is already starting in room {room_id} but lists no stream yet; "
            "try again in a minute",
            transient=True,
            status_code=409,
        )

    async def stop_hls(self, room_id: str) -> None:
        with self._translated(f"stopping HLS in room {room_id}"):
            try:
                await self._client.stop_live_streams(room_id)
            except HmsNotFound:
                log.info("hms.hls.stop.none_running", room_id=room_id)


def _room(room: schemas.Room) -> Room:
    return Room(id=room.id, name=room.name, enabled=room.enabled)


def _room_code(code: schemas.RoomCode) -> RoomCode:
    return RoomCode(code=code.code, room_id=code.room_id, role=code.role, enabled=code.enabled)
