"""Going live: pick the first strategy that can work, record it, one stream per influencer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from livestage.audit.service import Actor, audit
from livestage.config import Settings
from livestage.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    LivestageError,
    NotFound,
    ServiceUnavailable,
)
from livestage.influencers.repository import InfluencerRepository
from livestage.influencers.room_codes import InvalidRoomCode, normalize_room_code
from livestage.influencers.service import InvalidRoomCodeError, TokenPolicy, room_name_for
from livestage.influencers.service import influencer as influencer_service
from livestage.influencers.tokens import TokenStatus
from livestage.kit.crypto import SecretBox
from livestage.models import Influencer, LiveStream, StreamStatus, StreamStrategy, User
from livestage.providers.base import (
    ProviderError,
    Room,
    RoomCode,
    StreamingProvider,
    WebhookTarget,
    browser_signalling,
)
from livestage.streams import lifecycle
from livestage.streams.joins import JoinIntent, Viewing, Watchable
from livestage.streams.repository import StreamRepository
from livestage.streams.schemas import JoinInfo
from livestage.streams.updates import live_update

log = structlog.get_logger()


class StreamingDisabled(Forbidden):
    # The refusal is audited (`stream.start_refused`): that row must outlive the rollback.
    keeps_changes = True

    def __init__(self) -> None:
        super().__init__("Streaming is turned off for your account. Ask an admin to enable it.")


MISCONFIGURED = "Streaming is not set up correctly on this server; an admin has been told."
ROOM_CODE_HOW = (
    "in the 100ms dashboard open Rooms, pick your room, and copy the code for the broadcaster role"
)


class RoomCodeRequired(LivestageError):
    """Neither automatic set-up nor an admin-set token can be used, and a room code can.
    `problems` say why, for admins: they reach the log and the audit row, never the creator."""

    status_code = 409
    problem = "room_code_required"
    keeps_changes = True

    def __init__(self, problems: list[str], *, misconfigured: bool) -> None:
        if misconfigured:
            message = (
                f"{MISCONFIGURED} You can still go live with the room code of your 100ms room: "
                f"ask an admin for it, or {ROOM_CODE_HOW}."
            )
        else:
            message = f"Enter the room code of your 100ms room to go live: {ROOM_CODE_HOW}."
        super().__init__(message)
        self.problems = problems


class ProviderUnavailable(ServiceUnavailable):
    """Nothing can start a stream now, not even a room code: the creator can only wait (or
    an admin must fix the server). `problems` are for admins, as for `RoomCodeRequired`."""

    problem = "provider_unavailable"
    keeps_changes = True

    def __init__(self, problems: list[str], message: str) -> None:
        super().__init__(message)
        self.problems = problems


def _blocked(
    provider: StreamingProvider | None, failure: ProviderError | None, problems: list[str]
) -> LivestageError:
    """What the creator is told when nothing could start the stream."""
    if provider is None:
        return RoomCodeRequired(problems, misconfigured=False)
    if failure is not None and failure.transient:
        # The browser's room-code exchange goes to 100ms too: it would fail the same way.
        who = "100ms is" if provider.name == "hms" else "The video service is"
        return ProviderUnavailable(
            problems, f"{who} not answering right now; try again in a minute."
        )
    if browser_signalling(provider) is not None:
        return ProviderUnavailable(problems, MISCONFIGURED)
    return RoomCodeRequired(problems, misconfigured=True)


class StreamFull(Conflict):
    problem = "stream_full"

    def __init__(self, cap: int) -> None:
        super().__init__(f"This stream is full ({cap} viewers). Try again in a moment.")


class Banned(Forbidden):
    problem = "banned"

    def __init__(self) -> None:
        super().__init__("You are banned from this creator's streams.")


class NoActiveStream(NotFound):
    def __init__(self) -> None:
        super().__init__("You are not live right now.")


@dataclass(frozen=True, slots=True)
class GoLiveConfig:
    """Everything go-live needs from the app besides the database."""

    provider: StreamingProvider | None
    box: SecretBox
    token_policy: TokenPolicy
    broadcaster_role: str
    viewer_role: str
    auth_url: str
    webhook: WebhookTarget | None
    # The 100ms browser SDK the broadcast and watch pages load.
    sdk_url: str

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        provider: StreamingProvider | None,
        box: SecretBox,
        token_policy: TokenPolicy,
        webhook: WebhookTarget | None,
    ) -> GoLiveConfig:
        return cls(
            provider=provider,
            box=box,
            token_policy=token_policy,
            broadcaster_role=settings.hms_broadcaster_role,
            viewer_role=settings.hms_viewer_role,
            auth_url=settings.hms_auth_url,
            webhook=webhook,
            sdk_url=settings.hms_sdk_url,
        )


@dataclass(frozen=True, slots=True)
class GoLiveResult:
    stream: LiveStream
    join: JoinInfo
    created: bool


def _clean(title: str, description: str) -> tuple[str, str]:
    title, description = title.strip(), description.strip()
    if not title:
        raise BadRequest("Give your stream a title.")
    if len(title) > 140:
        raise BadRequest("The title can be at most 140 characters.")
    if len(description) > 2000:
        raise BadRequest("The description can be at most 2000 characters.")
    return title, description


class StreamService:
    async def go_live(
        self,
        session: AsyncSession,
        user: User,
        *,
        title: str,
        description: str,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult:
        """Automatic → admin-set token → (ask for) a room code. Idempotent per influencer."""
        influencer = await self._locked_influencer(session, user, now=now)
        title, description = _clean(title, description)
        repository = StreamRepository(session)
        if existing := await repository.get_active(influencer.id):
            return GoLiveResult(existing, self._rejoin(existing, influencer, config, now), False)

        problems: list[str] = []
        stream, join, failure = await self._automatic(session, influencer, config, problems)
        if stream is None:
            stream, join = self._with_admin_token(influencer, config, problems, now)
        if stream is None or join is None:
            await audit.record(
                session,
                Actor(user, None),
                "stream.start_blocked",
                now=now,
                target_type="influencer",
                target_id=influencer.id,
                problems=problems,
            )
            raise _blocked(config.provider, failure, problems)
        stream.title, stream.description = title, description
        return await self._record_start(session, user, influencer, stream, join, problems, now)

    async def go_live_with_room_code(
        self,
        session: AsyncSession,
        user: User,
        *,
        code: str,
        title: str,
        description: str,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult:
        influencer = await self._locked_influencer(session, user, now=now)
        title, description = _clean(title, description)
        try:
            code = normalize_room_code(code)
        except InvalidRoomCode as error:
            raise InvalidRoomCodeError(str(error)) from error
        repository = StreamRepository(session)
        if existing := await repository.get_active(influencer.id):
            return GoLiveResult(existing, self._rejoin(existing, influencer, config, now), False)

        room_id = await self._check_room_code(config, code)
        stream = LiveStream(
            influencer_id=influencer.id,
            provider="hms",
            strategy=StreamStrategy.room_code,
            status=StreamStatus.starting,
            room_id=room_id,
            room_codes={config.broadcaster_role: code},
            title=title,
            description=description,
            created_at=now,
        )
        join = self._room_code_join(influencer, config, code, room_id)
        return await self._record_start(session, user, influencer, stream, join, [], now)

    async def _locked_influencer(
        self, session: AsyncSession, user: User, *, now: datetime
    ) -> Influencer:
        found = await InfluencerRepository(session).get_by_user(user)
        if found is None:
            raise Forbidden("Only influencers can go live.")
        influencer = await StreamRepository(session).lock_influencer(found.id)
        assert influencer is not None
        if not influencer.streaming_enabled:
            await audit.record(
                session,
                Actor(user, None),
                "stream.start_refused",
                now=now,
                target_type="influencer",
                target_id=influencer.id,
                handle=influencer.handle,
                reason="streaming_disabled",
            )
            raise StreamingDisabled()
        return influencer

    async def _automatic(
        self,
        session: AsyncSession,
        influencer: Influencer,
        config: GoLiveConfig,
        problems: list[str],
    ) -> tuple[LiveStream | None, JoinInfo | None, ProviderError | None]:
        """The stream and how to join it, or what failed (None: no provider to ask)."""
        provider = config.provider
        if provider is None:
            problems.append(
                "automatic set-up needs 100ms credentials on the server "
                "(LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET)"
            )
            return None, None, None
        try:
            room, codes = await self._room_and_codes(provider, influencer, config)
            token = provider.mint_join_token(
                room_id=room.id, role=config.broadcaster_role, user_id=str(influencer.user_id)
            )
        except ProviderError as error:
            log.warning("streams.automatic_failed", handle=influencer.handle, error=error.message)
            problems.append(error.message)
            return None, None, error
        await session.flush()
        stream = LiveStream(
            influencer_id=influencer.id,
            provider=provider.name,
            strategy=StreamStrategy.automatic,
            status=StreamStatus.starting,
            room_id=room.id,
            room_name=room.name,
            room_codes={c.role: c.code for c in codes if c.enabled},
        )
        join = JoinInfo(
            kind="token",
            token=token.token,
            role=token.role,
            room_id=room.id,
            user_id=token.user_id,
            user_name=influencer.user.display_name,
            **_provider_fields(provider, room.id),
        )
        return stream, join, None

    async def _room_and_codes(
        self, provider: StreamingProvider, influencer: Influencer, config: GoLiveConfig
    ) -> tuple[Room, list[RoomCode]]:
        """Ensure the room and its codes. When the influencer's room is known (every go-live
        after the first) both calls go out together: one provider round trip, not two."""
        known = influencer.hms_room_id
        ensure_room = provider.ensure_room(
            name=room_name_for(influencer.handle),
            description=f"livestage room of @{influencer.handle}",
            webhook=config.webhook,
        )
        if known is None:
            room = await ensure_room
            codes = None
        else:
            room, codes = await _gather_or_raise(ensure_room, provider.ensure_room_codes(known))
        # Remember the room at once: if a later call fails, the record still names it.
        influencer.hms_room_id, influencer.hms_room_name = room.id, room.name
        if codes is None or room.id != known:
            codes = await provider.ensure_room_codes(room.id)
        return room, codes

    def _with_admin_token(
        self, influencer: Influencer, config: GoLiveConfig, problems: list[str], now: datetime
    ) -> tuple[LiveStream | None, JoinInfo | None]:
        info = influencer_service.token_info(influencer, config.box, config.token_policy, now=now)
        token = influencer_service.usable_token(
            influencer, config.box, config.token_policy, now=now
        )
        if token is None:
            problems.append(_admin_token_problem(info.status, info.problem))
            return None, None
        stream = LiveStream(
            influencer_id=influencer.id,
            provider="hms",
            strategy=StreamStrategy.admin_token,
            status=StreamStatus.starting,
            room_id=influencer.token_room_id,
        )
        join = JoinInfo(
            kind="token",
            token=token,
            role=influencer.token_role or "",
            room_id=info.room_id,
            user_id=influencer.token_user_id or str(influencer.user_id),
            user_name=influencer.user.display_name,
        )
        return stream, join

    async def _check_room_code(self, config: GoLiveConfig, code: str) -> str | None:
        if config.provider is None:
            return None
        if browser_signalling(config.provider) is not None:
            raise InvalidRoomCodeError(
                "Room codes are a 100ms feature and this server streams with its local "
                "provider: use Start Streaming, it needs no code."
            )
        try:
            resolved = await config.provider.resolve_room_code(code)
        except ProviderError as error:
            if error.transient:
                return None
            raise InvalidRoomCodeError(
                f"100ms does not accept this room code: {error.message}."
            ) from error
        if resolved.role != config.broadcaster_role:
            raise InvalidRoomCodeError(
                f"This room code is for the role {resolved.role!r}; use the code of the "
                f"{config.broadcaster_role!r} role to broadcast."
            )
        return resolved.room_id

    def _room_code_join(
        self, influencer: Influencer, config: GoLiveConfig, code: str, room_id: str | None
    ) -> JoinInfo:
        return JoinInfo(
            kind="room_code",
            room_code=code,
            token_endpoint=f"{config.auth_url}/token",
            role=config.broadcaster_role,
            room_id=room_id,
            user_id=str(influencer.user_id),
            user_name=influencer.user.display_name,
        )

    def _rejoin(
        self, stream: LiveStream, influencer: Influencer, config: GoLiveConfig, now: datetime
    ) -> JoinInfo:
        """The same stream again (double click, second tab, retry): a fresh way in."""
        if stream.strategy == StreamStrategy.room_code:
            code = stream.room_codes.get(config.broadcaster_role, "")
            return self._room_code_join(influencer, config, code, stream.room_id)
        if stream.strategy == StreamStrategy.admin_token:
            _, join = self._with_admin_token(influencer, config, [], now)
            if join is None:
                raise Conflict("Your stream is open but the admin-set token is no longer valid.")
            return join
        if (
            config.provider is None
            or stream.room_id is None
            or stream.provider != config.provider.name
        ):
            raise ServiceUnavailable("The video provider is not configured any more.")
        token = config.provider.mint_join_token(
            room_id=stream.room_id, role=config.broadcaster_role, user_id=str(influencer.user_id)
        )
        return JoinInfo(
            kind="token",
            token=token.token,
            role=token.role,
            room_id=stream.room_id,
            user_id=token.user_id,
            user_name=influencer.user.display_name,
            **_provider_fields(config.provider, stream.room_id),
        )

    async def _record_start(
        self,
        session: AsyncSession,
        user: User,
        influencer: Influencer,
        stream: LiveStream,
        join: JoinInfo,
        problems: list[str],
        now: datetime,
    ) -> GoLiveResult:
        stream.influencer_id, stream.created_at = influencer.id, now
        stream.influencer = influencer
        repository = StreamRepository(session)
        try:
            await repository.add(stream)
        except IntegrityError:
            existing = await repository.get_active(influencer.id)
            if existing is None:
                raise
            return GoLiveResult(existing, join, False)
        await audit.record(
            session,
            Actor(user, None),
            "stream.start",
            now=now,
            target_type="stream",
            target_id=stream.id,
            handle=influencer.handle,
            strategy=stream.strategy.value,
            room_id=stream.room_id,
            fallback_reasons=problems,
        )
        return GoLiveResult(stream, join, True)

    async def current(self, session: AsyncSession, user: User) -> LiveStream | None:
        influencer = await InfluencerRepository(session).get_by_user(user)
        if influencer is None:
            raise Forbidden("Only influencers stream.")
        return await StreamRepository(session).get_active(influencer.id)

    async def mark_live(self, session: AsyncSession, user: User, *, now: datetime) -> LiveStream:
        """The broadcaster's page joined the room. Provider events confirm it independently."""
        stream = await self.current(session, user)
        if stream is None:
            raise NoActiveStream()
        if stream.status == StreamStatus.starting:
            stream.status = lifecycle.check_transition(stream.status, StreamStatus.live)
            stream.started_at = now
        return stream

    async def end_own(
        self,
        session: AsyncSession,
        user: User,
        *,
        provider: StreamingProvider | None,
        now: datetime,
    ) -> LiveStream:
        stream = await self.current(session, user)
        if stream is None:
            raise NoActiveStream()
        return await self.end(
            session, Actor(user, None), stream, reason="broadcaster", provider=provider, now=now
        )

    async def end(
        self,
        session: AsyncSession,
        actor: Actor,
        stream: LiveStream,
        *,
        reason: str,
        provider: StreamingProvider | None,
        now: datetime,
    ) -> LiveStream:
        if stream.status in (StreamStatus.ended, StreamStatus.failed):
            return stream
        stream.status = lifecycle.check_transition(stream.status, StreamStatus.ended)
        stream.ended_at, stream.end_reason = now, reason
        stream.duration_seconds = lifecycle.duration_seconds(stream.started_at, now)
        if provider is not None and stream.room_id and stream.strategy == StreamStrategy.automatic:
            try:
                await provider.end_room(stream.room_id, reason=f"ended by {reason}")
            except ProviderError as error:
                # The stream is over for us either way; the reconciler retries until the
                # provider's session is closed (viewers still connected, still billed).
                stream.room_close_pending_since = now
                log.warning(
                    "streams.end_room_failed", stream_id=str(stream.id), error=error.message
                )
        await session.flush()
        await audit.record(
            session,
            actor,
            "stream.end",
            now=now,
            target_type="stream",
            target_id=stream.id,
            handle=stream.influencer.handle,
            reason=reason,
        )
        return stream

    async def end_by_admin(
        self,
        session: AsyncSession,
        actor: Actor,
        influencer: Influencer,
        *,
        provider: StreamingProvider | None,
        now: datetime,
    ) -> LiveStream:
        stream = await StreamRepository(session).get_active(influencer.id)
        if stream is None:
            raise NotFound(f"@{influencer.handle} is not live.")
        return await self.end(session, actor, stream, reason="admin", provider=provider, now=now)

    async def list_live(self, session: AsyncSession) -> list[LiveStream]:
        return await StreamRepository(session).list_live()

    async def watch(
        self, session: AsyncSession, handle: str
    ) -> tuple[Influencer, LiveStream | None]:
        """The influencer and their open stream, else their latest one."""
        influencer = await influencer_service.get_by_handle(session, handle)
        repository = StreamRepository(session)
        stream = await repository.get_active(influencer.id)
        return influencer, stream or await repository.get_latest(influencer.id)

    async def live_state(self, session: AsyncSession, handle: str) -> dict[str, Any]:
        """What a page watching `handle` shows right now (the first message of its updates)."""
        influencer, latest = await self.watch(session, handle)
        if latest is None:
            return {"handle": influencer.handle, "status": "offline", "viewers": 0, "peak": 0}
        return live_update(latest)

    async def viewer_join(
        self,
        viewing: Viewing,
        handle: str,
        *,
        viewer_id: str,
        config: GoLiveConfig,
        now: datetime,
    ) -> JoinInfo:
        """Check the stream is live and may be watched, mint a token for the viewer's identity
        (streams/viewers.py: the same across reloads and tabs), record the intent."""
        load = partial(self._watchable, viewing.reads, handle)
        watchable = await viewing.cache.get(handle, load)
        if not watchable.live or watchable.stream_id is None:
            raise NotFound(f"@{watchable.handle} is not live right now.")
        async with viewing.reads() as session:
            if await StreamRepository(session).is_banned(watchable.stream_id, viewer_id):
                raise Banned()
        provider = config.provider
        if provider is None or watchable.room_id is None:
            raise ServiceUnavailable(
                "This stream can only be watched where the server has 100ms credentials."
            )
        if watchable.provider != provider.name:
            raise ServiceUnavailable(
                f"This stream runs on the {watchable.provider!r} provider, which this server "
                "is not using any more."
            )
        if (signalling := browser_signalling(provider)) is not None:
            if await signalling.connected_viewers(watchable.room_id) >= signalling.viewer_cap:
                raise StreamFull(signalling.viewer_cap)
        token = provider.mint_join_token(
            room_id=watchable.room_id, role=config.viewer_role, user_id=viewer_id
        )
        viewing.joins.record(JoinIntent(watchable.stream_id, viewer_id, now))
        return JoinInfo(
            kind="token",
            token=token.token,
            role=token.role,
            room_id=watchable.room_id,
            user_id=viewer_id,
            user_name="Viewer",
            **_provider_fields(provider, watchable.room_id),
        )

    async def _watchable(
        self, sessionmaker: async_sessionmaker[AsyncSession], handle: str
    ) -> Watchable:
        """Read-only, in a session of its own (the join path holds no request session)."""
        async with sessionmaker() as session:
            influencer = await influencer_service.get_by_handle(session, handle)
            stream = await StreamRepository(session).get_active(influencer.id)
        if stream is None:
            return Watchable(influencer.handle, None, False, None, None)
        live = stream.status in (StreamStatus.starting, StreamStatus.live)
        return Watchable(influencer.handle, stream.id, live, stream.room_id, stream.provider)


