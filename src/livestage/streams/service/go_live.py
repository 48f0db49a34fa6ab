"""Going live: pick the first strategy that can work, record it, one stream per influencer."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NoReturn

import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from livestage.audit.service import Actor, audit
from livestage.db import Database, transaction
from livestage.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable
from livestage.influencers.room_codes import InvalidRoomCode, normalize_room_code
from livestage.influencers.service import InvalidRoomCodeError, room_name_for
from livestage.influencers.service import influencer as influencer_service
from livestage.influencers.tokens import TokenStatus
from livestage.kit import deadlines
from livestage.models import (
    HlsStatus,
    Influencer,
    LiveStream,
    StreamStatus,
    StreamStrategy,
    User,
)
from livestage.providers.base import (
    HlsStream,
    JoinToken,
    ProviderError,
    Room,
    RoomCode,
    StreamingProvider,
    browser_signalling,
)
from livestage.streams import lifecycle
from livestage.streams.repository import StreamRepository
from livestage.streams.schemas import JoinInfo
from livestage.streams.service.errors import (
    ProviderUnavailable,
    StartInterrupted,
    StillSettingUp,
    StreamingDisabled,
    blocked,
    not_answering,
)
from livestage.streams.service.shared import (
    BACKSTOP_SECONDS,
    GoLiveConfig,
    GoLiveResult,
    being_set_up,
    token_join,
)

log = structlog.get_logger()


def _clean(title: str, description: str) -> tuple[str, str]:
    title, description = title.strip(), description.strip()
    if not title:
        raise BadRequest("Give your stream a title.")
    if len(title) > 140:
        raise BadRequest("The title can be at most 140 characters.")
    if len(description) > 2000:
        raise BadRequest("The description can be at most 2000 characters.")
    return title, description


SET_UP_POLL_SECONDS = 0.1


NO_CREDENTIALS = (
    "automatic set-up needs 100ms credentials on the server "
    "(LIVESTAGE_HMS_ACCESS_KEY and LIVESTAGE_HMS_APP_SECRET)"
)


@dataclass(frozen=True, slots=True)
class _Claim:
    """Go-live's first step: this click owns the set-up of the `starting` stream `stream_id`
    (no room yet), or, when `stream_id` is None, another click does."""

    influencer: Influencer
    stream_id: uuid.UUID | None


@dataclass(slots=True)
class _SetUp:
    """What the provider gave go-live, asked with no session open. `room` is kept even when a
    later call failed: the next try names the same room."""

    room: Room | None = None
    codes: list[RoomCode] = field(default_factory=list)
    token: JoinToken | None = None
    failure: ProviderError | None = None


class HlsNeeds100ms(Conflict):
    problem = "hls_needs_100ms"

    def __init__(self) -> None:
        super().__init__(
            "HLS needs 100ms: this server streams with its local provider. "
            "Start Streaming without HLS."
        )


def hls_meeting_url(config: GoLiveConfig, handle: str) -> str | None:
    """The page 100ms's recorder opens to capture the stream: livestage's own watch page."""
    return f"{config.public_url}/watch/{handle}" if config.public_url else None


def _hls_unavailable(stream: LiveStream, config: GoLiveConfig) -> str | None:
    """Why HLS cannot start for this stream, or None when it can be asked for."""
    if config.provider is None or stream.strategy != StreamStrategy.automatic:
        return "HLS starts only with automatic set-up (100ms credentials on the server)"
    if not config.public_url:
        return "LIVESTAGE_PUBLIC_URL is not set, so 100ms's recorder has no page to open"
    return None


def _record_hls(stream: LiveStream, started: HlsStream | None, problem: str | None) -> None:
    """What starting HLS gave; an hls.* event applied meanwhile is newer and stays."""
    if problem is not None:
        stream.hls_status, stream.hls_problem = HlsStatus.failed, problem[:500]
        return
    if stream.hls_status is None:
        stream.hls_status = HlsStatus.starting
    if started is not None:
        stream.hls_url = stream.hls_url or started.playback_url


def _abandoned(claim: LiveStream, config: GoLiveConfig, now: datetime) -> bool:
    """Its go-live cannot still be waiting on the provider: the process died or restarted."""
    return now - claim.created_at > timedelta(seconds=2 * config.deadline_seconds)


def _fail_abandoned(claim: LiveStream, now: datetime) -> None:
    claim.status = lifecycle.check_transition(claim.status, StreamStatus.failed)
    claim.ended_at, claim.end_reason = now, "set_up_interrupted"
    claim.failure_reason = "Start Streaming stopped before the video provider answered."


class GoLiveService:
    """Start Streaming, automatic or with a room code, and a fresh way into an open stream."""

    async def go_live(
        self,
        database: Database,
        user: User,
        *,
        title: str,
        description: str,
        config: GoLiveConfig,
        now: datetime,
        hls: bool = False,
    ) -> GoLiveResult:
        """Automatic → admin-set token → (ask for) a room code. Idempotent per influencer.

        No provider call is made while a transaction is open (on SQLite that would hold the
        write lock for every request): a short transaction claims the stream, the calls follow
        with no session, a second short one records what they gave. The calls share one
        deadline, so the creator gets an answer however slow the provider is. With `hls`,
        HLS is then started the same way; its failure never stops the stream going live."""
        if hls and config.provider and browser_signalling(config.provider) is not None:
            raise HlsNeeds100ms()
        with deadlines.within(config.deadline_seconds):
            result = await self._go_live(database, user, title, description, config, now)
            if hls and result.created:
                result = await self._with_hls(database, result, config)
            return result

    async def _go_live(
        self,
        database: Database,
        user: User,
        title: str,
        description: str,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult:
        """Claim, set up with no session, record (see `go_live`)."""
        while True:
            claimed = await self._claim(database, user, title, description, config, now)
            if isinstance(claimed, GoLiveResult):
                return claimed
            if claimed.stream_id is not None:
                break
            await self._wait_for_set_up(database, claimed.influencer, config)
        assert config.provider is not None
        done = await self._set_up(config.provider, claimed.influencer, config)
        return await self._record_set_up(database, user, claimed, done, config, now)

    async def _with_hls(
        self, database: Database, result: GoLiveResult, config: GoLiveConfig
    ) -> GoLiveResult:
        """Start HLS with no session open, then record how it went in a short transaction."""
        stream = result.stream
        problem = _hls_unavailable(stream, config)
        started = None
        if problem is None:
            started, problem = await self._start_hls(stream, config)
        if problem is not None:
            log.warning("streams.hls_not_started", handle=stream.influencer.handle, why=problem)
        async with transaction(database.sessionmaker) as session:
            locked = await StreamRepository(session).lock(stream.id)
            if locked is None:
                return result
            _record_hls(locked, started, problem)
            return GoLiveResult(locked, result.join, result.created)

    async def _start_hls(
        self, stream: LiveStream, config: GoLiveConfig
    ) -> tuple[HlsStream | None, str | None]:
        assert config.provider is not None and stream.room_id is not None
        meeting_url = hls_meeting_url(config, stream.influencer.handle)
        try:
            async with asyncio.timeout((deadlines.remaining() or 0.0) + BACKSTOP_SECONDS):
                started = await config.provider.start_hls(stream.room_id, meeting_url=meeting_url)
        except ProviderError as error:
            return None, error.message
        except TimeoutError:
            return None, "100ms did not answer within the go-live deadline"
        return started, None

    async def _claim(
        self,
        database: Database,
        user: User,
        title: str,
        description: str,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult | _Claim:
        """Refuse, rejoin the open stream, or claim a new one (a `starting` row, no room yet:
        the unique index on open streams keeps concurrent clicks to one)."""
        async with transaction(database.sessionmaker) as session:
            repository = StreamRepository(session)
            found = await repository.lock_influencer_with_open_stream(user.id)
            if found is None:
                raise Forbidden("Only influencers can go live.")
            influencer, existing = found
            if not influencer.streaming_enabled:
                await self._refuse(session, user, influencer, now)
            title, description = _clean(title, description)
            if existing is not None and not being_set_up(existing):
                rejoin = self._rejoin(existing, influencer, config, now)
                return GoLiveResult(existing, rejoin, False)
            if existing is not None:
                if not _abandoned(existing, config, now):
                    return _Claim(influencer, None)
                _fail_abandoned(existing, now)
                await session.flush()
            if config.provider is None:
                return await self._fall_back(
                    session,
                    user,
                    influencer,
                    (title, description),
                    None,
                    [NO_CREDENTIALS],
                    config,
                    now,
                )
            claim_id = await repository.add_unless_open(
                {
                    "influencer_id": influencer.id,
                    "provider": config.provider.name,
                    "strategy": StreamStrategy.automatic,
                    "status": StreamStatus.starting,
                    "title": title,
                    "description": description,
                    "created_at": now,
                }
            )
            return _Claim(influencer, claim_id)

    async def _wait_for_set_up(
        self, database: Database, influencer: Influencer, config: GoLiveConfig
    ) -> None:
        """Another click is setting the stream up: wait for it within this click's own
        deadline, then go round again (its stream, or a fresh try when it failed)."""
        while (left := deadlines.remaining() or 0.0) > 0:
            await asyncio.sleep(min(SET_UP_POLL_SECONDS, left))
            async with database.read_sessionmaker() as session:
                active = await StreamRepository(session).get_active(influencer.id)
            if active is None or not being_set_up(active):
                return
        log.warning("streams.go_live_waited_out", handle=influencer.handle)
        problems = ["another Start Streaming was still waiting for the provider at the deadline"]
        raise ProviderUnavailable(problems, not_answering(config.provider))

    async def _set_up(
        self, provider: StreamingProvider, influencer: Influencer, config: GoLiveConfig
    ) -> _SetUp:
        """The room, its codes and a broadcaster token, or what failed."""
        done = _SetUp()
        try:
            async with asyncio.timeout((deadlines.remaining() or 0.0) + BACKSTOP_SECONDS):
                await self._room_and_codes(provider, influencer, config, done)
            assert done.room is not None
            done.token = provider.mint_join_token(
                room_id=done.room.id, role=config.broadcaster_role, user_id=str(influencer.user_id)
            )
        except ProviderError as error:
            done.failure = error
        except TimeoutError:
            done.failure = ProviderError(
                f"the video provider did not answer within the go-live deadline "
                f"({config.deadline_seconds:g} s, LIVESTAGE_GO_LIVE_DEADLINE_SECONDS)",
                transient=True,
            )
        if done.failure is not None:
            log.warning(
                "streams.automatic_failed", handle=influencer.handle, error=done.failure.message
            )
        return done

    async def _record_set_up(
        self,
        database: Database,
        user: User,
        claimed: _Claim,
        done: _SetUp,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult:
        """The claimed stream gets its room; or, when set-up failed, the claim goes and the
        admin-set token is tried, else the creator is told what to do."""
        async with transaction(database.sessionmaker) as session:
            if recorded := await self._record_room(session, user, claimed, done, config, now):
                return recorded
            repository = StreamRepository(session)
            claim = await repository.lock(claimed.stream_id) if claimed.stream_id else None
            if claim is None:  # its influencer was deleted meanwhile
                raise StartInterrupted()
            influencer = claim.influencer
            if done.room is not None:
                influencer.hms_room_id, influencer.hms_room_name = done.room.id, done.room.name
            if claim.status != StreamStatus.starting:
                raise StartInterrupted()
            if not influencer.streaming_enabled:
                await repository.delete(claim)
                await self._refuse(session, user, influencer, now)
            if done.failure is not None or done.room is None or done.token is None:
                await repository.delete(claim)
                problems = [done.failure.message] if done.failure else []
                texts = (claim.title, claim.description)
                return await self._fall_back(
                    session, user, influencer, texts, done.failure, problems, config, now
                )
            claim.room_id, claim.room_name = done.room.id, done.room.name
            claim.room_codes = {c.role: c.code for c in done.codes if c.enabled}
            assert config.provider is not None
            join = token_join(config.provider, done.token, influencer)
            return await self._record_start(session, user, influencer, claim, join, [], now)

    async def _record_room(
        self,
        session: AsyncSession,
        user: User,
        claimed: _Claim,
        done: _SetUp,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult | None:
        """The usual end of set-up, in one statement and the audit entry: the room went to a
        stream still `starting`, of an influencer still allowed to stream. None when set-up
        failed or the stream changed meanwhile: the caller sorts it out (the influencer may
        already remember the room, as the caller's own path has it do anyway)."""
        room, token, influencer = done.room, done.token, claimed.influencer
        if room is None or token is None or done.failure or claimed.stream_id is None:
            return None
        repository = StreamRepository(session)
        # The influencer's row first, as every go-live locks it before its stream: on
        # PostgreSQL the other order deadlocks with a concurrent click's claim.
        if (influencer.hms_room_id, influencer.hms_room_name) != (room.id, room.name):
            await repository.remember_room(influencer.id, room.id, room.name)
            set_committed_value(influencer, "hms_room_id", room.id)
            set_committed_value(influencer, "hms_room_name", room.name)
        codes = {c.role: c.code for c in done.codes if c.enabled}
        stream = await repository.give_room(
            claimed.stream_id, room_id=room.id, room_name=room.name, codes=codes
        )
        if stream is None:
            return None
        set_committed_value(stream, "influencer", influencer)
        assert config.provider is not None
        join = token_join(config.provider, token, influencer)
        await self._audit_start(session, user, stream, [], now)
        return GoLiveResult(stream, join, True)

    async def _fall_back(
        self,
        session: AsyncSession,
        user: User,
        influencer: Influencer,
        texts: tuple[str, str],
        failure: ProviderError | None,
        problems: list[str],
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult:
        """Automatic set-up cannot work: the admin-set token, else what the creator can do."""
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
            raise blocked(config.provider, failure, problems)
        stream.title, stream.description = texts
        return await self._record_start(session, user, influencer, stream, join, problems, now)

    async def go_live_with_room_code(
        self,
        database: Database,
        user: User,
        *,
        code: str,
        title: str,
        description: str,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult:
        """The manual fallback. The code is checked with the provider between two short
        transactions (none open during the call), within the go-live deadline."""
        with deadlines.within(config.deadline_seconds):
            async with transaction(database.sessionmaker) as session:
                influencer = await self._locked_influencer(session, user, now=now)
                title, description = _clean(title, description)
                try:
                    code = normalize_room_code(code)
                except InvalidRoomCode as error:
                    raise InvalidRoomCodeError(str(error)) from error
                if rejoined := await self._rejoin_open(session, influencer, config, now):
                    return rejoined
            room_id = await self._check_room_code(config, code)
            async with transaction(database.sessionmaker) as session:
                influencer = await self._locked_influencer(session, user, now=now)
                if rejoined := await self._rejoin_open(session, influencer, config, now):
                    return rejoined
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

    async def _rejoin_open(
        self,
        session: AsyncSession,
        influencer: Influencer,
        config: GoLiveConfig,
        now: datetime,
    ) -> GoLiveResult | None:
        existing = await StreamRepository(session).get_active(influencer.id)
        if existing is None:
            return None
        if being_set_up(existing):
            raise StillSettingUp()
        return GoLiveResult(existing, self._rejoin(existing, influencer, config, now), False)

    async def _locked_influencer(
        self, session: AsyncSession, user: User, *, now: datetime
    ) -> Influencer:
        influencer = await StreamRepository(session).lock_influencer(user.id)
        if influencer is None:
            raise Forbidden("Only influencers can go live.")
        if not influencer.streaming_enabled:
            await self._refuse(session, user, influencer, now)
        return influencer

    async def _refuse(
        self, session: AsyncSession, user: User, influencer: Influencer, now: datetime
    ) -> NoReturn:
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

    async def _room_and_codes(
        self,
        provider: StreamingProvider,
        influencer: Influencer,
        config: GoLiveConfig,
        done: _SetUp,
    ) -> None:
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
        done.room = room
        if codes is None or room.id != known:
            codes = await provider.ensure_room_codes(room.id)
        done.codes = codes

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
        return token_join(config.provider, token, influencer)

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
        await self._audit_start(session, user, stream, problems, now)
        return GoLiveResult(stream, join, True)

    async def _audit_start(
        self,
        session: AsyncSession,
        user: User,
        stream: LiveStream,
        problems: list[str],
        now: datetime,
    ) -> None:
        await audit.record(
            session,
            Actor(user, None),
            "stream.start",
            now=now,
            target_type="stream",
            target_id=stream.id,
            handle=stream.influencer.handle,
            strategy=stream.strategy.value,
            room_id=stream.room_id,
            fallback_reasons=problems,
        )


async def _gather_or_raise(
    first: Awaitable[Room], second: Awaitable[list[RoomCode]]
) -> tuple[Room, list[RoomCode] | None]:
    """Both at once; the first's failure wins, a failure of the second alone means "ask again"."""
    room, codes = await asyncio.gather(first, second, return_exceptions=True)
    if isinstance(room, BaseException):
        raise room
    return room, None if isinstance(codes, BaseException) else codes


def _admin_token_problem(status: TokenStatus, problem: str | None) -> str:
    return {
        TokenStatus.none: "no admin-set token",
        TokenStatus.expired: "the admin-set token has expired",
        TokenStatus.invalid: f"the admin-set token is not valid ({problem})",
    }.get(status, "the admin-set token cannot be used")