async def _gather_or_raise(
    first: Awaitable[Room], second: Awaitable[list[RoomCode]]
) -> tuple[Room, list[RoomCode] | None]:
    """Both at once; the first's failure wins, a failure of the second alone means "ask again"."""
    room, codes = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(room, BaseException):
        raise room
    return room, None if isinstance(codes, BaseException) else codes


def _provider_fields(provider: StreamingProvider, room_id: str) -> dict[str, Any]:
    """How the browser reaches the provider: the 100ms SDK, or livestage's own signalling."""
    if (signalling := browser_signalling(provider)) is not None:
        return {
            "provider": signalling.name,
            "signal_url": signalling.signal_path(room_id),
            "ice_servers": signalling.ice_servers,
        }
    return {"provider": provider.name}


def _admin_token_problem(status: TokenStatus, problem: str | None) -> str:
    return {
        TokenStatus.none: "no admin-set token",
        TokenStatus.expired: "the admin-set token has expired",
        TokenStatus.invalid: f"the admin-set token is not valid ({problem})",
    }.get(status, "the admin-set token cannot be used")


stream = StreamService()


async def read_live_state(
    reads: async_sessionmaker[AsyncSession], handle: str
) -> dict[str, Any] | None:
    """What a page watching `handle` shows now, read in a session of its own; None for an
    unknown handle."""
    async with reads() as session:
        try:
            return await stream.live_state(session, handle)
        except NotFound:
            return None
